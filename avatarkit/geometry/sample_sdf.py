"""Training points with exact signed distances (the core of ``avatarkit sample-sdf``).

A sampling recipe mixes three kinds of points:

- **surface** points, area-uniform on the triangles (sdf exactly 0);
- **near** points: surface points moved by isotropic Gaussian noise, one group per sigma;
- **uniform** points in a region: a box (the mesh's bounding box plus a margin, or
  ``bounds``), or the cube or ball of the mesh's *unit frame* (centre of its bounding box,
  radius of its farthest vertex times a buffer), the frame DeepSDF and mesh-to-sdf
  normalise meshes into.

Presets reproduce the recipes of the systems avatarkit replaces (``docs/sampling.md``):

- ``pifu`` (PIFu, ``lib/data/TrainDataset.py``, ``select_sampling_method``): 4N surface
  points moved by a Gaussian of sigma 5 cm and N/4 uniform points in PIFu's box (16:1; its
  ``B_MIN``, ``B_MAX`` for a scan 180 units tall, scaled to the subject's height), then
  labels balanced: at most N/2 inside, the rest outside, N in all. PIFu draws N = 5000 per
  step; the preset makes a pool of 100,000 that ``train pifu`` draws its 5000 from.
- ``geopifu`` (Geo-PIFu, ``geopifu/apps/prepare_shape_query.py``, the offline
  ``occu_sigma3.5_pts5k`` query points): PIFu's mix (4N surface points moved by a Gaussian, N/4
  uniform, balanced to at most N/2 inside) in Geo-PIFu's normalised box: sigma 3.5 voxels of
  the mesh's ``voxelize --preset geopifu`` grid (its ``sigma / dim_h`` = 3.5/192 of a box 1
  tall), uniform points in that 128 x 192 x 128 box (its ``B_MIN``, ``B_MAX``). Geo-PIFu draws
  N = 5000 per frame and epoch and stores 15 epochs; the preset makes a pool of 75,000.
- ``deepsdf`` (DeepSDF, ``src/PreprocessMesh.cpp``): 47/50 of the points near the surface,
  half with variance 0.005 and half with 0.0005 *in the unit frame* (sigma = sqrt(variance)
  times the unit radius, here in metres; DeepSDF's buffer 1.03), 3/50 uniform in the unit
  cube.
- ``osa`` (OSA's Phorhum data, made with mesh-to-sdf): half the points on the surface with
  normals and colours; half made as ``mesh_to_sdf.sample_sdf_near_surface`` makes them
  (47/50 moved by Gaussians of sigma 0.0025 and 0.00025 in the unit frame, 3/50 uniform in
  the unit ball).

Signed distances come from :class:`avatarkit.geometry.sdf.MeshDistance` (exact distances,
winding-number signs by default), or from the mesh-to-sdf package with
``backend="mesh-to-sdf"`` for datasets that must match it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from avatarkit.errors import MeshError, OptionError
from avatarkit.geometry.sdf import SIGN_METHODS, MeshDistance
from avatarkit.geometry.surface import sample_surface, surface_colors, surface_normals
from avatarkit.structures import Mesh, Samples

BACKENDS = ("warp", "mesh-to-sdf")
REGIONS = ("box", "pifu-box", "geopifu-box", "unit-cube", "unit-sphere")
SIGMA_FRAMES = ("m", "unit", "voxel")
GEOPIFU_SIGMA_VOXELS = 3.5
"""Geo-PIFu's query sigma (``--sigma 3.5``), in voxels of its 128 x 192 x 128 grid (its code
scales it by ``1 / consts.dim_h``, the voxel of a box 1 tall)."""
GEOPIFU_POINTS_PER_DRAW = 5000
"""Geo-PIFu's ``--num_sample_inout``: query points per frame and epoch."""
GEOPIFU_EPOCHS = 15
"""Epochs of query points Geo-PIFu stores offline (``--epoch_range 0 15``)."""
PIFU_BOX = ((-128.0, -28.0, -128.0), (128.0, 228.0, 128.0))
"""PIFu's B_MIN, B_MAX for its scans scaled to 180 units tall, feet at 0, centred in x and z."""


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """One sampling recipe. Fractions are of the final point count.

    Attributes:
        preset: the name recorded in the output (``custom`` when flags changed a preset).
        points: points in the output.
        surface_fraction: share of points on the surface.
        uniform_fraction: share of uniform points; the rest are near points, split equally
            between ``sigmas``.
        sigmas: Gaussian standard deviations of the near points.
        sigma_frame: ``m`` (sigmas in metres), ``unit`` (in units of the unit radius) or
            ``voxel`` (in voxels of the mesh's ``voxelize --preset geopifu`` grid).
        region: where uniform points lie: ``box``, ``pifu-box`` (PIFu's cube around the
            subject, scaled to its height: about the volume its images see), ``geopifu-box``
            (the box of the mesh's ``voxelize --preset geopifu`` grid), ``unit-cube`` or
            ``unit-sphere``.
        bounds: (6,) box min xyz, max xyz, metres, for ``box``; None: the mesh's bounding
            box grown by ``margin`` times its largest side on every side.
        margin: see ``bounds``.
        unit_buffer: the unit radius is the farthest vertex's distance times this.
        balance: PIFu's balancing: draw ``oversample`` times the points, keep at most half
            inside and fill up with outside points.
        oversample: see ``balance``.
        normals, colors: store ``/normals`` and ``/colors`` (at the closest surface point).
        sign: ``winding``, ``normal`` or ``parity`` (``avatarkit.geometry.sdf``).
        backend: ``warp`` (exact, CPU or CUDA) or ``mesh-to-sdf``.
    """

    preset: str = "custom"
    points: int = 100_000
    surface_fraction: float = 0.0
    uniform_fraction: float = 0.0
    sigmas: tuple[float, ...] = (0.05,)
    sigma_frame: str = "m"
    region: str = "box"
    bounds: tuple[float, ...] | None = None
    margin: float = 0.05
    unit_buffer: float = 1.0
    balance: bool = False
    oversample: float = 1.0
    normals: bool = False
    colors: bool = False
    sign: str = "winding"
    backend: str = "warp"

    def check(self) -> None:
        """Raise :class:`OptionError` for values no recipe can use."""
        if self.points <= 0:
            raise OptionError(f"--points must be positive, got {self.points}")
        for name in ("surface_fraction", "uniform_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise OptionError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
        if self.surface_fraction + self.uniform_fraction > 1.0 + 1e-9:
            raise OptionError("--surface-fraction and --uniform-fraction add up to more than 1")
        if self._near_fraction > 1e-9 and not self.sigmas:
            raise OptionError("near-surface points need at least one --sigma")
        for sigma in self.sigmas:
            if not sigma > 0 or not np.isfinite(sigma):
                raise OptionError(f"--sigma must be positive, got {sigma}")
        if self.sigma_frame not in SIGMA_FRAMES:
            raise OptionError(f"sigma frame must be one of {', '.join(SIGMA_FRAMES)}, got {self.sigma_frame!r}")
        if self.region not in REGIONS:
            raise OptionError(f"uniform region must be one of {', '.join(REGIONS)}, got {self.region!r}")
        if self.bounds is not None:
            b = np.asarray(self.bounds, dtype=float)
            if b.shape != (6,) or not np.isfinite(b).all() or not (b[:3] < b[3:]).all():
                raise OptionError(f"--bounds must be MINX MINY MINZ MAXX MAXY MAXZ with min < max, got {self.bounds}")
        if self.margin < 0:
            raise OptionError(f"--margin must be >= 0, got {self.margin}")
        if self.sign not in SIGN_METHODS:
            raise OptionError(f"--sign must be one of {', '.join(SIGN_METHODS)}, got {self.sign!r}")
        if self.backend not in BACKENDS:
            raise OptionError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

    @property
    def _near_fraction(self) -> float:
        return max(0.0, 1.0 - self.surface_fraction - self.uniform_fraction)


PRESETS: dict[str, SamplingConfig] = {
    "pifu": SamplingConfig(
        preset="pifu",
        points=100_000,  # a pool: train pifu draws PIFu's 5000 per step from it
        uniform_fraction=1 / 17,
        sigmas=(0.05,),
        region="pifu-box",
        balance=True,
        oversample=4.25,
    ),
    "geopifu": SamplingConfig(
        preset="geopifu",
        points=GEOPIFU_POINTS_PER_DRAW * GEOPIFU_EPOCHS,  # a pool: Geo-PIFu's 15 stored epochs of 5000
        uniform_fraction=1 / 17,
        sigmas=(GEOPIFU_SIGMA_VOXELS,),
        sigma_frame="voxel",
        region="geopifu-box",
        balance=True,
        oversample=4.25,
    ),
    "deepsdf": SamplingConfig(
        preset="deepsdf",
        points=500_000,
        uniform_fraction=3 / 50,
        sigmas=(float(np.sqrt(0.005)), float(np.sqrt(0.0005))),
        sigma_frame="unit",
        region="unit-cube",
        unit_buffer=1.03,
    ),
    "osa": SamplingConfig(
        preset="osa",
        points=1_000_000,
        surface_fraction=0.5,
        uniform_fraction=0.5 * 3 / 50,
        sigmas=(0.0025, 0.00025),
        sigma_frame="unit",
        region="unit-sphere",
        normals=True,
        colors=True,
    ),
}


def preset_config(name: str, **changes: Any) -> SamplingConfig:
    """A preset with some fields changed; ``preset`` becomes ``custom`` when a recipe field
    (not ``points``, ``sign``, ``backend``, ``normals``, ``colors``) changes."""
    if name not in PRESETS:
        raise OptionError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    base = PRESETS[name]
    changes = {k: v for k, v in changes.items() if v is not None}
    if "sigmas" in changes:
        changes["sigma_frame"] = "m"
        changes["sigmas"] = tuple(changes["sigmas"])
    if "bounds" in changes or "margin" in changes:
        changes["region"] = "box"
    if "bounds" in changes:
        changes["bounds"] = tuple(changes["bounds"])
    recipe = {"surface_fraction", "uniform_fraction", "sigmas", "bounds", "margin"}
    if any(k in recipe and getattr(base, k) != v for k, v in changes.items()):
        changes.setdefault("preset", f"custom (from {name})")
    config = dataclasses.replace(base, **changes)
    config.check()
    return config


def sample_sdf(
    mesh: Mesh,
    config: SamplingConfig,
    seed: int = 0,
    device: str = "cpu",
    distance: MeshDistance | None = None,
) -> Samples:
    """Sample points around ``mesh`` (metres, world frame) by ``config`` and compute their
    signed distances, occupancy and, if asked, normals and colours.

    Args:
        distance: a prepared :class:`MeshDistance` of the same mesh (built if None).

    Raises:
        OptionError: an unusable recipe, or bounds that miss the mesh.
        MeshError: an empty mesh, NaN vertices or only zero-area faces.
    """
    config.check()
    mesh.validate()
    rng = np.random.default_rng(seed)
    center, radius = mesh.bounding_sphere(config.unit_buffer)
    if not radius > 0:
        raise MeshError("all vertices are at one point")
    box = _box(mesh, config)
    scale = {"m": 1.0, "unit": radius}.get(config.sigma_frame)
    if scale is None:  # voxels of the Geo-PIFu grid
        scale = _geopifu_grid(mesh).pitch
    sigmas_m = tuple(s * scale for s in config.sigmas)

    total = int(np.ceil(config.points * config.oversample)) if config.balance else config.points
    n_surface = round(total * config.surface_fraction)
    n_uniform = round(total * config.uniform_fraction)
    n_near_total = total - n_surface - n_uniform
    n_near = [len(part) for part in np.array_split(np.arange(n_near_total), len(sigmas_m))] if sigmas_m else []

    surface = sample_surface(mesh, n_surface + sum(n_near), rng)
    groups = [surface.points[:n_surface]]
    start = n_surface
    for count, sigma in zip(n_near, sigmas_m, strict=True):
        base = surface.points[start : start + count]
        groups.append(base + rng.normal(0.0, sigma, base.shape).astype(np.float32))
        start += count
    groups.append(_uniform(config.region, n_uniform, box, center, radius, rng))
    points = np.concatenate(groups).astype(np.float32)

    distance = distance or MeshDistance(mesh.vertices, mesh.faces, device)
    query = distance.query(points, config.sign)
    sdf = _mesh_to_sdf(mesh, points) if config.backend == "mesh-to-sdf" else query.sdf.copy()
    sdf[:n_surface] = 0.0
    face, bary = query.face, query.bary
    face[:n_surface], bary[:n_surface] = surface.face[:n_surface], surface.bary[:n_surface]

    keep = _balanced(sdf, n_surface, config.points, rng) if config.balance else np.arange(len(points))
    points, sdf, face, bary = points[keep], sdf[keep], face[keep], bary[keep]
    normals = surface_normals(mesh, face, bary) if config.normals else None
    colors = surface_colors(mesh, face, bary) if config.colors else None
    if config.colors and colors is None:
        raise MeshError("--colors needs a mesh with a texture and UVs, or vertex colours")

    attrs = {
        "preset": config.preset,
        "seed": int(seed),
        "sign": "mesh-to-sdf normal (scans)" if config.backend == "mesh-to-sdf" else config.sign,
        "backend": config.backend,
        "n_surface": int(np.count_nonzero(keep < n_surface)),
        "n_near": [int(np.count_nonzero((keep >= a) & (keep < b))) for a, b in _spans(n_surface, n_near)],
        "n_uniform": int(np.count_nonzero(keep >= n_surface + sum(n_near))),
        "sigmas_m": np.asarray(sigmas_m, dtype=np.float64),
        "sigma_frame": config.sigma_frame,
        "sigmas_given": np.asarray(config.sigmas, dtype=np.float64),
        "uniform_region": config.region,
        "bounds_min": box[0],
        "bounds_max": box[1],
        "unit_center": center,
        "unit_radius": radius,
        "unit_buffer": float(config.unit_buffer),
        "balanced": bool(config.balance),
        "order": "shuffled" if config.balance else "surface, near (one block per sigma), uniform",
    }
    return Samples(points, sdf.astype(np.float32), (sdf < 0).astype(np.uint8), normals, colors, attrs)


def bounding_sphere_of(attrs: dict[str, Any], source: Any = None) -> tuple[np.ndarray, float]:
    """The sampled mesh's bounding sphere from a samples file's attributes: (3,) float64 centre
    (its bounding box's midpoint, ``unit_center``) and the distance to its farthest vertex,
    metres (``unit_radius`` divided by the unit frame's buffer), i.e. what
    :meth:`~avatarkit.structures.Mesh.bounding_sphere` gives for the mesh itself.

    The buffer is the ``unit_buffer`` attribute; files written before it was stored take the
    buffer of the preset they name (``deepsdf``: 1.03; ``custom (from deepsdf)`` likewise).

    Raises:
        InputError: attributes missing or unusable (naming ``source``).
    """
    from avatarkit.errors import InputError

    if "unit_center" not in attrs or "unit_radius" not in attrs:
        raise InputError("has no unit_center and unit_radius attributes (write it with avatarkit sample-sdf)", source)
    center = np.asarray(attrs["unit_center"], dtype=np.float64).reshape(-1)
    radius = float(np.asarray(attrs["unit_radius"], dtype=np.float64))
    if "unit_buffer" in attrs:
        buffer = float(np.asarray(attrs["unit_buffer"], dtype=np.float64))
    else:
        preset = str(attrs.get("preset", ""))
        base = preset.removeprefix("custom (from ").removesuffix(")")
        if base not in PRESETS and preset != "custom":
            raise InputError(f"has no unit_buffer attribute and names no known preset ({preset!r})", source)
        buffer = PRESETS[base].unit_buffer if base in PRESETS else SamplingConfig().unit_buffer
    if center.shape != (3,) or not np.isfinite(center).all() or not radius > 0 or not buffer > 0:
        raise InputError(
            f"unusable unit frame attributes (unit_center {center.tolist()}, unit_radius {radius}, "
            f"unit_buffer {buffer})",
            source,
        )
    return center, radius / buffer


def _spans(start: int, counts: list[int]):
    for count in counts:
        yield start, start + count
        start += count


def _geopifu_grid(mesh: Mesh):
    """The mesh's ``voxelize --preset geopifu`` grid (Geo-PIFu's normalised box, in metres)."""
    from avatarkit.geometry.voxelize import plan_grid

    return plan_grid(mesh, preset="geopifu")


def _box(mesh: Mesh, config: SamplingConfig) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = mesh.vertices.min(axis=0).astype(np.float64), mesh.vertices.max(axis=0).astype(np.float64)
    if config.region == "geopifu-box" and config.bounds is None:
        grid = _geopifu_grid(mesh)
        return grid.origin, grid.origin + np.asarray(grid.shape, dtype=np.float64) * grid.pitch
    if config.region == "pifu-box" and config.bounds is None:
        scale = (hi[1] - lo[1]) / 180.0  # PIFu's units per metre of this subject
        base = np.array([0.5 * (lo[0] + hi[0]), lo[1], 0.5 * (lo[2] + hi[2])])
        return base + scale * np.asarray(PIFU_BOX[0]), base + scale * np.asarray(PIFU_BOX[1])
    if config.bounds is None:
        pad = config.margin * float((hi - lo).max())
        return lo - pad, hi + pad
    b = np.asarray(config.bounds, dtype=np.float64)
    if (b[:3] > hi).any() or (b[3:] < lo).any():
        raise OptionError(
            f"--bounds {b[:3].round(4).tolist()} to {b[3:].round(4).tolist()} do not overlap the mesh "
            f"({lo.round(4).tolist()} to {hi.round(4).tolist()}, metres)"
        )
    return b[:3], b[3:]


def _uniform(region, count, box, center, radius, rng) -> np.ndarray:
    if region in ("box", "pifu-box", "geopifu-box"):
        return rng.uniform(box[0], box[1], (count, 3)).astype(np.float32)
    if region == "unit-cube":
        return (center + radius * rng.uniform(-1.0, 1.0, (count, 3))).astype(np.float32)
    # unit ball: direction uniform on the sphere, radius by the cube root for uniform volume
    direction = rng.normal(size=(count, 3))
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    r = radius * np.cbrt(rng.random((count, 1)))
    return (center + direction * r).astype(np.float32)


def _balanced(sdf: np.ndarray, n_surface: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """PIFu's balancing over shuffled candidates: up to half inside, then outside to fill."""
    order = rng.permutation(np.arange(n_surface, len(sdf)))
    inside = order[sdf[order] < 0]
    outside = order[sdf[order] >= 0]
    surface = np.arange(n_surface)
    count -= n_surface
    n_in = min(len(inside), count // 2)
    keep = np.concatenate([surface, inside[:n_in], outside[: count - n_in]])
    return keep[rng.permutation(len(keep))]


def _mesh_to_sdf(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    """Signed distances as the mesh-to-sdf package computes them (its defaults: surface
    point cloud from 100 virtual scans, sign from 11 nearest normals)."""
    import os

    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # mesh-to-sdf's scans need OpenGL; EGL runs headless
    try:
        import mesh_to_sdf
        import trimesh
    except ImportError as exc:  # pragma: no cover - a dependency of avatarkit
        raise OptionError(f"--backend mesh-to-sdf needs the mesh-to-sdf package ({exc})") from None
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    return np.asarray(mesh_to_sdf.mesh_to_sdf(tm, points), dtype=np.float32)
