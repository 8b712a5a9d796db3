"""Helpers shared by the tests (``tests`` is on pytest's ``pythonpath``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from avatarkit.cli.app import app
from avatarkit.io.hdf5 import write_artifact
from avatarkit.structures import Samples

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(script: str, out: Path, timeout: float, **settings: str) -> subprocess.CompletedProcess:
    """``bash examples/SCRIPT OUT`` as a user runs it, with ``settings`` as its environment
    variables and this Python's ``avatarkit`` first on PATH; it must succeed (the end of its
    stderr otherwise). Returns the finished process (``stdout`` to check)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **settings)
    done = subprocess.run(
        ["bash", str(EXAMPLES / script), str(out)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result, *needles):
    """Exit 1, one line on stderr naming the problem, no traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def bad_inputs(tmp_path):
    """Broken inputs of every kind, each with a word its error line must contain."""
    samples = write_artifact(tmp_path / "samples.h5", Samples(np.zeros((2, 3)), np.zeros(2), np.zeros(2)))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(samples.read_bytes()[:1500])
    junk = tmp_path / "junk.obj"
    junk.write_bytes(bytes(range(256)) * 8)
    short = tmp_path / "short.obj"
    short.write_text("v 1 2\nv 3 4\nf 1 2 3\n")
    empty = tmp_path / "empty.obj"
    empty.write_text("# nothing\n")
    nan = tmp_path / "nan.obj"
    nan.write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    past = tmp_path / "past.off"
    past.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n")
    return {
        "missing": (tmp_path / "absent.obj", "no such file"),
        "wrong kind": (samples, "'samples'"),
        "truncated": (truncated, "not a readable HDF5"),
        "junk": (junk, ""),
        "v 1 2 lines": (short, ""),
        "empty": (empty, ""),
        "nan": (nan, "NaN"),
        "faces past vertices": (past, ""),
    }


TINY_PIFU = (
    "--config", "small", "--stacks", 1, "--channels", 16, "--stem-channels", 8, "--mlp", "32,16",
    "--image-size", 64, "--points", 256, "--batch-size", 2, "--val-resolution", 32,
)  # fmt: skip
"""Options of ``train pifu`` for a network that trains a step in milliseconds."""
