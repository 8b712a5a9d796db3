"""Named index lists into one axis of a structure: a mesh's vertex regions (``/regions``), a
views file's view subsets (``/subsets``)."""

from __future__ import annotations

import numpy as np


def index_set_problems(
    sets: dict[str, np.ndarray], count: int, what: str, item: str, items: str | None = None, where: str | None = None
) -> list[str]:
    """Every way named index lists (a mesh's vertex regions, a views file's view subsets) break
    their contract against ``count`` items: a name that cannot be an HDF5 name, a list that is
    not one-dimensional whole numbers, an index outside [0, count). ``what``: ``region`` or
    ``subset``; ``item``, ``items``: ``vertex``, ``vertices`` or ``view``, ``views``; ``where``:
    the group the lists are in (a list is then called ``WHERE/NAME``, else ``WHAT NAME``)."""
    items = items or f"{item}s"
    problems = []
    for name, ids in sets.items():
        ids = np.asarray(ids)
        label = f"{where}/{name}" if where else f"{what} {name}"
        if not name or "/" in name or name in (".", ".."):
            problems.append(f"{what} name {name!r} is not a name (empty, '.', '..' or with a '/')")
        elif ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            problems.append(f"{label} is not a list of {item} indices (shape {ids.shape}, {ids.dtype})")
        elif ids.size and (ids.min() < 0 or ids.max() >= count):
            bad = int(ids.max() if ids.max() >= count else ids.min())
            problems.append(f"{label} names {item} {bad} but there are {count} {items}")
    return problems
