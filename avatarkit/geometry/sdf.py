"""Exact signed distances from points to a triangle mesh (the core of sample-sdf and voxelize).

Distances are to the closest point on the triangles (not on a point cloud), found with a
BVH in NVIDIA warp, which runs the same kernel on the CPU and on CUDA GPUs. The sign
(negative inside) comes from one of three tests:

- ``winding`` (default): the generalized winding number (Jacobson et al. 2013, with
  Barill et al.'s fast dipole approximation). Robust to holes and self-intersections:
  a point is inside where the winding number exceeds 0.5.
- ``normal``: the side of the closest face, by its normal. Fast; wrong near thin or
  self-intersecting parts.
- ``parity``: a majority vote of ray-crossing parities. Exact on watertight meshes only.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from avatarkit.backends.warp import import_warp, launch, warp_device
from avatarkit.errors import OptionError
from avatarkit.structures import Mesh

SIGN_METHODS = ("winding", "normal", "parity")
_SIGN_CODE = {name: i for i, name in enumerate(SIGN_METHODS)}


class SignedDistance(NamedTuple):
    """Per query point: ``sdf`` (P,) float32 metres, negative inside; ``closest`` (P, 3) float32
    closest surface point; ``face`` (P,) int32 closest face; ``bary`` (P, 3) float32 barycentric
    coordinates of ``closest`` in that face."""

    sdf: np.ndarray
    closest: np.ndarray
    face: np.ndarray
    bary: np.ndarray


@functools.cache
def _kernel():
    wp = import_warp()

    @wp.kernel
    def query(
        mesh: wp.uint64,
        points: wp.array(dtype=wp.vec3),
        sign_method: int,
        accuracy: float,
        sdf: wp.array(dtype=float),
        closest: wp.array(dtype=wp.vec3),
        face: wp.array(dtype=int),
        bary: wp.array(dtype=wp.vec3),
    ):
        i = wp.tid()
        p = points[i]
        max_dist = wp.float32(1.0e10)
        if sign_method == 0:
            q = wp.mesh_query_point_sign_winding_number(mesh, p, max_dist, accuracy, 0.5)
        elif sign_method == 1:
            q = wp.mesh_query_point_sign_normal(mesh, p, max_dist)
        else:
            q = wp.mesh_query_point_sign_parity(mesh, p, max_dist)
        if q.result:
            c = wp.mesh_eval_position(mesh, q.face, q.u, q.v)
            d = wp.length(p - c)
            if q.sign < 0.0:
                d = -d
            sdf[i] = d
            closest[i] = c
            face[i] = q.face
            bary[i] = wp.vec3(q.u, q.v, 1.0 - q.u - q.v)
        else:
            sdf[i] = wp.inf
            face[i] = -1

    return query


class MeshDistance:
    """A mesh prepared for many signed-distance queries (BVH built once).

    Args:
        vertices: (V, 3) float, metres. faces: (F, 3) int, counter-clockwise from outside.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: CPU threads for queries (default: every core this process may use).
    """

    def __init__(
        self, vertices: np.ndarray, faces: np.ndarray, device: str = "cpu", threads: int | None = None
    ) -> None:
        wp = import_warp()
        mesh = Mesh(vertices, faces)
        mesh.validate()
        vertices, faces = mesh.vertices, mesh.faces
        self.device = warp_device(device)
        self.threads = threads
        self._points = wp.array(vertices, dtype=wp.vec3, device=self.device)
        self._indices = wp.array(faces.reshape(-1), dtype=wp.int32, device=self.device)
        self._mesh = wp.Mesh(points=self._points, indices=self._indices, support_winding_number=True)

    @property
    def mesh_id(self) -> int:
        """The warp mesh handle, for other kernels that query the same BVH."""
        return self._mesh.id

    def query(self, points: np.ndarray, sign: str = "winding", winding_accuracy: float = 1.0) -> SignedDistance:
        """Signed distances of ``points`` (P, 3), metres, world frame; see the module docstring.

        ``winding_accuracy`` is the fast winding number's beta: a cluster of triangles is
        replaced by its dipole beyond beta times its radius. Barill et al. use 2; on an Anny
        human, 250k near-surface points, beta = 1 gave the same signs for every point
        and ran 2.4x faster (0.95 s against 2.3 s on one CPU core).
        """
        if sign not in _SIGN_CODE:
            raise OptionError(f"--sign must be one of {', '.join(SIGN_METHODS)}, got {sign!r}")
        wp = import_warp()
        points = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
        n = len(points)
        # On the CPU, neighbouring points visit the same BVH nodes: querying them in Morton
        # order keeps those nodes in cache (about 20% faster on 250k near-surface points).
        order = morton_order(points) if self.device == "cpu" and n > 4096 else None
        if order is not None:
            points = points[order]
        out = (
            wp.empty(n, dtype=float, device=self.device),
            wp.empty(n, dtype=wp.vec3, device=self.device),
            wp.empty(n, dtype=int, device=self.device),
            wp.empty(n, dtype=wp.vec3, device=self.device),
        )
        launch(
            _kernel(),
            n,
            [
                self._mesh.id,
                wp.array(points, dtype=wp.vec3, device=self.device),
                _SIGN_CODE[sign],
                float(winding_accuracy),
            ],
            list(out),
            self.device,
            self.threads,
            split=(1,),
        )
        sdf, closest, face, bary = (a.numpy() for a in out)
        if order is not None:
            inverse = np.empty_like(order)
            inverse[order] = np.arange(n)
            sdf, closest, face, bary = sdf[inverse], closest[inverse], face[inverse], bary[inverse]
        return SignedDistance(sdf, closest, face.astype(np.int32), bary)


_SPREAD = np.zeros(1024, dtype=np.uint32)
for _bit in range(10):
    _SPREAD |= ((np.arange(1024, dtype=np.uint32) >> _bit) & 1) << (3 * _bit)


def morton_order(points: np.ndarray) -> np.ndarray:
    """Indices that sort ``points`` along a Z-order curve on a 1024^3 grid over their box."""
    lo = points.min(axis=0)
    extent = float((points.max(axis=0) - lo).max()) or 1.0
    cell = np.minimum((points - lo) * (1023.0 / extent), 1023).astype(np.int64)
    code = _SPREAD[cell[:, 0]] | (_SPREAD[cell[:, 1]] << 1) | (_SPREAD[cell[:, 2]] << 2)
    return np.argsort(code)


def signed_distance(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, sign: str = "winding", device: str = "cpu"
) -> SignedDistance:
    """One-shot :meth:`MeshDistance.query`."""
    return MeshDistance(vertices, faces, device).query(points, sign)
