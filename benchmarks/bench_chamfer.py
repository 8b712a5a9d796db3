"""evaluate-chamfer's nearest neighbours against scipy cKDTree single-threaded (as the H3DS
evaluation code uses it) and open3d's ``compute_metrics``, at 1M points per side.

Both point sets are area-uniform samplings of the same Anny human (two seeds), so every
side computes the same two-way Chamfer distance; the values are checked to agree.
"""

from __future__ import annotations

import time

import numpy as np
from common import anny_human, machine

POINTS = 1_000_000


def run() -> dict:
    from scipy.spatial import cKDTree

    from avatarkit.backends.open3d import import_open3d
    from avatarkit.evaluate.chamfer import Protocol, evaluate_meshes, nearest
    from avatarkit.geometry.surface import sample_surface

    o3d = import_open3d()
    mesh = anny_human()
    a = sample_surface(mesh, POINTS, np.random.default_rng(1)).points
    b = sample_surface(mesh, POINTS, np.random.default_rng(2)).points

    t = time.perf_counter()
    ours = 0.5 * (nearest(a, b)[0].mean() + nearest(b, a)[0].mean())
    ours_s = time.perf_counter() - t

    t = time.perf_counter()
    ref = 0.5 * (cKDTree(b, leafsize=10).query(a, k=1)[0].mean() + cKDTree(a, leafsize=10).query(b, k=1)[0].mean())
    ckdtree_s = time.perf_counter() - t

    pa, pb = o3d.t.geometry.PointCloud(o3d.core.Tensor(a)), o3d.t.geometry.PointCloud(o3d.core.Tensor(b))
    metric = o3d.t.geometry.Metric
    t = time.perf_counter()
    values = pa.compute_metrics(pb, [metric.ChamferDistance], o3d.t.geometry.MetricParameters())
    open3d_s = time.perf_counter() - t

    t = time.perf_counter()
    evaluate_meshes(mesh, mesh, Protocol("bench", samples=POINTS))
    full_s = time.perf_counter() - t
    return {
        **machine(),
        "points_per_side": POINTS,
        "ours_s": round(ours_s, 3),
        "ckdtree_single_thread_s": round(ckdtree_s, 3),
        "open3d_compute_metrics_s": round(open3d_s, 3),
        "speedup_vs_ckdtree": round(ckdtree_s / ours_s, 2),
        "speedup_vs_open3d": round(open3d_s / ours_s, 2),
        "chamfer_ours_m": float(ours),
        "chamfer_ckdtree_m": float(ref),
        "chamfer_open3d_raw": float(values.numpy()[0]),
        "full_evaluation_1M_s": round(full_s, 2),
    }
