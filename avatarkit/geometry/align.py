"""Rigid and similarity alignment (the core of ``avatarkit icp-align``).

1. Optional coarse alignment from named landmarks: Procrustes (rotation, translation and,
   with ``scale``, a uniform scale; trimesh's, as H3DS's evaluation uses). Never a
   reflection unless ``allow_reflection``: a reflected solution is replaced by the best
   proper rotation.
2. Rigid ICP with open3d's registration, coarse to fine over ``levels`` voxel sizes:
   ``point-to-plane`` (default; normals estimated where absent), ``point-to-point`` or
   ``generalized`` (GICP). Correspondences farther than ``max_distance`` are dropped
   (trimmed ICP, for partial overlap), and ``robust="tukey"`` down-weights the rest with
   Tukey's biweight.
3. With ``scale``, instead of 2: our own similarity ICP (:func:`refine_similarity`), coarse
   to fine over the same levels, solves rotation, translation and a uniform scale
   together, point to plane, and **symmetrically**: every iteration pairs each moved
   source point with the closest point of the target *and* each target point with the
   closest point of the moved source, the two sets weighted equally. Source-to-target
   pairs alone make the scale ill-posed between two different shapes: shrinking the
   source onto a patch of the target takes every trimmed distance towards zero (open3d's
   point-to-point scaling, which this replaces, took one Anny person to 0.74, and from a
   landmark start to 1e-25, of their size on another). The target-to-source pairs charge
   for what a shrunken source leaves uncovered. The scale is also held within
   ``scale_range`` times the starting (landmark) scale, so it cannot run away where the
   shapes barely overlap. At the finest level the closest points are exact points on the
   triangles when the meshes are given (no curvature bias: a similarity between two
   samplings of one surface is recovered to float precision), else nearest samples.

Transforms map the source onto the target: ``x_target = M @ x_source``, scale folded into M.
``fitness`` is the share of source points with a target point within ``max_distance`` after
alignment (open3d's definition), :func:`coverage` the share of target points with a moved
source point within it: a source shrunk onto part of the target has fitness 1 and a low
coverage.

:func:`align_meshes` runs the whole pipeline on two meshes (the core of ``icp-align``).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np

from avatarkit.errors import AvatarkitWarning, MeshError, OptionError
from avatarkit.structures import Mesh, Transform
from avatarkit.structures.mesh import ZERO_AREA, surface_area

METHODS = ("point-to-plane", "point-to-point", "generalized")
ROBUST = ("tukey",)
DEFAULT_SCALE_RANGE = (0.5, 2.0)
"""Bounds of the ICP scale relative to the starting (landmark or given) scale."""

COARSE_POINTS = 10_000
"""Points a side for the first, nearest-sample pass of the similarity ICP."""

Closest = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``closest(points (N, 3)) -> (closest surface points (N, 3), their unit normals (N, 3))``."""


@dataclasses.dataclass(frozen=True)
class AlignOptions:
    """How :func:`align_meshes` aligns (the options of ``avatarkit icp-align``)."""

    method: str = "point-to-plane"
    """ICP variant for rigid alignment: point-to-plane, point-to-point or generalized (open3d)."""
    scale: bool = False
    """Also estimate a uniform scale (symmetric similarity ICP)."""
    scale_range: tuple[float, float] = DEFAULT_SCALE_RANGE
    """With ``scale``: the scale stays within MIN..MAX times the landmarks' (or 1)."""
    landmarks: bool = True
    """Start from the landmarks both meshes share by name (at least three), when they do."""
    allow_reflection: bool = False
    """Let the landmark fit mirror."""
    max_distance: float | None = None
    """Pairs farther apart are dropped, metres (None: 5% of the target's bounding-box diagonal)."""
    robust: str | None = None
    """``tukey``: Tukey's biweight for partial overlap."""
    levels: int = 3
    """Coarse-to-fine levels (voxel sizes halving)."""
    samples: int = 50_000
    """Points sampled on each surface."""

    def check(self) -> None:
        if self.samples < 3:
            raise OptionError(f"--samples must be at least 3, got {self.samples}")
        check_scale_range(self.scale_range)


