"""Shared by the benchmarks: timing, and the Anny human they all measure on."""

from __future__ import annotations

import functools
import os
import time


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
