"""render as a researcher types it: many meshes, camera files, IDR and PNG export, textures, bad input."""

from __future__ import annotations

import json

import h5py
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


def test_export_of_several_meshes_gives_each_a_folder_and_refuses_a_file(meshes, tmp_path):
    out = tmp_path / "pngs"
    r = invoke("render", *meshes, "-o", out, "--views", 2, "--size", 24, "--export", "png", "-q")
    assert r.exit_code == 0, r.output
    for stem in ("a", "b"):
        assert (out / stem / "views.h5").exists() and (out / stem / "contact_sheet.png").exists()
    # a contact sheet already there is not ours: refused before any work, nothing written
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "contact_sheet.png").write_bytes(b"keep me")
    assert_clean_failure(invoke("render", meshes[1], "-o", mine, "--export", "png"), "contact_sheet.png", "exists")
    assert (mine / "contact_sheet.png").read_bytes() == b"keep me" and not (mine / "views.h5").exists()
    bad = tmp_path / "one.h5"
    assert_clean_failure(invoke("render", meshes[1], "-o", bad, "--export", "png"), str(bad), "folder")
    assert not bad.exists()


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


# ---------------------------------------------------------------- --preset h3ds


@pytest.fixture(scope="module")
def h3ds_capture(make_generator, tmp_path_factory):
    """A synthetic head (turned on its neck by the random pose) rendered with --preset h3ds at
    64 px high, exported as an IDR/H3DS folder."""
    folder = tmp_path_factory.mktemp("h3ds")
    head = make_generator(part="head", texture="none", seed=3).subject(0)
    mesh = write_artifact(folder / "head_0000.h5", head)
    out = folder / "idr"
    r = invoke("render", mesh, "--preset", "h3ds", "--size", 64, "-o", out, "--export", "idr", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["written"][0]["subsets"] == ["3", "4", "8", "16", "32"]
    return head, mesh, out


def _yaw_pitch(views, forward):
    """Each camera's yaw about +Y from the face's heading and its pitch above the horizon, degrees."""
    cams = views.cameras()
    offset = cams.centers() - cams.target
    heading = np.arctan2(forward[0], forward[2])
    yaw = np.degrees(np.arctan2(offset[:, 0], offset[:, 2]) - heading)
    yaw = (yaw + 180) % 360 - 180
    pitch = np.degrees(np.arcsin(offset[:, 1] / np.linalg.norm(offset, axis=1)))
    return yaw, pitch, np.linalg.norm(offset, axis=1)


def test_h3ds_preset_is_a_handheld_capture_of_the_face_with_nested_subsets(h3ds_capture):
    head, _, out = h3ds_capture
    views = read_artifact(out / "views.h5", "views")
    assert len(views) == 70 and views.projection == "perspective"
    assert views.rgb.shape == (70, 64, 48, 3)  # portrait 3:4, --size is the height
    assert views.mask.any(axis=(1, 2)).all()
    # the head fills the photos and never leaves them (the bottom of the neck may)
    skin = views.label == head.label_names.index("head")
    assert not np.concatenate([skin[:, 0], skin[:, -1], skin[:, :, 0], skin[:, :, -1]], 1).any()
    assert skin.mean(axis=(1, 2)).max() > 0.3
    # aimed at the head's centre from arm's length, all round the face's front, some pitch
    labels = head.vertex_labels == head.label_names.index("head")
    centre, _ = Mesh(head.vertices[labels], np.zeros((0, 3))).bounding_sphere()
    assert np.allclose(views.target, centre, atol=1e-5)
    yaw, pitch, distance = _yaw_pitch(views, head.face_forward())
    assert distance.min() >= 0.5 and distance.max() <= 0.7
    assert yaw.min() > -90.001 and yaw.max() < 90.001 and yaw.min() < -85 and yaw.max() > 85
    assert np.all(np.diff(yaw) > 0)  # in the order a photographer walks round
    assert -20 <= pitch.min() < -10 and 20 < pitch.max() <= 30
    # subsets: the right sizes, nested, the front view and about +-45 degrees in the smallest
    subsets = views.subsets
    assert list(subsets) == ["3", "4", "8", "16", "32"]
    previous: set[int] = set()
    for name, ids in subsets.items():
        assert len(ids) == len(set(ids.tolist())) == int(name) and ids.dtype == np.int32
        assert previous <= set(ids.tolist())
        previous = set(ids.tolist())
    front = int(np.argmax(np.cos(np.radians(yaw)) * np.cos(np.radians(pitch))))  # most squarely at the face
    three = subsets["3"]
    assert front in three
    assert sorted(np.round(yaw[three] / 45).astype(int).tolist()) == [-1, 0, 1]
    # larger subsets spread over the yaws: every 45 degrees of them holds some of subset 16's views
    assert np.histogram(yaw[subsets["16"]], bins=4, range=(-90, 90))[0].min() >= 2


def test_h3ds_photos_are_shaded_by_one_light_fixed_in_the_world(h3ds_capture):
    # a head of one colour (--texture none) shows its shape only through shading: the capture
    # is a still head in still light, as H3DS's and as IDR's radiance model assumes
    head, _, out = h3ds_capture
    with h5py.File(out / "views.h5", "r") as f:
        assert f["lighting"].attrs["type"] == "sh" and f["lighting"].attrs["environments"] == "fixed"
        sh = f["lighting/sh"][:]
    assert sh.shape == (70, 9, 3) and np.abs(sh - sh[0]).max() == 0 and np.abs(sh[0, 1:]).max() > 0.05
    views = read_artifact(out / "views.h5", "views")
    skin = views.label == head.label_names.index("head")
    grey = views.rgb.astype(np.float32).mean(-1)
    assert all(np.std(grey[i][skin[i]]) > 10 for i in views.subsets["3"])


def test_h3ds_subsets_survive_the_idr_export_and_bad_subsets_are_one_line(h3ds_capture, tmp_path):
    import shutil

    import h5py

    from avatarkit.io.view_folders import read_views

    _, mesh, out = h3ds_capture
    views = read_artifact(out / "views.h5", "views")
    saved = json.loads((out / "subsets.json").read_text())
    assert {k: np.asarray(v) for k, v in saved.items()}.keys() == views.subsets.keys()
    back = read_views(out)  # the IDR folder, as H3DS-style tools read it
    assert len(back) == 70 and list(back.subsets) == list(views.subsets)
    for name, ids in views.subsets.items():
        assert np.array_equal(back.subsets[name], ids)
    assert np.array_equal(back.subset("3").mask, views.mask[views.subsets["3"]])
    # a subsets.json naming a view the folder does not have: one line naming the file
    bad = tmp_path / "bad_idr"
    shutil.copytree(out, bad)
    (bad / "subsets.json").write_text(json.dumps({**saved, "3": [0, 35, 99]}))
    result = invoke("unwrap-uv", mesh, "--views", bad, "-o", tmp_path / "tex.h5", "--size", 16)
    assert_clean_failure(result, str(bad / "subsets.json"), "subset 3 names view 99 but there are 70 views")
    assert not (tmp_path / "tex.h5").exists()
    (bad / "subsets.json").write_text('{"3": [0, "front"]}')
    assert_clean_failure(invoke("unwrap-uv", mesh, "--views", bad, "-o", tmp_path / "tex.h5"), "subsets.json")
    # the same in a views file
    bad_h5 = tmp_path / "bad.h5"
    shutil.copy(out / "views.h5", bad_h5)
    with h5py.File(bad_h5, "a") as f:
        del f["/subsets/3"]
        f["/subsets/3"] = np.array([0, 35, 99], np.int32)
    result = invoke("render", mesh, "--cameras", bad_h5, "-o", tmp_path / "again.h5")
    assert_clean_failure(result, str(bad_h5), "/subsets/3 names view 99 but there are 70 views")
    assert not (tmp_path / "again.h5").exists()
    r = invoke("inspect", bad_h5)
    assert r.exit_code == 1 and "/subsets/3 names view 99" in r.stderr


def test_h3ds_preset_options(h3ds_capture, tmp_path):
    _, mesh, out = h3ds_capture
    r = invoke(
        "render", mesh, "--preset", "h3ds", "--views", 8, "--yaws", -30, 30, "--size", 32, "-o", tmp_path / "a.h5"
    )
    assert r.exit_code == 0, r.output
    views = read_artifact(tmp_path / "a.h5", "views")
    assert views.rgb.shape == (8, 32, 24, 3) and list(views.subsets) == ["3", "4", "8"]
    again = tmp_path / "b.h5"
    assert (
        invoke("render", mesh, "--preset", "h3ds", "--views", 8, "--size", 32, "--seed", 1, "-o", again).exit_code == 0
    )
    assert not np.allclose(read_artifact(again, "views").world_to_cam, views.world_to_cam)
    for args, needle in (
        (("--pitch", 10), "drop --pitch"),
        (("--fov", 30), "drop --fov"),
        (("--projection", "orthographic"), "drop --projection orthographic"),
        (("--rig", "random"), "drop --rig random"),
        (("--cameras", out / "cameras.npz"), "--cameras and --preset"),
    ):
        result = invoke("render", mesh, "--preset", "h3ds", "--size", 16, "-o", tmp_path / "x.h5", *args)
        assert_clean_failure(result, needle)
    assert not (tmp_path / "x.h5").exists()


# ---------------------------------------------------------------- --preset portrait

FULL_FRAME_DIAGONAL_MM = float(np.hypot(36.0, 24.0))


@pytest.fixture(scope="module")
def portraits(make_generator, tmp_path_factory):
    """A synthetic head with an expression and skin, and a whole body, photographed with
    --preset portrait at 64 px high: the head in 6 views (lit by the preset's default, and
    again with --lighting none for its albedo), the body in 3."""
    folder = tmp_path_factory.mktemp("portrait")
    head = make_generator(part="head", expressions=True, texture="skin", texture_size=64, seed=3).subject(0)
    body = make_generator(expressions=True, texture="skin", texture_size=64, seed=3).subject(1)
    head_h5, body_h5 = write_artifact(folder / "head.h5", head), write_artifact(folder / "body.h5", body)
    common = ("--preset", "portrait", "--size", 64, "--seed", 3)
    for mesh, out, extra in (
        (head_h5, "head_views.h5", ("--views", 6)),
        (head_h5, "head_albedo.h5", ("--views", 6, "--lighting", "none")),
        (body_h5, "body_views.h5", ("--views", 3)),
    ):
        r = invoke("render", mesh, *common, *extra, "-o", folder / out)
        assert r.exit_code == 0, r.output
    return head, body, folder


def _face_frame(mesh):
    """Columns: the face's left (the subject's), up (lips to eyes) and forward, world frame."""
    p = mesh.landmark_points()
    up = 0.5 * (p["left_eye"] + p["right_eye"] - p["left_lips"] - p["right_lips"])
    forward = np.cross(p["left_eye"] - p["right_eye"], up)
    forward /= np.linalg.norm(forward)
    up -= (up @ forward) * forward
    up /= np.linalg.norm(up)
    return np.stack([np.cross(up, forward), up, forward], axis=1)


def _head_pose(views, mesh):
    """(N, 3) yaw (towards the subject's left), pitch (chin up) and roll (left ear up) of the
    head seen from each camera, degrees: the rotation from a frontal view (camera +X the
    subject's left, +Y down, +Z into the face) to the head's frame in the camera."""
    from scipy.spatial.transform import Rotation

    in_camera = views.world_to_cam[:, :3, :3].astype(np.float64) @ _face_frame(mesh)
    pose = np.diag([1.0, -1.0, -1.0]) @ in_camera  # undo the frontal view's axes
    yaw, pitch, roll = Rotation.from_matrix(pose).as_euler("YXZ", degrees=True).T
    return np.stack([yaw, -pitch, roll], axis=1)


def _project(views, points):
    """(N, P, 2) pixels and (N, P) depths of world ``points`` in every view."""
    w2c = views.world_to_cam.astype(np.float64)
    cam = np.einsum("nij,pj->npi", w2c[:, :3, :3], points) + w2c[:, None, :3, 3]
    pix = np.einsum("nij,npj->npi", views.K.astype(np.float64), cam)
    return pix[..., :2] / pix[..., 2:], cam[..., 2]


def _focal_mm(views):
    """Each view's focal length as a full-frame (36 x 24 mm) equivalent: same diagonal field of view."""
    return views.K[:, 0, 0] * FULL_FRAME_DIAGONAL_MM / np.hypot(views.width, views.height)


def test_portrait_preset_photographs_the_face_at_random_poses_focals_and_places(portraits):
    head, _, folder = portraits
    views = read_artifact(folder / "head_views.h5", "views")
    assert len(views) == 6 and views.projection == "perspective" and not views.subsets
    assert views.rgb.shape == (6, 64, 48, 3)  # portrait 3:4, --size is the height
    assert np.allclose(views.K[:, 0, 0], views.K[:, 1, 1]) and np.allclose(views.K[:, :2, 2], [23.5, 31.5])
    # the whole head is in every photo: no head pixel on the border, every landmark inside
    skin = views.label == head.label_names.index("head")
    assert skin.any(axis=(1, 2)).all()
    assert not np.concatenate([skin[:, 0], skin[:, -1], skin[:, :, 0], skin[:, :, -1]], 1).any()
    points = head.landmark_points()
    names = ["right_eye", "left_eye", "nose_tip", "nose_base", "right_lips", "left_lips"]
    pix, depth = _project(views, np.stack([points[n] for n in names]))
    assert (pix[..., 0] > 0).all() and (pix[..., 0] < 47).all() and (pix[..., 1] > 0).all() and (pix[..., 1] < 63).all()
    # ... and seen: the depth buffer at the nose tip is the nose tip's own depth
    nose = np.rint(pix[:, 2]).astype(int)
    seen = views.depth[np.arange(6), nose[:, 1], nose[:, 0]]
    assert np.allclose(seen, depth[:, 2], atol=0.01)
    # the head pose relative to each camera: drawn within the documented ranges, and varied
    pose = _head_pose(views, head)
    for axis, bound in enumerate((45.0, 20.0, 10.0)):
        assert np.abs(pose[:, axis]).max() <= bound + 1e-3, pose
        assert np.ptp(pose[:, axis]) > bound / 2, pose
    # phone and portrait lenses, of different focal lengths
    focal = _focal_mm(views)
    assert focal.min() >= 24 - 1e-3 and focal.max() <= 85 + 1e-3 and np.ptp(focal) > 15, focal
    # faces of different sizes in different places, not always in the middle
    centre = pix.mean(axis=1)
    assert np.ptp(centre, axis=0).min() > 3, centre
    area = skin.mean(axis=(1, 2))
    assert area.min() > 0.05 and area.max() / area.min() > 1.3, area
    # cameras are aimed at the head: its bounding sphere's centre is the target
    labels = head.vertex_labels == head.label_names.index("head")
    centre_3d, _ = Mesh(head.vertices[labels], np.zeros((0, 3))).bounding_sphere()
    assert np.allclose(views.target, centre_3d, atol=1e-5)


def test_portrait_lighting_is_random_per_view_and_stored(portraits):
    """The stored coefficients are the light the photos were shaded with: shading the albedo
    render (same seed, same cameras) by them gives the photos back."""
    from avatarkit.render.lighting import irradiance

    _, _, folder = portraits
    lit = read_artifact(folder / "head_views.h5", "views")
    plain = read_artifact(folder / "head_albedo.h5", "views")
    assert np.array_equal(lit.world_to_cam, plain.world_to_cam) and np.array_equal(lit.mask, plain.mask)
    assert lit.lighting["type"] == "sh" and plain.lighting["type"] == "none" and "sh" not in plain.lighting
    sh = lit.lighting["sh"]
    assert sh.shape == (6, 9, 3) and np.isfinite(sh).all()
    assert lit.lighting["environments"] == "random"
    # a new environment per view, not one turned about +Y (that keeps the bands' energy per band)
    band = [np.linalg.norm(sh[:, 1:4], axis=(1, 2)), np.linalg.norm(sh[:, 4:], axis=(1, 2))]
    assert all(np.ptp(b) > 0.05 * b.mean() for b in band), band
    # the photos are the albedo times E(n) / pi in linear colour, E from the stored coefficients
    inside = lit.mask > 0
    normal = lit.normal[inside].astype(np.float64)
    view = np.nonzero(inside)[0]
    shade = np.concatenate([irradiance(sh[i].astype(np.float64), normal[view == i]) for i in range(len(lit))])
    albedo = plain.rgb[inside] / 255.0
    linear = np.where(albedo <= 0.04045, albedo / 12.92, ((albedo + 0.055) / 1.055) ** 2.4)
    out = np.clip(linear * np.clip(shade, 0, None) / np.pi, 0, 1)
    srgb = np.where(out <= 0.0031308, out * 12.92, 1.055 * np.maximum(out, 0.0031308) ** (1 / 2.4) - 0.055)
    error = np.abs(srgb * 255 - lit.rgb[inside].astype(np.float64))
    assert np.median(error) < 1.0 and np.percentile(error, 95) < 4.0, (np.median(error), np.percentile(error, 95))
    # and the views are lit differently: the mean brightness of the face changes
    brightness = [lit.rgb[i][inside[i]].mean() / max(plain.rgb[i][inside[i]].mean(), 1) for i in range(len(lit))]
    assert np.ptp(brightness) > 0.05, brightness


def test_portrait_draws_are_reproducible_view_by_view_and_differ_between_subjects(portraits, tmp_path):
    head, body, folder = portraits
    mesh = folder / "head.h5"
    first = read_artifact(folder / "head_views.h5", "views")
    few = tmp_path / "few.h5"  # each view draws from its own seed: fewer views are the first ones
    r = invoke("render", mesh, "--preset", "portrait", "--size", 64, "--seed", 3, "--views", 2, "-o", few)
    assert r.exit_code == 0, r.output
    again = read_artifact(few, "views")
    assert np.array_equal(again.world_to_cam, first.world_to_cam[:2]) and np.array_equal(again.K, first.K[:2])
    assert np.array_equal(again.lighting["sh"], first.lighting["sh"][:2])
    assert np.array_equal(again.rgb, first.rgb[:2])
    other = tmp_path / "other.h5"
    r = invoke("render", mesh, "--preset", "portrait", "--size", 64, "--seed", 4, "--views", 2, "-o", other)
    assert r.exit_code == 0, r.output
    changed = read_artifact(other, "views")
    assert not np.allclose(changed.K, first.K[:2]) and not np.allclose(changed.lighting["sh"], first.lighting["sh"][:2])
    # two subjects rendered with one seed are not posed alike (a batch of faces is varied)
    bodies = read_artifact(folder / "body_views.h5", "views")
    assert not np.allclose(_head_pose(bodies, body), _head_pose(first, head)[:3], atol=1.0)
    assert not np.allclose(bodies.K, first.K[:3])


def test_portrait_of_a_whole_body_aims_at_its_head(portraits):
    _, body, folder = portraits
    views = read_artifact(folder / "body_views.h5", "views")
    assert views.rgb.shape == (3, 64, 48, 3)
    labels = body.label_names
    seen = views.label
    skin = seen == labels.index("head")
    assert not np.concatenate([skin[:, 0], skin[:, -1], skin[:, :, 0], skin[:, :, -1]], 1).any()
    assert skin.mean(axis=(1, 2)).min() > 0.05
    # the body below the neck may fill the bottom of the frame, as in a portrait; no feet
    assert not np.isin(seen, [labels.index("foot.L"), labels.index("foot.R")]).any()
    pose = _head_pose(views, body)
    assert (np.abs(pose) <= [45.001, 20.001, 10.001]).all(), pose
    head = body.vertex_labels == labels.index("head")
    centre, _ = Mesh(body.vertices[head], np.zeros((0, 3))).bounding_sphere()
    assert np.allclose(views.target, centre, atol=1e-5)


@pytest.mark.parametrize(
    ("mesh", "args", "needle"),
    [
        ("BALL", (), "no face landmarks"),
        ("OBJ", (), "no face landmarks"),
        ("HEAD", ("--pitch", 10), "drop --pitch"),
        ("HEAD", ("--fov", 30), "drop --fov"),
        ("HEAD", ("--projection", "orthographic"), "drop --projection orthographic"),
        ("HEAD", ("--rig", "random"), "drop --rig random"),
        ("HEAD", ("--cameras", "CAMS"), "--cameras and --preset"),
        ("HEAD", ("--yaws", -100, 0), "--yaws"),
        ("HEAD", ("--views", 0), "--views must be positive"),
    ],
)
def test_portrait_bad_inputs_one_line_exit_1_no_output(portraits, meshes, tmp_path, mesh, args, needle):
    _, _, folder = portraits
    swap = {"BALL": meshes[0], "OBJ": meshes[1], "HEAD": folder / "head.h5", "CAMS": folder / "head_views.h5"}
    args = [swap.get(a, a) if isinstance(a, str) else a for a in args]
    out = tmp_path / "out"
    result = invoke("render", swap[mesh], "--preset", "portrait", "--size", 16, "-o", out, "--export", "png", *args)
    assert_clean_failure(result, needle)
    assert not out.exists()
