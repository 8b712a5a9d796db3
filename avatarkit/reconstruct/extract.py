"""Meshes from occupancy functions (the last step of ``avatarkit reconstruct``).

:func:`evaluate_octree` evaluates a function on a regular grid coarse to fine, as PIFu's
``eval_grid_octree`` does: corners of a coarse grid first; a cell whose corners all lie on
one side of the threshold (and, with PIFu's ``tolerance``, differ by less than it: the
field is flat there) is filled with the mean of its corners without querying the
function; the others are split and their new points queried, down to single voxels. Only
the cells the surface passes through or the field changes in (and the coarse lattice)
cost queries. Sides alone suit sharp fields (exact occupancy); a network's smooth field
can cross the threshold between corners that agree, which the tolerance catches.
:func:`extract_mesh` then runs scikit-image's marching cubes and maps vertices back to the
world, keeping the largest connected component unless asked otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from avatarkit.errors import OptionError, ResourceError
from avatarkit.structures import Mesh

LATTICE_BYTES = 16
"""Peak bytes per lattice point of :func:`evaluate_octree` and marching cubes, an estimate:
the float32 values and their filled copy, the known and wanted flags, marching cubes' input."""


def check_lattice_memory(resolution: int, available: int | None = None, option: str = "--resolution") -> None:
    """Raise :class:`ResourceError` when a ``resolution``^3 lattice would not fit in
    ``available`` bytes (default: this machine's memory), before any work is done; ``option``
    names the option that asked for it in the message."""
    import os

    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    need = (resolution + 1) ** 3 * LATTICE_BYTES
    if need > available:
        raise ResourceError(
            f"{option} {resolution} needs about {need / 2**30:,.0f} GiB for its grid, more than the "
            f"{available / 2**30:,.0f} GiB of memory here; use a smaller {option}"
        )


def grid_points(bounds: np.ndarray, resolution: int) -> np.ndarray:
    """(R, R, R, 3) world positions of the lattice (R = resolution + 1 points per axis)."""
    lo, hi = np.asarray(bounds, dtype=np.float64).reshape(2, 3)
    axes = [np.linspace(lo[i], hi[i], resolution + 1) for i in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def evaluate_octree(
    fn: Callable[[np.ndarray], np.ndarray],
    bounds: np.ndarray,
    resolution: int = 256,
    initial: int = 32,
    threshold: float = 0.5,
    tolerance: float | None = None,
) -> tuple[np.ndarray, int]:
    """Values of ``fn`` on the (resolution + 1)^3 lattice over ``bounds`` ((2, 3) min, max),
    queried coarse to fine; returns (values, number of points queried).

    ``fn`` maps (P, 3) world points to (P,) values; ``resolution`` and ``initial`` are
    powers of two with initial <= resolution. A cell is filled without queries when its
    corners all lie on one side of ``threshold``, and, with ``tolerance``, also differ by
    less than it (PIFu's rule: the field is flat there, so no surface hides inside).
    """
    for name, value in (("resolution", resolution), ("initial", initial)):
        if value < 1 or value & (value - 1):
            raise OptionError(f"{name} must be a power of two, got {value}")
    if initial > resolution:
        raise OptionError(f"the initial grid ({initial}) is finer than the final one ({resolution})")
    check_lattice_memory(resolution)
    lo, hi = np.asarray(bounds, dtype=np.float64).reshape(2, 3)
    step_world = (hi - lo) / resolution
    n = resolution + 1
    values = np.zeros((n, n, n), dtype=np.float32)
    known = np.zeros((n, n, n), dtype=bool)
    queried = 0

    def query(index: np.ndarray) -> None:
        nonlocal queried
        if len(index):
            values[tuple(index.T)] = np.asarray(fn(lo + index * step_world), dtype=np.float32).reshape(-1)
            known[tuple(index.T)] = True
            queried += len(index)

    step = resolution // initial
    coarse = np.arange(0, n, step)
    lattice = np.stack(np.meshgrid(coarse, coarse, coarse, indexing="ij"), -1).reshape(-1, 3)
    query(lattice)
    cells = np.stack(np.meshgrid(*[coarse[:-1]] * 3, indexing="ij"), -1).reshape(-1, 3)
    corners = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), -1).reshape(-1, 3)
    while step > 1:
        corner_values = values[tuple((cells[:, None, :] + corners[None] * step).transpose(2, 0, 1))]
        inside = corner_values > threshold
        mixed = inside.any(axis=1) & ~inside.all(axis=1)
        if tolerance is not None:
            mixed |= np.ptp(corner_values, axis=1) >= tolerance
        _fill(values, known, cells[~mixed], corner_values[~mixed].mean(axis=1), step)
        half = step // 2
        cells = (cells[mixed][:, None, :] + corners[None] * half).reshape(-1, 3)  # children: all distinct
        wanted = np.zeros_like(known)
        points = (cells[:, None, :] + corners[None] * half).reshape(-1, 3)
        wanted[tuple(points.T)] = True
        query(np.argwhere(wanted & ~known))
        step = half
    return values, queried


