"""evaluate-chamfer: exact against brute force, known answers on spheres, the CLI's forms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.evaluate.chamfer import PROTOCOLS, Protocol, evaluate_meshes, nearest
from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.io.meshfile import save_mesh
from avatarkit.structures import Mesh


def sphere(radius, subdivisions=5):
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return Mesh(s.vertices + np.array([0.0, 1.0, 0.0]), s.faces)


def test_nearest_neighbours_equal_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.random((700, 3)), rng.random((900, 3))
    d, i = nearest(a, b)
    brute = np.linalg.norm(a[:, None] - b[None], axis=-1)
    assert np.allclose(d, brute.min(1)) and np.array_equal(i, brute.argmin(1))


def test_mesh_against_itself_and_against_a_larger_sphere():
    small, large = sphere(0.5), sphere(0.6)
    same = evaluate_meshes(small, small, Protocol("t", samples=20000)).values
    assert same["p2s"] < 1e-6 and same["normal_consistency"] > 0.99
    assert same["chamfer_l1"] < 0.01  # two samplings of one surface: sample spacing only
    v = evaluate_meshes(small, large, Protocol("t", samples=20000, taus=(0.05, 0.15))).values
    assert v["p2s"] == pytest.approx(0.1, abs=2e-3)  # gt samples at r = 0.6, pred surface at 0.5
    assert v["accuracy"] == pytest.approx(0.1, abs=4e-3) and v["completeness"] == pytest.approx(0.1, abs=4e-3)
    assert v["chamfer_l2"] == pytest.approx(0.01, rel=0.08)
    assert v["hausdorff"] == pytest.approx(0.1, abs=0.01)
    assert v["fscore@0.05m"] == 0.0 and v["fscore@0.15m"] == 1.0
    assert v["normal_consistency"] > 0.99
    cm = evaluate_meshes(small, large, Protocol("t", samples=20000, units="cm")).values
    assert cm["p2s"] == pytest.approx(100 * v["p2s"], rel=1e-6)


def test_sizes_ten_times_apart_warn():
    from avatarkit.errors import AvatarkitWarning

    with pytest.warns(AvatarkitWarning, match="units mistake"):
        evaluate_meshes(sphere(0.05, 2), sphere(0.6, 2), Protocol("t", samples=100))


def test_cli_single_pair_json_metrics_file_and_heatmap(tmp_path):
    pred = save_mesh(sphere(0.5, 3), tmp_path / "pred.ply")[0]
    gt = write_artifact(tmp_path / "gt.h5", sphere(0.6, 3))
    r = invoke(
        "evaluate-chamfer",
        pred,
        gt,
        "--json",
        "--samples",
        5000,
        "-o",
        tmp_path / "m.h5",
        "--heatmap",
        tmp_path / "h.ply",
    )
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["protocol"] == "default" and row["units"] == "m" and row["n_samples"] == 5000
    assert row["p2s"] == pytest.approx(0.1, abs=3e-3)
    metrics = read_artifact(tmp_path / "m.h5", "metrics")
    assert metrics.values["p2s"] == pytest.approx(row["p2s"]) and metrics.per_point["p2s"].shape == (5000,)
    colored = trimesh.load(tmp_path / "h.ply", process=False)
    assert colored.visual.vertex_colors.shape[0] == len(colored.vertices)
    r = invoke("evaluate-chamfer", pred, gt, "--protocol", "pifuhd", "--json")
    row = json.loads(r.stdout)
    assert row["units"] == "cm" and row["n_samples"] == 10000 and row["p2s"] == pytest.approx(10.0, abs=0.3)


def test_cli_folders_by_stem_with_a_summary_and_an_empty_prediction(tmp_path):
    (tmp_path / "preds").mkdir()
    (tmp_path / "gts").mkdir()
    for name, r in (("a", 0.5), ("b", 0.55)):
        save_mesh(sphere(r, 3), tmp_path / "preds" / f"{name}.obj")
        write_artifact(tmp_path / "gts" / f"{name}.h5", sphere(0.6, 3))
    write_artifact(tmp_path / "gts" / "c.h5", sphere(0.6, 3))
    (tmp_path / "preds" / "c.obj").write_text("# reconstruction failed: nothing\n")
    r = invoke("evaluate-chamfer", tmp_path / "preds", tmp_path / "gts", "--json", "--samples", 3000)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    rows = {p["pred"].rsplit("/", 1)[1]: p for p in out["pairs"]}
    assert rows["a.obj"]["p2s"] == pytest.approx(0.1, abs=3e-3) and rows["b.obj"]["p2s"] == pytest.approx(
        0.05, abs=3e-3
    )
    assert rows["c.obj"]["chamfer_l1"] is None and "empty mesh" in rows["c.obj"]["error"]  # inf: null in JSON
    assert out["summary"]["p2s"]["median"] == pytest.approx(0.1, abs=3e-3)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("preds/a.obj gts/a.h5\n# a comment\npreds/b.obj gts/b.h5\n")
    r = invoke("evaluate-chamfer", pairs, "--json", "--samples", 2000)
    assert r.exit_code == 0 and len(json.loads(r.stdout)["pairs"]) == 2


def test_cli_bad_inputs(tmp_path):
    gt = write_artifact(tmp_path / "gt.h5", sphere(0.6, 2))
    assert_clean_failure(invoke("evaluate-chamfer", tmp_path / "absent.obj", gt), "no such file")
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    save_mesh(sphere(0.5, 2), tmp_path / "p" / "x.obj")
    write_artifact(tmp_path / "g" / "y.h5", sphere(0.6, 2))
    assert_clean_failure(invoke("evaluate-chamfer", tmp_path / "p", tmp_path / "g"), "no stem is shared")
    assert_clean_failure(invoke("evaluate-chamfer", gt, gt, "--samples", 0), "--samples must be positive")


def test_protocols_are_documented():
    assert set(PROTOCOLS) == {"default", "pifuhd", "icon", "geopifu"}
    assert all(p.source for p in PROTOCOLS.values())


def test_icon_protocol_is_point_to_surface_both_ways_in_cm(tmp_path):
    pred = save_mesh(sphere(0.5, 4), tmp_path / "pred.obj")[0]
    gt = write_artifact(tmp_path / "gt.h5", sphere(0.6, 4))
    r = invoke("evaluate-chamfer", pred, gt, "--protocol", "icon", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["n_samples"] == 1000 and row["units"] == "cm"
    assert row["p2s"] == pytest.approx(10.0, abs=0.2) and row["chamfer"] == pytest.approx(10.0, abs=0.2)
