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


# --------------------------------------------------------------------------- fit-head, train deepsdf, reconstruct

TINY_FIT = ("--no-prior", "--config", "small", "--steps", 1, "--rays", 16, "--resolution", 8, "--no-preview", "-q")


@pytest.fixture(scope="module")
def head_scene(tmp_path_factory):
    """A small ball rendered as a capture: a views file (6 views of 32 px) and its IDR folder."""
    root = tmp_path_factory.mktemp("head_scene")
    write_artifact(root / "ball.h5", sphere(0.1, 2, (0.0, 1.5, 0.0)))
    r = invoke("render", root / "ball.h5", "-o", root / "views.h5", "--views", 6, "--size", 32, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("render", root / "ball.h5", "-o", root / "idr", "--views", 6, "--size", 32, "--export", "idr", "-q")
    assert r.exit_code == 0, r.output
    return root


def scene_copy(head_scene, tmp_path, name="scene"):
    """A writable copy of the IDR folder (without its views.h5)."""
    folder = tmp_path / name
    shutil.copytree(head_scene / "idr", folder, ignore=shutil.ignore_patterns("views.h5"))
    return folder


def fit_head_fails(scene, out, *args, needles=()):
    r = invoke("fit-head", scene, "-o", out, *TINY_FIT, *args)
    assert_clean_failure(r, *needles)
    assert not out.exists() and not out.with_name(f"{out.stem}.preview.png").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".") and ".tmp" in p.name]  # no leftovers
    return r


def test_fit_head_keep_run_that_is_an_output_or_inside_the_scene(head_scene, tmp_path):
    """--keep-run equal to -o crashed after the fit and left a folder of temporary files."""
    scene = scene_copy(head_scene, tmp_path)
    out = tmp_path / "fit.h5"
    fit_head_fails(scene, out, "--keep-run", out, needles=("--keep-run", "output"))
    assert not out.exists()
    r = invoke("fit-head", scene, "-o", out, *TINY_FIT[:-2], "--keep-run", tmp_path / "fit.preview.png", "-q")
    assert_clean_failure(r, "--keep-run", "output")
    fit_head_fails(scene, out, "--keep-run", scene, needles=("--keep-run", "scene"))
    # a preview or a run among the scene's photos or masks would become part of the scene
    inside = scene / "image" / "fit.h5"
    assert_clean_failure(invoke("fit-head", scene, "-o", inside, *TINY_FIT[:-2], "-q"), "inside the scene")
    assert not (scene / "image" / "fit.preview.png").exists() and not inside.exists()
    fit_head_fails(scene, out, "--keep-run", scene / "mask" / "run", needles=("inside the scene",))
    assert sorted(p.name for p in (scene / "image").iterdir()) == sorted(p.name for p in (scene / "mask").iterdir())


def test_a_landing_that_cannot_put_a_file_in_place_leaves_no_temporary_file(tmp_path):
    from avatarkit.errors import ResourceError
    from avatarkit.io.atomic import atomic_path, landing

    (tmp_path / "taken").mkdir()
    with pytest.raises(ResourceError, match="taken"), landing():
        for name in ("a.txt", "taken", "b.txt"):
            with atomic_path(tmp_path / name) as tmp:
                tmp.write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "taken"]  # the one before landed; no .tmp


def test_a_resolution_beyond_memory_is_refused_before_any_work(head_scene, tmp_path):
    """It was a MemoryError traceback, in fit-head after the whole fit."""
    fit_head_fails(head_scene / "views.h5", tmp_path / "fit.h5", "--resolution", 65536, needles=("--resolution", "GiB"))
    r = invoke("reconstruct", tmp_path / "no_run", "--latent", 0, "-o", tmp_path / "m.h5", "--resolution", 65536)
    assert_clean_failure(r, "--resolution 65536", "GiB")
    for method, data in (("deepsdf", ("--samples",)), ("pifu", ("--views", "--samples"))):
        options = [x for name in data for x in (name, tmp_path / "absent")]
        r = invoke("train", method, *options, "-o", tmp_path / "run", "--val-resolution", 65536)
        assert_clean_failure(r, "--val-resolution 65536", "GiB")  # not a MemoryError at the first validation
    assert not (tmp_path / "run").exists()


def test_fit_head_on_a_mesh_file_says_it_is_not_a_scene(tmp_path):
    for encoding in ("ascii", "binary"):
        ply = tmp_path / f"ball_{encoding}.ply"
        s = sphere(0.1)
        trimesh.Trimesh(s.vertices, s.faces).export(ply, encoding=encoding)
        fit_head_fails(ply, tmp_path / "fit.h5", needles=(str(ply), "not a scene"))


def set_scale_mats(folder, change):
    data = dict(np.load(folder / "cameras.npz"))
    np.savez(folder / "cameras.npz", **{k: change(k, v) if k.startswith("scale_mat") else v for k, v in data.items()})


