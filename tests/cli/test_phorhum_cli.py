"""train phorhum as a user runs it: views lit by the built-in sky and osa samples, a short run,
a coloured mesh from reconstruct (albedo, or --shaded), and samples without colours refused in
one line naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_clean_failure, invoke

TINY_PHORHUM = (
    "--config", "small", "--channels", 16, "--stem-channels", 8, "--mlp", "32,32", "--shading-mlp", 16,
    "--image-size", 64, "--points", 256, "--batch-size", 2, "--patch-size", 4, "--trace-steps", 8,
    "--val-resolution", 32,
)  # fmt: skip
"""Options of ``train phorhum`` for networks that train a step in milliseconds."""


@pytest.fixture(scope="module")
def phorhum_data(pifu_data, tmp_path_factory):
    """``pifu_data``'s three people rendered as Phorhum's data (PIFu's rig, PRT lighting under the
    built-in sky, 64 x 64) and sampled with ``--preset osa`` (20k points with normals and colours)."""
    root = tmp_path_factory.mktemp("phorhum_data")
    meshes = sorted(str(p) for p in (pifu_data / "meshes").glob("*.h5"))
    r = invoke("render", *meshes, "-o", root / "views", "--preset", "pifu", "--views", 4, "--size", 64,
               "--lighting", "prt", "--hdri", "sky", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = invoke("sample-sdf", *meshes, "-o", root / "samples", "--preset", "osa", "--points", 20_000, "-q")
    assert r.exit_code == 0, r.output
    return root


def denormals_flushed() -> bool:
    import torch

    return float(torch.tensor([1e-39]) * torch.tensor([1.0])) == 0.0


@pytest.fixture
def denormals_restored():
    """The processor's flush-to-zero mode as the test found it, for the tests after it."""
    import torch

    before = denormals_flushed()
    yield
    torch.set_flush_denormal(before)


def test_train_then_reconstruct_a_coloured_mesh(phorhum_data, pifu_data, tmp_path, denormals_restored):
    import torch

    from avatarkit.io.meshfile import load_mesh

    run = tmp_path / "run"
    torch.set_flush_denormal(False)  # f's Softplus(beta 100) makes denormals: half the speed on a CPU without this
    assert not denormals_flushed()
    r = invoke("train", "phorhum", "--views", phorhum_data / "views", "--samples", phorhum_data / "samples",
               "--meshes", pifu_data / "meshes", "-o", run, *TINY_PHORHUM, "--max-steps", 30, "--val-every", 30,
               "--mesh-every", 30, "--json", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert denormals_flushed()
    summary = json.loads(r.stdout)
    assert summary["method"] == "phorhum" and summary["steps"] == 30
    assert {"val/iou", "val/albedo_l1"} <= set(summary["metrics"])
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines and 0 <= lines[-1]["val/albedo_l1"] <= 1

    views = phorhum_data / "views" / "human_0000.h5"
    albedo, shaded = tmp_path / "albedo.h5", tmp_path / "shaded.h5"
    for out, extra in ((albedo, ()), (shaded, ("--shaded",))):
        torch.set_flush_denormal(False)
        r = invoke("reconstruct", run, views, "--view", 0, "-o", out, "--resolution", 32, "--checkpoint", "last",
                   "--tolerance", 0, *extra)  # fmt: skip
        assert r.exit_code == 0, r.output
        assert denormals_flushed()
    a, s = load_mesh(albedo), load_mesh(shaded)
    assert a.vertex_colors is not None and a.vertex_colors.shape == (len(a.vertices), 3)
    np.testing.assert_array_equal(a.vertices, s.vertices)  # the same surface, coloured two ways
    assert not np.array_equal(a.vertex_colors, s.vertex_colors)
    assert np.ptp(a.vertices[:, 1]) > 0.05  # metres, in the world (the subject stands 1.2-2 m tall)


def test_samples_without_colours_are_refused(phorhum_data, pifu_data, tmp_path):
    r = invoke("train", "phorhum", "--views", phorhum_data / "views", "--samples", pifu_data / "samples",
               "-o", tmp_path / "run", *TINY_PHORHUM, "--max-steps", 1)  # fmt: skip
    assert_clean_failure(r, "has no colours for the albedo loss", "human_000", "--w-albedo 0")
    assert not (tmp_path / "run" / "checkpoints").exists()
    r = invoke("train", "phorhum", "--views", phorhum_data / "views", "--samples", pifu_data / "samples",
               "-o", tmp_path / "run2", *TINY_PHORHUM, "--max-steps", 1, "--w-albedo", 0)  # fmt: skip
    assert_clean_failure(r, "has no normals")


def test_unreadable_environment_maps_are_refused(pifu_data, tmp_path):
    mesh = pifu_data / "meshes" / "human_0000.h5"
    bad = tmp_path / "maps" / "broken.hdr"
    bad.parent.mkdir()
    bad.write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 8\n\x00")
    for hdri, needle in ((bad, "broken.hdr"), (bad.parent, "broken.hdr"), (tmp_path, "holds no environment maps")):
        out = tmp_path / "views.h5"
        r = invoke("render", mesh, "-o", out, "--size", 32, "--views", 2, "--lighting", "prt", "--hdri", hdri)
        assert r.exit_code == 1, r.output
        assert needle in r.stderr and "Traceback" not in r.output
        assert not out.exists()
