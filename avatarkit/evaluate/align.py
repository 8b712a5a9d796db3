"""Rigid and similarity alignment (the core of ``avatarkit icp-align``).

1. Optional coarse alignment from named landmarks: Umeyama's least-squares similarity
   (rotation, translation and, with ``scale``, a uniform scale). Never a reflection unless
   ``allow_reflection``: a reflected solution is replaced by the best proper rotation.
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
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from avatarkit.errors import OptionError
from avatarkit.structures import Transform

METHODS = ("point-to-plane", "point-to-point", "generalized")
DEFAULT_SCALE_RANGE = (0.5, 2.0)
"""Bounds of the ICP scale relative to the starting (landmark or given) scale."""

COARSE_POINTS = 10_000
"""Points a side for the first, nearest-sample pass of the similarity ICP."""

Closest = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``closest(points (N, 3)) -> (closest surface points (N, 3), their unit normals (N, 3))``."""


def umeyama(source: np.ndarray, target: np.ndarray, scale: bool = True, allow_reflection: bool = False) -> np.ndarray:
    """4x4 similarity M minimising sum |M source_i - target_i|^2 (Umeyama 1991)."""
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3 or len(source) < 3:
        raise OptionError(f"alignment needs at least 3 matching 3D points, got {source.shape} and {target.shape}")
    mu_s, mu_t = source.mean(0), target.mean(0)
    s_c, t_c = source - mu_s, target - mu_t
    cov = t_c.T @ s_c / len(source)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if not allow_reflection and np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    r = u @ sign @ vt
    var = (s_c**2).sum() / len(source)
    c = float(np.trace(np.diag(d) @ sign) / var) if scale and var > 0 else 1.0
    m = np.eye(4)
    m[:3, :3] = c * r
    m[:3, 3] = mu_t - c * r @ mu_s
    return m


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
) -> Transform:
    """Align point set ``source`` (P, 3) to ``target`` (Q, 3), metres; see the module docstring.

    ``max_distance`` (metres) defaults to :func:`default_max_distance`; each coarser level
    uses twice the previous level's voxel size and correspondence distance. With ``scale``,
    ``target_mesh`` and ``source_mesh`` (Meshes of the two surfaces, source in its own
    frame) let the similarity step pair points with exact closest surface points instead
    of the nearest samples, which removes a curvature bias; ``scale_range`` (low, high)
    bounds the scale to ``[low, high]`` times the scale of ``init``.
    """
    from avatarkit.backends.open3d import import_open3d

    o3d = import_open3d()
    reg = o3d.pipelines.registration
    if method not in METHODS:
        raise OptionError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if robust not in (None, "tukey"):
        raise OptionError(f"--robust must be tukey, got {robust!r}")
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
            o3d, src_full, tgt_full, transform, max_distance, levels, max_iterations, robust, bounds, meshes
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


def _similarity_icp(o3d, src_full, tgt_full, transform, max_distance, levels, max_iterations, robust, bounds, meshes):
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
    on_target = _sample_closest(target, tn) if target_mesh is None else _surface_closest(target_mesh)
    on_source = _sample_closest(source, sn) if source_mesh is None else _surface_closest(source_mesh)
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
        angle = np.linalg.norm(w)
        r = np.eye(3) if angle < 1e-15 else _axis_angle(w / angle, angle)
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


def _surface_closest(mesh) -> Closest:
    """Closest points on a mesh's triangles and those triangles' normals."""
    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.geometry.surface import face_areas_normals

    distance = MeshDistance(mesh.vertices, mesh.faces)
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


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
