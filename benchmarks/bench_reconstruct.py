"""reconstruct: coarse-to-fine (octree) occupancy evaluation against a dense grid.

1. A trained PIFu (the small config, 300 steps on four Anny people, as the demo trains it)
   reconstructs a held-out person from one view at 256^3, through the octree (PIFu's rule,
   tolerance 0.01, and sides of 0.5 alone) and through every lattice point: network
   queries, time, and lattice points on the other side of 0.5 from the dense result.
2. The exact occupancy of an Anny human (winding numbers) in place of a network, at 128
   and 256: the same counts for a function with a perfectly sharp surface.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import anny_human, machine, pifu_data, train_pifu


def _network(resolution: int = 256) -> dict:
    from avatarkit.methods.configs import replace
    from avatarkit.methods.pifu.config import PRESETS
    from avatarkit.methods.registry import load_trained
    from avatarkit.reconstruct.extract import evaluate_dense, evaluate_octree
    from avatarkit.reconstruct.inputs import read_view_input
    from avatarkit.reconstruct.volume import reconstruct_view, view_box

    data = pifu_data()
    config = replace(PRESETS["small"], max_steps=300, val_fraction=0.25, val_every=300, mesh_every=0)
    with tempfile.TemporaryDirectory() as out:
        result, train_s = train_pifu(data, Path(out), config)
        trained = load_trained(Path(out), "cpu")
    stem = trained.state["split"]["val"][0]
    view = read_view_input(data / "views" / f"{stem}.h5", 0)
    cameras, target = view.camera, view.target
    fn = trained.predictor("cpu").values(view)
    w2c = cameras.world_to_cam[0]
    bounds = view_box(cameras, target)

    def in_camera(points):
        return fn((points - w2c[:3, 3]) @ w2c[:3, :3])

    t = time.perf_counter()
    dense, dense_queries = evaluate_dense(in_camera, bounds, resolution)
    dense_s = time.perf_counter() - t
    out = {"train_s": round(train_s, 1), "val_iou": round(result.metrics.get("val/iou", float("nan")), 3)}
    out["dense"] = {"queries": int(dense_queries), "s": round(dense_s, 2)}
    for name, tolerance in (("octree_pifu_rule", 0.01), ("octree_sides_only", None)):
        t = time.perf_counter()
        values, queries = evaluate_octree(in_camera, bounds, resolution, 32, tolerance=tolerance)
        octree_s = time.perf_counter() - t
        out[name] = {
            "queries": int(queries),
            "fewer_queries": round(dense_queries / queries, 1),
            "s": round(octree_s, 2),
            "speedup": round(dense_s / octree_s, 1),
            "lattice_points_disagreeing": int(((values > 0.5) != (dense > 0.5)).sum()),
        }
    t = time.perf_counter()
    mesh = reconstruct_view(fn, cameras, target, resolution).mesh
    out["reconstruct_view_s"] = round(time.perf_counter() - t, 2)  # octree, marching cubes, largest part
    out["faces"] = len(mesh.faces)
    return out


def _exact() -> dict:
    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.reconstruct.extract import evaluate_dense, evaluate_octree

    mesh = anny_human()
    distance = MeshDistance(mesh.vertices, mesh.faces)

    def occupancy(points):
        return (distance.query(points, "winding").sdf < 0).astype(np.float32)

    lo = mesh.vertices.min(0) - 0.05
    bounds = np.stack([lo, lo + float(np.ptp(mesh.vertices, axis=0).max()) + 0.1])
    out = {}
    for resolution in (128, 256):
        t = time.perf_counter()
        octree, queried = evaluate_octree(occupancy, bounds, resolution, initial=32)
        octree_s = time.perf_counter() - t
        t = time.perf_counter()
        dense, all_points = evaluate_dense(occupancy, bounds, resolution)
        dense_s = time.perf_counter() - t
        out[str(resolution)] = {
            "octree_queries": int(queried),
            "dense_queries": int(all_points),
            "fewer_queries": round(all_points / queried, 1),
            "points_disagreeing": int(((octree > 0.5) != (dense > 0.5)).sum()),
            "octree_s": round(octree_s, 2),
            "dense_s": round(dense_s, 2),
        }
    return out


def run() -> dict:
    return {**machine(), "pifu_256": _network(), "exact_occupancy": _exact()}
