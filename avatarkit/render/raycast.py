"""Visibility and G-buffers (warp; the same kernels on the CPU and on CUDA).

Each pixel samples the surface at its centre, as a ray through it would: from the camera
centre (perspective) or along the viewing axis (orthographic). The first surface along
that ray is found by rasterizing the triangles into a depth buffer (fast where most rays
would miss); views where a triangle reaches behind a perspective camera are ray-cast on
the BVH instead. Then one kernel intersects each covered pixel's ray with its face
exactly, giving barycentrics, depth (metres along camera +Z), the interpolated world
normal, the mesh UV and the label of the nearest corner. Shadow rays use the BVH.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from avatarkit.backends.warp import cpu_threads, import_warp, launch
from avatarkit.errors import OptionError
from avatarkit.structures import Cameras


class GBuffer(NamedTuple):
    """Per pixel of each view, (N, H, W[, C]): ``face`` (-1 on background), ``bary`` (weights
    of the face's corners), ``depth`` (0 on background), ``normal`` (unit, world frame, 0 on
    background), ``uv`` (-1 on background; None without UVs), ``label`` (-1 on background;
    None without labels)."""

    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray
    normal: np.ndarray
    uv: np.ndarray | None
    label: np.ndarray | None


@functools.cache
def _kernels():
    """This module's kernels, defined together (warp builds a module's kernels as one unit)."""
    wp = import_warp()

    @wp.func
    def pixel_ray(i: int, width: int, height: int, rot: wp.mat33, center: wp.vec3, k: wp.vec4, orthographic: int):
        # origin and direction of the ray through the centre of pixel i of its view
        pixels = width * height
        u = float((i % pixels) % width)
        v = float((i % pixels) // width)
        forward = rot * wp.vec3(0.0, 0.0, 1.0)
        local = wp.vec3((u - k[2]) / k[0], (v - k[3]) / k[1], 0.0)
        if orthographic != 0:
            return center + rot * local - forward, forward
        return center, rot * (local + wp.vec3(0.0, 0.0, 1.0))

    @wp.kernel
    def primary(
        mesh: wp.uint64,
        cam_to_world: wp.array(dtype=wp.mat33),
        centers: wp.array(dtype=wp.vec3),
        intrinsics: wp.array(dtype=wp.vec4),
        orthographic: int,
        width: int,
        height: int,
        view: int,
        max_t: float,
        offset: int,
        face: wp.array(dtype=int),
    ):
        j = wp.tid()
        i = offset + j
        origin, direction = pixel_ray(
            i, width, height, cam_to_world[view], centers[view], intrinsics[view], orthographic
        )
        q = wp.mesh_query_ray(mesh, origin, wp.normalize(direction), max_t)
        if q.result:
            face[j] = q.face
        else:
            face[j] = -1

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

    @wp.func
    def to_pixel(p: wp.vec3, rot: wp.mat33, trans: wp.vec3, k: wp.vec4, orthographic: int) -> wp.vec3:
        c = rot * p + trans
        if orthographic != 0:
            return wp.vec3(k[0] * c[0] + k[2], k[1] * c[1] + k[3], c[2])
        return wp.vec3(k[0] * c[0] / c[2] + k[2], k[1] * c[1] / c[2] + k[3], c[2])

    @wp.kernel
    def raster(
        corners: wp.array(dtype=wp.vec3),
        world_to_cam: wp.array(dtype=wp.mat33),
        translations: wp.array(dtype=wp.vec3),
        intrinsics: wp.array(dtype=wp.vec4),
        orthographic: int,
        width: int,
        height: int,
        faces: int,
        first_view: int,
        offset: int,
        write_face: int,
        zbuffer: wp.array(dtype=float),
        face_buffer: wp.array(dtype=int),
        clipped: wp.array(dtype=int),
    ):
        # one thread per (view, triangle): cover the pixel centres inside its projection;
        # pass 0 keeps the nearest depth per pixel, pass 1 writes the face that has it
        i = offset + wp.tid()
        local = i // faces
        view = first_view + local
        f = i % faces
        rot = world_to_cam[view]
        trans = translations[view]
        k = intrinsics[view]
        a = to_pixel(corners[3 * f], rot, trans, k, orthographic)
        b = to_pixel(corners[3 * f + 1], rot, trans, k, orthographic)
        c = to_pixel(corners[3 * f + 2], rot, trans, k, orthographic)
        if orthographic == 0 and (a[2] <= 1.0e-6 or b[2] <= 1.0e-6 or c[2] <= 1.0e-6):
            clipped[local] = 1  # a triangle reaches behind the camera: ray-cast this view instead
            return
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if wp.abs(area) < 1.0e-12:
            return
        x0 = wp.max(int(wp.ceil(wp.min(wp.min(a[0], b[0]), c[0]))), 0)
        x1 = wp.min(int(wp.floor(wp.max(wp.max(a[0], b[0]), c[0]))), width - 1)
        y0 = wp.max(int(wp.ceil(wp.min(wp.min(a[1], b[1]), c[1]))), 0)
        y1 = wp.min(int(wp.floor(wp.max(wp.max(a[1], b[1]), c[1]))), height - 1)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                px = float(x)
                py = float(y)
                w0 = ((c[0] - b[0]) * (py - b[1]) - (c[1] - b[1]) * (px - b[0])) / area
                w1 = ((a[0] - c[0]) * (py - c[1]) - (a[1] - c[1]) * (px - c[0])) / area
                w2 = 1.0 - w0 - w1
                if w0 >= 0.0 and w1 >= 0.0 and w2 >= 0.0:
                    z = w0 * a[2] + w1 * b[2] + w2 * c[2]
                    if orthographic == 0:
                        z = 1.0 / (w0 / a[2] + w1 / b[2] + w2 / c[2])
                    pixel = (local * height + y) * width + x
                    if write_face == 0:
                        wp.atomic_min(zbuffer, pixel, z)
                    elif z == zbuffer[pixel]:
                        face_buffer[pixel] = f

    @wp.kernel
    def gbuffer(
        corners: wp.array(dtype=wp.vec3),
        corner_normals: wp.array(dtype=wp.vec3),
        corner_uvs: wp.array(dtype=wp.vec2),
        corner_labels: wp.array(dtype=int),
        cam_to_world: wp.array(dtype=wp.mat33),
        centers: wp.array(dtype=wp.vec3),
        intrinsics: wp.array(dtype=wp.vec4),
        orthographic: int,
        width: int,
        height: int,
        first_view: int,
        offset: int,
        face: wp.array(dtype=int),
        bary: wp.array(dtype=wp.vec3),
        depth: wp.array(dtype=float),
        normal: wp.array(dtype=wp.vec3),
        uv: wp.array(dtype=wp.vec2),
        label: wp.array(dtype=wp.int16),
    ):
        # where a covered pixel's ray meets its face (Moller-Trumbore), and what is there
        j = wp.tid()
        f = face[j]
        if f < 0:
            bary[j] = wp.vec3(0.0)
            depth[j] = 0.0
            normal[j] = wp.vec3(0.0)
            if uv.shape[0] > 0:
                uv[j] = wp.vec2(-1.0, -1.0)
            if label.shape[0] > 0:
                label[j] = wp.int16(-1)
            return
        i = offset + j
        view = first_view + i // (width * height)
        rot = cam_to_world[view]
        origin, direction = pixel_ray(i, width, height, rot, centers[view], intrinsics[view], orthographic)
        a = corners[3 * f]
        e1 = corners[3 * f + 1] - a
        e2 = corners[3 * f + 2] - a
        p = wp.cross(direction, e2)
        det = wp.dot(e1, p)
        if wp.abs(det) < 1.0e-30:
            det = 1.0e-30
        t_vec = origin - a
        b1 = wp.dot(t_vec, p) / det
        q = wp.cross(t_vec, e1)
        b2 = wp.dot(direction, q) / det
        t = wp.dot(e2, q) / det
        b0 = 1.0 - b1 - b2
        bary[j] = wp.vec3(b0, b1, b2)
        depth[j] = wp.dot(origin + t * direction - centers[view], rot * wp.vec3(0.0, 0.0, 1.0))
        n = b0 * corner_normals[3 * f] + b1 * corner_normals[3 * f + 1] + b2 * corner_normals[3 * f + 2]
        normal[j] = wp.normalize(n)
        if uv.shape[0] > 0:
            uv[j] = b0 * corner_uvs[3 * f] + b1 * corner_uvs[3 * f + 1] + b2 * corner_uvs[3 * f + 2]
        if label.shape[0] > 0:
            nearest = 0
            if b1 > b0 and b1 >= b2:
                nearest = 1
            elif b2 > b0 and b2 > b1:
                nearest = 2
            label[j] = wp.int16(corner_labels[3 * f + nearest])

    return primary, occluded, raster, gbuffer


class RayCaster:
    """A mesh prepared for camera views and shadow rays on ``device`` (``cpu`` or ``cuda[:N]``).

    Args:
        normals: (V, 3) vertex normals for the normal buffer (default: area-weighted).
        uvs, face_uvs: the mesh's UV layout, for the uv buffer.
        labels: (V,) vertex labels, for the label buffer.
    """

    def __init__(self, vertices, faces, device="cpu", normals=None, uvs=None, face_uvs=None, labels=None) -> None:
        from avatarkit.geometry.sdf import MeshDistance
        from avatarkit.geometry.surface import vertex_normals
        from avatarkit.structures import Mesh

        wp = import_warp()
        self._distance = MeshDistance(vertices, faces, device)  # its BVH answers ray queries too
        self.device = self._distance.device
        vertices, faces = np.asarray(vertices, dtype=np.float32), np.asarray(faces)
        self.faces = faces
        self.extent = float(np.linalg.norm(vertices.max(0) - vertices.min(0)))
        self._far = float(np.abs(vertices).max()) * 4 + self.extent * 4
        if normals is None:
            normals = vertex_normals(Mesh(vertices, faces))

        def corner_array(values, dtype):
            return wp.array(np.ascontiguousarray(values), dtype=dtype, device=self.device)

        self._corners = corner_array(vertices[faces].reshape(-1, 3), wp.vec3)
        self._normals = corner_array(np.asarray(normals, np.float32)[faces].reshape(-1, 3), wp.vec3)
        self.has_uv = uvs is not None and face_uvs is not None
        self.has_label = labels is not None
        self._uvs = corner_array(
            np.asarray(uvs, np.float32)[face_uvs].reshape(-1, 2) if self.has_uv else np.zeros((0, 2), np.float32),
            wp.vec2,
        )
        self._labels = corner_array(
            np.asarray(labels, np.int32)[faces].reshape(-1) if self.has_label else np.zeros(0, np.int32), int
        )

    # ------------------------------------------------------------------ camera views

    def gbuffer(self, cameras: Cameras, views: slice | None = None, into: dict | None = None) -> GBuffer:
        """The G-buffer of ``cameras`` (all views or a slice of them).

        ``into``: numpy arrays to fill in place (``depth``, ``normal``, ``uv``, ``label``,
        shaped (views, H, W[, C]), contiguous); on the CPU warp writes into them directly.
        """
        wp = import_warp()
        chosen = range(len(cameras))[views or slice(None)]
        if chosen.step != 1 or not len(chosen):
            raise OptionError(f"views must be a non-empty run of consecutive cameras, got {views}")
        first, count = chosen.start, len(chosen)
        h, w = cameras.height, cameras.width
        n = count * h * w
        face = self._visible_faces(cameras, first, count)
        into = into or {}
        types = {"bary": wp.vec3, "depth": float, "normal": wp.vec3, "uv": wp.vec2, "label": wp.int16}
        sizes = {"uv": n if self.has_uv else 0, "label": n if self.has_label else 0}

        def buffer(name):
            target = into.get(name)
            if target is not None and self.device == "cpu" and sizes.get(name, n):
                return wp.array(
                    target.reshape(n, -1) if target.ndim > 3 else target.reshape(n), dtype=types[name], copy=False
                )
            return wp.empty(sizes.get(name, n), dtype=types[name], device=self.device)

        out = {name: buffer(name) for name in types}
        cam = self._camera_arrays(cameras)
        launch(
            _kernels()[3],
            n,
            [
                self._corners,
                self._normals,
                self._uvs,
                self._labels,
                cam["cam_to_world"],
                cam["centers"],
                cam["intrinsics"],
                cam["orthographic"],
                int(w),
                int(h),
                first,
                0,
            ],
            [face, *out.values()],
            self.device,
            offset=11,
        )
        shape = (count, h, w)
        for name, target in into.items():
            if target is not None and not np.shares_memory(target, out[name].numpy()):
                target[...] = out[name].numpy().reshape(target.shape)
        return GBuffer(
            face.numpy().reshape(shape),
            out["bary"].numpy().reshape((*shape, 3)),
            out["depth"].numpy().reshape(shape),
            out["normal"].numpy().reshape((*shape, 3)),
            out["uv"].numpy().reshape((*shape, 2)) if self.has_uv else None,
            out["label"].numpy().reshape(shape) if self.has_label else None,
        )

    def _camera_arrays(self, cameras: Cameras) -> dict:
        wp = import_warp()
        r = cameras.world_to_cam[:, :3, :3]
        k = cameras.K
        intrinsics = np.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]], -1).astype(np.float32)
        return {
            "world_to_cam": wp.array(r.astype(np.float32), dtype=wp.mat33, device=self.device),
            "translations": wp.array(
                cameras.world_to_cam[:, :3, 3].astype(np.float32), dtype=wp.vec3, device=self.device
            ),
            "cam_to_world": wp.array(np.transpose(r, (0, 2, 1)).astype(np.float32), dtype=wp.mat33, device=self.device),
            "centers": wp.array(cameras.centers().astype(np.float32), dtype=wp.vec3, device=self.device),
            "intrinsics": wp.array(intrinsics, dtype=wp.vec4, device=self.device),
            "orthographic": int(cameras.projection == "orthographic"),
        }

    def _visible_faces(self, cameras: Cameras, first: int, count: int):
        """(count * H * W,) warp int array: the face seen at each pixel centre, -1 for none."""
        wp = import_warp()
        h, w, n_faces = cameras.height, cameras.width, len(self.faces)
        zbuffer = wp.full(count * h * w, 3.0e38, dtype=float, device=self.device)
        faces = wp.full(count * h * w, -1, dtype=int, device=self.device)
        clipped = wp.zeros(count, dtype=int, device=self.device)
        cam = self._camera_arrays(cameras)
        common = [
            self._corners,
            cam["world_to_cam"],
            cam["translations"],
            cam["intrinsics"],
            cam["orthographic"],
            int(w),
            int(h),
            int(n_faces),
            int(first),
        ]
        kernel = _kernels()[2]
        # atomics are not atomic between CPU threads: each thread takes whole views
        groups = [g for g in np.array_split(np.arange(count), cpu_threads() if self.device == "cpu" else 1) if len(g)]
        if len(groups) > 1:
            kernel.module.load(wp.get_device(self.device))
        for write_face in (0, 1):

            def one(group, write_face=write_face):
                wp.launch(
                    kernel,
                    dim=len(group) * n_faces,
                    inputs=[*common, int(group[0]) * n_faces, write_face],
                    outputs=[zbuffer, faces, clipped],
                    device=self.device,
                )

            with ThreadPoolExecutor(len(groups)) as pool:
                list(pool.map(one, groups))
        pixels = h * w
        for local in np.flatnonzero(clipped.numpy()):
            seen = wp.empty(pixels, dtype=int, device=self.device)
            launch(
                _kernels()[0],
                pixels,
                [
                    self._distance.mesh_id,
                    cam["cam_to_world"],
                    cam["centers"],
                    cam["intrinsics"],
                    cam["orthographic"],
                    int(w),
                    int(h),
                    first + int(local),
                    float(self._far + 2 * np.linalg.norm(cameras.centers(), axis=1).max()),
                    0,
                ],
                [seen],
                self.device,
                offset=9,
            )
            wp.copy(faces, seen, dest_offset=int(local) * pixels, count=pixels)
        return faces

    # ------------------------------------------------------------------ shadow rays

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
            split=(1, 2),
        )
        return hit.numpy().astype(bool)
