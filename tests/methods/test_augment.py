"""Augmentations move the camera with the image: a point's pixel follows it."""

from __future__ import annotations

import numpy as np
import torch

from avatarkit.methods import augment as A
from avatarkit.render.cameras import Cameras, orbit


def _dot_image(size, u, v):
    image = torch.zeros(1, size, size)
    image[0, v, u] = 1.0
    return image


def test_jitter_resize_and_flip_keep_points_on_their_pixels():
    rng = np.random.default_rng(3)
    point = np.array([[0.1, 1.2, 0.05]])
    for projection in ("orthographic", "perspective"):
        cams = orbit(np.array([0.0, 1.0, 0.0]), 0.9, [20.0], [5.0], (96, 96), projection)
        pix = cams.project(point)[0][0, 0]
        u, v = np.rint(pix).astype(int)
        k = cams.K[0].copy()
        k[0, 2] += u - pix[0]  # put the point on a pixel centre
        k[1, 2] += v - pix[1]
        image = _dot_image(96, u, v)
        flips = 0
        for _ in range(12):
            m = A.resize_map(96, 96, 64, 64).then(A.jitter_map(rng, 64, 0.1, 0.05, flip=True))
            flips += m.ax < 0
            out = A.warp(image, m, 64)
            moved = Cameras(A.affine_intrinsics(k, m), cams.world_to_cam, projection, 64, 64)
            u2, v2 = moved.project(point)[0][0, 0]
            peak_v, peak_u = np.unravel_index(int(out[0].argmax()), out[0].shape)
            assert abs(peak_u - u2) <= 1 and abs(peak_v - v2) <= 1, (projection, (peak_u, peak_v), (u2, v2))
        assert 0 < flips < 12


def test_colour_jitter_stays_in_range_and_hue_keeps_grey():
    rng = np.random.default_rng(0)
    rgb = torch.rand(3, 16, 16)
    out = A.color_jitter(rgb, rng, 0.5, 0.5, 0.5, 0.5)
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, rgb)
    grey = torch.full((3, 4, 4), 0.4)
    assert torch.allclose(A.color_jitter(grey, rng, 0, 0, 0, 0.5), grey, atol=1e-5)
    blurred = A.gaussian_blur(_dot_image(15, 7, 7), 2.0)
    assert abs(float(blurred.sum()) - 1.0) < 1e-4 and blurred[0, 7, 7] < 0.1