def landmark_similarity(
    source: np.ndarray, target: np.ndarray, scale: bool = True, allow_reflection: bool = False
) -> np.ndarray:
    """4x4 transform taking landmarks ``source`` (L, 3) onto ``target`` (L, 3), metres: Procrustes
    (``trimesh.registration.procrustes``, as H3DS aligns), rigid or with a uniform scale (the
    ratio of the two sets' RMS spreads, which, unlike Umeyama's least-squares scale, is the
    inverse of the reverse alignment's); a proper rotation unless ``allow_reflection``."""
    from trimesh.registration import procrustes

    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3 or len(source) < 3:
        raise OptionError(f"alignment needs at least 3 matching 3D points, got {source.shape} and {target.shape}")
    return procrustes(source, target, reflection=allow_reflection, scale=scale, return_cost=False)


def default_max_distance(target: np.ndarray) -> float:
    """The default ``max_distance``: 5% of the diagonal of the target's (Q, 3) bounding box, metres."""
    return 0.05 * float(np.linalg.norm(np.ptp(np.asarray(target, dtype=np.float64), axis=0)))


def transform_scale(m: np.ndarray) -> float:
    """The uniform scale folded into a 4x4 similarity ``m``."""
    return float(np.cbrt(abs(np.linalg.det(np.asarray(m, dtype=np.float64)[:3, :3]))))


def check_scale_range(scale_range: tuple[float, float]) -> tuple[float, float]:
    """``(low, high)`` as floats; raises :class:`OptionError` unless 0 < low <= 1 <= high."""
    low, high = (float(v) for v in scale_range)
    if not 0 < low <= 1 <= high < np.inf:
        raise OptionError(f"--scale-range must be MIN MAX with 0 < MIN <= 1 <= MAX, got {low:g} {high:g}")
    return low, high


