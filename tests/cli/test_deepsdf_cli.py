"""train deepsdf and reconstruct with it as a researcher types them: simple shapes of different
sizes in different places, sampled with sample-sdf's deepsdf preset; a run that learns, keeps
each shape's unit sphere and picks best.pt by the held-out chamfer; meshes of a training shape's
code and of a code fitted to a samples file, in world metres; bad inputs in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import trimesh
from helpers import assert_clean_failure, invoke
from PIL import Image

from avatarkit.io.hdf5 import read_artifact, read_mesh, write_artifact
from avatarkit.methods import checkpoint
from avatarkit.structures import Mesh

SHAPES = {  # name: (trimesh, where its centre goes, metres)
    "ball": (trimesh.creation.icosphere(3, 0.10), (0.0, 1.5, 0.0)),
    "cube": (trimesh.creation.box((0.16, 0.16, 0.16)), (0.3, 1.5, -0.2)),
    "slab": (trimesh.creation.box((0.24, 0.12, 0.12)), (0.6, 1.4, -0.4)),
    "egg": (trimesh.creation.icosphere(3, 1.0).apply_scale((0.12, 0.08, 0.10)), (0.9, 1.6, -0.6)),
    "disc": (trimesh.creation.icosphere(3, 1.0).apply_scale((0.10, 0.10, 0.05)), (1.2, 1.5, -0.8)),
    "tower": (trimesh.creation.box((0.08, 0.2, 0.1)), (1.5, 1.3, -1.0)),
}
BOXES = ("cube", "slab", "tower")

TINY = (
    "--config", "small", "--latent-size", 16, "--hidden", 64, "--layers", 4, "--latent-in", 2,
    "--points-per-shape", 512, "--batch-size", 5, "--dropout", 0, "--lr", 5e-3, "--lr-decay-at", 0.8,
    "--fit-iterations", 200, "--fit-samples", 1024, "--val-resolution", 32,
)  # fmt: skip
"""The small config made smaller still: a step in milliseconds on a CPU."""


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """meshes/ and samples/ (sample-sdf --preset deepsdf, 8000 points) of six simple shapes."""
    root = tmp_path_factory.mktemp("deepsdf_shapes")
    for name, (shape, center) in SHAPES.items():
        vertices = np.asarray(shape.vertices) + np.asarray(center)
        write_artifact(root / "meshes" / f"{name}.h5", Mesh(vertices.astype(np.float32), np.asarray(shape.faces)))
    r = invoke("sample-sdf", *sorted((root / "meshes").iterdir()), "-o", root / "samples", "--preset", "deepsdf",
               "--points", 8000, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture(scope="module")
def run(shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("deepsdf_run") / "run"
    r = invoke("train", "deepsdf", "--samples", shapes / "samples", "-o", out, *TINY, "--max-steps", 150,
               "--val-every", 10, "--mesh-every", 50, "--json", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    return out, json.loads(r.stdout)


def _chamfer_cm(pred, gt) -> float:
    r = invoke("evaluate-chamfer", pred, gt, "--json")
    assert r.exit_code == 0, r.output
    return 100 * json.loads(r.stdout)["chamfer_l1"]


def _sphere_baseline(shapes, name, tmp_path) -> float:
    """Chamfer (cm) of the shape's bounding sphere: where a code that knew nothing would be."""
    gt = read_mesh(shapes / "meshes" / f"{name}.h5")
    center, radius = gt.bounding_sphere()
    ball = trimesh.creation.icosphere(4, radius)
    path = write_artifact(tmp_path / f"{name}_sphere.h5", Mesh((ball.vertices + center).astype(np.float32), ball.faces))
    return _chamfer_cm(path, shapes / "meshes" / f"{name}.h5")


