"""The viewer's scene: avatarkit files as primitives (no browser)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from avatarkit.errors import InputError
from avatarkit.io.hdf5 import Provenance, write_artifact
from avatarkit.io.meshfile import save_mesh
from avatarkit.render.rigs import orbit
from avatarkit.structures import Mesh, Samples, Views, Voxels
from avatarkit.view.scene import (
    Frustum,
    Points,
    Surface,
    build_scene,
    normal_colors,
    rotation_to_wxyz,
    sdf_colors,
)


def _sphere(radius=0.4, center=(0.0, 1.0, 0.0)) -> Mesh:
    s = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    return Mesh(vertices=s.vertices + np.asarray(center), faces=s.faces)


def _samples(n=1000, seed=0) -> Samples:
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3)) * 0.3 + [0, 1, 0]
    d = p - [0, 1, 0]
    sdf = np.linalg.norm(d, axis=1) - 0.4
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return Samples(
        p, sdf, (sdf < 0).astype(np.uint8), normals=d / np.linalg.norm(d, axis=1, keepdims=True), colors=colors
    )


def test_prediction_beside_its_truth_with_a_heatmap(tmp_path):
    truth = write_artifact(tmp_path / "truth.h5", _sphere())
    pred_mesh = _sphere()
    pred_mesh.vertices[0] += pred_mesh.vertices[0] - [0, 1, 0]  # one vertex 0.4 m out
    save_mesh(pred_mesh, tmp_path / "pred.ply")
    scene = build_scene([tmp_path / "pred.ply", truth])  # two meshes: the second is the truth
    surfaces = [i for i in scene.items if isinstance(i, Surface)]
    assert [s.label for s in surfaces] == ["truth.h5 (truth)", "pred.ply", "pred.ply error"]
    gt, pred, heat = surfaces
    assert np.allclose(gt.offset, 0) and pred.offset[0] > 0.4 and heat.offset[0] > pred.offset[0]
    assert np.allclose(pred.offset[1:], 0) and np.allclose(heat.offset[1:], 0)
    assert heat.vertex_colors is not None
    assert tuple(heat.vertex_colors[0]) == (255, 0, 0)  # far: red
    assert heat.vertex_colors[1:, 2].mean() > 200  # on the truth: blue
    assert "red" in heat.note


def test_truth_option_compares_every_other_mesh(tmp_path):
    truth = write_artifact(tmp_path / "gt.h5", _sphere())
    a = write_artifact(tmp_path / "a.h5", _sphere(0.38))
    b = write_artifact(tmp_path / "b.h5", _sphere(0.42))
    c = write_artifact(tmp_path / "c.h5", _sphere(0.45))
    scene = build_scene([a, b, c], truth=truth)
    labels = [i.label for i in scene.items]
    assert labels == ["gt.h5 (truth)", "a.h5", "a.h5 error", "b.h5", "b.h5 error", "c.h5", "c.h5 error"]
    offsets = [i.offset[0] for i in scene.items if isinstance(i, Surface)]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)  # side by side, none on another


def test_three_meshes_without_truth_are_shown_as_they_are(tmp_path):
    paths = [write_artifact(tmp_path / f"m{i}.h5", _sphere(0.3 + 0.05 * i)) for i in range(3)]
    scene = build_scene(paths, layout="row")
    assert [i.label for i in scene.items] == ["m0.h5", "m1.h5", "m2.h5"]
    assert [i.offset[0] for i in scene.items] == pytest.approx([0.0, 1.2 * 0.8, 2 * 1.2 * 0.8], abs=0.02)


def test_samples_colourings_and_subset(tmp_path):
    path = write_artifact(tmp_path / "s.h5", _samples(5000))
    scene = build_scene([path], max_points=1000)
    (points,) = scene.items
    assert isinstance(points, Points)
    assert points.total == 5000 and len(points.points) == 1000
    assert list(points.colorings) == ["sdf", "color", "normal"]
    assert all(c.shape == (1000, 3) and c.dtype == np.uint8 for c in points.colorings.values())
    sdf = np.linalg.norm(points.points - [0, 1, 0], axis=1) - 0.4
    inside, outside = points.colorings["sdf"][sdf < -0.1], points.colorings["sdf"][sdf > 0.1]
    assert (inside[:, 2] > inside[:, 0]).all() and (outside[:, 0] > outside[:, 2]).all()
    assert scene.point_count == 1000


def test_sdf_and_normal_colours():
    assert sdf_colors(np.array([-2.0, -1.0, -0.0, 1e-9, 1.0, 5.0]), 1.0).tolist() == [
        [20, 40, 150],
        [20, 40, 150],
        [255, 160, 90],  # 0 is outside (the surface itself)
        [255, 160, 90],
        [160, 20, 20],
        [160, 20, 20],
    ]
    assert sdf_colors(np.array([-1e-9]), 1.0).tolist() == [[110, 160, 255]]
    assert normal_colors(np.array([[0.0, 0, 2.0], [-1.0, 0, 0]])).tolist() == [[128, 128, 255], [0, 128, 128]]


def test_rotation_to_wxyz_matches_scipy():
    for r in Rotation.random(50, random_state=0):
        w, x, y, z = rotation_to_wxyz(r.as_matrix())
        expected = r.as_quat()  # x, y, z, w
        expected = expected * np.sign(expected[3])
        assert np.allclose([x, y, z, w], expected, atol=1e-9)


def test_views_as_frusta(tmp_path):
    cameras = orbit(np.array([0.0, 1.0, 0.0]), 1.0, [0.0, 90.0, 180.0], [10.0], (64, 48))
    n = len(cameras)
    rgb = np.zeros((n, 48, 64, 3), np.uint8)
    views = Views(cameras.K, cameras.world_to_cam, cameras.projection, rgb, np.zeros((n, 48, 64), np.uint8))
    path = write_artifact(tmp_path / "v.h5", views)
    scene = build_scene([path])
    frusta = [i for i in scene.items if isinstance(i, Frustum)]
    assert len(frusta) == n
    for frustum, w2c in zip(frusta, cameras.world_to_cam, strict=True):
        r = Rotation.from_quat(np.roll(frustum.wxyz, -1)).as_matrix()  # camera to world
        assert np.allclose(r, w2c[:3, :3].T, atol=1e-6)
        assert np.allclose(frustum.position, -w2c[:3, :3].T @ w2c[:3, 3], atol=1e-6)
        axis = r @ [0, 0, 1]  # OpenCV +Z: where the camera looks
        to_target = np.array([0, 1, 0]) - frustum.position
        assert axis @ to_target / np.linalg.norm(to_target) > 0.99
        assert frustum.fov == pytest.approx(2 * np.arctan(24 / cameras.K[0, 1, 1]))
        assert frustum.aspect == pytest.approx(64 / 48)
    assert scene.shown[path] == f"views, {n} cameras"


def test_voxels_as_their_occupied_centres(tmp_path):
    occupancy = np.zeros((4, 4, 4), bool)
    occupancy[1, 2, 3] = occupancy[0, 0, 0] = True
    path = write_artifact(tmp_path / "g.h5", Voxels(occupancy, np.array([1.0, 2.0, 3.0]), 0.5))
    (points,) = build_scene([path]).items
    assert isinstance(points, Points)
    assert sorted(map(tuple, points.points.tolist())) == [(1.25, 2.25, 3.25), (1.75, 3.25, 4.75)]
    assert points.size == 0.5


def test_textured_mesh_gets_a_uv_per_vertex(tmp_path, textured_sphere):
    path = write_artifact(tmp_path / "t.h5", textured_sphere)
    (surface,) = build_scene([path]).items
    assert isinstance(surface, Surface) and surface.texture is not None and surface.uvs is not None
    assert len(surface.uvs) == len(surface.vertices) > len(textured_sphere.vertices)  # seams split
    corner_uvs = surface.uvs[surface.faces]  # the UV each face corner had in the file
    assert np.allclose(corner_uvs, textured_sphere.uvs[textured_sphere.face_uvs])
    assert np.allclose(surface.vertices[surface.faces], textured_sphere.vertices[textured_sphere.faces])


def test_a_bad_file_among_many_is_listed_and_the_rest_shown(tmp_path):
    good = write_artifact(tmp_path / "good.h5", _sphere())
    metrics = tmp_path / "junk.h5"
    metrics.write_bytes(b"not hdf5")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    scene = build_scene([good, metrics, text, tmp_path / "absent.ply"])
    assert list(scene.shown) == [good]
    assert set(scene.problems) == {metrics, text, tmp_path / "absent.ply"}
    assert "not a readable HDF5" in scene.problems[metrics]
    assert "cannot show a .txt file" in scene.problems[text]
    assert scene.problems[tmp_path / "absent.ply"] == "no such file"


def test_nothing_to_show_is_one_error_naming_each_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match=r"nothing to show .*notes.txt: cannot show"):
        build_scene([text])


def test_same_stems_get_distinct_names(tmp_path):
    (tmp_path / "meshes").mkdir()
    (tmp_path / "sdf").mkdir()
    mesh = write_artifact(tmp_path / "meshes" / "human_0001.h5", _sphere())
    samples = write_artifact(tmp_path / "sdf" / "human_0001.h5", _samples())
    other = write_artifact(tmp_path / "other.h5", _sphere(0.2))
    scene = build_scene([mesh, samples, other])  # two meshes: other.h5 is the truth of human_0001
    names = [i.name for i in scene.items]
    assert len(set(names)) == len(names) == 4
    assert scene.labels[mesh] == "meshes/human_0001.h5" and scene.labels[samples] == "sdf/human_0001.h5"
    assert scene.labels[other] == "other.h5"
    assert [i.label for i in scene.items if isinstance(i, Points)] == ["sdf/human_0001.h5"]


def test_run_folder_shows_its_validation_meshes(tmp_path):
    run = tmp_path / "run"
    (run / "validation").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"method": "pifu"}))
    write_artifact(run / "validation" / "human_0003.h5", _sphere())
    scene = build_scene([run])
    assert [i.label for i in scene.items] == ["human_0003.h5"]
    truth = write_artifact(tmp_path / "meshes" / "human_0004.h5", _sphere(0.45))
    write_artifact(run / "validation" / "human_0004.h5", _sphere(), Provenance("train", (str(truth),)))
    scene = build_scene([run])  # a validation mesh naming its truth is shown beside it, with its heatmap
    same = "validation/human_0004.h5"  # named with its folder: the truth has the same name
    labels = ["meshes/human_0004.h5 (truth)", same, f"{same} error", "human_0003.h5"]
    assert [i.label for i in scene.items] == labels
    assert "compared with meshes/human_0004.h5" in scene.shown[run / "validation" / "human_0004.h5"]
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    scene = build_scene([run, empty])
    assert "without validation meshes" in scene.problems[empty]


def test_front_camera_sees_the_whole_scene(tmp_path):
    path = write_artifact(tmp_path / "m.h5", _sphere(0.5, (0.0, 0.9, 0.0)))
    scene = build_scene([path])
    fov = np.radians(50)
    position, look_at = scene.front_camera(fov)
    assert np.allclose(look_at, [0, 0.9, 0], atol=1e-3) and position[2] > look_at[2] + 1.0
    axis = (look_at - position) / np.linalg.norm(look_at - position)
    v = scene.items[0].vertices - position
    angle = np.arccos(v @ axis / np.linalg.norm(v, axis=1))
    assert angle.max() < fov / 2
