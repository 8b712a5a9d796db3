"""unwrap-uv as a researcher types it, and its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.io.meshfile import save_mesh
from avatarkit.structures import Mesh


@pytest.fixture(scope="module")
def human_and_views(make_generator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("unwrap")
    human = write_artifact(folder / "human.h5", make_generator(pose="rest", texture_size=128).subject(0))
    r = invoke("render", human, "-o", folder / "human_views.h5", "--views", 4, "--size", 128)
    assert r.exit_code == 0, r.output
    return human, folder / "human_views.h5"


def test_unwrap_with_mirror_then_render_with_the_texture(human_and_views, tmp_path):
    human, views = human_and_views
    out = tmp_path / "human_tex.h5"
    r = invoke(
        "unwrap-uv", human, "--views", views, "-o", out, "--symmetric", "--size", 128, "--export", "png", "--json"
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert 0.5 < summary["seen_fraction"] <= 1.0
    assert (tmp_path / "human_tex.png").exists() and (tmp_path / "human_tex_visibility.png").exists()
    tex = read_artifact(out, "texture")
    assert tex.texture.shape == (128, 128, 3) and tex.mirrored is not None
    r = invoke("render", human, "--texture", out, "-o", tmp_path / "check.h5", "--views", 2, "--size", 64)
    assert r.exit_code == 0, r.output


def test_atlas_for_a_mesh_without_uvs(tmp_path):
    box = trimesh.creation.box(extents=(0.3, 0.5, 0.2))
    colors = np.where(box.vertices[:, 1:2] > 0, [250, 10, 10], [10, 10, 250]).astype(np.uint8)
    scan = save_mesh(
        Mesh(box.vertices + np.array([0, 0.8, 0]), box.faces, vertex_colors=colors), tmp_path / "scan.ply"
    )[0]
    assert invoke("render", scan, "-o", tmp_path / "v.h5", "--views", 2, "--size", 32).exit_code == 0
    assert_clean_failure(
        invoke("unwrap-uv", scan, "--views", tmp_path / "v.h5", "-o", tmp_path / "x.h5"), "no UVs", "--atlas"
    )
    r = invoke("unwrap-uv", scan, "--atlas", "-o", tmp_path / "scan_uv.h5", "--size", 64)
    assert r.exit_code == 0, r.output
    mesh = read_artifact(tmp_path / "scan_uv.h5", "mesh")
    assert mesh.has_uvs and mesh.texture.shape == (64, 64, 3)


def test_views_only_splat_the_uv_images(human_and_views, tmp_path):
    _, views = human_and_views
    r = invoke("unwrap-uv", "--views", views, "-o", tmp_path / "t.h5", "--size", 64)
    assert r.exit_code == 0, r.output
    assert read_artifact(tmp_path / "t.h5", "texture").attrs["source"] == "uv images"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--views", "MISSING"), "no such file"),
        (("--views", "MESH"), "'mesh'"),
        (("--views", "VIEWS", "--size", 0), "--size must be positive"),
        (("--symmetric",), "nothing to project"),
        ((), "no such file"),
    ],
)
def test_bad_inputs_one_line_exit_1_no_output(human_and_views, tmp_path, args, needle):
    human, views = human_and_views
    out = tmp_path / "out.h5"
    source = human if args else tmp_path / "absent.obj"
    swap = {"MISSING": tmp_path / "missing.h5", "MESH": human, "VIEWS": views}
    args = [swap.get(a, a) if isinstance(a, str) else a for a in args]
    if not args:
        args = ["--views", views]
    assert_clean_failure(invoke("unwrap-uv", source, "-o", out, *args), needle)
    assert not out.exists()


def test_densepose_iuv_folder_without_a_mesh(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    (folder / "image").mkdir(parents=True)
    (folder / "iuv").mkdir()
    u = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (24, 1))
    index = np.full(u.shape, 7, np.uint8)
    Image.fromarray(np.stack([u, u, u], -1)).save(folder / "image" / "a.jpg", quality=100)
    Image.fromarray(np.stack([u, u, index], -1)).save(folder / "iuv" / "a_IUV.png")
    out = tmp_path / "atlas.h5"
    r = invoke("unwrap-uv", "--views", folder, "-o", out, "--size", 20, "--export", "png", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["seen_fraction"] > 0
    tex = read_artifact(out, "texture")
    assert tex.texture.shape == (120, 80, 3) and tex.attrs["source"] == "densepose iuv"
    assert tex.visibility[0:20, 20:40].any()  # part 7: tile row 0, column 1
    assert (tmp_path / "atlas.png").exists()
    assert_clean_failure(
        invoke("unwrap-uv", tmp_path / "x.obj", "--views", folder, "-o", tmp_path / "y.h5"), "give no mesh"
    )
    (folder / "iuv" / "a_IUV.png").unlink()
    assert_clean_failure(invoke("unwrap-uv", "--views", folder, "-o", tmp_path / "y.h5"), "0 IUV images", "photos")
    assert not (tmp_path / "y.h5").exists()


def test_views_that_see_nothing_are_named_and_the_rest_used(human_and_views, tmp_path):
    human, views = human_and_views
    v = read_artifact(views, "views")
    v.mask[2] = 0
    bad = write_artifact(tmp_path / "one_blind.h5", v)
    r = invoke("unwrap-uv", human, "--views", bad, "-o", tmp_path / "t.h5", "--size", 64)
    assert r.exit_code == 0, r.output
    assert "warning: view 2 sees nothing of the mesh" in r.stderr
    v.mask[...] = 0
    blind = write_artifact(tmp_path / "all_blind.h5", v)
    out = tmp_path / "none.h5"
    assert_clean_failure(
        invoke("unwrap-uv", human, "--views", blind, "-o", out, "--size", 64), "all_blind.h5", "no view sees"
    )
    assert not out.exists()


def test_idr_folder_with_a_missing_image_is_refused(human_and_views, tmp_path):
    human, _ = human_and_views
    folder = tmp_path / "idr"
    r = invoke("render", human, "-o", folder, "--views", 3, "--size", 32, "--export", "idr")
    assert r.exit_code == 0, r.output
    (folder / "image" / "001.png").unlink()
    out = tmp_path / "t.h5"
    assert_clean_failure(
        invoke("unwrap-uv", human, "--views", folder, "-o", out), "2 images in image/ but 3 cameras in cameras.npz"
    )
    assert not out.exists()


def test_many_meshes_take_a_folder_of_views_by_stem(tmp_path, textured_sphere):
    from avatarkit.io.hdf5 import write_artifact

    meshes = [write_artifact(tmp_path / "meshes" / f"person_{i}.h5", textured_sphere) for i in range(2)]
    assert invoke("render", *meshes, "-o", tmp_path / "views", "--views", 3, "--size", 32, "-q").exit_code == 0
    out = tmp_path / "textures"
    r = invoke("unwrap-uv", *meshes, "--views", tmp_path / "views", "-o", out, "--size", 32, "--json")
    assert r.exit_code == 0, r.output
    written = json.loads(r.stdout)["written"]
    assert [w["output"] for w in written] == [str(out / "person_0.h5"), str(out / "person_1.h5")]
    assert all(0 < w["seen_fraction"] <= 1 for w in written)
    assert read_artifact(out / "person_1.h5", "texture").texture.shape == (32, 32, 3)
    (tmp_path / "views" / "person_1.h5").unlink()
    r = invoke("unwrap-uv", *meshes, "--views", tmp_path / "views", "-o", tmp_path / "t2", "--size", 32)
    assert_clean_failure(r, "no views file", "person_1")
