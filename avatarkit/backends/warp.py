"""Import NVIDIA warp quietly and map avatarkit devices to warp's."""

from __future__ import annotations

import functools


@functools.cache
def import_warp():
    """Return the initialised ``warp`` module, with its banner and CUDA warnings silenced.

    warp prints its banner to stdout (which would break ``--json``) and warns about a
    missing CUDA driver on every CPU-only machine; only its errors are shown.
    """
    import warp

    warp.config.log_level = warp.LOG_ERROR
    warp.init()
    return warp


def warp_device(device: str) -> str:
    """avatarkit/torch device string (``cpu``, ``cuda``, ``cuda:1``) to warp's (``cpu``, ``cuda:0``, ...)."""
    return "cuda:0" if device == "cuda" else device