def test_sample_sdf_records_the_unit_frame(shapes):
    for name in SHAPES:
        samples = read_artifact(shapes / "samples" / f"{name}.h5", "samples")
        center, farthest = read_mesh(shapes / "meshes" / f"{name}.h5").bounding_sphere()
        assert samples.attrs["unit_buffer"] == 1.03  # DeepSDF's buffer, stored with the radius it grew
        assert np.allclose(samples.attrs["unit_center"], center) and samples.attrs["unit_radius"] == pytest.approx(
            1.03 * farthest
        )
        assert 0.3 < samples.occupancy.mean() < 0.7  # 47/50 of the points hug the surface, on both sides


def test_training_learns_and_keeps_each_shapes_unit_sphere(run, shapes):
    folder, summary = run
    assert (summary["shapes"], summary["train"], summary["val"], summary["val_with_meshes"]) == (6, 5, 1, 1)
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(10, 151, 10))
    first, last = lines[0]["val/train_sdf_l1"], lines[-1]["val/train_sdf_l1"]
    assert last < 0.5 * first, (first, last)  # the training shapes' SDF under their own codes
    config = json.loads((folder / "config.json").read_text())
    train = config["split"]["train"]
    assert config["config"]["shapes"] == len(train) == 5
    # each training shape's unit sphere: IDR's scale_mat sphere (box midpoint, 1.1 x farthest vertex)
    assert sorted(config["normalization"]) == sorted(train)
    for stem, norm in config["normalization"].items():
        center, radius = read_mesh(shapes / "meshes" / f"{stem}.h5").bounding_sphere(1.1)
        assert np.allclose(norm["center"], center, atol=1e-6) and norm["radius"] == pytest.approx(radius, rel=1e-6)
    last_pt = checkpoint.load(folder / "checkpoints" / "last.pt")
    assert last_pt["model"]["codes.weight"].shape == (5, 16)
    assert last_pt["method_state"]["normalization"] == config["normalization"]
    decoder_lr, codes_lr = (g["lr"] for g in last_pt["optimizer"]["param_groups"])
    assert codes_lr == pytest.approx(2 * decoder_lr)  # DeepSDF's two rates: 1e-3 codes, 5e-4 decoder
    # best.pt: the lowest chamfer of the held-out shape's mesh, from a code fitted to its points
    meshed = [line for line in lines if "val/chamfer_cm" in line]
    assert [line["step"] for line in meshed] == [50, 100, 150]
    assert all({"val/sdf_l1", "val/p2s_cm", "val/train_chamfer_cm"} <= set(line) for line in meshed)
    best = checkpoint.load(folder / "checkpoints" / "best.pt")
    lowest = min(meshed, key=lambda line: line["val/chamfer_cm"])
    assert best["best"]["metric"] == "val/chamfer_cm" and best["step"] == lowest["step"]
    assert summary["best_value"] == pytest.approx(lowest["val/chamfer_cm"])


def test_a_training_shape_from_its_code_in_world_metres(run, shapes, tmp_path):
    folder, _ = run
    train = json.loads((folder / "config.json").read_text())["split"]["train"]
    for name in [b for b in BOXES if b in train][:2]:
        out = tmp_path / f"{name}.h5"
        r = invoke("reconstruct", folder, "--latent", train.index(name), "-o", out, "--resolution", 64, "--json")
        assert r.exit_code == 0, r.output
        info = json.loads(r.stdout)["written"][0]
        assert info["input"] == f"--latent {train.index(name)}" and info["queries"] < info["lattice_points"]
        pred, gt = read_mesh(out), read_mesh(shapes / "meshes" / f"{name}.h5")
        assert np.abs(pred.bounding_sphere()[0] - gt.bounding_sphere()[0]).max() < 0.01  # the right place
        assert np.allclose(pred.extent(), gt.extent(), rtol=0.2)  # and size, in metres (a tiny net's boxes bulge)
        chamfer, baseline = _chamfer_cm(out, shapes / "meshes" / f"{name}.h5"), _sphere_baseline(shapes, name, tmp_path)
        assert chamfer < 0.35 * baseline, (name, chamfer, baseline)


