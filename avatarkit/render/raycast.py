"""G-buffers by ray casting (warp; the same kernel on the CPU and on CUDA).

One ray per pixel centre: from the camera centre (perspective) or from the image plane
along the viewing axis (orthographic). Each ray returns the face it hits first, the
barycentric coordinates of the hit, and the hit's depth along the camera's +Z.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from avatarkit.backends.warp import import_warp, launch
from avatarkit.render.cameras import Cameras


class Hits(NamedTuple):
    """Per pixel of each view, (N, H, W[, 3]): ``face`` (-1 for background), ``bary`` (weights
    of the face's corners), ``depth`` (metres along camera +Z, 0 on background)."""

    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray


@functools.cache
def _kernels():
    wp = import_warp()

    @wp.kernel
    def primary(
        mesh: wp.uint64,
        cam_to_world: wp.array(dtype=wp.mat33),
        centers: wp.array(dtype=wp.vec3),
        intrinsics: wp.array(dtype=wp.vec4),
        orthographic: int,
        width: int,
        height: int,
        offset: int,
        max_t: float,
        face: wp.array(dtype=int),
        bary: wp.array(dtype=wp.vec3),
        depth: wp.array(dtype=float),
    ):
        j = wp.tid()  # this launch's output slot
        i = offset + j  # the pixel across all views
        pixels = width * height
        view = i // pixels
        u = float((i % pixels) % width)
        v = float((i % pixels) // width)
        k = intrinsics[view]
        rot = cam_to_world[view]
        x = (u - k[2]) / k[0]
        y = (v - k[3]) / k[1]
        forward = rot * wp.vec3(0.0, 0.0, 1.0)
        if orthographic != 0:
            start = centers[view] + rot * wp.vec3(x, y, 0.0) - forward * max_t * 0.5
            direction = forward
        else:
            start = centers[view]
            direction = wp.normalize(rot * wp.vec3(x, y, 1.0))
        q = wp.mesh_query_ray(mesh, start, direction, max_t)
        if q.result:
            face[j] = q.face
            bary[j] = wp.vec3(q.u, q.v, 1.0 - q.u - q.v)
            depth[j] = wp.dot(start + q.t * direction - centers[view], forward)
        else:
            face[j] = -1
            bary[j] = wp.vec3(0.0)
            depth[j] = 0.0

    @wp.kernel
    def occluded(
        mesh: wp.uint64,
        origins: wp.array(dtype=wp.vec3),
        directions: wp.array(dtype=wp.vec3),
        max_t: float,
        hit: wp.array(dtype=wp.uint8),
    ):
        i = wp.tid()
        if wp.mesh_query_ray_anyhit(mesh, origins[i], directions[i], max_t):
            hit[i] = wp.uint8(1)
        else:
            hit[i] = wp.uint8(0)

    return primary, occluded


class RayCaster:
    """A mesh prepared for camera and shadow rays on ``device`` (``cpu`` or ``cuda[:N]``)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, device: str = "cpu") -> None:
        from avatarkit.geometry.sdf import MeshDistance

        self._distance = MeshDistance(vertices, faces, device)  # its BVH answers ray queries too
        self.device = self._distance.device
        self.extent = float(np.linalg.norm(vertices.max(0) - vertices.min(0)))
        self._far = float(np.abs(vertices).max()) * 4 + self.extent * 4

    def primary(self, cameras: Cameras, views: slice | None = None) -> Hits:
        """First hits of the pixel-centre rays of ``cameras`` (all views or a slice)."""
        wp = import_warp()
        views = views or slice(0, len(cameras))
        first, count = views.start, views.stop - views.start
        pixels = cameras.width * cameras.height
        n = count * pixels
        r = cameras.world_to_cam[:, :3, :3]
        cam_to_world = np.transpose(r, (0, 2, 1))
        intr = np.stack([cameras.K[:, 0, 0], cameras.K[:, 1, 1], cameras.K[:, 0, 2], cameras.K[:, 1, 2]], -1)
        distance_to_scene = np.linalg.norm(cameras.centers(), axis=1).max() if len(cameras) else 0.0
        max_t = float(self._far + 2 * distance_to_scene)
        face = wp.empty(n, dtype=int, device=self.device)
        bary = wp.empty(n, dtype=wp.vec3, device=self.device)
        depth = wp.empty(n, dtype=float, device=self.device)
        launch(
            _kernels()[0],
            n,
            [
                self._distance.mesh_id,
                wp.array(cam_to_world.astype(np.float32), dtype=wp.mat33, device=self.device),
                wp.array(cameras.centers().astype(np.float32), dtype=wp.vec3, device=self.device),
                wp.array(intr.astype(np.float32), dtype=wp.vec4, device=self.device),
                int(cameras.projection == "orthographic"),
                int(cameras.width),
                int(cameras.height),
                int(first * pixels),
                max_t,
            ],
            [face, bary, depth],
            self.device,
            offset=7,
        )
        shape = (count, cameras.height, cameras.width)
        return Hits(face.numpy().reshape(shape), bary.numpy().reshape((*shape, 3)), depth.numpy().reshape(shape))

    def occluded(self, origins: np.ndarray, directions: np.ndarray, max_t: float | None = None) -> np.ndarray:
        """(P,) bool: whether each ray (origin, unit direction) hits the mesh within ``max_t``."""
        wp = import_warp()
        n = len(origins)
        hit = wp.empty(n, dtype=wp.uint8, device=self.device)
        launch(
            _kernels()[1],
            n,
            [
                self._distance.mesh_id,
                wp.array(np.ascontiguousarray(origins, dtype=np.float32), dtype=wp.vec3, device=self.device),
                wp.array(np.ascontiguousarray(directions, dtype=np.float32), dtype=wp.vec3, device=self.device),
                float(max_t or self._far),
            ],
            [hit],
            self.device,
        )
        return hit.numpy().astype(bool)
