"""Augmentations move the camera with the image: a point's pixel follows it."""

from __future__ import annotations

import numpy as np
import torch

from avatarkit.methods import augment as A
from avatarkit.methods.image_data import fit_input
from avatarkit.render.rigs import orbit
from avatarkit.structures import Cameras


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
        rows, cols = np.indices((96, 96))
        image = torch.tensor(np.exp(-((cols - u) ** 2 + (rows - v) ** 2) / (2 * 3.0**2)), dtype=torch.float32)[None]
        flips = 0
        for _ in range(12):  # as the training data does it: antialiased resize, then the jitter
            jitter = A.jitter_map(rng, 64, 0.1, 0.05, flip=True)
            flips += jitter.ax < 0
            out, _, k2 = fit_input(image.expand(3, -1, -1), image, k, 64, jitter)
            moved = Cameras(k2, cams.world_to_cam, projection, 64, 64)
            u2, v2 = moved.project(point)[0][0, 0]
            weights = out[0].numpy()  # the blob's centre, to a fraction of a pixel
            r, c = np.indices(weights.shape)
            cu, cv = (weights * c).sum() / weights.sum(), (weights * r).sum() / weights.sum()
            assert abs(cu - u2) < 0.1 and abs(cv - v2) < 0.1, (projection, (cu, cv), (u2, v2))
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
