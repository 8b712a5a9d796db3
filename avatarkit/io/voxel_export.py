"""Voxel grids for other tools: NumPy ``.npy`` and binvox.

binvox (Patrick Min's format, read by ``binvox_rw`` and most voxel tools): an ASCII
header ``#binvox 1``, ``dim X Y Z``, ``translate`` (the grid's corner), ``scale`` (the
length of its longest side), ``data``, then run-length pairs (value, count <= 255) over
voxels ordered with y fastest, then z, then x. Readers commonly assume cubic grids;
non-cubic grids are written faithfully with the dims in x, y, z order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarkit.errors import InputError
from avatarkit.structures import Voxels

EXPORTS = ("npy", "binvox")


def export_path(h5_path: Path, fmt: str) -> Path:
    """Where ``--export FMT`` puts the file for an output ``h5_path``: same folder and stem."""
    return Path(h5_path).with_suffix(f".{fmt}")


def write_npy(path: Path, voxels: Voxels) -> None:
    """(X, Y, Z) bool array, ``occupancy[i, j, k]`` = x, y, z index (origin and pitch stay in the .h5)."""
    with open(path, "wb") as f:
        np.save(f, voxels.occupancy.astype(bool))


def write_binvox(path: Path, voxels: Voxels) -> None:
    occ = voxels.occupancy.astype(bool)
    flat = occ.transpose(0, 2, 1).reshape(-1)  # y fastest, then z, then x
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(flat)]]))
    values = flat[starts].astype(np.uint8)
    reps = np.ceil(lengths / 255).astype(np.int64)  # runs longer than 255 are split
    run_values = np.repeat(values, reps)
    run_lengths = np.full(int(reps.sum()), 255, dtype=np.int64)
    last = np.cumsum(reps) - 1
    run_lengths[last] = lengths - 255 * (reps - 1)
    header = (
        "#binvox 1\n"
        f"dim {occ.shape[0]} {occ.shape[1]} {occ.shape[2]}\n"
        f"translate {voxels.origin[0]:.9g} {voxels.origin[1]:.9g} {voxels.origin[2]:.9g}\n"
        f"scale {voxels.pitch * max(occ.shape):.9g}\n"
        "data\n"
    )
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(np.column_stack([run_values, run_lengths]).astype(np.uint8).tobytes())


def read_binvox(path: str | Path) -> Voxels:
    """Read a binvox file written by :func:`write_binvox` or by binvox itself."""
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
