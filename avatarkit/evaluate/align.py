"""Rigid and similarity alignment (the core of ``avatarkit icp-align``).

1. Optional coarse alignment from named landmarks: Umeyama's least-squares similarity
   (rotation, translation and, with ``scale``, a uniform scale). Never a reflection unless
   ``allow_reflection``: a reflected solution is replaced by the best proper rotation.
2. ICP with open3d's registration, coarse to fine over ``levels`` voxel sizes:
   ``point-to-plane`` (default; normals estimated where absent), ``point-to-point`` or
   ``generalized`` (GICP). Correspondences farther than ``max_distance`` are dropped
   (trimmed ICP, for partial overlap), and ``robust="tukey"`` down-weights the rest with
   Tukey's biweight.
3. With ``scale``: open3d estimates scale only point to point, which is biased when the
   two surfaces are sampled differently; so the point-to-point similarity is refined by
   our own point-to-plane similarity ICP (rotation, translation and scale linearised and
   solved together each iteration, correspondences from a k-d tree).

Transforms map the source onto the target: ``x_target = M @ x_source``, scale folded into M.
"""

from __future__ import annotations

import numpy as np

from avatarkit.errors import OptionError
from avatarkit.structures import Transform

METHODS = ("point-to-plane", "point-to-point", "generalized")


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
) -> Transform:
    """Align point set ``source`` (P, 3) to ``target`` (Q, 3), metres; see the module docstring.

    ``max_distance`` defaults to 5% of the target's size; each coarser level uses twice the
    previous level's voxel size and correspondence distance. ``target_mesh`` (a Mesh of the
    target surface) lets the scale refinement pair points with the exact closest surface
    point instead of the nearest target sample, which removes a curvature bias.
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
    size = float(np.linalg.norm(np.ptp(target, axis=0)))
    max_distance = 0.05 * size if max_distance is None else float(max_distance)
    if not max_distance > 0:
        raise OptionError(f"--max-distance must be positive, got {max_distance}")

    def cloud(points, normals):
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
        if normals is not None:
            pc.normals = o3d.utility.Vector3dVector(np.asarray(normals, dtype=np.float64))
        return pc

    src_full, tgt_full = cloud(source, source_normals), cloud(target, target_normals)
    transform = np.eye(4) if init is None else np.asarray(init, dtype=np.float64)
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
        if method == "point-to-point" or scale:
            estimation = reg.TransformationEstimationPointToPoint(with_scaling=scale)
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
        if method == "generalized" and not scale:
            result = reg.registration_generalized_icp(src, tgt, distance, transform, estimation, criteria)
        else:
            result = reg.registration_icp(src, tgt, distance, transform, estimation, criteria)
        transform = np.asarray(result.transformation)
        iterations += max_iterations  # open3d does not report how many ran: this is the budget
    rmse, fitness = float(result.inlier_rmse), float(result.fitness)
    if scale:
        if target_mesh is not None:
            closest = _surface_closest(target_mesh)
        else:
            if target_normals is None:
                tgt_full.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=max_distance / 2, max_nn=30))
            closest = _sample_closest(np.asarray(target, np.float64), np.asarray(tgt_full.normals))
        transform, rmse, fitness, steps = refine_similarity(
            np.asarray(source, np.float64), closest, transform, max_distance
        )
        iterations += steps
    s = float(np.cbrt(abs(np.linalg.det(transform[:3, :3]))))
    return Transform(
        source_to_target=transform,
        scale=s,
        rmse=rmse,
        fitness=fitness,
        iterations=iterations,
        method=f"{method}{' + scale' if scale else ''}{' + tukey' if robust else ''}, {levels} levels",
    )


def refine_similarity(source, closest, transform, max_distance, iterations: int = 100, tol: float = 1e-8):
    """Point-to-plane ICP over rotation, translation and uniform scale, from ``transform``.

    Each iteration pairs every moved source point with ``closest(points) -> (points,
    normals)`` on the target (pairs farther than ``max_distance`` dropped) and solves the
    linearised problem min sum(((I + [w]x + s I) p + d - q) . n)^2 for the small rotation w,
    scale change s and translation d. Returns (transform, rmse, fitness, iterations run).
    """
    m = np.asarray(transform, dtype=np.float64).copy()
    rmse, fitness, step = float("nan"), 0.0, 0
    for step in range(1, iterations + 1):  # noqa: B007 (the count is returned)
        p = source @ m[:3, :3].T + m[:3, 3]
        q, n = closest(p)
        keep = np.linalg.norm(p - q, axis=1) <= max_distance
        fitness = float(keep.mean())
        if keep.sum() < 7:
            break
        p, q, n = p[keep], q[keep], n[keep]
        center = p.mean(axis=0)  # scale about the centroid keeps the system well conditioned
        pc = p - center
        a = np.column_stack([np.cross(pc, n), n, np.sum(pc * n, axis=1)])
        b = -np.sum((p - q) * n, axis=1)
        x, *_ = np.linalg.lstsq(a, b, rcond=None)
        w, d, sc = x[:3], x[3:6], x[6]
        angle = np.linalg.norm(w)
        r = np.eye(3) if angle < 1e-15 else _axis_angle(w / angle, angle)
        update = np.eye(4)
        update[:3, :3] = (1.0 + sc) * r
        update[:3, 3] = center + d - update[:3, :3] @ center
        m = update @ m
        rmse = float(np.sqrt(np.mean(b**2)))
        if np.abs(x).max() < tol:
            break
    return m, rmse, fitness, step


def _surface_closest(mesh):
    """Closest points on a mesh's triangles and those triangles' normals."""
    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.geometry.surface import face_areas_normals

    distance = MeshDistance(mesh.vertices, mesh.faces)
    _, normals = face_areas_normals(mesh.vertices, mesh.faces)

    def closest(points):
        hit = distance.query(points, "normal")
        return hit.closest.astype(np.float64), normals[hit.face].astype(np.float64)

    return closest


def _sample_closest(points, normals):
    """Nearest target sample and its normal."""
    from scipy.spatial import cKDTree

    tree = cKDTree(points)

    def closest(query):
        _, idx = tree.query(query)
        return points[idx], normals[idx]

    return closest


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
