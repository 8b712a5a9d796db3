"""Inputs a hostile tester brought: malformed HDF5 root attributes, broken camera files,
impossible render options, sizes that would not fit in memory, degenerate meshes, junk
checkpoints and failing evaluation pairs. Each must end in one clean line (or, for a
failed reconstruction, a failure row), never a traceback."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import write_artifact
from avatarkit.io.meshfile import save_mesh
from avatarkit.structures import Mesh, Transform, Voxels


def sphere(radius=0.3, subdivisions=2, center=(0.0, 1.0, 0.0)) -> Mesh:
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return Mesh(s.vertices + np.asarray(center), s.faces)


@pytest.fixture
def mesh_h5(tmp_path):
    return write_artifact(tmp_path / "mesh.h5", sphere())


def with_attrs(src, dst, **attrs):
    if src != dst:
        shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        for name, value in attrs.items():
            f.attrs[name] = value
    return dst


def strict_json(text):
    """json.loads that refuses the non-standard Infinity and NaN tokens."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- HDF5 root attributes

BAD_ROOTS = {
    "schema abc": ({"avatarkit_schema": "abc"}, "avatarkit_schema"),
    "schema array": ({"avatarkit_schema": np.array([1, 2])}, "avatarkit_schema"),
    "schema nan": ({"avatarkit_schema": np.nan}, "avatarkit_schema"),
    "kind int array": ({"avatarkit_kind": np.array([1, 2, 3])}, "avatarkit_kind"),
    "kind int": ({"avatarkit_kind": 7}, "avatarkit_kind"),
    "kind not utf-8": ({"avatarkit_kind": np.bytes_(b"\xff\xfe")}, "kind"),
}


@pytest.mark.parametrize("case", BAD_ROOTS, ids=list(BAD_ROOTS))
def test_bad_root_attributes_are_one_line_and_inspect_says_invalid(tmp_path, mesh_h5, case):
    attrs, needle = BAD_ROOTS[case]
    bad = with_attrs(mesh_h5, tmp_path / "bad.h5", **attrs)
    r = invoke("inspect", bad, "--json")
    assert "Traceback" not in r.output, r.output
    report = json.loads(r.stdout)
    assert report["valid"] is False and needle in report["problems"][0]
    assert_clean_failure(invoke("convert", bad, tmp_path / "out.obj"), str(bad), needle)
    assert_clean_failure(invoke("sample-sdf", bad, "-o", tmp_path / "s.h5", "--points", 500), str(bad), needle)
    assert not (tmp_path / "out.obj").exists() and not (tmp_path / "s.h5").exists()


def test_an_existing_output_with_bad_root_attributes_is_redone_not_a_crash(tmp_path, mesh_h5):
    # the batch loop asks whether an output is complete before redoing it
    out = tmp_path / "out.h5"
    assert invoke("sample-sdf", mesh_h5, "-o", out, "--points", 500).exit_code == 0
    with_attrs(out, out, avatarkit_schema="abc")
    r = invoke("sample-sdf", mesh_h5, "-o", out, "--points", 500)
    assert "Traceback" not in r.output, r.output
    if r.exit_code != 0:
        assert_clean_failure(r, str(out))


@pytest.mark.parametrize(
    ("artifact", "attrs", "needle"),
    [
        (lambda: Voxels(np.zeros((2, 2, 2), bool), np.zeros(3), 0.1), {"pitch": "abc"}, "pitch"),
        (lambda: Voxels(np.zeros((2, 2, 2), bool), np.zeros(3), 0.1), {"origin": np.zeros(2)}, "origin"),
        (lambda: Transform(np.eye(4)), {"scale": "big"}, "scale"),
        (lambda: Transform(np.eye(4)), {"iterations": 2.5}, "iterations"),
    ],
)
def test_bad_attributes_of_other_kinds_are_reported_by_inspect(tmp_path, artifact, attrs, needle):
    path = with_attrs(write_artifact(tmp_path / "a.h5", artifact()), tmp_path / "a.h5", **attrs)
    r = invoke("inspect", path, "--json")
    assert "Traceback" not in r.output, r.output
    report = json.loads(r.stdout)
    assert report["valid"] is False and needle in report["problems"][0]


