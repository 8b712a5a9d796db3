"""Shared by the benchmarks: timing, and the Anny human they all measure on."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best(fn, repeat: int = 3) -> float:
    """Fastest of ``repeat`` timed calls, seconds (the first call warms caches up)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@functools.cache
def anny_human():
    """An Anny human from ``synth`` (seed 0, random pose, clothes), about 27k faces."""
    from avatarkit.synth.generate import HumanGenerator, SynthConfig

    return HumanGenerator(SynthConfig(texture="clothes")).subject(0)


def machine() -> dict:
    return {"cpu_threads": len(os.sched_getaffinity(0))}


@functools.cache
def pifu_data(people: int = 4, views: int = 36, size: int = 256) -> Path:
    """PIFu training data of ``people`` Anny humans (as the demo makes it) in a temporary
    folder: meshes/, views/ (PIFu's rig, PRT lighting) and samples/ (the pifu preset's pool)."""
    import tempfile

    import numpy as np

    from avatarkit.geometry.sample_sdf import preset_config, sample_sdf
    from avatarkit.io.hdf5 import Provenance, write_artifact
    from avatarkit.render.render import RenderConfig, render
    from avatarkit.render.rigs import pifu_rig
    from avatarkit.synth.generate import HumanGenerator, SynthConfig

    root = Path(tempfile.mkdtemp(prefix="avatarkit_bench_pifu_"))
    generator = HumanGenerator(SynthConfig(texture="clothes"))
    for i in range(people):
        mesh = generator.subject(i)
        stem = f"human_{i:04d}"
        mesh_path = write_artifact(root / "meshes" / f"{stem}.h5", mesh)
        cameras = pifu_rig(mesh.vertices, size, np.arange(views) * 360.0 / views)
        write_artifact(root / "views" / f"{stem}.h5", render(mesh, cameras, RenderConfig(lighting="prt")))
        samples = sample_sdf(mesh, preset_config("pifu"), seed=i)
        write_artifact(root / "samples" / f"{stem}.h5", samples, Provenance("bench", (str(mesh_path),)))
    return root


def train_pifu(data: Path, out: Path, config, device: str = "cpu"):
    """Train PIFu with ``config`` on ``data`` into ``out``; returns the TrainResult and seconds."""
    from avatarkit.methods.checkpoint import RunFolder
    from avatarkit.methods.pifu.train import PifuMethod
    from avatarkit.methods.trainer import train

    method = PifuMethod(config, views=[data / "views"], samples=[data / "samples"])
    start = time.perf_counter()
    result = train(method, RunFolder(out), device, overwrite=True)
    return result, time.perf_counter() - start


def together(jobs: dict[str, list], seconds: dict) -> dict[str, float]:
    """Run commands at the same time, each on one thread (OMP_NUM_THREADS=1), so the
    machine's other load falls on all alike; their wall seconds go to ``seconds``, and the CPU
    seconds each used (user + system, from its own resource usage) are returned."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    cpu, failed = {}, []
    with contextlib.ExitStack() as stack:  # logs in files, never a pipe: a full one would stall a job
        logs = {key: stack.enter_context(tempfile.TemporaryFile()) for key in jobs}
        procs = {
            key: subprocess.Popen(list(map(str, a)), env=env, stdout=subprocess.DEVNULL, stderr=logs[key])
            for key, a in jobs.items()
        }
        for key, proc in procs.items():
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            seconds[key] = round(time.perf_counter() - start, 1)
            cpu[key] = round(usage.ru_utime + usage.ru_stime, 1)
            if proc.returncode != 0:
                logs[key].seek(0)
                err = logs[key].read().decode(errors="replace").strip()[-2000:]
                failed.append(f"{' '.join(map(str, jobs[key]))} failed: {err}")
    if failed:
        raise RuntimeError("\n".join(failed))
    return cpu


AVATARKIT = [sys.executable, "-m", "avatarkit"]
"""The command line, run as a process (as a user would)."""


def setting(name: str, default: str) -> str:
    """A benchmark's size or option from the environment."""
    return os.environ.get(name, default)


def avatarkit(*args, json_out: bool = False):
    """Run one avatarkit command; its --json output parsed with ``json_out``."""
    done = subprocess.run([*AVATARKIT, *map(str, args)], capture_output=True, text=True, check=False, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"avatarkit {' '.join(map(str, args))} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout) if json_out else done.stdout


def timed(seconds: dict, key: str, *args, **kwargs):
    """:func:`avatarkit`, its wall seconds added to ``seconds[key]``."""
    start = time.perf_counter()
    out = avatarkit(*args, **kwargs)
    seconds[key] = round(seconds.get(key, 0.0) + time.perf_counter() - start, 1)
    return out


def metrics(run: Path) -> list[dict]:
    """A training run's metrics.jsonl rows."""
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def flags(name: str, files: list[Path]) -> list:
    """``name f`` for each file (repeated options)."""
    return [x for f in files for x in (name, f)]
