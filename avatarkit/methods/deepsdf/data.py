"""DeepSDF's training data: samples files, each shape in its own unit sphere.

A shape's unit sphere (:func:`normalization`) is centred on its mesh's bounding-box midpoint
with 1.1 times the distance to its farthest vertex as radius (the sphere of IDR's
``scale_mat`` as ``avatarkit render --export idr`` writes it); the samples file says both
(``unit_center``, ``unit_radius`` / ``unit_buffer``). A point ``x`` (world metres) is
``(x - center) / radius`` there, a signed distance ``sdf / radius``.

Items are keyed ``(shape, seed, _)`` as every method's (:class:`~avatarkit.methods.data.StepBatches`):
``points_per_shape`` points of the shape, half drawn from those with sdf >= 0 and half from
those with sdf < 0, with replacement (DeepSDF's ``unpack_sdf_samples``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch

from avatarkit.errors import InputError
from avatarkit.methods.deepsdf.config import SPHERE_SCALE

POOL_CACHE = 64
"""Samples files whose points a process keeps in memory (8 MB each at DeepSDF's 500k points)."""


class Normalization(TypedDict):
    """A shape's unit sphere in the world: ``center`` [x, y, z] and ``radius``, metres."""

    center: list[float]
    radius: float


def normalization(center: np.ndarray, farthest: float) -> Normalization:
    """The unit sphere of a shape whose bounding sphere (box midpoint, farthest vertex, as
    :meth:`~avatarkit.structures.Mesh.bounding_sphere`) is ``center``, ``farthest`` (metres)."""
    return {"center": [float(c) for c in center], "radius": float(farthest) * SPHERE_SCALE}


def read_normalization(path: Path) -> Normalization:
    """The unit sphere of the shape a samples file was sampled from (its attributes)."""
    from avatarkit.geometry.sample_sdf import bounding_sphere_of
    from avatarkit.io.hdf5 import check_kind, open_h5

    with open_h5(path) as f:
        check_kind(f, path, "samples")
        attrs = dict(f.attrs)
    return normalization(*bounding_sphere_of(attrs, path))


def to_unit(points: np.ndarray, sdf: np.ndarray, norm: Normalization) -> tuple[np.ndarray, np.ndarray]:
    """World ``points`` (P, 3) and ``sdf`` (P,), metres, in the unit sphere ``norm``: float32."""
    center, radius = np.asarray(norm["center"], dtype=np.float64), float(norm["radius"])
    return ((points - center) / radius).astype(np.float32), (np.asarray(sdf, np.float64) / radius).astype(np.float32)


def half_and_half(sdf: np.ndarray | torch.Tensor, count: int, draw) -> np.ndarray:
    """Indices of ``count`` points: half among those with sdf >= 0, half among sdf < 0, drawn
    with replacement by ``draw(pool_indices, k)``; all from one side when the other is empty."""
    sdf = np.asarray(sdf)
    positive, negative = np.flatnonzero(sdf >= 0), np.flatnonzero(sdf < 0)
    if not len(positive) or not len(negative):
        return draw(positive if len(positive) else negative, count)
    half = count // 2
    return np.concatenate([draw(positive, count - half), draw(negative, half)])


class ShapeSamples(torch.utils.data.Dataset):
    """Items keyed ``(shape, seed, _)`` over ``files`` (one samples file per shape, in code
    order) with their unit spheres ``norms``: ``shape`` (), ``points`` (P, 3) and ``sdf`` (P,),
    unit-sphere units. Files are read once per process, at most :data:`POOL_CACHE` kept."""

    def __init__(self, files: list[Path], norms: list[Normalization], points: int) -> None:
        self.files, self.norms, self.points = list(files), list(norms), int(points)
        self._pools: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.files)

    def __getstate__(self):  # caches stay in the process that made them
        return {**self.__dict__, "_pools": {}}

    def pool(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Shape ``index``'s points (P, 3) and sdf (P,), unit-sphere units."""
        if index not in self._pools:
            import h5py

            if len(self._pools) >= POOL_CACHE:
                self._pools.pop(next(iter(self._pools)))
            with h5py.File(self.files[index], "r") as f:
                points, sdf = f["/points"][()], f["/sdf"][()]
            self._pools[index] = to_unit(points, sdf, self.norms[index])
        return self._pools[index]

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        index, seed = int(key[0]), int(key[1])
        rng = np.random.default_rng(seed)
        points, sdf = self.pool(index)
        chosen = half_and_half(sdf, self.points, lambda pool, k: pool[rng.integers(len(pool), size=k)])
        return {
            "shape": torch.tensor(index),
            "points": torch.from_numpy(points[chosen]),
            "sdf": torch.from_numpy(sdf[chosen]),
        }

    def close(self) -> None:
        self._pools.clear()


def check_points(path: Path) -> None:
    """A samples file with finite points and signed distances, or an :class:`InputError`."""
    from avatarkit.io.hdf5 import open_h5

    with open_h5(path) as f:
        points, sdf = f["/points"][()], f["/sdf"][()]
    if not np.isfinite(sdf).all():
        raise InputError("the samples file has NaN or infinite signed distances", path)
    if not np.isfinite(points).all():
        raise InputError("the samples file has NaN or infinite points", path)
