"""render as a researcher types it: many meshes, camera files, IDR and PNG export, textures, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.io.meshfile import save_mesh
from avatarkit.structures import Mesh, Texture


@pytest.fixture
def meshes(tmp_path, textured_sphere):
    a = write_artifact(tmp_path / "in" / "a.h5", textured_sphere)
    box = trimesh.creation.box(extents=(0.4, 1.6, 0.3))
    b = save_mesh(Mesh(box.vertices + np.array([0, 0.8, 0]), box.faces), tmp_path / "in" / "b.obj")[0]
    return a, b


def test_many_meshes_orthographic_orbit(meshes, tmp_path):
    out = tmp_path / "views"
    r = invoke("render", *meshes, "-o", out, "--views", 6, "--size", 64, "--projection", "orthographic", "--json")
    assert r.exit_code == 0, r.output
    assert [w["views"] for w in json.loads(r.stdout)["written"]] == [6, 6]
    v = read_artifact(out / "b.h5", "views")
    assert v.projection == "orthographic" and v.rgb.shape == (6, 64, 64, 3) and v.uv is None
    assert all(m.any() for m in v.mask)


def test_idr_export_then_render_from_its_cameras(meshes, tmp_path):
    out = tmp_path / "head_views"
    r = invoke("render", meshes[0], "-o", out, "--views", 5, "--size", 48, "--export", "idr")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "image").iterdir()) == [f"{i:03d}.png" for i in range(5)]
    assert (out / "mask" / "004.png").exists() and (out / "cameras.npz").exists()
    first = read_artifact(out / "views.h5", "views")
    again = tmp_path / "again.h5"
    r = invoke("render", meshes[0], "-o", again, "--cameras", out / "cameras.npz")
    assert r.exit_code == 0, r.output
    second = read_artifact(again, "views")
    assert np.array_equal(first.mask, second.mask)
    assert np.allclose(first.K, second.K, atol=1e-4) and np.allclose(first.world_to_cam, second.world_to_cam, atol=1e-5)
    # --size with a camera file sets the image size, it does not rescale the cameras: say so
    r = invoke("render", meshes[0], "-o", tmp_path / "small.h5", "--cameras", out / "cameras.npz", "--size", 20)
    assert r.exit_code == 0, r.output
    assert "cameras.npz: the cameras' principal point is far from the centre of a 20 x 20 image" in r.stderr
    assert "made for about 48 x 48" in r.stderr


def test_png_export_has_a_contact_sheet(meshes, tmp_path):
    out = tmp_path / "pngs"
    r = invoke("render", meshes[1], "-o", out, "--views", 4, "--size", 32, "--export", "png", "--lighting", "sh")
    assert r.exit_code == 0, r.output
    assert (out / "contact_sheet.png").exists() and (out / "rgb_003.png").exists() and (out / "views.h5").exists()


def test_texture_from_a_texture_file_replaces_the_mesh_texture(meshes, tmp_path):
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[...] = [10, 200, 30]
    write_artifact(tmp_path / "tex.h5", Texture(tex, np.ones((8, 8), np.float32)))
    out = tmp_path / "check.h5"
    r = invoke("render", meshes[0], "--texture", tmp_path / "tex.h5", "-o", out, "--views", 2, "--size", 32)
    assert r.exit_code == 0, r.output
    v = read_artifact(out, "views")
    assert (v.rgb[v.mask > 0] == [10, 200, 30]).all()


def test_camera_that_sees_nothing_is_named_in_a_warning(meshes, tmp_path):
    c2w = np.eye(4)
    c2w[:3, 3] = [0.0, 1.0, 5.0]
    away = np.diag([-1.0, 1.0, -1.0, 1.0]) @ np.eye(4)  # turned around: looks down +Z, away from the mesh
    away[:3, 3] = [0.0, 1.0, 5.0]
    meta = {
        "camera_angle_x": 0.8,
        "w": 32,
        "h": 32,
        "frames": [{"transform_matrix": c2w.tolist()}, {"transform_matrix": away.tolist()}],
    }
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    r = invoke("render", meshes[0], "-o", tmp_path / "v.h5", "--cameras", tmp_path / "transforms.json")
    assert r.exit_code == 0, r.output
    assert "camera 1 sees nothing of the mesh" in r.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--size", 0), "--size must be positive"),
        (("--ssaa", 0), "--ssaa"),
        (("--lighting", "sh", "--hdri", "BAD"), "not a Radiance"),
        (("--cameras", "MISSING"), "no such file"),
        (("--albedo", "vertex"), "no vertex colours"),
        (("--lighting", "prt", "--hdri", "CUT"), "corrupt .hdr pixel data"),
    ],
)
def test_bad_options_one_line_exit_1_no_output(meshes, tmp_path, args, needle):
    (tmp_path / "bad.hdr").write_bytes(b"not an hdr")
    (tmp_path / "cut.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 8\n" + bytes(100)[:60])
    swap = {"BAD": tmp_path / "bad.hdr", "CUT": tmp_path / "cut.hdr", "MISSING": tmp_path / "missing.npz"}
    args = [swap.get(a, a) if isinstance(a, str) else a for a in args]
    out = tmp_path / "out.h5"
    assert_clean_failure(invoke("render", meshes[0], "-o", out, "--size", 16, *args), needle)
    assert not out.exists()


@pytest.mark.parametrize("args", [("--projection", "orthographic"), ("--preset", "pifu"), ("--cameras", "ORTHO")])
def test_idr_export_of_orthographic_cameras_is_refused_before_writing_anything(meshes, tmp_path, args):
    ortho = tmp_path / "ortho.h5"
    r = invoke("render", meshes[1], "-o", ortho, "--views", 2, "--size", 16, "--projection", "orthographic")
    assert r.exit_code == 0, r.output
    out = tmp_path / "idr"
    args = [ortho if a == "ORTHO" else a for a in args]
    result = invoke("render", meshes[0], "-o", out, "--views", 2, "--size", 16, "--export", "idr", *args)
    assert_clean_failure(result, "--export idr holds perspective cameras only")
    assert not out.exists()  # no image/ or mask/ left half-written


def test_yaws_limit_the_cameras_to_a_range(tmp_path):
    from avatarkit.io.hdf5 import read_artifact, write_artifact
    from avatarkit.structures import Mesh

    ball = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    mesh = write_artifact(tmp_path / "ball.h5", Mesh(ball.vertices + np.array([0.0, 1.0, 0.0]), ball.faces))
    r = invoke("render", mesh, "-o", tmp_path / "front.h5", "--views", 4, "--yaws", -90, 90, "--size", 16)
    assert r.exit_code == 0, r.output
    cams = read_artifact(tmp_path / "front.h5", "views").cameras()
    offset = cams.centers() - np.array([0.0, 1.0, 0.0])
    yaws = np.degrees(np.arctan2(offset[:, 0], offset[:, 2]))  # 0 in front (+Z), 90 on the left (+X)
    assert np.allclose(yaws, [-90, -45, 0, 45], atol=1e-4)
    assert_clean_failure(invoke("render", mesh, "-o", tmp_path / "x.h5", "--yaws", 10, 10), "--yaws")
