"""Solid occupancy grids from triangle meshes (the core of ``avatarkit voxelize``).

Grid convention (``docs/conventions.md``): ``occupancy[i, j, k]`` is x index i, y index j,
z index k, and voxel (i, j, k) has its centre at ``origin + (index + 0.5) * pitch``. A voxel
is occupied when its *centre* is inside the mesh.

Inside is decided as in sample-sdf:

- ``winding`` (default): the generalized winding number is above 0.5. On a closed mesh
  (every edge shared by two faces) it is an integer equal to the signed count of surface
  crossings along any ray, so it is computed exactly with one ray per grid column
  (scanlines along the longest grid axis). Columns whose crossings do not add up to zero
  (a ray grazing an edge) are redone with per-voxel winding-number queries. On a mesh with
  holes the winding number is evaluated per voxel, hierarchically: a block with no
  surface within it takes the value at its centre, others are split, down to voxels.
- ``parity``: scanline ray parity (odd number of crossings): exact on watertight meshes
  without self-intersections; where parts overlap it carves the overlap out.

``surface=True`` also marks every voxel the triangles pass through (exact triangle-box
overlap), the shell that thin parts need to survive voxelization.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from avatarkit.backends.warp import import_warp, launch
from avatarkit.errors import OptionError
from avatarkit.geometry.sdf import MeshDistance
from avatarkit.structures import Mesh, Voxels

SIGNS = ("winding", "parity")

GEOPIFU_SHAPE = (128, 192, 128)
GEOPIFU_MARGIN = 0.15
GRID_PRESETS = ("geopifu",)
"""Geo-PIFu (after DeepHuman) voxelizes a mesh normalised into its box with a 15% margin, centred
on its vertex mean: heights within [-0.5, 0.5] * 0.85 on 192 voxels of 1/192, widths and depths
on 128."""

BYTES_PER_VOXEL = 4
"""Peak bytes per voxel while voxelizing (the scanline buffer, its boolean copy, the result)."""


@dataclasses.dataclass(frozen=True)
class Grid:
    """Where a grid lies: ``origin`` (3,) corner of voxel (0, 0, 0), ``pitch`` metres, ``shape``."""

    origin: np.ndarray
    pitch: float
    shape: tuple[int, int, int]

    def centers(self, index: np.ndarray) -> np.ndarray:
        """World positions of voxel centres for (N, 3) integer indices."""
        return (self.origin + (np.asarray(index, dtype=np.float64) + 0.5) * self.pitch).astype(np.float32)

    @property
    def voxels(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def plan_grid(
    mesh: Mesh,
    resolution: int | None = None,
    pitch: float | None = None,
    bounds: tuple[float, ...] | None = None,
    margin: float = 0.02,
    preset: str | None = None,
) -> Grid:
    """The grid for ``mesh``.

    Args:
        resolution: voxels along the longest side of the box.
        pitch: voxel edge, metres (instead of ``resolution``).
        bounds: (6,) box min xyz, max xyz, metres; default the mesh's bounding box grown by
            ``margin`` times its longest side on every side.
        preset: ``geopifu``: 128 x 192 x 128 voxels (x, y, z), centred on the mesh's vertex
            mean, the pitch chosen so that the vertex farthest from it along any axis, on either
            side, reaches 85% of the box's half-size there (the smallest of Geo-PIFu's six
            ratios in ``voxelization_normalization``; in metres).

    Raises:
        OptionError: both or neither of resolution and pitch, non-positive values, bounds
            that do not overlap the mesh.
    """
    lo = mesh.vertices.min(axis=0).astype(np.float64)
    hi = mesh.vertices.max(axis=0).astype(np.float64)
    if preset is not None:
        if preset not in GRID_PRESETS:
            raise OptionError(f"unknown voxelize preset {preset!r}; use {', '.join(GRID_PRESETS)}")
        if resolution is not None or pitch is not None or bounds is not None:
            raise OptionError("--preset geopifu fixes the grid; drop --resolution, --pitch and --bounds")
        shape = np.array(GEOPIFU_SHAPE)
        center = mesh.vertices.astype(np.float64).mean(axis=0)  # Geo-PIFu centres on the vertex mean
        reach = np.maximum(hi - center, center - lo)  # and the farthest side from it on each axis binds
        step = float((reach / (0.5 * shape * (1.0 - GEOPIFU_MARGIN))).max())
        if not step > 0:
            raise OptionError("the mesh has no extent to fit into the Geo-PIFu box")
        return Grid(center - 0.5 * shape * step, step, tuple(int(s) for s in shape))
    if (resolution is None) == (pitch is None):
        raise OptionError("give one of --resolution and --pitch")
    if bounds is not None:
        b = np.asarray(bounds, dtype=np.float64)
        if b.shape != (6,) or not np.isfinite(b).all() or not (b[:3] < b[3:]).all():
            raise OptionError(f"--bounds must be MINX MINY MINZ MAXX MAXY MAXZ with min < max, got {bounds}")
        if (b[:3] > hi).any() or (b[3:] < lo).any():
            raise OptionError(
                f"--bounds {b[:3].round(4).tolist()} to {b[3:].round(4).tolist()} do not overlap the mesh "
                f"({lo.round(4).tolist()} to {hi.round(4).tolist()}, metres)"
            )
        box_lo, box_hi = b[:3], b[3:]
    else:
        if margin < 0:
            raise OptionError(f"--margin must be >= 0, got {margin}")
        pad = margin * float((hi - lo).max())
        box_lo, box_hi = lo - pad, hi + pad
    size = box_hi - box_lo
    if resolution is not None:
        if resolution < 1:
            raise OptionError(f"--resolution must be at least 1, got {resolution}")
        if not size.max() > 0:
            raise OptionError(
                "the mesh has no extent (all its vertices are one point), so --resolution has no side to divide; "
                "give --pitch or --bounds"
            )
        pitch = float(size.max()) / resolution
        if not pitch > 0:
            raise OptionError(f"--resolution {resolution} makes voxels too small to represent; lower it")
    elif not pitch > 0 or not np.isfinite(pitch):
        raise OptionError(f"--pitch must be a positive number of metres, got {pitch}")
    shape = np.maximum(1, np.ceil(size / pitch - 1e-9)).astype(np.int64)
    center = 0.5 * (box_lo + box_hi)
    return Grid(center - 0.5 * shape * pitch, float(pitch), tuple(int(s) for s in shape))


def check_memory(grid: Grid, limit_bytes: int) -> None:
    """Refuse a grid whose estimated peak memory exceeds ``limit_bytes``, with the numbers."""
    from avatarkit.device import refuse_over_memory

    refuse_over_memory(
        grid.voxels * BYTES_PER_VOXEL, limit_bytes, f"a {' x '.join(map(str, grid.shape))} grid", "lower --resolution"
    )


def is_closed(faces: np.ndarray) -> bool:
    """Whether every edge is shared by exactly two faces, once in each direction."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    n = int(edges.max()) + 1
    directed = np.unique(edges[:, 0] * n + edges[:, 1])
    if len(directed) != len(edges):
        return False  # a directed edge used twice: inconsistent orientation or non-manifold
    reverse = edges[:, 1] * n + edges[:, 0]
    return bool(np.isin(reverse, directed, assume_unique=False).all())


