"""sample-sdf against mesh-to-sdf, on an Anny human (about 27k faces), 250k points.

Both sides make DeepSDF-style near-surface samples: ours with the ``deepsdf`` preset,
mesh-to-sdf with ``sample_sdf_near_surface`` and its defaults (virtual scans rendered with
OpenGL on EGL, signs from 11 nearest scan normals). Both are timed in this process.

Sign errors are counted against a reference winding number (fast winding beta = 2, the
value of Barill et al.) on the watertight mesh, for each side's own points. The same is
done after removing 2% of the faces at random, as scans with holes. Distances are checked
against a brute-force closest point in float64 on a subset.
"""

from __future__ import annotations

import os
import time

import numpy as np
from common import anny_human, best, machine

POINTS = 250_000


def _brute_distance(vertices, faces, points) -> np.ndarray:
    """Exact unsigned distance, float64, every triangle (trimesh's naive closest point)."""
    import trimesh

    mesh = trimesh.Trimesh(vertices.astype(np.float64), faces, process=False)
    _, distance, _ = trimesh.proximity.closest_point_naive(mesh, points.astype(np.float64))
    return distance


def _mesh_to_sdf(vertices, faces):
    """mesh-to-sdf's samples, back in metres (it works in the unit sphere of the mesh)."""
    import mesh_to_sdf
    import trimesh

    tm = trimesh.Trimesh(vertices, faces, process=False)
    center = tm.bounding_box.centroid
    radius = np.linalg.norm(tm.vertices - center, axis=1).max()
    points, sdf = mesh_to_sdf.sample_sdf_near_surface(tm, number_of_points=POINTS)
    return points * radius + center, sdf * radius


def run() -> dict:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    from avatarkit.geometry.sample_sdf import preset_config, sample_sdf
    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.structures import Mesh

    mesh = anny_human()
    config = preset_config("deepsdf", points=POINTS)
    t = time.perf_counter()
    ours = sample_sdf(mesh, config, seed=0)
    ours_first = time.perf_counter() - t
    ours_time = best(lambda: sample_sdf(mesh, config, seed=0))

    m2s_times = []
    for _ in range(2):
        t = time.perf_counter()
        m2s_points, m2s_sdf = _mesh_to_sdf(mesh.vertices, mesh.faces)
        m2s_times.append(time.perf_counter() - t)

    reference = MeshDistance(mesh.vertices, mesh.faces)

    def sign_errors(points, sdf):
        truth = reference.query(points, "winding", winding_accuracy=2.0).sdf < 0
        return float(np.mean((sdf < 0) != truth))

    n_near = sum(ours.attrs["n_near"])
    rng = np.random.default_rng(0)
    keep = np.ones(len(mesh.faces), bool)
    keep[rng.choice(len(keep), size=len(keep) // 50, replace=False)] = False
    holed = Mesh(mesh.vertices, mesh.faces[keep])
    holed_ours = sample_sdf(holed, config, seed=0)
    holed_m2s_points, holed_m2s_sdf = _mesh_to_sdf(holed.vertices, holed.faces)
    holed_distance = MeshDistance(holed.vertices, holed.faces)

    subset = rng.choice(POINTS, 2000, replace=False)
    exact = _brute_distance(mesh.vertices, mesh.faces, ours.points[subset])
    result = {
        **machine(),
        "faces": len(mesh.faces),
        "points": POINTS,
        "ours_s": round(ours_time, 3),
        "ours_first_call_s": round(ours_first, 3),
        "mesh_to_sdf_s": round(min(m2s_times), 2),
        "speedup": round(min(m2s_times) / ours_time, 1),
        "ours_sign_error": sign_errors(ours.points, ours.sdf),
        "ours_sign_error_near": sign_errors(ours.points[:n_near], ours.sdf[:n_near]),
        "mesh_to_sdf_sign_error": sign_errors(m2s_points, m2s_sdf),
        "mesh_to_sdf_sign_error_near": sign_errors(
            m2s_points[: int(POINTS * 47 / 50)], m2s_sdf[: int(POINTS * 47 / 50)]
        ),
        "holes_2pct_ours_sign_error": sign_errors(holed_ours.points, holed_ours.sdf),
        "holes_2pct_mesh_to_sdf_sign_error": sign_errors(holed_m2s_points, holed_m2s_sdf),
        "max_distance_error_m": float(np.abs(np.abs(ours.sdf[subset]) - exact).max()),
    }
    for sign in ("normal", "parity"):
        sdf = holed_distance.query(holed_ours.points, sign).sdf
        result[f"holes_2pct_{sign}_sign_error"] = sign_errors(holed_ours.points, sdf)
    for sign in ("normal", "parity"):
        result[f"ours_{sign}_sign_s"] = round(
            best(lambda s=sign: sample_sdf(mesh, preset_config("deepsdf", points=POINTS, sign=s), seed=0)), 3
        )
    return result
