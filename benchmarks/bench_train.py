"""Training throughput of train pifu: samples (subjects with their view and points) and
steps per second, on this machine's CPU, for the small config the demo uses and for the
paper's default network; data from four Anny people (36 views of 256 x 256, PRT lighting).

Timed over the steps after a warm-up (the first steps build caches and allocators);
validation and checkpoints are kept out of the window. With a GPU (``--device cuda``
through the environment variable AVATARKIT_BENCH_DEVICE) the same code measures the GPU.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from common import machine, pifu_data


class _Clock:
    """A trainer reporter that times the steps after ``warmup``."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.t0, self.t1, self.steps = warmup, 0.0, 0.0, 0

    def start(self, total, done):
        pass

    def update(self, step, logs):
        if step == self.warmup:
            self.t0 = time.perf_counter()
        elif step > self.warmup:
            self.steps = step - self.warmup
            self.t1 = time.perf_counter()

    def note(self, message):
        pass

    def close(self):
        pass

    def rate(self) -> float:
        return self.steps / (self.t1 - self.t0)


def _measure(data: Path, config, device: str, steps: int, warmup: int) -> dict:
    from avatarkit.methods.checkpoint import RunFolder
    from avatarkit.methods.configs import replace
    from avatarkit.methods.pifu.train import PifuMethod
    from avatarkit.methods.trainer import train

    config = replace(config, max_steps=warmup + steps, val_every=10**6, mesh_every=0, checkpoint_every=10**6,
                     val_fraction=0.0)  # fmt: skip
    clock = _Clock(warmup)
    with tempfile.TemporaryDirectory() as out:
        train(
            PifuMethod(config, views=[data / "views"], samples=[data / "samples"]),
            RunFolder(Path(out)),
            device,
            reporter=clock,
        )
    it_s = clock.rate()
    return {
        "batch_size": config.batch_size,
        "image_size": config.image_size,
        "points": config.points,
        "it_per_s": round(it_s, 3),
        "samples_per_s": round(it_s * config.batch_size, 3),
        "points_per_s": round(it_s * config.batch_size * config.points),
    }


def run() -> dict:
    from avatarkit.methods.pifu.config import PRESETS

    device = os.environ.get("AVATARKIT_BENCH_DEVICE", "cpu")
    data = pifu_data()
    return {
        **machine(),
        "device": device,
        "small": _measure(data, PRESETS["small"], device, steps=40, warmup=5),
        "default": _measure(data, PRESETS["default"], device, steps=3, warmup=1),
    }