def icp(
    source: np.ndarray,
    target: np.ndarray,
    init: np.ndarray | None = None,
    method: str = "point-to-plane",
    scale: bool = False,
    max_distance: float | None = None,
    robust: str | None = None,
    levels: int = 3,
    max_iterations: int = 50,
    source_normals: np.ndarray | None = None,
    target_normals: np.ndarray | None = None,
    target_mesh=None,
    source_mesh=None,
    scale_range: tuple[float, float] = DEFAULT_SCALE_RANGE,
    device: str = "cpu",
) -> Transform:
    """Align point set ``source`` (P, 3) to ``target`` (Q, 3), metres; see the module docstring.

    ``max_distance`` (metres) defaults to :func:`default_max_distance`; each coarser level
    uses twice the previous level's voxel size and correspondence distance. With ``scale``,
    ``target_mesh`` and ``source_mesh`` (Meshes of the two surfaces, source in its own
    frame) let the similarity step pair points with exact closest surface points instead
    of the nearest samples, which removes a curvature bias; ``scale_range`` (low, high)
    bounds the scale to ``[low, high]`` times the scale of ``init``; ``device`` runs those
    closest-point queries (warp, ``cpu`` or ``cuda[:N]``).
    """
    from avatarkit.backends.open3d import import_open3d

    o3d = import_open3d()
    reg = o3d.pipelines.registration
    if method not in METHODS:
        raise OptionError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if robust is not None and robust not in ROBUST:
        raise OptionError(f"--robust must be one of {', '.join(ROBUST)}, got {robust!r}")
    if levels < 1:
        raise OptionError(f"--levels must be at least 1, got {levels}")
    low, high = check_scale_range(scale_range)
    max_distance = default_max_distance(target) if max_distance is None else float(max_distance)
    if not max_distance > 0:
        raise OptionError(f"--max-distance must be positive, got {max_distance}")

    def cloud(points, normals):
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
        if normals is not None:
            pc.normals = o3d.utility.Vector3dVector(np.asarray(normals, dtype=np.float64))
        return pc

    src_full, tgt_full = cloud(source, source_normals), cloud(target, target_normals)
    transform = np.eye(4) if init is None else np.asarray(init, dtype=np.float64)
    if scale:
        start = transform_scale(transform)
        bounds, meshes = (low * start, high * start), (source_mesh, target_mesh)
        transform, rmse, fitness, iterations = _similarity_icp(
            o3d, src_full, tgt_full, transform, max_distance, levels, max_iterations, robust, bounds, meshes, device
        )
        return Transform(
            source_to_target=transform,
            scale=transform_scale(transform),
            rmse=rmse,
            fitness=fitness,
            iterations=iterations,
            method=f"symmetric point-to-plane similarity{' + tukey' if robust else ''}, {levels} levels",
        )
    iterations = 0
    result = None
    for level in reversed(range(levels)):  # coarse to fine
        distance = max_distance * 2**level
        voxel = distance / 4
        src = src_full.voxel_down_sample(voxel) if level else src_full
        tgt = tgt_full.voxel_down_sample(voxel) if level else tgt_full
        if method != "point-to-point":
            for pc, given in ((src, source_normals), (tgt, target_normals)):
                if given is None or level:
                    pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
        kernel = reg.TukeyLoss(k=distance / 2) if robust == "tukey" else None
        if method == "point-to-point":
            estimation = reg.TransformationEstimationPointToPoint(with_scaling=False)
        elif method == "point-to-plane":
            estimation = (
                reg.TransformationEstimationPointToPlane(kernel)
                if kernel
                else reg.TransformationEstimationPointToPlane()
            )
        else:
            estimation = (
                reg.TransformationEstimationForGeneralizedICP(kernel)
                if kernel
                else reg.TransformationEstimationForGeneralizedICP()
            )
        criteria = reg.ICPConvergenceCriteria(relative_fitness=1e-9, relative_rmse=1e-9, max_iteration=max_iterations)
        if method == "generalized":
            result = reg.registration_generalized_icp(src, tgt, distance, transform, estimation, criteria)
        else:
            result = reg.registration_icp(src, tgt, distance, transform, estimation, criteria)
        transform = np.asarray(result.transformation)
        iterations += max_iterations  # open3d does not report how many ran: this is the budget
    return Transform(
        source_to_target=transform,
        scale=transform_scale(transform),
        rmse=float(result.inlier_rmse),
        fitness=float(result.fitness),
        iterations=iterations,
        method=f"{method}{' + tukey' if robust else ''}, {levels} levels",
    )


