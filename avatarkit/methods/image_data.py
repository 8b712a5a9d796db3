"""Training data shared by the image-based methods: rendered views and sampled points of the
same subjects (PIFu today; Geo-PIFu and Phorhum add their own inputs to the same items).

Subjects are matched by file stem across the data options (``views`` from ``avatarkit
render``, ``samples`` from ``avatarkit sample-sdf``, any other per-subject files a method
takes). Every item is one subject seen in one view with a fresh draw of points from its
samples file, keyed by ``(subject, seed, view)``: the key fixes every random choice, so an
item is the same in any worker process, on any rank and after a resume. HDF5 files are
opened lazily, once per process (h5py handles do not survive a fork). Matching subjects, the
samples checks and the step sampler are every method's (:mod:`avatarkit.methods.data`).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avatarkit.errors import InputError, OptionError
from avatarkit.methods import augment as A
from avatarkit.methods.configs import ImageDataConfig
from avatarkit.methods.contract import CameraRecord
from avatarkit.methods.data import StepBatches, Subject, check_samples, match_subjects, worker_init
from avatarkit.structures import Cameras

__all__ = [  # the shared parts (methods.data), as image-based methods know them
    "ImagePointsDataset", "StepBatches", "Subject", "ViewSet", "check_samples", "fit_input", "match_subjects",
    "normalize", "read_view_set", "run_camera", "validation_keys", "worker_init",
]  # fmt: skip

POOL_CACHE = 64
"""Samples files whose points a process keeps in memory (about 1.3 MB each at 100k points)."""


@dataclasses.dataclass
class ViewSet:
    """The cameras of one views file (the images stay on disk), each with its target."""

    cameras: Cameras
    depth_center: np.ndarray
    """(N,) camera depth of each view's target: the origin of the depth feature."""


def read_view_set(path: Path) -> ViewSet:
    """Check a views file and read its cameras; the depth origin comes from ``/cameras/target``
    or, in files without it, from the point the rig's cameras all aim at."""
    from avatarkit.io.cameras import read_cameras
    from avatarkit.io.hdf5 import check_kind, open_h5

    with open_h5(path) as f:
        check_kind(f, path, "views")
    try:
        cameras = read_cameras(path).aimed()
    except OptionError as exc:
        raise InputError(f"{exc} (render it with avatarkit render, which records the target)", path) from None
    return ViewSet(cameras, cameras.target_depths())


