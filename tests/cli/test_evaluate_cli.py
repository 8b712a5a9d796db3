"""evaluate-chamfer and icp-align as a user types them: brute-force references, the named
protocols' directions, failures reported as rows, and the warnings that catch mistakes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.errors import AvatarkitWarning
from avatarkit.evaluate.chamfer import Protocol, evaluate_meshes
from avatarkit.evaluate.h3ds import load_h3ds_mesh
from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.io.meshfile import save_mesh
from avatarkit.structures import Landmarks, Mesh


def sphere(radius, subdivisions=3, center=(0.0, 1.0, 0.0)):
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return Mesh(s.vertices + np.asarray(center), s.faces)


def half(mesh):
    """The faces of ``mesh`` on the +Z side (a reconstruction missing its back)."""
    keep = mesh.vertices[mesh.faces].mean(axis=1)[:, 2] > 0
    t = trimesh.Trimesh(mesh.vertices, mesh.faces[keep], process=False)
    t.remove_unreferenced_vertices()
    return Mesh(t.vertices, t.faces)


def test_default_metrics_equal_a_brute_force_reference():
    gt = sphere(0.5, 2)
    bumpy = sphere(0.45, 2)
    bumpy.vertices = bumpy.vertices + np.random.default_rng(0).normal(0, 0.01, bumpy.vertices.shape)
    taus = (0.02, 0.05)
    m = evaluate_meshes(bumpy, gt, Protocol("t", samples=400, taus=taus))
    sp, sg = m.per_point["pred_points"].astype(np.float64), m.per_point["gt_points"].astype(np.float64)
    d = np.linalg.norm(sp[:, None] - sg[None], axis=-1)  # every pair: the reference
    d_pg, d_gp = d.min(1), d.min(0)
    v = m.values
    assert v["accuracy"] == pytest.approx(d_pg.mean(), rel=1e-6)
    assert v["completeness"] == pytest.approx(d_gp.mean(), rel=1e-6)
    assert v["chamfer_l1"] == pytest.approx((d_pg.mean() + d_gp.mean()) / 2, rel=1e-6)
    assert v["chamfer_l2"] == pytest.approx(((d_pg**2).mean() + (d_gp**2).mean()) / 2, rel=1e-6)
    assert v["hausdorff"] == pytest.approx(max(d_pg.max(), d_gp.max()), rel=1e-6)
    for tau in taus:
        p, r = (d_pg <= tau).mean(), (d_gp <= tau).mean()
        assert v[f"fscore@{tau:g}m"] == pytest.approx(0 if p + r == 0 else 2 * p * r / (p + r))
    # p2s against open3d's exact point-to-triangle distance (an independent implementation)
    from avatarkit.backends.open3d import import_open3d

    o3d = import_open3d()

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.t.geometry.TriangleMesh.from_legacy(
            o3d.geometry.TriangleMesh(
                o3d.utility.Vector3dVector(bumpy.vertices), o3d.utility.Vector3iVector(bumpy.faces)
            )
        )
    )
    exact = scene.compute_distance(o3d.core.Tensor(sg.astype(np.float32))).numpy()
    assert v["p2s"] == pytest.approx(exact.mean(), rel=1e-4)


def test_pifuhd_and_icon_measure_p2s_from_opposite_sides(tmp_path):
    full = sphere(0.5, 4)
    pred = save_mesh(half(full), tmp_path / "half.ply")[0]
    gt = write_artifact(tmp_path / "gt.h5", full)
    rows = {}
    for protocol in ("pifuhd", "icon"):
        r = invoke("evaluate-chamfer", pred, gt, "--protocol", protocol, "--json")
        assert r.exit_code == 0, r.output
        rows[protocol] = json.loads(r.stdout)
        assert set(rows[protocol]) == {"pred", "gt", "protocol", "units", "n_samples", "p2s", "chamfer"}
    # PIFuHD: from the predicted half to the full sphere, ~0; ICON: from the missing back, large
    assert rows["pifuhd"]["n_samples"] == 10_000 and rows["pifuhd"]["units"] == "cm"
    assert rows["pifuhd"]["p2s"] < 0.1 < 10 < rows["icon"]["p2s"]
    assert rows["pifuhd"]["chamfer"] == pytest.approx(rows["icon"]["chamfer"], rel=0.1)
    assert_clean_failure(invoke("evaluate-chamfer", pred, gt, "--protocol", "icon", "--tau", 0.01), "--tau")


def test_default_json_keys_units_and_metrics_file(tmp_path):
    pred = save_mesh(sphere(0.5), tmp_path / "pred.obj")[0]
    gt = write_artifact(tmp_path / "gt.h5", sphere(0.6))
    r = invoke(
        "evaluate-chamfer",
        pred,
        gt,
        "--json",
        "--samples",
        3000,
        "--units",
        "mm",
        "--tau",
        0.05,
        "-o",
        tmp_path / "m.h5",
    )
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    keys = {"accuracy", "completeness", "chamfer_l1", "chamfer_l2", "p2s", "normal_consistency", "hausdorff"}
    assert keys | {"protocol", "units", "n_samples", "fscore@50mm"} <= set(row)
    assert row["units"] == "mm" and row["p2s"] == pytest.approx(100.0, abs=3.0)
    metrics = read_artifact(tmp_path / "m.h5", "metrics")
    assert metrics.units == "mm" and metrics.per_point["completeness"].shape == (3000,)


def test_implausible_size_warnings_name_each_verbs_units_flag(tmp_path):
    # evaluate-chamfer's --units is the reporting unit; its input units are --input-units
    pred = save_mesh(sphere(50.0, center=(0, 100, 0)), tmp_path / "pred_cm.ply")[0]
    gt = save_mesh(sphere(55.0, center=(0, 100, 0)), tmp_path / "gt_cm.ply")[0]
    r = invoke("evaluate-chamfer", pred, gt, "--samples", 500, "--json")
    assert r.exit_code == 0, r.output
    assert "pass --input-units cm or --input-units mm" in r.stderr and "pass --units" not in r.stderr
    r = invoke("evaluate-chamfer", pred, gt, "--samples", 500, "--input-units", "cm", "--json")
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr
    r = invoke("icp-align", pred, gt, "-o", tmp_path / "T.h5", "--samples", 500)  # icp-align's flag is --units
    assert r.exit_code == 0, r.output
    assert "pass --units cm or --units mm" in r.stderr and "--input-units" not in r.stderr


def test_h3ds_empty_prediction_is_a_failure_row_and_its_options_are_checked(tmp_path):
    gt = write_artifact(tmp_path / "gt.h5", sphere(0.1))
    (tmp_path / "empty.obj").write_text("# the reconstruction failed\n")
    r = invoke("evaluate-chamfer", tmp_path / "empty.obj", gt, "--protocol", "h3ds", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    # strict JSON: the infinite distances are null, the row's error says it failed
    assert row["gt_to_pred"] is None and row["pred_to_gt"] is None and "empty mesh" in row["error"]
    assert_clean_failure(invoke("evaluate-chamfer", gt, gt, "--protocol", "h3ds", "--samples", 10), "--samples")
    assert_clean_failure(invoke("evaluate-chamfer", tmp_path / "absent.obj", gt, "--protocol", "h3ds"), "no such")


def test_h3ds_without_landmarks_warns_and_sizes_ten_times_apart_warn(tmp_path):
    gt = write_artifact(tmp_path / "gt.h5", sphere(0.1, center=(0, 0, 0)))
    pred = save_mesh(sphere(1.0, center=(0, 0, 0)), tmp_path / "pred.ply")[0]
    r = invoke("evaluate-chamfer", pred, gt, "--protocol", "h3ds")
    assert r.exit_code == 0, r.output
    assert "no landmarks" in r.stderr and "units mistake" in r.stderr and "--input-units" in r.stderr
    r = invoke("evaluate-chamfer", pred, gt, "--protocol", "icon")
    assert r.exit_code == 0 and "units mistake" in r.stderr


def test_h3ds_reads_vertices_in_the_file_order(tmp_path):
    # an OBJ whose last vertex repeats the first (a UV seam): H3DS indexes every v line
    s = trimesh.creation.icosphere(subdivisions=1, radius=0.1)
    v = np.vstack([s.vertices, s.vertices[:1]])
    faces = s.faces.copy()
    faces[0][faces[0] == 0] = len(v) - 1
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    (tmp_path / "seam.obj").write_text("\n".join(lines) + "\n")
    with pytest.warns(AvatarkitWarning, match="43 vertices as listed, 42 once"):
        mesh = load_h3ds_mesh(tmp_path / "seam.obj")
        in_cm = load_h3ds_mesh(tmp_path / "seam.obj", "cm")
    assert len(mesh.vertices) == len(v) and np.allclose(mesh.vertices, v, atol=1e-6)
    assert np.allclose(in_cm.vertices, v / 100, atol=1e-8)


def test_folders_warn_about_partners_missing_and_count_failures(tmp_path):
    preds, gts = tmp_path / "preds", tmp_path / "gts"
    preds.mkdir()
    gts.mkdir()
    for name in ("a", "b", "only_gt"):
        write_artifact(gts / f"{name}.h5", sphere(0.6))
    save_mesh(sphere(0.5), preds / "a.obj")
    write_artifact(preds / "a.h5", sphere(0.55))  # same stem twice: the .h5 is used, with a warning
    (preds / "b.obj").write_text("# failed\n")
    save_mesh(sphere(0.5), preds / "only_pred.ply")
    r = invoke("evaluate-chamfer", preds, gts, "--json", "--samples", 2000)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n_pairs"] == 2 and out["n_failed"] == 1
    assert [p["pred"].rsplit("/", 1)[1] for p in out["pairs"]] == ["a.h5", "b.obj"]
    assert out["pairs"][0]["p2s"] == pytest.approx(0.05, abs=3e-3)
    assert "only_gt" in r.stderr and "only_pred" in r.stderr and "share a stem" in r.stderr


def test_icp_align_takes_landmarks_placed_by_vertex_only(tmp_path):
    base = sphere(0.3, 3, center=(0, 0, 0))
    base.vertices *= [1.5, 2.5, 1.0]  # three different axes: one right answer
    ids = np.array([0, 5, 11, 40, 100, 200])
    names = [f"l{i}" for i in range(len(ids))]
    angle = np.radians(40)
    m = np.eye(4)
    m[:3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    m[:3, 3] = [0.05, -0.02, 0.03]
    nan = np.full((len(ids), 3), np.nan)  # a file with /landmarks/vertex_ids and no points
    src = dataclasses.replace(base, landmarks=Landmarks(names, nan, ids))
    moved = Mesh(base.vertices @ m[:3, :3].T + m[:3, 3], base.faces, landmarks=Landmarks(names, nan, ids))
    a, b = write_artifact(tmp_path / "a.h5", src), write_artifact(tmp_path / "b.h5", moved)
    r = invoke("icp-align", a, b, "-o", tmp_path / "T.h5", "--json")
    assert r.exit_code == 0, r.output
    assert np.allclose(read_artifact(tmp_path / "T.h5", "transform").source_to_target, m, atol=1e-4)
    (tmp_path / "far.txt").write_text("l0 0\nl1 99999\nl2 3\n")
    r = invoke("icp-align", a, b, "-o", tmp_path / "x.h5", "--landmarks-source", tmp_path / "far.txt")
    assert_clean_failure(r, "far.txt", "99999")
    assert not (tmp_path / "x.h5").exists()


def test_icp_align_warns_on_units_and_on_no_pairs(tmp_path):
    small = write_artifact(tmp_path / "small.h5", sphere(0.1, center=(0, 0, 0)))
    large = save_mesh(sphere(1.0, center=(3, 0, 0)), tmp_path / "large.ply")[0]
    r = invoke("icp-align", large, small, "-o", tmp_path / "T.h5", "--no-landmarks", "--samples", 2000)
    assert r.exit_code == 0, r.output
    assert "units mistake" in r.stderr and "--units" in r.stderr and "no pairs" in r.stderr


def test_icp_align_holds_the_scale_within_scale_range_and_warns_at_its_bound(tmp_path):
    # a sphere onto a thin stick: no scale fits; it stops at the bound of --scale-range, with a warning
    stick = trimesh.creation.box(extents=[0.2, 1.6, 0.2]).subdivide().subdivide().subdivide()
    ball = save_mesh(sphere(0.5, center=(0, 0, 0)), tmp_path / "ball.ply")[0]
    target = save_mesh(Mesh(stick.vertices, stick.faces), tmp_path / "stick.ply")[0]
    for bounds, low in (((), 0.5), (("--scale-range", 0.8, 1.25), 0.8)):
        r = invoke("icp-align", ball, target, "-o", tmp_path / "T.h5", "--scale", "--samples", 3000, *bounds)
        assert r.exit_code == 0, r.output
        assert "bound of --scale-range" in r.stderr
        assert read_artifact(tmp_path / "T.h5", "transform").scale == pytest.approx(low)
    r = invoke("icp-align", ball, target, "-o", tmp_path / "x.h5", "--scale", "--scale-range", 1.1, 2)
    assert_clean_failure(r, "--scale-range")
    assert not (tmp_path / "x.h5").exists()


def test_h3ds_warns_when_the_file_lists_duplicated_vertices(tmp_path):
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    v = np.vstack([s.vertices, s.vertices[:1]])
    faces = s.faces.copy()
    faces[0][faces[0] == 0] = len(v) - 1
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    (tmp_path / "seam.obj").write_text("\n".join(lines) + "\n")
    r = invoke("evaluate-chamfer", tmp_path / "seam.obj", tmp_path / "seam.obj", "--protocol", "h3ds", "--json")
    assert r.exit_code == 0, r.output
    assert "once duplicates are welded" in r.stderr and json.loads(r.stdout)["n_samples"] == len(v)