def test_a_code_fitted_to_a_samples_file(run, shapes, tmp_path):
    folder, _ = run
    split = json.loads((folder / "config.json").read_text())["split"]
    box = next(b for b in BOXES if b in split["train"])
    held_out = split["val"][0]
    files = [shapes / "samples" / f"{box}.h5", shapes / "samples" / f"{held_out}.h5"]
    r = invoke("reconstruct", folder, *files, "-o", tmp_path / "fitted", "--resolution", 64, "--json")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "fitted").iterdir()) == sorted(f"{n}.h5" for n in (box, held_out))
    pred, gt = read_mesh(tmp_path / "fitted" / f"{box}.h5"), read_mesh(shapes / "meshes" / f"{box}.h5")
    assert np.allclose(pred.extent(), gt.extent(), rtol=0.2)
    assert _chamfer_cm(tmp_path / "fitted" / f"{box}.h5", shapes / "meshes" / f"{box}.h5") < 0.35 * _sphere_baseline(
        shapes, box, tmp_path
    )
    # a shape it never trained on lands in its own place, its own size
    pred, gt = read_mesh(tmp_path / "fitted" / f"{held_out}.h5"), read_mesh(shapes / "meshes" / f"{held_out}.h5")
    assert np.abs(pred.bounding_sphere()[0] - gt.bounding_sphere()[0]).max() < 0.02
    assert np.allclose(pred.extent(), gt.extent(), rtol=0.35)


def test_a_run_resumes_with_its_codes(run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run[0], folder)
    r = invoke("train", "deepsdf", "-o", folder, "--resume", "--max-steps", 155, "--val-every", 5, "--json", "-q")
    assert r.exit_code == 0, r.output
    state = checkpoint.load(folder / "checkpoints" / "last.pt")
    assert state["step"] == 155 and state["config"]["shapes"] == 5
    assert not torch.equal(
        state["model"]["codes.weight"], checkpoint.load(run[0] / "checkpoints" / "last.pt")["model"]["codes.weight"]
    )


def test_bad_inputs_name_the_problem(run, shapes, tmp_path):
    folder, _ = run
    x = tmp_path / "x.h5"
    assert_clean_failure(
        invoke("reconstruct", folder, "--latent", 5, "-o", x), "--latent 5", "5 training shapes", "0 to 4"
    )
    assert_clean_failure(invoke("reconstruct", folder, "--latent", -1, "-o", x), "0 to 4")
    r = invoke("reconstruct", folder, shapes / "samples" / "ball.h5", "--latent", 0, "-o", x)
    assert_clean_failure(r, "--latent", "not both")
    assert_clean_failure(invoke("reconstruct", folder, "-o", x), "no input files")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "photo.png")
    r = invoke("reconstruct", folder, tmp_path / "photo.png", "-o", x)
    assert_clean_failure(r, "photo.png", "deepsdf reconstructs from samples files or --latent I, not images")
    r = invoke("reconstruct", folder, shapes / "meshes" / "ball.h5", "-o", x)
    assert_clean_failure(r, "ball.h5", "'mesh' file, expected kind 'samples'")
    r = invoke("reconstruct", folder, "--latent", 0, "-o", x, "--preview")
    assert_clean_failure(r, "--preview")
    assert not x.exists()
    r = invoke("train", "deepsdf", "--samples", shapes / "meshes", "-o", tmp_path / "r", *TINY)
    assert_clean_failure(r, "'mesh' file, expected kind 'samples'")
    r = invoke("train", "deepsdf", "--samples", shapes / "samples", "-o", tmp_path / "r", *TINY, "--latent-in", 4)
    assert_clean_failure(r, "--latent-in takes hidden layers 1 to 3")
    r = invoke("train", "deepsdf", "--samples", shapes / "samples", "-o", tmp_path / "r", "--shapes", 3)
    assert_clean_failure(r, "--shapes")  # set from the data, not an option
    assert not (tmp_path / "r").exists()
