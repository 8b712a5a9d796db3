"""Octree (coarse-to-fine) occupancy evaluation against a dense grid, as ``reconstruct``
will use it, with the exact occupancy of an Anny human standing in for a network.

Counts the function's queries of both at 128 and 256 (and times them, though a network
dominates real timings), and how many lattice points come out on the other side of 0.5.
"""

from __future__ import annotations

import time

import numpy as np
from common import anny_human, machine


def run() -> dict:
    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.reconstruct.extract import evaluate_dense, evaluate_octree

    mesh = anny_human()
    distance = MeshDistance(mesh.vertices, mesh.faces)

    def occupancy(points):
        return (distance.query(points, "winding").sdf < 0).astype(np.float32)

    lo = mesh.vertices.min(0) - 0.05
    bounds = np.stack([lo, lo + float(np.ptp(mesh.vertices, axis=0).max()) + 0.1])
    result = {**machine()}
    for resolution in (128, 256):
        t = time.perf_counter()
        octree, queried = evaluate_octree(occupancy, bounds, resolution, initial=32)
        octree_s = time.perf_counter() - t
        t = time.perf_counter()
        dense, all_points = evaluate_dense(occupancy, bounds, resolution)
        dense_s = time.perf_counter() - t
        result[str(resolution)] = {
            "octree_queries": int(queried),
            "dense_queries": int(all_points),
            "fewer_queries": round(all_points / queried, 1),
            "points_disagreeing": int(((octree > 0.5) != (dense > 0.5)).sum()),
            "octree_s": round(octree_s, 2),
            "dense_s": round(dense_s, 2),
        }
    return result
