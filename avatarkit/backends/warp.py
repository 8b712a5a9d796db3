"""Import NVIDIA warp quietly and map avatarkit devices to warp's."""

from __future__ import annotations

import contextlib
import functools
import itertools

import numpy as np


@functools.cache
def import_warp():
    """Return the initialised ``warp`` module, with its banner and CUDA warnings silenced.

    warp prints its banner to stdout (which would break ``--json``) and warns about a
    missing CUDA driver on every CPU-only machine; only its errors are shown.
    """
    import warp

    warp.config.log_level = warp.LOG_ERROR
    with _native_stderr_without("Could not find or load the NVIDIA CUDA driver"):
        warp.init()
    return warp


@contextlib.contextmanager
def _native_stderr_without(noise: str):
    """Drop lines containing ``noise`` that native code writes to stderr (file descriptor 2)
    in this block; pass every other line on. warp's CUDA probe prints its driver warning
    from C++, out of reach of its Python log level."""
    import os
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(True) if noise not in line]
            sys.stderr.write("".join(kept))


def warp_device(device: str) -> str:
    """avatarkit/torch device string (``cpu``, ``cuda``, ``cuda:1``) to warp's (``cpu``, ``cuda:0``, ...)."""
    return "cuda:0" if device == "cuda" else device


def cpu_threads() -> int:
    """CPU threads warp launches may use: ``AVATARKIT_THREADS``, else the cores this process may run on."""
    import os

    value = os.environ.get("AVATARKIT_THREADS")
    if value:
        return max(1, int(value))
    return max(1, len(os.sched_getaffinity(0)))


def launch(
    kernel,
    dim: int,
    inputs: list,
    outputs: list,
    device: str,
    threads: int | None = None,
    split: tuple[int, ...] = (),
    offset: int | None = None,
) -> None:
    """``wp.launch`` over ``dim`` threads; on the CPU, split into contiguous chunks run in parallel.

    warp runs a CPU launch on one core; its kernels release the GIL, so Python threads
    each launching one chunk use every core. Every output, and the inputs at the positions
    in ``split``, are arrays with one entry per thread, sliced per chunk; other inputs are
    passed whole. A kernel that needs its global thread index takes it as an ``int`` input
    at position ``offset``: each chunk gets that value plus the chunk's first index.
    """
    wp = import_warp()
    if dim == 0:
        return
    threads = cpu_threads() if threads is None else threads
    if not str(device).startswith("cpu") or threads <= 1 or dim < 4096:
        wp.launch(kernel, dim=dim, inputs=inputs, outputs=outputs, device=device)
        return
    kernel.module.load(wp.get_device(device))  # compile once, before the threads race to

    def chunk_inputs(a, b):
        args = [x[a:b] if i in split else x for i, x in enumerate(inputs)]
        if offset is not None:
            args[offset] = int(args[offset]) + int(a)
        return args

    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, dim, threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        futures = [
            pool.submit(
                wp.launch,
                kernel,
                dim=int(b - a),
                inputs=chunk_inputs(a, b),
                outputs=[x[a:b] if x.shape[0] else x for x in outputs],  # empty: an absent buffer
                device=device,
            )
            for a, b in itertools.pairwise(bounds)
            if b > a
        ]
        for future in futures:
            future.result()