def voxelize(
    mesh: Mesh,
    grid: Grid,
    sign: str = "winding",
    surface: bool = False,
    device: str = "cpu",
    distance: MeshDistance | None = None,
) -> Voxels:
    """Solid occupancy of ``mesh`` on ``grid`` (see the module docstring)."""
    if sign not in SIGNS:
        raise OptionError(f"--sign must be one of {', '.join(SIGNS)} for voxelize, got {sign!r}")
    mesh.validate()
    distance = distance or MeshDistance(mesh.vertices, mesh.faces, device)
    closed = is_closed(mesh.faces)
    if sign == "parity" or closed:
        occupancy, redone = _scanlines(mesh, grid, distance, parity=sign == "parity")
        method = "scanline parity" if sign == "parity" else "scanline winding (closed mesh)"
    else:
        occupancy, redone = _winding_blocks(grid, distance), 0
        method = "hierarchical winding number (open mesh)"
    if surface:
        occupancy |= _surface_shell(mesh, grid, distance.device)
    attrs = {
        "sign": sign,
        "method": method,
        "closed_mesh": closed,
        "columns_redone": int(redone),
        "surface_shell": bool(surface),
        "shape": np.asarray(grid.shape, dtype=np.int64),
    }
    return Voxels(occupancy, grid.origin.astype(np.float64), float(grid.pitch), attrs)


