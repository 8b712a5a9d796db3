"""voxelize against trimesh and open3d, on an Anny human (about 27k faces).

Grids of 256 and 384 voxels along the longest side of the mesh's box. Peers, timed in
this process:

- trimesh ``mesh.voxelized(pitch).fill()``: surface voxels by subdivision, then holes filled;
- open3d ``RaycastingScene.compute_occupancy`` on our voxel centres (ray parity, all cores).

IoU is measured against a reference winding number (per voxel centre, fast winding beta
= 2) evaluated on each side's own grid.
"""

from __future__ import annotations

import time

import numpy as np
from common import anny_human, best, machine


def _iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def run() -> dict:
    import trimesh

    from avatarkit.backends.open3d import import_open3d
    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.geometry.voxelize import plan_grid, voxelize

    o3d = import_open3d()
    mesh = anny_human()
    distance = MeshDistance(mesh.vertices, mesh.faces)

    def reference(centers: np.ndarray) -> np.ndarray:
        return distance.query(centers.reshape(-1, 3), "winding", winding_accuracy=2.0).sdf < 0

    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(mesh.vertices.astype(np.float32)), o3d.core.Tensor(mesh.faces.astype(np.uint32))
    )
    result = {**machine(), "faces": len(mesh.faces)}
    voxelize(mesh, plan_grid(mesh, resolution=32))  # compile and load the kernels
    for resolution in (256, 384):
        grid = plan_grid(mesh, resolution=resolution, margin=0.0)
        ours = voxelize(mesh, grid)
        ours_s = best(lambda g=grid: voxelize(mesh, g))
        parity_s = best(lambda g=grid: voxelize(mesh, g, sign="parity"))
        surface_s = best(lambda g=grid: voxelize(mesh, g, surface=True))
        centers = ours.centers().astype(np.float32)
        truth = reference(centers).reshape(grid.shape)

        t = time.perf_counter()
        tv = tm.voxelized(grid.pitch).fill()
        trimesh_s = time.perf_counter() - t
        index = np.argwhere(np.ones(tv.shape, bool))
        tv_centers = trimesh.transform_points(index.astype(np.float64), tv.transform)
        tv_truth = reference(tv_centers.astype(np.float32)).reshape(tv.shape)

        t = time.perf_counter()
        o3d_occ = scene.compute_occupancy(o3d.core.Tensor(centers.reshape(-1, 3))).numpy().reshape(grid.shape) > 0
        open3d_s = time.perf_counter() - t
        result[f"{resolution}"] = {
            "shape": list(grid.shape),
            "ours_s": round(ours_s, 3),
            "ours_parity_s": round(parity_s, 3),
            "ours_with_surface_shell_s": round(surface_s, 3),
            "trimesh_fill_s": round(trimesh_s, 3),
            "open3d_occupancy_s": round(open3d_s, 3),
            "speedup_vs_trimesh": round(trimesh_s / ours_s, 1),
            "speedup_vs_open3d": round(open3d_s / ours_s, 1),
            "iou_ours": _iou(ours.occupancy, truth),
            "iou_trimesh": _iou(tv.matrix.astype(bool), tv_truth),
            "iou_open3d": _iou(o3d_occ, truth),
        }
    # a scan with holes: 2% of the faces removed; the winding number is evaluated per block/voxel
    from avatarkit.structures import Mesh

    rng = np.random.default_rng(0)
    keep = np.ones(len(mesh.faces), bool)
    keep[rng.choice(len(keep), size=len(keep) // 50, replace=False)] = False
    holed = Mesh(mesh.vertices, mesh.faces[keep])
    grid = plan_grid(mesh, resolution=256, margin=0.0)
    holed_vox = voxelize(holed, grid)
    truth = reference(holed_vox.centers().astype(np.float32)).reshape(grid.shape)  # the closed mesh
    holed_tm = trimesh.Trimesh(holed.vertices, holed.faces, process=False)
    t = time.perf_counter()
    tv = holed_tm.voxelized(grid.pitch).fill()
    trimesh_s = time.perf_counter() - t
    tv_centers = trimesh.transform_points(np.argwhere(np.ones(tv.shape, bool)).astype(np.float64), tv.transform)
    result["256_holes_2pct"] = {
        "ours_s": round(best(lambda: voxelize(holed, grid)), 3),
        "method": holed_vox.attrs["method"],
        "trimesh_fill_s": round(trimesh_s, 3),
        "iou_ours_vs_closed_mesh": _iou(holed_vox.occupancy, truth),
        "iou_trimesh_vs_closed_mesh": _iou(
            tv.matrix.astype(bool), reference(tv_centers.astype(np.float32)).reshape(tv.shape)
        ),
    }
    return result