@pytest.mark.parametrize(
    ("name", "change", "needle"),
    [
        ("anisotropic", lambda k, v: v @ np.diag([1.0, 3.0, 1.0, 1.0]), "uniform scale"),
        ("negative", lambda k, v: v @ np.diag([-1.0, -1.0, -1.0, 1.0]), "uniform scale"),
        ("zero", lambda k, v: np.diag([0.0, 0.0, 0.0, 1.0]), "uniform scale"),
        ("one differs", lambda k, v: v * 2 if k == "scale_mat_3" else v, "scale_mat_3 differs"),
    ],
)
def test_idr_scale_mats_that_are_not_one_unit_sphere(head_scene, tmp_path, name, change, needle):
    """Only scale_mat_0's [0, 0] was read: a stretched or per-view sphere was silently used."""
    scene = scene_copy(head_scene, tmp_path)
    set_scale_mats(scene, change)
    fit_head_fails(scene, tmp_path / "fit.h5", needles=(str(scene / "cameras.npz"), needle))


def test_idr_scene_files_that_crashed(head_scene, tmp_path):
    from PIL import Image

    scene = scene_copy(head_scene, tmp_path)
    out = tmp_path / "fit.h5"
    junk = scene / "mask" / "002.png"
    good = junk.read_bytes()
    junk.write_bytes(bytes(range(256)) * 2)
    fit_head_fails(scene, out, needles=(str(junk), "unreadable mask"))
    junk.write_bytes(good)
    emptied = scene / "mask" / "004.png"
    kept = emptied.read_bytes()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(emptied)
    fit_head_fails(scene, out, needles=(str(scene), "mask of view 4 is empty"))  # the scene is named
    emptied.write_bytes(kept)
    for text, needle in [
        ('{"3": [0, 1, 1]}', "2 distinct"),
        ('{"3": [0, 1]}', "lists 2 views"),
        ('{"3": []}', "lists 0 views"),
    ]:
        (scene / "subsets.json").write_text(text)
        fit_head_fails(scene, out, "--views", 3, needles=(str(scene / "subsets.json"), "subset 3", needle))


def test_views_subsets_of_other_names_and_cameras_at_one_place(head_scene, tmp_path):
    """A subset named 'front' crashed --views (int('front')); cameras at one place gave one view
    several times."""
    from avatarkit.io.hdf5 import read_artifact

    views = read_artifact(head_scene / "views.h5", "views")
    n = len(views)
    views.K = np.repeat(views.K[:1], n, 0)
    views.world_to_cam = np.repeat(views.world_to_cam[:1], n, 0)
    views.subsets = {"front": np.array([0, 1, 2])}
    path = write_artifact(tmp_path / "views.h5", views)
    r = invoke("fit-head", path, "-o", tmp_path / "fit.h5", *TINY_FIT[:-1], "--views", 3, "--json")
    assert r.exit_code == 0, r.output
    chosen = json.loads(r.stdout)["views"]
    assert len(set(chosen)) == 3
    views.subsets = {"3": np.array([0, 1])}
    bad = write_artifact(tmp_path / "short.h5", views)
    fit_head_fails(bad, tmp_path / "fit2.h5", "--views", 3, needles=(str(bad), "lists 2 views"))


def nerf_scene(head_scene, folder):
    """The views file as a NeRF folder: images/ with transforms.json (OpenGL poses), masks in mask/."""
    from PIL import Image

    from avatarkit.io.hdf5 import read_artifact

    views = read_artifact(head_scene / "views.h5", "views")
    (folder / "images").mkdir(parents=True)
    (folder / "mask").mkdir()
    frames = []
    for i in range(len(views)):
        Image.fromarray(views.rgb[i]).save(folder / "images" / f"{i:03d}.png")
        Image.fromarray(views.mask[i]).save(folder / "mask" / f"{i:03d}.png")
        c2w = np.linalg.inv(views.world_to_cam[i].astype(np.float64)) @ np.diag([1.0, -1.0, -1.0, 1.0])
        frames.append({"file_path": f"images/{i:03d}", "transform_matrix": c2w.tolist()})
    k = views.K[0]
    meta = {"w": 32, "h": 32, "fl_x": float(k[0, 0]), "cx": float(k[0, 2]) + 0.5, "cy": float(k[1, 2]) + 0.5}
    (folder / "transforms.json").write_text(json.dumps({**meta, "frames": frames}))
    return meta, frames


