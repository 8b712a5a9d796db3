"""train pifu as a researcher runs it: a run folder that resumes exactly, refuses to be
overwritten, stops cleanly on Ctrl-C, and trains the same on two processes as on one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import TINY_PIFU, assert_clean_failure, invoke

from avatarkit.methods import checkpoint


def _train(data, out, *extra):
    return invoke(
        "train", "pifu", "--views", data / "views", "--samples", data / "samples", "-o", out, *TINY_PIFU, *extra
    )


def _weights(path):
    return checkpoint.load(path)["model"]


def _same(a, b, atol=0.0):
    return all(torch.allclose(a[k], b[k], atol=atol, rtol=0) for k in a)


def test_a_run_folder_resumes_exactly(pifu_data, tmp_path):
    schedule = ("--val-every", 2, "--mesh-every", 4, "--lr-decay-at", "0.9")
    r = _train(pifu_data, tmp_path / "run", "--max-steps", 4, *schedule, "--json", "-q")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["steps"] == 4 and not summary["interrupted"]
    assert (summary["subjects"], summary["train"], summary["val"], summary["val_with_meshes"]) == (3, 2, 1, 1)
    assert {"val/iou", "val/precision", "val/recall", "val/mse", "val/chamfer_cm", "val/p2s_cm"} <= set(
        summary["metrics"]
    )
    run = tmp_path / "run"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    assert (run / "checkpoints" / "best.pt").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "pifu" and config["config"]["channels"] == 16 and config["split"]["val"]
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    at_four = state["model"]
    assert state["step"] == 4 and state["config"]["image_size"] == 64 and state["method_state"]["camera"]

    # two more steps on top, against six in one go: the same weights (the learning rate follows
    # the schedule of the longer run: its decay, at 0.9 x 6 steps, comes after both)
    r = invoke("train", "pifu", "-o", run, "--resume", "--max-steps", 6, "-q")
    assert r.exit_code == 0, r.output
    r = _train(pifu_data, tmp_path / "straight", "--max-steps", 6, *schedule, "-q")
    assert r.exit_code == 0, r.output
    resumed, straight = (
        _weights(run / "checkpoints" / "last.pt"),
        _weights(tmp_path / "straight" / "checkpoints" / "last.pt"),
    )
    assert _same(resumed, straight, atol=1e-6)
    assert not _same(resumed, at_four)  # it did move on


def test_an_existing_run_is_never_overwritten_silently(pifu_data, tmp_path):
    run = tmp_path / "run"
    assert _train(pifu_data, run, "--max-steps", 1, "-q").exit_code == 0
    before = (run / "checkpoints" / "last.pt").read_bytes()
    r = _train(pifu_data, run, "--max-steps", 1, "-q")
    assert_clean_failure(r, str(run), "already holds a run", "--resume")
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    (run / "notes.txt").write_text("mine")
    r = _train(pifu_data, run, "--max-steps", 2, "--overwrite", "-q", "--seed", 5, "--val-every", 2)
    assert r.exit_code == 0, r.output
    assert checkpoint.load(run / "checkpoints" / "last.pt")["config"]["seed"] == 5
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # the old run's lines are gone
    assert (run / "notes.txt").read_text() == "mine" and not (run / ".replaced").exists()


def test_a_resumed_run_follows_its_new_learning_rate_but_keeps_its_optimiser(pifu_data, tmp_path):
    run = tmp_path / "run"
    assert _train(pifu_data, run, "--max-steps", 2, "--lr-decay-at", 1.0, "-q").exit_code == 0
    r = invoke("train", "pifu", "-o", run, "--resume", "--max-steps", 3, "--lr", 0.02, "-q")
    assert r.exit_code == 0, r.output
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["config"]["lr"] == 0.02 and state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.02)
    r = invoke("train", "pifu", "-o", run, "--resume", "--max-steps", 4, "--optimizer", "rmsprop")
    assert_clean_failure(r, "--optimizer adam", "cannot change")
    r = invoke("train", "pifu", "-o", run, "--resume", "--max-steps", 4, "--val-fraction", 0.5)
    assert_clean_failure(r, "--val-fraction applies to new runs")


def test_views_without_targets_still_validate_with_meshes(pifu_data, tmp_path):
    """Older views files (no /cameras/target): the rig's focus is the depth origin, in training
    and in the validation mesh alike."""
    from avatarkit.io.hdf5 import read_artifact, write_artifact

    for path in (pifu_data / "views").iterdir():
        views = read_artifact(path, "views")
        views.target = None
        write_artifact(tmp_path / "views" / path.name, views)
    r = invoke("train", "pifu", "--views", tmp_path / "views", "--samples", pifu_data / "samples", "-o",
               tmp_path / "run", *TINY_PIFU, "--max-steps", 2, "--json", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "val/p2s_cm" in json.loads(r.stdout)["metrics"]


def test_bad_inputs_name_the_problem(pifu_data, tmp_path):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "nobody.h5").write_bytes((pifu_data / "samples" / "human_0000.h5").read_bytes())
    r = invoke("train", "pifu", "--views", pifu_data / "views", "--samples", tmp_path / "samples", "-o", tmp_path / "r")
    assert_clean_failure(r, "no stem is shared by the views and samples files", "nobody")
    r = invoke(
        "train", "pifu", "--views", tmp_path / "absent", "--samples", pifu_data / "samples", "-o", tmp_path / "r"
    )
    assert_clean_failure(r, "absent", "no such file or folder")
    r = invoke(
        "train", "pifu", "--views", pifu_data / "samples", "--samples", pifu_data / "samples", "-o", tmp_path / "r"
    )
    assert_clean_failure(r, "'samples'", "expected kind 'views'")
    assert_clean_failure(invoke("train", "pifu", "-o", tmp_path / "nothing", "--resume"), "no checkpoints/last.pt")
    assert_clean_failure(_train(pifu_data, tmp_path / "r", "--image-size", 30), "multiple of 4")
    assert_clean_failure(
        _train(pifu_data, tmp_path / "r", "--config", "huge"), "--config must be one of default, small"
    )
    assert not (tmp_path / "r").exists()


def test_worker_processes_load_the_same_items(pifu_data, tmp_path):
    """HDF5 files opened lazily in each DataLoader worker; items keyed, so the same run."""
    for workers in (0, 2):
        r = _train(
            pifu_data, tmp_path / f"w{workers}", "--max-steps", 3, "--workers", workers, "--val-fraction", 0, "-q"
        )
        assert r.exit_code == 0, r.output
    assert _same(
        _weights(tmp_path / "w0" / "checkpoints" / "last.pt"), _weights(tmp_path / "w2" / "checkpoints" / "last.pt")
    )


def test_a_bad_background_image_is_one_line_even_from_a_worker(pifu_data, tmp_path):
    (tmp_path / "rooms").mkdir()
    (tmp_path / "rooms" / "broken.png").write_bytes(b"not a png")
    r = _train(pifu_data, tmp_path / "run", "--max-steps", 2, "--workers", 1, "--background-dir", tmp_path / "rooms")
    assert_clean_failure(r, "broken.png", "unreadable background image")
    assert not (tmp_path / "run").exists()  # a run that never saved a checkpoint leaves nothing


def _env():
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("RANK", None)
    return env


def _args(data, out, *extra):
    return [
        "train", "pifu", "--views", str(data / "views"), "--samples", str(data / "samples"), "-o", str(out),
        *map(str, TINY_PIFU), "--device", "cpu", *map(str, extra),
    ]  # fmt: skip


@pytest.mark.timeout(300)  # a child that hangs silently would block the loop over its stderr
@pytest.mark.parametrize(
    ("how", "workers"),
    [("ctrl-c", 1), ("sigterm", 0)],  # Ctrl-C reaches the whole process group, workers too
)
def test_ctrl_c_saves_a_resumable_checkpoint(pifu_data, tmp_path, how, workers):
    run = tmp_path / "run"
    args = _args(pifu_data, run, "--max-steps", 100_000, "--log-every", 1, "--val-every", 100_000, "--workers", workers)
    proc = subprocess.Popen(
        [sys.executable, "-m", "avatarkit", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    deadline = time.time() + 120
    for line in proc.stderr:
        if line.startswith("step 3/"):
            if how == "ctrl-c":
                os.killpg(proc.pid, signal.SIGINT)
            else:
                proc.send_signal(signal.SIGTERM)
            break
        assert time.time() < deadline, "training never reached step 3"
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    assert "Traceback" not in rest and "interrupted at step" in rest and "--resume" in rest
    step = checkpoint.load(run / "checkpoints" / "last.pt")["step"]
    assert f"interrupted at step {step}:" in rest and step >= 3
    r = invoke("train", "pifu", "-o", run, "--resume", "--max-steps", step + 1, "-q")
    assert r.exit_code == 0, r.output
    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] == step + 1


@pytest.mark.timeout(700)
def test_two_processes_train_as_one_with_twice_the_batch(pifu_data, tmp_path):
    """torchrun with the gloo backend on the CPU: DDP averages the two ranks' gradients, so the
    run equals one process with both ranks' items in its batch."""
    common = ("--max-steps", 3, "--val-every", 100, "--mesh-every", 0)
    single = subprocess.run(
        [sys.executable, "-m", "avatarkit", *_args(pifu_data, tmp_path / "one", *common, "--batch-size", 2, "-q")],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ddp = subprocess.run(
        [*torchrun, "-m", "avatarkit", *_args(pifu_data, tmp_path / "two", *common, "--batch-size", 1, "-q")],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = (
        _weights(tmp_path / "one" / "checkpoints" / "last.pt"),
        _weights(tmp_path / "two" / "checkpoints" / "last.pt"),
    )
    from avatarkit.methods.configs import from_dict
    from avatarkit.methods.pifu.config import PifuConfig
    from avatarkit.methods.pifu.model import PifuNet

    torch.manual_seed(0)
    start = PifuNet(from_dict(PifuConfig, checkpoint.load(tmp_path / "one" / "checkpoints" / "last.pt")["config"]))
    start = start.state_dict()
    moved = sum(float((one[k] - start[k]).abs().sum()) for k in one)
    apart = sum(float((one[k] - two[k]).abs().sum()) for k in one)
    assert moved > 0 and apart < 0.01 * moved, (apart, moved)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["config"]["batch_size"] == 1


@pytest.mark.slow
def test_small_config_learns_people(pifu_data, tmp_path):
    """Three minutes of the small config on three people: the held-out person's points are
    told apart far better than by the network it started from."""

    def metrics(steps):
        r = invoke("train", "pifu", "--views", pifu_data / "views", "--samples", pifu_data / "samples",
                   "-o", tmp_path / str(steps), "--config", "small", "--image-size", 64, "--max-steps", steps,
                   "--val-every", steps, "--mesh-every", 0, "--json", "-q")  # fmt: skip
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["metrics"]

    start, trained = metrics(1), metrics(400)
    assert trained["val/mse"] < 0.8 * start["val/mse"], (start, trained)
    assert trained["val/iou"] > start["val/iou"] + 0.1 and trained["val/p2s_cm"] < 5.0


class _Clock:
    """The trainer's clock, half a second later at each reading (four a step): a time budget
    ends after the same steps however fast or busy the machine is."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.5
        return self.now

    def time(self) -> float:
        return time.time()


def test_a_time_budget_ends_the_run_on_time_and_decays_the_rate_by_time(pifu_data, tmp_path, monkeypatch):
    """--max-time ends a run of many steps like its last step (validated, saved), and the
    learning rate decays at its fractions of the budget when time runs ahead of the steps."""
    monkeypatch.setattr("avatarkit.methods.trainer.time", _Clock())
    run = tmp_path / "run"
    # a budget of a few steps of the trainer's clock: the rate set before step 2 is the decayed one
    r = _train(pifu_data, run, "--max-steps", 100_000, "--max-time", 5, "--lr-decay-at", "0.01", "--lr-decay", 0.5,
               "--val-every", 100_000, "--mesh-every", 0, "--json", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["time_up"] and 1 < summary["steps"] < 100_000 and "val/iou" in summary["metrics"]
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["step"] == summary["steps"] and state["train_seconds"] >= 5
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.5)
    r = invoke("train", "pifu", "-o", run, "--resume", "--max-time", 7, "--json", "-q")  # counts the time already spent
    assert r.exit_code == 0 and json.loads(r.stdout)["steps"] > summary["steps"]
    assert checkpoint.load(run / "checkpoints" / "last.pt")["train_seconds"] >= 7