def _fill(values: np.ndarray, known: np.ndarray, cells: np.ndarray, fill: np.ndarray, step: int) -> None:
    """Give the points of cells whose corners agree, not yet known, their corners' mean (as
    PIFu does): on one side of the threshold like every corner, so the surface, which
    marching cubes finds in the cells that disagree, is untouched."""
    if not len(cells):
        return
    coarse_shape = [(n - 1) // step for n in values.shape]
    coarse = np.full(coarse_shape, np.nan, dtype=np.float32)
    coarse[tuple((cells // step).T)] = fill
    for axis in range(3):
        coarse = np.repeat(coarse, step, axis=axis)
    fine = np.pad(coarse, [(0, 1)] * 3, mode="edge")  # the last lattice plane takes its cell's value
    take = ~known & ~np.isnan(fine)
    values[take] = fine[take]
    known[take] = True


def evaluate_dense(fn, bounds: np.ndarray, resolution: int = 256, batch: int = 1 << 20) -> tuple[np.ndarray, int]:
    """Values of ``fn`` at every lattice point (the reference the octree is measured against)."""
    points = grid_points(bounds, resolution).reshape(-1, 3)
    values = np.concatenate([np.asarray(fn(points[i : i + batch])).reshape(-1) for i in range(0, len(points), batch)])
    n = resolution + 1
    return values.reshape(n, n, n).astype(np.float32), len(points)


def extract_mesh(
    values: np.ndarray, bounds: np.ndarray, threshold: float = 0.5, keep_all: bool = False, inside: str = "above"
) -> Mesh:
    """Marching cubes (scikit-image) at ``threshold`` on the lattice over ``bounds``, in the
    lattice's units; faces wind counter-clockwise from outside (``inside``: ``above``, values
    above ``threshold`` are inside, as occupancy; ``below``, as a signed distance); only the
    largest connected component unless ``keep_all``."""
    from skimage import measure

    lo, hi = np.asarray(bounds, dtype=np.float64).reshape(2, 3)
    if not (values.min() < threshold < values.max()):
        raise OptionError("the field never crosses its surface level inside the bounds: no surface to extract")
    spacing = (hi - lo) / (np.asarray(values.shape) - 1)
    verts, faces, _, _ = measure.marching_cubes(values, level=threshold, spacing=tuple(spacing))
    verts = verts + lo
    if inside == "above":  # skimage winds faces for a field rising outwards (an SDF); ours face outwards
        faces = faces[:, ::-1]
    if not keep_all:
        verts, faces = _largest_component(verts, faces)
    return Mesh(verts.astype(np.float32), faces.astype(np.int32))


def _largest_component(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(verts), len(verts)))
    _, label = connected_components(graph, directed=False)
    face_label = label[faces[:, 0]]
    keep = face_label == np.bincount(face_label).argmax()
    used = np.unique(faces[keep])
    remap = np.full(len(verts), -1)
    remap[used] = np.arange(len(used))
    return verts[used], remap[faces[keep]]
