"""What the machine has: ``--device`` (``auto`` takes the GPU when there is one) and
``--max-memory`` (a job that would need more is refused before it allocates).

A verb asks the engine it computes with: torch for networks and shading, warp for the
geometry kernels (distances, voxels, ray casting). A warp-only verb then never imports torch,
which alone takes seconds to import.
"""

from __future__ import annotations

import math
import os
import re

from avatarkit.errors import OptionError, ResourceError

ENGINES = ("torch", "warp")


def resolve_device(spec: str = "auto", engine: str = "torch") -> str:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a concrete device string (``cpu``,
    ``cuda``, ``cuda:N``), asking ``engine`` (``torch`` or ``warp``) whether CUDA is there.

    Raises:
        OptionError: an unknown device string.
        ResourceError: CUDA asked for but not available.
    """
    spec = spec.strip().lower()
    if spec not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", spec):
        raise OptionError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if engine not in ENGINES:
        raise OptionError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if spec == "cpu":
        return "cpu"
    count = _cuda_devices(engine)
    if spec == "auto":
        return "cuda" if count else "cpu"
    if not count:
        raise ResourceError(f"--device {spec}: no CUDA GPU is available (use --device cpu or auto)")
    index = int(spec.partition(":")[2] or 0)
    if index >= count:
        raise ResourceError(f"--device {spec}: only {count} CUDA devices")
    return spec


def _cuda_devices(engine: str) -> int:
    if engine == "warp":
        from avatarkit.backends.warp import import_warp

        return int(import_warp().get_cuda_device_count())
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def flush_denormals(device) -> None:
    """On the CPU, set the processor's flush-to-zero mode (``torch.set_flush_denormal``):
    denormal floats (float32 below 1.2e-38, float64 below 2.2e-308) become zero, in torch and
    in numpy alike, for the rest of the process.

    Networks with smooth activations make them: Softplus with beta 100 (IDR's, Phorhum's f)
    gives exp(-100 x) for negative x, and x86 CPUs take a slow path for every arithmetic on a
    denormal (``train phorhum --config small`` ran half as many steps per second without
    this). Called by the trainer and by ``load_trained`` (every verb that runs a trained
    network); values this small change no result we compute. A GPU has its own flags."""
    import torch

    if torch.device(device).type == "cpu":
        torch.set_flush_denormal(True)


def refuse_over_memory(need_bytes: int, limit_bytes: int, what: str, hint: str) -> None:
    """Raise :class:`ResourceError` when a job's estimated peak memory ``need_bytes`` exceeds
    ``limit_bytes`` (``--max-memory``): "``what`` needs about N GiB, more than the M GiB
    allowed (--max-memory); ``hint``". Verbs that allocate by their options (``voxelize``,
    ``render``) estimate first and call this, rather than dying of a MemoryError."""
    if need_bytes > limit_bytes:
        raise ResourceError(
            f"{what} needs about {_gib(need_bytes)} GiB, more than the {_gib(limit_bytes)} GiB allowed "
            f"(--max-memory); {hint}"
        )


def memory_limit(max_memory_gib: float | None = None) -> int:
    """Bytes a job may use: ``max_memory_gib`` GiB (``--max-memory``), default half the RAM.
    Raises :class:`OptionError` unless the value is positive."""
    if max_memory_gib is None:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    if not max_memory_gib > 0 or not math.isfinite(max_memory_gib):
        raise OptionError(f"--max-memory must be a positive number of GiB, got {max_memory_gib}")
    return int(max_memory_gib * 2**30)


def _gib(n_bytes: int) -> str:
    gib = n_bytes / 2**30
    return f"{gib:.1f}" if gib >= 0.1 else f"{gib:.2g}"
