"""``--device`` resolution: ``auto`` takes the GPU when there is one."""

from __future__ import annotations

import re

from avatarkit.errors import OptionError, ResourceError


def resolve_device(spec: str = "auto") -> str:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a concrete torch device string.

    Raises:
        OptionError: an unknown device string.
        ResourceError: CUDA asked for but not available.
    """
    spec = spec.strip().lower()
    if spec not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", spec):
        raise OptionError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    import torch

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise ResourceError(f"--device {spec}: no CUDA GPU is available (use --device cpu or auto)")
    index = int(spec.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ResourceError(f"--device {spec}: only {torch.cuda.device_count()} CUDA devices")
    return spec