class ImagePointsDataset(torch.utils.data.Dataset):
    """Items keyed by ``(subject index, seed, view)``; ``view`` -1 draws a random view.

    Each item: ``image`` (3, S, S) float in [-1, 1] (times the mask when ``mask_input``),
    ``mask`` (1, S, S), ``K`` (3, 3), ``world_to_cam`` (4, 4), ``depth_center`` (),
    ``orthographic`` (), ``points`` (P, 3) metres, ``labels`` (P,) 1 inside, ``subject`` (),
    and what :meth:`_point_extras` adds.
    """

    pool_cache = POOL_CACHE
    """Samples files whose points a process keeps in memory."""

    def __init__(
        self, subjects: list[Subject], view_sets: list[ViewSet], config: ImageDataConfig, augment: bool
    ) -> None:
        self.subjects = subjects
        self.view_sets = view_sets
        self.config = config
        self.augment = augment
        self.backgrounds = None
        if augment and config.background_dir:
            from avatarkit.io.images import list_images

            self.backgrounds = list_images(config.background_dir)
        self._files: dict[Path, Any] = {}
        self._pools: dict[Path, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.subjects)

    def __getstate__(self):  # open handles and caches stay in the process that made them
        return {**self.__dict__, "_files": {}, "_pools": {}}

    def _file(self, path: Path):
        import h5py

        if path not in self._files:
            self._files[path] = h5py.File(path, "r")
        return self._files[path]

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._pools.clear()

    def __getitem__(self, key) -> dict:
        index_of_subject, seed, view = key
        rng = np.random.default_rng(seed)
        subject, views = self.subjects[index_of_subject], self.view_sets[index_of_subject]
        if view < 0:
            view = int(rng.integers(len(views.cameras)))
        f = self._file(subject.views)
        rgb = torch.from_numpy(np.asarray(f["/images/rgb"][view])).permute(2, 0, 1).float() / 255
        mask = torch.from_numpy(np.asarray(f["/images/mask"][view])).float()[None] / 255
        image, mask, K = self._frame(rgb, mask, views.cameras, view, rng)
        seen = None
        if self.config.silhouette_draw > 0:
            camera = Cameras(
                K, views.cameras.world_to_cam[view], views.cameras.projection, mask.shape[-1], mask.shape[-2]
            )
            seen = functools.partial(_in_silhouette, camera=camera, mask=mask[0].numpy() > 0.5)
        index = self._draw(subject.samples, rng, seen)
        pool, occupancy = self._pool(subject.samples)
        points, labels = pool[index].astype(np.float32), occupancy[index].astype(np.float32)
        return {
            "image": image,
            "mask": mask,
            "K": torch.as_tensor(K, dtype=torch.float32),
            "world_to_cam": torch.as_tensor(views.cameras.world_to_cam[view], dtype=torch.float32),
            "depth_center": torch.tensor(views.depth_center[view], dtype=torch.float32),
            "orthographic": torch.tensor(views.cameras.projection == "orthographic"),
            "points": torch.from_numpy(points),
            "labels": torch.from_numpy(labels),
            "subject": torch.tensor(index_of_subject),
            **self._point_extras(subject.samples, index),
        }

    def _point_extras(self, path: Path, index: np.ndarray) -> dict[str, torch.Tensor]:
        """More per-point fields of the drawn points (``index`` into the samples file's points),
        for methods that learn more than occupancy (Phorhum: signed distances, normals, colours)."""
        return {}

    def _frame(self, rgb, mask, cameras: Cameras, view: int, rng):
        """The network's input (with augmentation when training); returns image, mask, K."""
        c = self.config
        jitter = A.jitter_map(rng, c.image_size, c.scale_jitter, c.shift_jitter, c.flip) if self.augment else None
        rgb, mask, K = fit_input(rgb, mask, cameras.K[view], c.image_size, jitter)
        if self.augment:
            rgb = A.color_jitter(rgb, rng, c.brightness, c.contrast, c.saturation, c.hue)
            if c.blur > 0:
                rgb = A.gaussian_blur(rgb, rng.uniform(0, c.blur))
            if self.backgrounds is not None:
                from avatarkit.io.images import random_crop

                path = self.backgrounds[rng.integers(len(self.backgrounds))]
                size = c.image_size
                background = torch.from_numpy(random_crop(path, rng, size, size)).permute(2, 0, 1).float() / 255
                rgb = rgb * mask + background * (1 - mask)
        return normalize(rgb, mask, c.mask_input), mask, K

    def _draw(self, path: Path, rng, seen=None) -> np.ndarray:
        """Indices of ``points`` drawn from the subject's pool, at most half inside when ``balance``
        (PIFu's rule), with repeats only when the pool runs short. With ``seen`` (points ->
        bool: inside the view's silhouette), ``silhouette_draw`` of the outside points come
        from those the view sees inside its silhouette."""
        pool, occupancy = self._pool(path)
        n = self.config.points
        if not self.config.balance:
            index = rng.choice(len(pool), n, replace=n > len(pool))
        else:
            inside, outside = np.flatnonzero(occupancy), np.flatnonzero(occupancy == 0)
            n_in = n if not len(outside) else 0 if not len(inside) else min(len(inside), n // 2)
            parts = [(inside, n_in), (outside, n - n_in)]
            if seen is not None and n - n_in > 0:
                hidden = outside[seen(pool[outside])]
                n_seen = round(self.config.silhouette_draw * (n - n_in)) if len(hidden) else 0
                parts = [(inside, n_in), (hidden, n_seen), (outside, n - n_in - n_seen)]
            index = np.concatenate([rng.choice(part, k, replace=k > len(part)) for part, k in parts if k])
        return index

    def _pool(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """A samples file's points and occupancy, kept for the next draws (a bounded cache)."""
        if path not in self._pools:
            import h5py

            if len(self._pools) >= self.pool_cache:
                self._pools.pop(next(iter(self._pools)))
            with h5py.File(path, "r") as f:
                self._pools[path] = (f["/points"][()], f["/occupancy"][()])
        return self._pools[path]


def _in_silhouette(points: np.ndarray, camera: Cameras, mask: np.ndarray) -> np.ndarray:
    """(P,) bool: world ``points`` (P, 3) that ``camera`` (one view) sees inside ``mask`` (H, W)."""
    pixels, _ = camera.project(points)
    px = np.rint(pixels[0]).astype(np.int64)
    h, w = mask.shape
    inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    out = np.zeros(len(points), bool)
    out[inside] = mask[px[inside, 1], px[inside, 0]]
    return out


def fit_input(rgb, mask, K: np.ndarray, size: int, jitter: A.Affine | None = None):
    """A view as the network sees it: ``rgb`` (3, H, W) and ``mask`` (1, H, W) in [0, 1]
    fitted into a ``size`` square (antialiased, centred), then moved by ``jitter``; returns
    them with the intrinsics ``K`` that follow the same pixel map."""
    _, h, w = rgb.shape
    side = max(h, w)
    new_w, new_h = round(w * size / side), round(h * size / side)
    fit = A.resize_map(w, h, new_w, new_h)
    rgb, mask = A.resize(rgb, new_w, new_h), A.resize(mask, new_w, new_h)
    m = A.Affine(1, (size - new_w) / 2, 1, (size - new_h) / 2)
    if jitter is not None:
        m = m.then(jitter)
    if m != A.Affine() or (new_h, new_w) != (size, size):
        rgb, mask = A.warp(rgb, m, size), A.warp(mask, m, size)
    return rgb, (mask > 0.5).float(), A.affine_intrinsics(K, fit.then(m))


def normalize(rgb, mask, mask_input: bool):
    """[0, 1] colour to the network's [-1, 1], times the mask when ``mask_input`` (PIFu)."""
    image = rgb * 2 - 1
    return image * mask if mask_input else image


def validation_keys(view_sets: list[ViewSet], indices: list[int], views_per_subject: int, seed: int) -> list[tuple]:
    """Fixed keys for validation: ``views_per_subject`` views evenly spread over each subject's
    rig, and fixed point draws."""
    keys = []
    for i in indices:
        n = len(view_sets[i].cameras)
        for j in range(min(views_per_subject, n)):
            keys.append(
                (i, int(np.random.SeedSequence([seed, 7919, i, j]).generate_state(1)[0]), j * n // views_per_subject)
            )
    return keys


def run_camera(view_sets: list[ViewSet]) -> CameraRecord:
    """The camera ``reconstruct`` places a photo in when none is given: the training views' most
    common projection and size, their median intrinsics, in front of the subject (yaw 0) at the
    median distance, aimed at the median target."""
    from avatarkit.render.rigs import look_at

    cams = [v.cameras for v in view_sets]
    projections = [c.projection for c in cams]
    projection = max(set(projections), key=projections.count)
    cams = [c for c in cams if c.projection == projection]
    sizes = [(c.width, c.height) for c in cams]
    width, height = max(set(sizes), key=sizes.count)
    cams = [c for c in cams if (c.width, c.height) == (width, height)]
    K = np.median(np.concatenate([c.K for c in cams]), axis=0)
    targets = np.concatenate([c.targets() for c in cams])
    distances = np.linalg.norm(np.concatenate([c.centers() for c in cams]) - targets, axis=1)
    target = np.median(targets, axis=0)
    world_to_cam = look_at(target + np.array([0.0, 0.0, float(np.median(distances))]), target)
    return {
        "K": K.tolist(),
        "world_to_cam": world_to_cam.tolist(),
        "target": target.tolist(),
        "projection": projection,
        "width": int(width),
        "height": int(height),
    }