# ------------------------------------------------------------------ warp kernels


@functools.cache
def _kernels():
    """This module's warp kernels, defined together: warp compiles a Python module's kernels
    as one unit, and a kernel defined after the first launch would force a rebuild."""
    wp = import_warp()

    @wp.kernel
    def scan(
        mesh: wp.uint64,
        starts: wp.array(dtype=wp.vec3),
        direction: wp.vec3,
        length: float,
        first_center: float,
        pitch: float,
        count: int,
        parity: int,
        eps: float,
        inside: wp.array2d(dtype=wp.uint8),
        total: wp.array(dtype=int),
    ):
        # One ray per column, from outside the mesh; walk the hits in order and mark the
        # voxel centres passed since the last hit with the running winding number (or parity).
        col = wp.tid()
        start = starts[col]
        # warp: loop-carried variables must be declared with their type
        t = float(0.0)  # noqa: UP018
        w = int(0)  # noqa: UP018, RUF046
        hits = int(0)  # noqa: UP018, RUF046
        k = int(0)  # noqa: UP018, RUF046
        while t < length and hits < 4096:
            q = wp.mesh_query_ray(mesh, start + t * direction, direction, length - t)
            if not q.result:
                break
            t_hit = t + q.t
            state = w
            if parity != 0:
                state = hits % 2
            while k < count and first_center + float(k) * pitch < t_hit:
                if state > 0:
                    inside[col, k] = wp.uint8(1)
                k += 1
            if wp.dot(q.normal, direction) < 0.0:
                w += 1
            else:
                w -= 1
            hits += 1
            t = t_hit + eps
        state = w
        if parity != 0:
            state = hits % 2
        while k < count:
            if state > 0:
                inside[col, k] = wp.uint8(1)
            k += 1
        if parity != 0:
            total[col] = hits % 2
        else:
            total[col] = w
        if hits >= 4096:
            total[col] = 1

    # surface shell: separating-axis test of a triangle against an axis-aligned cube
    # (Akenine-Moller), for each voxel in the triangle's bounding box

    @wp.func
    def axis_separates(axis: wp.vec3, v0: wp.vec3, v1: wp.vec3, v2: wp.vec3, half: float) -> bool:
        p0 = wp.dot(v0, axis)
        p1 = wp.dot(v1, axis)
        p2 = wp.dot(v2, axis)
        r = half * (wp.abs(axis[0]) + wp.abs(axis[1]) + wp.abs(axis[2]))
        return wp.min(wp.min(p0, p1), p2) > r or wp.max(wp.max(p0, p1), p2) < -r

    @wp.func
    def overlaps(a: wp.vec3, b: wp.vec3, c: wp.vec3, center: wp.vec3, half: float) -> bool:
        # separating-axis test of a triangle against an axis-aligned cube (Akenine-Moller)
        v0 = a - center
        v1 = b - center
        v2 = c - center
        e0 = v1 - v0
        e1 = v2 - v1
        e2 = v0 - v2
        for i in range(3):
            box_axis = wp.vec3(0.0)
            box_axis[i] = 1.0
            if axis_separates(box_axis, v0, v1, v2, half):
                return False
            if axis_separates(wp.cross(box_axis, e0), v0, v1, v2, half):
                return False
            if axis_separates(wp.cross(box_axis, e1), v0, v1, v2, half):
                return False
            if axis_separates(wp.cross(box_axis, e2), v0, v1, v2, half):
                return False
        return not axis_separates(wp.cross(e0, e1), v0, v1, v2, half)

    @wp.kernel
    def shell(
        corners: wp.array(dtype=wp.vec3),
        origin: wp.vec3,
        pitch: float,
        nx: int,
        ny: int,
        nz: int,
        out: wp.array3d(dtype=wp.uint8),
    ):
        f = wp.tid()
        a = corners[3 * f]
        b = corners[3 * f + 1]
        c = corners[3 * f + 2]
        lo = (wp.min(wp.min(a, b), c) - origin) / pitch
        hi = (wp.max(wp.max(a, b), c) - origin) / pitch
        i0 = wp.max(int(wp.floor(lo[0])), 0)
        j0 = wp.max(int(wp.floor(lo[1])), 0)
        k0 = wp.max(int(wp.floor(lo[2])), 0)
        i1 = wp.min(int(wp.floor(hi[0])), nx - 1)
        j1 = wp.min(int(wp.floor(hi[1])), ny - 1)
        k1 = wp.min(int(wp.floor(hi[2])), nz - 1)
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                for k in range(k0, k1 + 1):
                    center = origin + wp.vec3(float(i) + 0.5, float(j) + 0.5, float(k) + 0.5) * pitch
                    if overlaps(a, b, c, center, 0.5 * pitch):
                        out[i, j, k] = wp.uint8(1)

    return scan, shell


