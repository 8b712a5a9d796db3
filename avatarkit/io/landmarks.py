"""Landmark and region files (the H3DS layout): names and vertex indices of a mesh.

- landmarks: ``name vertex_id`` per line (H3DS's ``landmarks.txt``);
- regions: one vertex index per line (H3DS's ``face_region.txt``).

Indices count the mesh's vertices as its file lists them. :func:`check_vertex_ids` is the
one bounds check every verb applies before it uses indices read from a file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarkit.errors import InputError


def read_landmark_file(path: str | Path) -> dict[str, int]:
    """H3DS landmarks: ``name vertex_id`` per line; returns name -> vertex index."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read landmarks ({exc.strerror or exc})", path) from None
    out = {}
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words:
            continue
        if len(words) != 2 or not words[1].lstrip("-").isdigit():
            raise InputError(f"line {number}: expected 'name vertex_id', got {line!r}", path)
        out[words[0]] = int(words[1])
    return out


def read_region_file(path: str | Path) -> np.ndarray:
    """H3DS region: one vertex index per line; returns (R,) int64."""
    path = Path(path)
    try:
        return np.array([int(x) for x in path.read_text().split()], dtype=np.int64)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a region file of vertex indices ({exc})", path) from None


def check_vertex_ids(ids: dict[str, int] | np.ndarray, n_vertices: int, path: str | Path | None, what: str) -> None:
    """Raise :class:`InputError` naming ``path`` when an index in ``ids`` (a landmark dict or an
    index array) is outside a mesh of ``n_vertices`` vertices; ``what``: ``landmark`` or
    ``region index``, for the message."""
    values = np.fromiter(ids.values(), int) if isinstance(ids, dict) else np.asarray(ids)
    if len(values) and (values.min() < 0 or values.max() >= n_vertices):
        bad = int(values.max() if values.max() >= n_vertices else values.min())
        raise InputError(f"a {what} names vertex {bad} but the mesh has {n_vertices}", path)