def test_malformed_label_names_of_a_mesh_file_are_one_line(tmp_path):
    box = trimesh.creation.box()
    mesh = Mesh(box.vertices, box.faces, vertex_labels=np.zeros(8), label_names=["body"])
    path = write_artifact(tmp_path / "labelled.h5", mesh)
    with h5py.File(path, "a") as f:
        f["/mesh/vertex_labels"].attrs["label_names"] = 5
    assert_clean_failure(invoke("convert", path, tmp_path / "out.ply"), str(path), "label_names")
    assert json.loads(invoke("inspect", path, "--json").stdout)["valid"] is False


def test_a_views_file_with_a_bad_width_attribute_is_refused(tmp_path, mesh_h5):
    views = tmp_path / "views.h5"
    assert invoke("render", mesh_h5, "-o", views, "--views", 2, "--size", 16).exit_code == 0
    bad = with_attrs(views, tmp_path / "bad_views.h5", width="abc")
    r = invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--cameras", bad)
    assert_clean_failure(r, str(bad), "width")
    assert not (tmp_path / "out.h5").exists()


# --------------------------------------------------------------------------- camera files


def transforms(path, frames, **meta):
    meta = {"w": 32, "h": 32, "fl_x": 40.0, **meta, "frames": frames}
    path.write_text(json.dumps({k: v for k, v in meta.items() if v is not None}))  # None: leave the key out
    return path


def nerf_pose(distance=2.0):
    c2w = np.eye(4)
    c2w[:3, 3] = [0.0, 1.0, distance]  # OpenGL: looking down -Z, at the subject
    return c2w.tolist()


@pytest.mark.parametrize(
    ("name", "make", "needle"),
    [
        ("no_matrix.json", lambda p: transforms(p, [{"transform_matrix": nerf_pose()}, {"file_path": "x"}]),
         "frame 1 has no transform_matrix"),
        ("zero_matrix.json", lambda p: transforms(p, [{"transform_matrix": np.zeros((4, 4)).tolist()}]), "frame 0"),
        ("nan_matrix.json", lambda p: transforms(p, [{"transform_matrix": np.full((4, 4), np.nan).tolist()}]),
         "frame 0"),
        ("short_matrix.json", lambda p: transforms(p, [{"transform_matrix": [[1, 0], [0, 1]]}]), "4 x 4"),
        ("text_focal.json", lambda p: transforms(p, [{"transform_matrix": nerf_pose()}], fl_x="abc"), "fl_x"),
        ("zero_focal.json", lambda p: transforms(p, [{"transform_matrix": nerf_pose()}], fl_x=0), "focal"),
        ("zero_angle.json", lambda p: transforms(p, [{"transform_matrix": nerf_pose()}], fl_x=None, camera_angle_x=0.0),
         "camera_angle_x"),
        ("not_frames.json", lambda p: p.write_text("[1, 2]") and p, "frames"),
        ("zeros.npz", lambda p: np.savez(p, world_mat_0=np.zeros((4, 4))), "world_mat_0"),
        ("nan.npz", lambda p: np.savez(p, world_mat_0=np.full((4, 4), np.nan)), "world_mat_0"),
        ("flat.npz", lambda p: np.savez(p, world_mat_0=np.zeros(3)), "world_mat_0"),
    ],
)  # fmt: skip
def test_broken_camera_files_are_one_line(tmp_path, mesh_h5, name, make, needle):
    path = tmp_path / name
    make(path)
    r = invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--cameras", path)
    assert_clean_failure(r, str(path), needle)
    assert not (tmp_path / "out.h5").exists()