# ------------------------------------------------------------------------- scanlines


def _scanlines(mesh: Mesh, grid: Grid, distance: MeshDistance, parity: bool) -> tuple[np.ndarray, int]:
    """Occupancy by one ray per column along the longest grid axis; columns whose crossings
    do not close (or odd parity) are redone per voxel with the winding number."""
    wp = import_warp()
    axis = int(np.argmax(grid.shape))
    others = [a for a in range(3) if a != axis]
    nb, nc, na = grid.shape[others[0]], grid.shape[others[1]], grid.shape[axis]
    lo = mesh.vertices.min(axis=0).astype(np.float64)
    hi = mesh.vertices.max(axis=0).astype(np.float64)
    scale = float((hi - lo).max())
    # rays start below both the mesh and the grid along the axis, and end above both
    begin = min(lo[axis], grid.origin[axis]) - 0.01 * scale - grid.pitch
    end = max(hi[axis], grid.origin[axis] + na * grid.pitch) + 0.01 * scale + grid.pitch
    ib, ic = np.meshgrid(np.arange(nb), np.arange(nc), indexing="ij")
    starts = np.empty((nb * nc, 3), dtype=np.float64)
    starts[:, others[0]] = grid.origin[others[0]] + (ib.reshape(-1) + 0.5) * grid.pitch
    starts[:, others[1]] = grid.origin[others[1]] + (ic.reshape(-1) + 0.5) * grid.pitch
    starts[:, axis] = begin
    direction = np.zeros(3)
    direction[axis] = 1.0
    device = distance.device
    inside = wp.zeros((nb * nc, na), dtype=wp.uint8, device=device)
    total = wp.zeros(nb * nc, dtype=int, device=device)
    launch(
        _kernels()[0],
        nb * nc,
        [
            distance.mesh_id,
            wp.array(starts.astype(np.float32), dtype=wp.vec3, device=device),
            wp.vec3(*direction.astype(np.float32)),
            float(end - begin),
            float(grid.origin[axis] + 0.5 * grid.pitch - begin),
            float(grid.pitch),
            int(na),
            int(parity),
            float(max(1e-3 * grid.pitch, 4e-7 * (np.abs(starts).max() + end - begin))),
        ],
        [inside, total],
        device,
        distance.threads,
        split=(1,),
    )
    columns = inside.numpy().astype(bool).reshape(nb, nc, na)
    bad = np.flatnonzero(total.numpy() != 0)
    if len(bad):
        b, c = np.unravel_index(bad, (nb, nc))
        k = np.arange(na)
        index = np.empty((len(bad), na, 3), dtype=np.int64)
        index[..., others[0]] = b[:, None]
        index[..., others[1]] = c[:, None]
        index[..., axis] = k[None, :]
        index = index.reshape(-1, 3)
        method = "parity" if parity else "winding"
        columns[b[:, None], c[:, None], k[None, :]] = (
            distance.query(grid.centers(index), method).sdf.reshape(len(bad), na) < 0
        )
    # columns is indexed (others[0], others[1], axis): move the axes back to (x, y, z)
    order = np.argsort([others[0], others[1], axis])
    return np.ascontiguousarray(columns.transpose(order)), len(bad)


