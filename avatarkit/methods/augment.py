"""Image augmentations for pixel-aligned training, with the camera kept in step.

Geometric changes (resize, zoom, shift, horizontal flip) are one affine map of pixel
coordinates per axis, ``u' = a u + b`` (``a < 0`` for a flip); the intrinsics follow the
same map (:func:`affine_intrinsics`), so a world point still projects onto the pixel that
shows it. Colour changes (brightness, contrast, saturation, hue, blur) and background
swaps leave the camera alone. Everything works on float tensors in [0, 1], channels first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.nn import functional as F


@dataclasses.dataclass(frozen=True)
class Affine:
    """Pixel map ``u' = ax u + bx``, ``v' = ay v + by`` (OpenCV pixel centres)."""

    ax: float = 1.0
    bx: float = 0.0
    ay: float = 1.0
    by: float = 0.0

    def then(self, other: Affine) -> Affine:
        """This map followed by ``other``."""
        return Affine(
            other.ax * self.ax, other.ax * self.bx + other.bx, other.ay * self.ay, other.ay * self.by + other.by
        )


def resize_map(width: int, height: int, new_width: int, new_height: int) -> Affine:
    """Pixel centres of a ``width`` x ``height`` image onto those of the resized image."""
    sx, sy = new_width / width, new_height / height
    return Affine(sx, 0.5 * sx - 0.5, sy, 0.5 * sy - 0.5)


def jitter_map(rng: np.random.Generator, size: int, scale: float, shift: float, flip: bool) -> Affine:
    """A random zoom about the centre by 1 +- ``scale``, shift by up to ``shift`` x ``size``
    pixels, and (if ``flip``) a mirror with probability 1/2, on a square image of ``size``."""
    s = rng.uniform(1 - scale, 1 + scale) if scale > 0 else 1.0
    dx, dy = rng.uniform(-shift, shift, 2) * size if shift > 0 else (0.0, 0.0)
    c = (size - 1) / 2
    m = Affine(s, c - s * c + dx, s, c - s * c + dy)
    if flip and rng.random() < 0.5:
        m = m.then(Affine(-1.0, size - 1.0, 1.0, 0.0))
    return m


def affine_intrinsics(K: np.ndarray, m: Affine) -> np.ndarray:
    """The intrinsics after the pixel map ``m`` (valid for perspective and orthographic)."""
    k = np.array(K, dtype=np.float64, copy=True)
    k[0, 0], k[0, 2] = m.ax * k[0, 0], m.ax * k[0, 2] + m.bx
    k[1, 1], k[1, 2] = m.ay * k[1, 1], m.ay * k[1, 2] + m.by
    k[0, 1] *= m.ax
    return k


def warp(image: torch.Tensor, m: Affine, size: int) -> torch.Tensor:
    """``image`` (C, H, W) resampled bilinearly through the pixel map ``m`` into (C, size, size);
    pixels from outside the image are 0."""
    _, h, w = image.shape
    u = (torch.arange(size, dtype=torch.float32) - m.bx) / m.ax  # source pixel of each output pixel
    v = (torch.arange(size, dtype=torch.float32) - m.by) / m.ay
    gx = (u + 0.5) / w * 2 - 1
    gy = (v + 0.5) / h * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def resize(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Antialiased resize of (C, H, W) to (C, height, width) (pixel centres as :func:`resize_map`)."""
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(image[None], size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0]


def color_jitter(
    rgb: torch.Tensor, rng: np.random.Generator, brightness: float, contrast: float, saturation: float, hue: float
) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue of ``rgb`` (3, H, W) in [0, 1]."""
    if brightness > 0:
        rgb = rgb * rng.uniform(1 - brightness, 1 + brightness)
    if contrast > 0:
        mean = _gray(rgb).mean()
        rgb = (rgb - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    if saturation > 0:
        gray = _gray(rgb)[None]
        rgb = (rgb - gray) * rng.uniform(1 - saturation, 1 + saturation) + gray
    if hue > 0:
        rgb = _rotate_hue(rgb, rng.uniform(-hue, hue) * 2 * np.pi)
    return rgb.clamp(0, 1)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) with standard deviation ``sigma`` pixels."""
    if sigma < 0.1:
        return image
    radius = max(1, int(np.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    c = image.shape[0]
    out = F.conv2d(
        F.pad(image[None], (radius, radius, 0, 0), mode="replicate"),
        kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
        groups=c,
    )
    out = F.conv2d(
        F.pad(out, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c
    )
    return out[0]


def _gray(rgb: torch.Tensor) -> torch.Tensor:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _rotate_hue(rgb: torch.Tensor, angle: float) -> torch.Tensor:
    """Turn the hue by ``angle`` radians: a rotation of the chroma plane of YIQ."""
    c, s = np.cos(angle), np.sin(angle)
    rotation = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float32)
    m = torch.linalg.inv(_TO_YIQ) @ rotation @ _TO_YIQ
    return torch.einsum("ij,jhw->ihw", m.to(rgb.dtype), rgb)
