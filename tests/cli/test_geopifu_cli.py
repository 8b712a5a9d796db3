"""train geopifu as a user runs it: both stages in one run, resumed, a stage-1 run starting a
stage-2 one, a mesh from reconstruct, and bad inputs refused in one line with nothing written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import GEOPIFU_TINY_GRID
from helpers import TINY_PIFU, assert_clean_failure, invoke

from avatarkit.methods import checkpoint

TINY_GEOPIFU = (
    *TINY_PIFU, "--grid", ",".join(map(str, GEOPIFU_TINY_GRID)), "--coarse-stacks", 1, "--coarse-channels", 16,
    "--coarse-stem-channels", 8, "--volume-channels", 2,
)  # fmt: skip
"""Options of ``train geopifu`` for networks that train a step in milliseconds."""


def _train(pifu_data, voxels, out, *extra):
    return invoke(
        "train", "geopifu", "--views", pifu_data / "views", "--voxels", voxels, "--samples", pifu_data / "samples",
        "-o", out, *TINY_GEOPIFU, *extra,
    )  # fmt: skip


def test_both_stages_train_resume_and_reconstruct(pifu_data, geopifu_data, tmp_path):
    run = tmp_path / "run"
    schedule = ("--val-every", 2, "--mesh-every", 4, "--checkpoint-every", 2)
    r = _train(pifu_data, geopifu_data, run, "--max-steps", 4, "--coarse-share", 0.5, *schedule, "--json", "-q")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["method"] == "geopifu" and summary["steps"] == 4 and summary["subjects"] == 3
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    assert "val/iou" in lines[0] and "val/chamfer_cm" not in lines[0]  # step 2: the volume scored, not best.pt
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["method"] == "geopifu" and state["config"]["grid"] == list(GEOPIFU_TINY_GRID)
    assert bool(state["model"]["coarse_trained"]) and bool(state["model"]["query_trained"])
    assert state["method_state"]["coarse_trained"] and len(state["method_state"]["data"]["voxels"]) == 1
    at_four = state["model"]

    r = invoke("train", "geopifu", "-o", run, "--resume", "--max-steps", 6, "-q")  # data paths from the run
    assert r.exit_code == 0, r.output
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["step"] == 6
    moved = [k for k in at_four if not torch.equal(at_four[k], state["model"][k])]
    assert any(k.startswith("mlp.") for k in moved)
    assert not any(k.startswith("coarse.") for k in moved)  # stage 2 keeps the volume network fixed

    out = tmp_path / "pred.h5"
    r = invoke("reconstruct", run, pifu_data / "views" / "human_0000.h5", "--view", 0, "-o", out, "--resolution", 32)
    assert r.exit_code == 0, r.output
    from avatarkit.io.meshfile import load_mesh

    mesh = load_mesh(out)
    assert len(mesh.faces) > 0 and np.isfinite(mesh.vertices).all()


def test_a_coarse_run_starts_a_query_run(pifu_data, geopifu_data, tmp_path):
    coarse = tmp_path / "coarse"
    r = _train(pifu_data, geopifu_data, coarse, "--stage", "coarse", "--max-steps", 2, "--val-every", 2, "-q")
    assert r.exit_code == 0, r.output
    state = checkpoint.load(coarse / "checkpoints" / "last.pt")
    assert bool(state["model"]["coarse_trained"]) and not bool(state["model"]["query_trained"])
    # a stage-1 run reconstructs from its volume
    r = invoke("reconstruct", coarse, pifu_data / "views" / "human_0001.h5", "--view", 0, "-o", tmp_path / "c.h5")
    assert r.exit_code == 0, r.output

    query = tmp_path / "query"
    r = _train(pifu_data, geopifu_data, query, "--stage", "query", "--coarse-run", coarse, "--max-steps", 2, "-q")
    assert r.exit_code == 0, r.output
    start = {k: v for k, v in state["model"].items() if k.startswith("coarse.")}
    after = checkpoint.load(query / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(v, after[k]) for k, v in start.items())  # the stage-1 volume network, kept fixed
    assert bool(after["query_trained"])

    # or the stage-1 run itself goes on with stage 2
    r = invoke("train", "geopifu", "-o", coarse, "--resume", "--stage", "query", "--max-steps", 4, "-q")
    assert r.exit_code == 0, r.output
    resumed = checkpoint.load(coarse / "checkpoints" / "last.pt")
    assert resumed["step"] == 4 and bool(resumed["model"]["query_trained"])
    assert all(torch.equal(v, resumed["model"][k]) for k, v in start.items())


def _refused(r, out, *needles):
    assert_clean_failure(r, *needles)
    assert not out.exists()  # nothing written


def test_bad_inputs_are_one_line_and_write_nothing(pifu_data, geopifu_data, tmp_path):
    out = tmp_path / "run"
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for f in geopifu_data.glob("*.h5"):
        shutil.copy(f, renamed / f.name.replace("human", "person"))
    _refused(_train(pifu_data, renamed, out, "--max-steps", 1), out, "no stem is shared", "voxels")

    _refused(_train(pifu_data, geopifu_data, out, "--max-steps", 1, "--grid", "32,48,32"), out, "grid", "16 x 32 x 16")

    _refused(_train(pifu_data, geopifu_data, out, "--stage", "query", "--max-steps", 1), out, "--coarse-run")

    other = tmp_path / "pifu_run"
    checkpoint.save(other / "checkpoints" / "last.pt", {"method": "pifu", "config": {}, "model": {}})
    r = _train(pifu_data, geopifu_data, out, "--stage", "query", "--coarse-run", other, "--max-steps", 1)
    _refused(r, out, "geopifu run", "pifu run")


@pytest.mark.timeout(700)  # two processes: ~30 s on 2 shared cores
def test_two_processes_train_both_stages_as_one_with_twice_the_batch(pifu_data, geopifu_data, tmp_path):
    """torchrun (gloo, CPU) through both stages: each step leaves one network without gradients,
    which DDP is told (the method's unused_parameters); the run equals one process with both
    ranks' items in its batch."""
    import os
    import subprocess
    import sys

    def args(out, batch):
        return [
            "train", "geopifu", "--views", pifu_data / "views", "--voxels", geopifu_data, "--samples",
            pifu_data / "samples", "-o", out, *TINY_GEOPIFU, "--max-steps", 4, "--coarse-share", 0.5,
            "--val-every", 100, "--mesh-every", 0, "--batch-size", batch, "-q",
        ]  # fmt: skip

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, "-m", "avatarkit", *map(str, args(tmp_path / "one", 2))],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ddp = subprocess.run(
        [*torchrun, "-m", "avatarkit", *map(str, args(tmp_path / "two", 1))],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = checkpoint.load(tmp_path / "one" / "checkpoints" / "last.pt")["model"]
    two = checkpoint.load(tmp_path / "two" / "checkpoints" / "last.pt")["model"]
    for part in ("coarse.", "encoder.", "mlp."):
        keys = [k for k in one if k.startswith(part)]
        apart = sum(float((one[k].float() - two[k].float()).abs().sum()) for k in keys)
        size = sum(float(one[k].float().abs().sum()) for k in keys)
        assert apart < 1e-3 * size, (part, apart, size)