# ------------------------------------------------------------ hierarchical winding


def _winding_blocks(grid: Grid, distance: MeshDistance, block: int = 16) -> np.ndarray:
    """Winding-number occupancy, evaluated per block where no surface passes through it
    and per voxel where it does (for meshes with holes)."""
    shape = np.asarray(grid.shape)
    occupancy = np.zeros(grid.shape, dtype=bool)
    size = block
    cells = np.stack(np.meshgrid(*[np.arange(int(np.ceil(s / size))) for s in shape], indexing="ij"), axis=-1).reshape(
        -1, 3
    )
    offsets = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), axis=-1).reshape(-1, 3)
    while len(cells):
        centers = (grid.origin + (cells * size + 0.5 * size) * grid.pitch).astype(np.float32)
        sdf = distance.query(centers, "winding").sdf
        if size == 1:
            inside = cells[sdf < 0]
            occupancy[inside[:, 0], inside[:, 1], inside[:, 2]] = True
            break
        uniform = np.abs(sdf) > 0.5 * np.sqrt(3.0) * size * grid.pitch
        _paint(occupancy, cells[uniform & (sdf < 0)], size)
        size //= 2
        children = (cells[~uniform][:, None, :] * 2 + offsets[None]).reshape(-1, 3)
        cells = children[(children * size < shape).all(axis=1)]
    return occupancy


def _paint(occupancy: np.ndarray, cells: np.ndarray, size: int) -> None:
    """Set the ``size``-cubed blocks at block indices ``cells`` (clipped to the grid)."""
    if not len(cells):
        return
    coarse = np.zeros([int(np.ceil(s / size)) for s in occupancy.shape], dtype=bool)
    coarse[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    for axis in range(3):
        coarse = np.repeat(coarse, size, axis=axis)
    occupancy |= coarse[: occupancy.shape[0], : occupancy.shape[1], : occupancy.shape[2]]


# ---------------------------------------------------------------- surface shell


def _surface_shell(mesh: Mesh, grid: Grid, device: str) -> np.ndarray:
    """Voxels (closed cubes) that some triangle intersects."""
    wp = import_warp()
    out = wp.zeros(grid.shape, dtype=wp.uint8, device=device)
    corners = mesh.face_corners().reshape(-1, 3).astype(np.float32)
    # one launch: triangles only ever write 1s, so overlapping writes agree
    wp.launch(
        _kernels()[1],
        dim=len(mesh.faces),
        inputs=[
            wp.array(corners, dtype=wp.vec3, device=device),
            wp.vec3(*grid.origin.astype(np.float32)),
            float(grid.pitch),
            *grid.shape,
        ],
        outputs=[out],
        device=device,
    )
    return out.numpy().astype(bool)