def _similarity_icp(
    o3d, src_full, tgt_full, transform, max_distance, levels, max_iterations, robust, bounds, meshes, device
):
    """Coarse to fine :func:`refine_similarity`: at each coarser level on voxel-downsampled
    points (twice the voxel size and correspondence distance per level) paired with their
    nearest samples; at the finest, first on at most COARSE_POINTS points a side paired with
    nearest samples (cheap), then on every point paired with the exact closest points of the
    meshes (``meshes``: (source mesh or None, target mesh or None)). Returns (transform,
    rmse, fitness, iterations run)."""
    given = (src_full.has_normals(), tgt_full.has_normals())
    for pc in (src_full, tgt_full):
        if not pc.has_normals():
            pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=max_distance / 2, max_nn=30))
    iterations = 0
    for level in reversed(range(1, levels)):
        distance = max_distance * 2**level
        ps, ns = _downsample(o3d, src_full, distance / 4, given[0])
        pt, nt = _downsample(o3d, tgt_full, distance / 4, given[1])
        if min(len(ps), len(pt)) < 3:
            continue
        on_target, on_source = _sample_closest(pt, nt), _sample_closest(ps, ns)
        transform, *_, steps = refine_similarity(
            ps, pt, transform, distance, on_target, on_source, bounds, robust, max_iterations
        )
        iterations += steps
    source, target = np.asarray(src_full.points), np.asarray(tgt_full.points)
    sn, tn = np.asarray(src_full.normals), np.asarray(tgt_full.normals)
    ks, kt = -(-len(source) // COARSE_POINTS), -(-len(target) // COARSE_POINTS)
    on_target, on_source = _sample_closest(target[::kt], tn[::kt]), _sample_closest(source[::ks], sn[::ks])
    transform, *_, steps = refine_similarity(
        source[::ks], target[::kt], transform, max_distance, on_target, on_source, bounds, robust, max_iterations
    )
    iterations += steps
    source_mesh, target_mesh = meshes
    on_target = _sample_closest(target, tn) if target_mesh is None else _surface_closest(target_mesh, device)
    on_source = _sample_closest(source, sn) if source_mesh is None else _surface_closest(source_mesh, device)
    transform, rmse, fitness, steps = refine_similarity(
        source, target, transform, max_distance, on_target, on_source, bounds, robust, max_iterations
    )
    return transform, rmse, fitness, iterations + steps


def _downsample(o3d, cloud, voxel: float, oriented: bool) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) voxel centroids and (N, 3) unit normals. Oriented normals (given, from a mesh)
    are averaged per voxel and voxels whose normals disagree (both sides of a thin part) are
    left out; estimated ones (unoriented) are estimated again on the centroids."""
    down = cloud.voxel_down_sample(voxel)
    points = np.asarray(down.points)
    if not oriented:
        down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
        return points, np.asarray(down.normals)
    normals = np.asarray(down.normals)
    length = np.linalg.norm(normals, axis=1)
    keep = length > 0.5
    return points[keep], normals[keep] / length[keep, None]


def refine_similarity(
    source: np.ndarray,
    target: np.ndarray,
    transform: np.ndarray,
    max_distance: float,
    on_target: Closest,
    on_source: Closest,
    scale_bounds: tuple[float, float] = (0.0, np.inf),
    robust: str | None = None,
    iterations: int = 100,
    tol: float = 1e-8,
    patience: int = 3,
) -> tuple[np.ndarray, float, float, int]:
    """Symmetric point-to-plane ICP over rotation, translation and uniform scale, from ``transform``.

    Args:
        source: (P, 3) points on the source surface, source frame, metres.
        target: (Q, 3) points on the target surface, metres.
        transform: (4, 4) starting source_to_target.
        max_distance: pairs farther apart than this (metres) are dropped.
        on_target: :data:`Closest` on the target surface (target frame).
        on_source: :data:`Closest` on the source surface (source frame).
        scale_bounds: (low, high) absolute bounds of the scale of the result.
        robust: ``"tukey"`` weights the pairs by Tukey's biweight (k = max_distance / 2).
        iterations, tol: at most this many iterations; stop when no parameter moves by tol
            (radians, metres, relative scale), or when the largest step has not shrunk in
            ``patience`` iterations (the pairs cycle: different shapes).

    Each iteration pairs every moved source point with its closest target point (normal of
    the target) and every target point with its closest point on the moved source (normal
    of the source), and solves the linearised problem
    min sum_set 1/|set| sum (((I + [w]x + s I)(p - c) + c + d - q) . n)^2 for the small
    rotation w, scale change s and translation d (c: the pairs' centroid), the scale change
    clipped to the bounds. Returns (transform, rmse of the source-to-target distances kept,
    fitness, iterations run).
    """
    from scipy.spatial.transform import Rotation

    m = np.asarray(transform, dtype=np.float64).copy()
    low, high = scale_bounds
    rmse, fitness, smallest, stale, step = float("nan"), 0.0, np.inf, 0, 0
    for step in range(1, iterations + 1):  # noqa: B007 (the count is returned)
        forward, backward, rmse, fitness = _pairs(source, target, m, on_target, on_source, max_distance)
        if min(len(forward[0]), len(backward[0])) < 3:
            break
        p, q, n = (np.concatenate([f, b]) for f, b in zip(forward, backward, strict=True))
        weight = np.repeat([1 / len(forward[0]), 1 / len(backward[0])], [len(forward[0]), len(backward[0])])
        center = p.mean(axis=0)  # scale about the centroid keeps the system well conditioned
        pc = p - center
        a = np.column_stack([np.cross(pc, n), n, np.sum(pc * n, axis=1)])
        b = -np.sum((p - q) * n, axis=1)
        if robust == "tukey":
            k = max_distance / 2
            weight = weight * np.where(np.abs(b) < k, (1 - (b / k) ** 2) ** 2, 0.0)
        normal, rhs = (a * weight[:, None]).T @ a, (a * weight[:, None]).T @ b  # normal equations, 7x7
        x = _solve(normal, rhs)
        now = transform_scale(m)
        if not low <= now * (1 + x[6]) <= high:  # hold the scale at the bound, solve the rest
            x[6] = np.clip(now * (1 + x[6]), low, high) / now - 1
            x[:6] = _solve(normal[:6, :6], rhs[:6] - x[6] * normal[:6, 6])
        w, d, sc = x[:3], x[3:6], x[6]
        r = Rotation.from_rotvec(w).as_matrix()
        update = np.eye(4)
        update[:3, :3] = (1.0 + sc) * r
        update[:3, 3] = center + d - update[:3, :3] @ center
        m = update @ m
        size = float(np.abs(x).max())
        if size < tol:
            break
        # Between different shapes the pairs can cycle without settling: stop once the
        # steps have not shrunk for a while.
        smallest, stale = (size, 0) if size < smallest else (smallest, stale + 1)
        if stale == patience:
            break
    return m, rmse, fitness, step


def coverage(source: np.ndarray, target: np.ndarray, transform: np.ndarray, max_distance: float) -> float:
    """Share of ``target`` points (Q, 3) with a point of ``source`` (P, 3), moved by ``transform``
    (4, 4), within ``max_distance`` metres: fitness seen from the target."""
    from scipy.spatial import cKDTree

    moved = np.asarray(source, np.float64) @ transform[:3, :3].T + transform[:3, 3]
    distance, _ = cKDTree(moved).query(np.asarray(target, np.float64), distance_upper_bound=max_distance)
    return float(np.mean(distance <= max_distance))


def _pairs(source, target, m, on_target, on_source, max_distance):
    """(points, partners, normals) source to target and target to source, moved by ``m``,
    pairs farther than ``max_distance`` dropped (the points are the ones ``m`` moves), then
    the rmse of the source-to-target distances kept and the share kept (fitness)."""
    moved = source @ m[:3, :3].T + m[:3, 3]
    q, n = on_target(moved)
    near = np.linalg.norm(moved - q, axis=1) <= max_distance
    inverse = np.linalg.inv(m)
    c, nc = on_source(target @ inverse[:3, :3].T + inverse[:3, 3])
    c = c @ m[:3, :3].T + m[:3, 3]
    nc = nc @ m[:3, :3].T
    nc /= np.maximum(np.linalg.norm(nc, axis=1, keepdims=True), 1e-12)
    back = np.linalg.norm(c - target, axis=1) <= max_distance
    gap = np.linalg.norm(moved[near] - q[near], axis=1)
    rmse = float(np.sqrt(np.mean(gap**2))) if near.any() else float("nan")
    return (moved[near], q[near], n[near]), (c[back], target[back], nc[back]), rmse, float(near.mean())


def _surface_closest(mesh, device: str = "cpu") -> Closest:
    """Closest points on a mesh's triangles and those triangles' normals."""
    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.geometry.surface import face_areas_normals

    distance = MeshDistance(mesh.vertices, mesh.faces, device)
    _, normals = face_areas_normals(mesh.vertices, mesh.faces)

    def closest(points):
        hit = distance.query(points, "normal")
        return hit.closest.astype(np.float64), normals[hit.face].astype(np.float64)

    return closest


def _sample_closest(points, normals) -> Closest:
    """Nearest sample and its normal."""
    from scipy.spatial import cKDTree

    tree = cKDTree(points)

    def closest(query):
        _, idx = tree.query(query)
        return points[idx], normals[idx]

    return closest


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x for a small symmetric system a x = b; least squares where a is singular (too few pairs)."""
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(a, b, rcond=None)[0]


def align_meshes(
    source: Mesh,
    target: Mesh,
    options: AlignOptions = AlignOptions(),
    landmarks_source: dict[str, int] | None = None,
    landmarks_target: dict[str, int] | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> Transform:
    """Align ``source`` onto ``target`` (both metres): landmarks first, then ICP on surface samples.

    Landmarks come from ``landmarks_source``/``landmarks_target`` (name -> vertex index,
    already checked against the meshes) or, where not given, from the meshes' own
    /landmarks; the names both have (at least three) start the alignment. The result's
    ``coverage`` is filled in. Warns (:class:`AvatarkitWarning`) when the scale stopped at
    a bound of ``scale_range`` or ICP found no pairs.

    Raises:
        OptionError: landmark files given but too few shared names.
        MeshError: a mesh whose faces all have zero area.
    """
    from avatarkit.geometry.surface import sample_surface, surface_normals
    from avatarkit.io.meshfile import check_sizes

    options.check()
    low, high = check_scale_range(options.scale_range)
    for side, mesh in (("source", source), ("target", target)):
        if not surface_area(mesh.vertices, mesh.faces) > 0:  # ICP samples surfaces: say which has none
            raise MeshError(f"the {side} mesh: {ZERO_AREA}, so there is no surface to align")
    check_sizes(source, target, "--units")
    init = np.eye(4)
    if options.landmarks:
        given = landmarks_source is not None or landmarks_target is not None
        ls, lt = source.landmark_points(landmarks_source), target.landmark_points(landmarks_target)
        if given and not (ls and lt):
            raise OptionError("landmarks are needed on both meshes (files or /landmarks)")
        common = [n for n in lt if n in ls]
        if given and len(common) < 3:
            raise OptionError(
                f"landmark names do not match: {len(common)} shared ({', '.join(common) or 'none'}); need 3"
            )
        if len(common) >= 3:
            init = landmark_similarity(
                np.array([ls[n] for n in common]), np.array([lt[n] for n in common]), options.scale,
                options.allow_reflection,
            )  # fmt: skip
    rng = np.random.default_rng(seed)
    ps, pt = sample_surface(source, options.samples, rng), sample_surface(target, options.samples, rng)
    max_distance = default_max_distance(pt.points) if options.max_distance is None else options.max_distance
    result = icp(
        ps.points,
        pt.points,
        init,
        options.method,
        options.scale,
        max_distance,
        options.robust,
        options.levels,
        source_normals=surface_normals(source, ps.face, ps.bary),
        target_normals=surface_normals(target, pt.face, pt.bary),
        target_mesh=target,
        source_mesh=source,
        scale_range=(low, high),
        device=device,
    )
    result.coverage = coverage(ps.points, pt.points, result.source_to_target, max_distance)
    start = transform_scale(init)
    if options.scale and not low * (1 + 1e-6) < result.scale / start < high * (1 - 1e-6):
        warnings.warn(
            f"the scale stopped at the bound of --scale-range ({result.scale:.3g}, {result.scale / start:.3g}x "
            "where it started): the shapes overlap too little to fix a scale; give landmarks, or check the inputs",
            AvatarkitWarning,
            stacklevel=2,
        )
    if not result.fitness > 0 or not np.isfinite(result.rmse):
        warnings.warn(
            f"ICP found no pairs closer than --max-distance ({result.method}): the transform is the "
            "starting one; give landmarks, a larger --max-distance or the right --units",
            AvatarkitWarning,
            stacklevel=2,
        )
    return result


def moved_mesh(mesh: Mesh, transform: Transform) -> Mesh:
    """``mesh`` moved by a similarity ``transform`` (source_to_target with its scale folded in)."""
    rigid = transform.source_to_target.copy()
    rigid[:3, :3] /= transform.scale
    return mesh.transformed(rigid, scale=transform.scale)
