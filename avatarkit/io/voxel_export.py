"""Voxel grids for other tools: NumPy ``.npy`` and binvox.

binvox (Patrick Min's format, https://www.patrickmin.com/binvox/binvox.html): an ASCII
header ``#binvox 1``, ``dim D D D``, ``translate tx ty tz``, ``scale s``, ``data``, then
run-length pairs (value, count <= 255) over the voxels, y fastest, then z, then x. The
spec puts the centre of voxel (i, j, k) at ``translate + scale * (index + 0.5) / D``, so
we write ``translate`` = our ``origin`` (the grid's corner) and ``scale`` = ``D * pitch``:
the same centres as the ``.h5``'s ``origin + (index + 0.5) * pitch``.

binvox grids are cubes (binvox writes nothing else, and readers such as trimesh and
binvox-rw-py assume ``D x D x D``), so a non-cubic grid is padded with empty voxels to
its longest side, at the high end of each shorter axis: voxel (i, j, k) of the .binvox
is voxel (i, j, k) of the .h5, whose (X, Y, Z) grid is the .binvox's ``[:X, :Y, :Z]``.

trimesh's loader (``trimesh.exchange.binvox``, up to at least 5.2) departs from the spec:
it puts voxel i at ``translate + i * scale / (D - 1)``, on a lattice stretched by
D / (D - 1) that is up to half a voxel off ours (and off every binvox file's). Its voxel
indices are right; take world positions from its header with the spec's formula
(``docs/sampling.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarkit.errors import InputError
from avatarkit.structures import Voxels

EXPORTS = ("npy", "binvox")

_CHUNK_VOXELS = 1 << 24  # the binvox writer pads and encodes this many voxels at a time


def export_path(h5_path: Path, fmt: str) -> Path:
    """Where ``--export FMT`` puts the file for an output ``h5_path``: same folder and stem."""
    return Path(h5_path).with_suffix(f".{fmt}")


def write_npy(path: Path, voxels: Voxels) -> None:
    """(X, Y, Z) bool array, ``occupancy[i, j, k]`` = x, y, z index (origin and pitch stay in the .h5)."""
    with open(path, "wb") as f:
        np.save(f, voxels.occupancy.astype(bool))


def binvox_header(voxels: Voxels) -> tuple[int, np.ndarray, float]:
    """The cube side ``D``, ``translate`` and ``scale`` that :func:`write_binvox` writes for ``voxels``."""
    side = int(max(voxels.occupancy.shape))
    return side, np.asarray(voxels.origin, dtype=np.float64), float(voxels.pitch) * side


def write_binvox(path: Path, voxels: Voxels) -> None:
    """A ``D x D x D`` binvox file, D the grid's longest side (see the module docstring)."""
    occ = np.asarray(voxels.occupancy, dtype=bool)
    side, translate, scale = binvox_header(voxels)
    values, lengths = _binvox_runs(occ, side)
    reps = -(-lengths // 255)  # runs longer than 255 are split
    run_values = np.repeat(values, reps)
    run_lengths = np.full(int(reps.sum()), 255, dtype=np.int64)
    run_lengths[np.cumsum(reps) - 1] = lengths - 255 * (reps - 1)
    header = (  # the five lines in the order binvox writes them (binvox-rw-py reads them by position)
        "#binvox 1\n"
        f"dim {side} {side} {side}\n"
        f"translate {' '.join(repr(float(t)) for t in translate)}\n"
        f"scale {scale!r}\n"
        "data\n"
    )
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(np.column_stack([run_values, run_lengths]).astype(np.uint8).tobytes())


def _binvox_runs(occ: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(value, length) runs of ``occ`` padded with False to ``side``^3, in binvox order (x
    slowest, then z, then y), encoded a few x slabs at a time so the cube is never held whole."""
    nx, ny, nz = occ.shape
    step = max(1, _CHUNK_VOXELS // (side * side))
    values: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    for x0 in range(0, min(nx, side), step):
        part = occ[x0 : x0 + step]
        block = np.zeros((len(part), side, side), dtype=bool)  # x, z, y
        block[:, :nz, :ny] = part.transpose(0, 2, 1)
        flat = block.reshape(-1)
        starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1])
        values.append(flat[starts])
        lengths.append(np.diff(np.concatenate([starts, [flat.size]])))
    if nx < side:  # empty x slabs of the padding
        values.append(np.zeros(1, dtype=bool))
        lengths.append(np.array([(side - nx) * side * side]))
    value = np.concatenate(values)
    length = np.concatenate(lengths).astype(np.int64)
    # merge runs that continue across chunk boundaries
    keep = np.concatenate([[True], value[1:] != value[:-1]])
    group = np.cumsum(keep) - 1
    return value[keep].astype(np.uint8), np.bincount(group, weights=length).astype(np.int64)


def read_binvox(path: str | Path) -> Voxels:
    """Read a binvox file written by :func:`write_binvox` or by binvox itself (any dims;
    ``pitch`` = ``scale`` / the largest dim, ``origin`` = ``translate``, as the spec reads them)."""
    path = Path(path)
    with open(path, "rb") as f:
        if f.readline().strip() != b"#binvox 1":
            raise InputError("not a binvox file", path)
        fields: dict[str, list[str]] = {}
        while True:
            line = f.readline()
            if not line:
                raise InputError("binvox header has no 'data' line", path)
            words = line.decode("ascii").split()
            if words and words[0] == "data":
                break
            if words:
                fields[words[0]] = words[1:]
        pairs = np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, 2)
    dims = tuple(int(x) for x in fields["dim"])
    flat = np.repeat(pairs[:, 0].astype(bool), pairs[:, 1])
    if flat.size != np.prod(dims):
        raise InputError(f"binvox data has {flat.size} voxels for dims {dims}", path)
    occ = flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1)
    origin = np.array([float(x) for x in fields.get("translate", ["0", "0", "0"])])
    pitch = float(fields.get("scale", ["1"])[0]) / max(dims)
    return Voxels(np.ascontiguousarray(occ), origin, pitch)


WRITERS = {"npy": write_npy, "binvox": write_binvox}