def test_a_valid_transforms_json_still_renders(tmp_path, mesh_h5):
    path = transforms(tmp_path / "ok.json", [{"transform_matrix": nerf_pose()}])
    r = invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--cameras", path)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("dataset", "value", "needle"),
    [
        ("/cameras/K", 0.0, "focal"),
        ("/cameras/K", np.nan, "K has NaN"),
        ("/cameras/world_to_cam", 0.0, "not a rotation"),
        ("/cameras/world_to_cam", np.inf, "world_to_cam has NaN"),
    ],
)
def test_a_views_file_with_degenerate_cameras_is_refused(tmp_path, mesh_h5, dataset, value, needle):
    views = tmp_path / "views.h5"
    assert invoke("render", mesh_h5, "-o", views, "--views", 2, "--size", 16).exit_code == 0
    with h5py.File(views, "a") as f:
        f[dataset][...] = value
    r = invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--cameras", views)
    assert_clean_failure(r, str(views), needle)
    assert not (tmp_path / "out.h5").exists()
    report = json.loads(invoke("inspect", views, "--json").stdout)
    assert report["valid"] is False and needle in report["problems"][0]


# --------------------------------------------------------------------------- render options


@pytest.mark.parametrize("fov", ["0", "-10", "180", "360", "nan"])
def test_a_field_of_view_that_sees_nothing_is_refused(tmp_path, mesh_h5, fov):
    r = invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--fov", fov, "--views", 1, "--size", 16)
    assert_clean_failure(r, "--fov")
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.timeout(120)
def test_a_render_too_large_for_memory_is_refused_with_the_number(tmp_path, mesh_h5):
    r = invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--size", 100000)
    assert_clean_failure(r, str(mesh_h5), "GiB", "--size", "--max-memory")
    assert not (tmp_path / "out.h5").exists()
    r = invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--size", 64, "--max-memory", 0.0001)
    assert_clean_failure(r, "GiB", "--max-memory")
    assert_clean_failure(invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--max-memory", 0), "--max-memory")
    r = invoke("render", mesh_h5, "-o", tmp_path / "out.h5", "--size", 32, "--views", 2, "--max-memory", 1)
    assert r.exit_code == 0, r.output


# --------------------------------------------------------------------------- messages that blamed the wrong thing


def test_voxelize_a_mesh_without_extent_does_not_blame_pitch(tmp_path):
    src = tmp_path / "point.obj"
    src.write_text("v 0.5 0.5 0.5\nv 0.5 0.5 0.5\nv 0.5 0.5 0.5\nf 1 2 3\n")
    r = invoke("voxelize", src, "-o", tmp_path / "v.h5", "--resolution", 16, "--units", "m")
    assert_clean_failure(r, str(src), "--resolution", "no extent")
    assert "--pitch must" not in r.stderr


@pytest.mark.timeout(300)
def test_unwrap_uv_with_a_huge_size_says_the_size_is_too_large(tmp_path, textured_sphere):
    mesh = write_artifact(tmp_path / "ball.h5", textured_sphere)
    views = tmp_path / "ball_views.h5"
    assert invoke("render", mesh, "-o", views, "--views", 2, "--size", 32).exit_code == 0
    r = invoke("unwrap-uv", mesh, "--views", views, "-o", tmp_path / "tex.h5", "--size", 100000)
    assert_clean_failure(r, "too large", "--size")
    assert "UV layout" not in r.stderr
    r = invoke("unwrap-uv", "--views", views, "-o", tmp_path / "tex.h5", "--size", 100000)  # UV splats, no mesh
    assert_clean_failure(r, "too large", "--size")
    assert not (tmp_path / "tex.h5").exists()


def test_icp_align_names_the_mesh_whose_faces_have_no_area(tmp_path):
    flat = tmp_path / "line.obj"
    flat.write_text("v 0 0 0\nv 0.5 0 0\nv 1 0 0\nv 0 0 0\nf 1 2 3\nf 1 3 2\n")
    target = write_artifact(tmp_path / "target.h5", sphere())
    r = invoke("icp-align", flat, target, "-o", tmp_path / "T.h5", "--no-landmarks")
    assert_clean_failure(r, str(flat), "zero area")
    r = invoke("icp-align", target, flat, "-o", tmp_path / "T.h5", "--no-landmarks")
    assert_clean_failure(r, str(flat), "zero area")


def test_reconstruct_with_random_bytes_for_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    image = tmp_path / "photo.png"
    import PIL.Image

    PIL.Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    r = invoke("reconstruct", junk, image, "-o", tmp_path / "out")
    assert_clean_failure(r, str(junk), "not a checkpoint")
    assert "weights_only" not in r.output


# --------------------------------------------------------------------------- evaluate-chamfer


def test_an_empty_prediction_is_a_failure_row_as_h5_as_as_obj(tmp_path):
    gt = write_artifact(tmp_path / "gt.h5", sphere())
    (tmp_path / "empty.obj").write_text("# nothing\n")
    empty_h5 = write_artifact(tmp_path / "empty.h5", Mesh(np.zeros((3, 3)), np.zeros((0, 3), np.int32)))
    rows = {}
    for pred in (tmp_path / "empty.obj", empty_h5):
        r = invoke("evaluate-chamfer", pred, gt, "--json", "--samples", 500)
        assert r.exit_code == 0, r.output
        rows[pred.suffix] = strict_json(r.stdout)
    for row in rows.values():
        assert "empty mesh" in row["error"] and row["chamfer_l1"] is None and row["accuracy"] is None
    assert rows[".h5"].keys() == rows[".obj"].keys()
    assert "3 vertices, 0 faces" in rows[".h5"]["error"]


def test_json_is_strict_with_a_failed_pair_in_a_summary(tmp_path):
    (tmp_path / "preds").mkdir()
    (tmp_path / "gts").mkdir()
    save_mesh(sphere(0.3), tmp_path / "preds" / "a.obj")
    (tmp_path / "preds" / "b.obj").write_text("# failed\n")
    save_mesh(sphere(0.31), tmp_path / "preds" / "c.obj")
    for stem in "abc":
        write_artifact(tmp_path / "gts" / f"{stem}.h5", sphere(0.32))
    r = invoke("evaluate-chamfer", tmp_path / "preds", tmp_path / "gts", "--json", "--samples", 500)
    assert r.exit_code == 0, r.output
    out = strict_json(r.stdout)
    failed = [p for p in out["pairs"] if "error" in p]
    assert len(failed) == 1 and failed[0]["chamfer_l1"] is None and out["n_failed"] == 1
    assert out["summary"]["chamfer_l1"]["mean"] is None  # the mean over an infinite distance
    assert out["summary"]["chamfer_l1"]["median"] is not None
    r = invoke("evaluate-chamfer", tmp_path / "preds", tmp_path / "gts", "--samples", 500)
    assert r.exit_code == 0 and "inf" in r.stderr  # the table keeps the infinities


def test_a_pairs_file_goes_on_past_unreadable_pairs(tmp_path):
    save_mesh(sphere(0.3), tmp_path / "a.obj")
    save_mesh(sphere(0.31), tmp_path / "d.obj")
    gt = write_artifact(tmp_path / "gt.h5", sphere(0.32))
    (tmp_path / "damaged.h5").write_bytes(gt.read_bytes()[:1000])
    (tmp_path / "flat.obj").write_text("v 0 0 0\nv 0.5 0 0\nv 1 0 0\nf 1 2 3\n")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a.obj gt.h5\nmissing.obj gt.h5\na.obj damaged.h5\na.obj flat.obj\nd.obj gt.h5\n")
    r = invoke("evaluate-chamfer", pairs, "--json", "--samples", 500)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    for name in ("missing.obj", "damaged.h5", "flat.obj"):
        assert sum(name in line for line in errors) >= 1, r.stderr
    out = strict_json(r.stdout)
    assert [p["pred"].rsplit("/", 1)[1] for p in out["pairs"]] == ["a.obj", "d.obj"]
    assert len(out["unreadable"]) == 3 and all("error" in u for u in out["unreadable"])
    r = invoke("evaluate-chamfer", pairs, "--samples", 500)
    assert r.exit_code == 1 and "d.obj" in r.stderr  # the pair after the bad ones is scored


def test_a_ground_truth_without_area_is_named(tmp_path):
    save_mesh(sphere(0.3), tmp_path / "a.obj")
    flat = tmp_path / "flat.obj"
    flat.write_text("v 0 0 0\nv 0.5 0 0\nv 1 0 0\nf 1 2 3\n")
    assert_clean_failure(invoke("evaluate-chamfer", tmp_path / "a.obj", flat), str(flat), "zero area")