def test_nerf_folders_that_crashed(head_scene, tmp_path):
    folder = tmp_path / "nerf"
    meta, frames = nerf_scene(head_scene, folder)
    out = tmp_path / "fit.h5"
    transforms_json = folder / "transforms.json"
    junk = folder / "mask" / "001.png"
    good = junk.read_bytes()
    junk.write_bytes(bytes(range(256)) * 2)
    fit_head_fails(folder, out, needles=(str(junk), "unreadable mask"))
    junk.write_bytes(good)
    for bad_frames, needle in [(5, "no list of frames"), ({"a": 1}, "no list of frames"),
                               ([{**frames[0], "file_path": "/"}, *frames[1:]], "frame 0 has no file_path")]:  # fmt: skip
        transforms_json.write_text(json.dumps({**meta, "frames": bad_frames}))
        fit_head_fails(folder, out, needles=(str(transforms_json), needle))
    transforms_json.write_text(json.dumps({**meta, "frames": frames}))
    from PIL import Image

    for mask in (folder / "mask").iterdir():
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(mask)
    fit_head_fails(folder, out, needles=(str(folder), "mask"))  # the scene is named


@pytest.fixture(scope="module")
def deepsdf_bits(tmp_path_factory):
    """A samples folder of one ball (deepsdf preset) and a deepsdf run trained 2 steps on it."""
    root = tmp_path_factory.mktemp("deepsdf_bits")
    write_artifact(root / "ball.h5", sphere(0.1, 2, (0.0, 1.5, 0.0)))
    r = invoke("sample-sdf", root / "ball.h5", "-o", root / "samples", "--preset", "deepsdf", "--points", 2000, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("train", "deepsdf", "--samples", root / "samples", "-o", root / "run", "--config", "small",
               "--latent-size", 8, "--hidden", 32, "--layers", 4, "--latent-in", 2, "--points-per-shape", 128,
               "--batch-size", 1, "--max-steps", 2, "--val-fraction", 0, "--val-resolution", 16, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    return root


def with_nan(src, dst, dataset):
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        f[dataset][:5] = np.nan
    return dst


def test_train_deepsdf_output_that_is_a_file_an_input_or_unwritable(deepsdf_bits, tmp_path):
    samples = deepsdf_bits / "samples"
    before = sorted(p.name for p in samples.iterdir())
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    train = ("train", "deepsdf", "--samples", samples, "--config", "small", "--max-steps", 1)
    assert_clean_failure(invoke(*train, "-o", samples), "is the --samples input")  # it trained into the input
    assert_clean_failure(invoke(*train, "-o", a_file), "is a file")  # these three were tracebacks
    assert_clean_failure(invoke(*train, "-o", a_file / "run"), "it is a file")
    assert_clean_failure(invoke(*train, "-o", "/proc/run"), "cannot")
    assert sorted(p.name for p in samples.iterdir()) == before and a_file.read_text() == "mine\n"


def test_nan_samples_are_refused_by_train_and_reconstruct(deepsdf_bits, tmp_path):
    """NaN points trained a NaN network without a word; NaN distances crashed reconstruct."""
    src = deepsdf_bits / "samples" / "ball.h5"
    (tmp_path / "nan").mkdir()
    nan_points = with_nan(src, tmp_path / "nan" / "ball.h5", "/points")
    r = invoke("train", "deepsdf", "--samples", tmp_path / "nan", "-o", tmp_path / "run", "--config", "small")
    assert_clean_failure(r, str(nan_points), "NaN")
    assert not (tmp_path / "run").exists()
    nan_sdf = with_nan(src, tmp_path / "nan_sdf.h5", "/sdf")
    for bad in (nan_sdf, nan_points):
        r = invoke("reconstruct", deepsdf_bits / "run", bad, "-o", tmp_path / "m.h5", "--resolution", 16)
        assert_clean_failure(r, str(bad), "NaN")
        assert not (tmp_path / "m.h5").exists()


def test_reconstruct_deepsdf_names_what_it_was_given(deepsdf_bits, tmp_path):
    ply = tmp_path / "ball.ply"
    ply.write_text("ply\n")
    run = deepsdf_bits / "run"
    assert_clean_failure(invoke("reconstruct", run, deepsdf_bits / "samples", "-o", tmp_path / "o"), "not a folder")
    assert_clean_failure(invoke("reconstruct", run, ply, "-o", tmp_path / "m.h5"), "not a .ply file")
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.h5").exists()


def test_an_idr_export_over_a_larger_one_leaves_a_folder_that_reads_back(head_scene, tmp_path):
    """The earlier export's surplus images and masks stayed: '6 images in image/ but 3 cameras'."""
    from avatarkit.io.view_folders import read_idr_folder

    folder = scene_copy(head_scene, tmp_path)
    (folder / "image" / "notes.txt").write_text("mine\n")
    r = invoke("render", head_scene / "ball.h5", "-o", folder, "--views", 3, "--size", 32, "--export", "idr",
               "--overwrite", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (folder / "mask").iterdir()) == ["000.png", "001.png", "002.png"]
    assert (folder / "image" / "notes.txt").read_text() == "mine\n"  # only numbered views are the export's
    assert not (folder / "subsets.json").exists()
    assert len(read_idr_folder(folder)) == 3
