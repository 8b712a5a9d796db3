"""Phorhum's networks (Alldieck et al. 2022, as OSA re-implemented them), for our cameras.

- Feature network G: PIFu's stacked hourglass (:class:`~avatarkit.methods.pifu.model.HourglassEncoder`,
  an encoder-decoder with skips, as Phorhum's G is) over the image; the last stack's map gives
  the pixel-aligned features, and its pooled mean, through a linear layer, the image's
  illumination code ``l`` (Phorhum's scene illumination, one code per image).
- Geometry and colour MLP f: a world point is taken into the view's camera frame, measured
  from the view's target and divided by ``depth_scale``, and given Fourier features (sin and
  cos of 2^k pi x); with the feature map sampled bilinearly at its pixel, f gives a signed
  distance d (metres, negative inside) and an albedo a (sRGB in [0, 1]). Softplus (beta 100)
  activations keep d smooth for its gradient (the surface normal), as IDR's networks; the
  input joins again at the middle layer. d starts as a sphere about the target (IDR's
  geometric initialisation, ``sphere_init``); with ``albedo_prior`` f's albedo logits are a
  change of the logit of the colour seen at the point's pixel.
- Shading network s: from the unit surface normal in the camera frame and ``l``, a positive
  RGB shading factor; the shaded colour is ``linear_to_srgb(srgb_to_linear(a) * s)``, the
  shading ``avatarkit render`` applies to a mesh's albedo.

Sizes come from :class:`avatarkit.methods.phorhum.config.PhorhumConfig`.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from avatarkit.methods.pifu.model import HourglassEncoder
from avatarkit.render.projection import project_to_grid
from avatarkit.render.render import linear_to_srgb, srgb_to_linear

PRIOR_CLAMP = 0.02
"""The seen colour is clamped to [this, 1 - this] before its logit (``albedo_prior``)."""


class PhorhumFeatures(NamedTuple):
    """What G makes of an image: ``maps`` (B, C, H/4, W/4), the illumination code ``light``
    (B, L), and the ``image`` (B, 3, H, W) in [-1, 1] itself when the albedo starts from it
    (else None)."""

    maps: torch.Tensor
    light: torch.Tensor
    image: torch.Tensor | None = None


def _mlp(sizes: tuple[int, ...]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))


class SurfaceMLP(nn.Module):
    """Per-point inputs (..., n_in) -> signed distance (...,) and albedo logits (..., 3); the
    input is concatenated again before the middle hidden layer.

    With ``sphere`` > 0 the distance starts as IDR's geometric initialisation makes it (Atzmon
    and Lipman's SAL, as IDR and H3D-Net use it): about ``unit |q| - sphere`` of the point's
    coordinates ``q`` (inputs ``point_at`` to ``point_at + 3``, in units of ``unit`` metres; the
    other inputs' weights start near zero: 1e-4 times their usual scale, so that gradients reach
    G from the first step), a sphere of ``sphere`` metres, so that space away from the subject
    starts outside instead of at a random sign; the albedo rows keep PyTorch's initialisation."""

    def __init__(
        self, n_in: int, hidden: tuple[int, ...], sphere: float = 0.0, unit: float = 1.0, point_at: int = 0
    ) -> None:
        super().__init__()
        self.skip = len(hidden) // 2 if len(hidden) > 1 else -1
        sizes = [n_in, *hidden, 4]
        layers = []
        for i in range(len(sizes) - 1):
            cin = sizes[i] + (n_in if i == self.skip else 0)
            layers.append(nn.Linear(cin, sizes[i + 1]))
        self.layers = nn.ModuleList(layers)
        if sphere > 0:
            self._geometric_init(sphere, n_in, unit, point_at)

    @torch.no_grad()
    def _geometric_init(self, sphere: float, n_in: int, unit: float, point_at: int) -> None:
        """IDR's ``geometric_init``: the point's xyz (inputs ``point_at`` to ``point_at + 3``)
        make the distance; every other input starts nearly unused."""
        linears: list[nn.Linear] = list(self.layers)  # type: ignore[arg-type]
        last = len(linears) - 1
        for i, layer in enumerate(linears):
            cout, cin = layer.weight.shape
            if i == last:
                albedo_w, albedo_b = layer.weight[1:].clone(), layer.bias[1:].clone()
                nn.init.normal_(layer.weight, mean=unit * np.sqrt(np.pi) / np.sqrt(cin), std=1e-4)
                nn.init.constant_(layer.bias, -sphere)
                layer.weight[1:], layer.bias[1:] = albedo_w, albedo_b
                continue
            nn.init.constant_(layer.bias, 0.0)
            nn.init.normal_(layer.weight, 0.0, np.sqrt(2) / np.sqrt(cout))
            if i in (0, self.skip):  # at the skip the input is joined after the hidden values
                first = cin - n_in + point_at
                unused = torch.ones(cin, dtype=torch.bool)
                unused[first : first + 3] = False
                unused[: cin - n_in] = False
                layer.weight[:, unused] *= 1e-4

    def forward(self, x):
        y = x
        for i, layer in enumerate(self.layers):
            if i == self.skip:
                y = torch.cat([y, x], -1) / np.sqrt(2)
            y = layer(y)
            if i < len(self.layers) - 1:
                y = F.softplus(y, beta=100)
        return y[..., 0], y[..., 1:]


class PhorhumNet(nn.Module):
    """G, f and s, sized by a :class:`~avatarkit.methods.phorhum.config.PhorhumConfig`."""

    def __init__(self, config) -> None:
        super().__init__()
        self.depth_scale = float(config.depth_scale)
        self.albedo_prior = bool(config.albedo_prior)
        self.head_lr_scale = float(config.head_lr_scale)
        self.register_buffer("frequencies", (2.0 ** torch.arange(config.fourier)) * np.pi, persistent=False)
        self.encoder = HourglassEncoder(config.stacks, config.channels, config.hourglass_depth, config.stem_channels)
        self.light = nn.Linear(config.channels, config.illumination)
        n_points = 3 * (1 + 2 * config.fourier)
        sphere = float(config.sphere_init)
        self.f = SurfaceMLP(config.channels + n_points, tuple(config.mlp), sphere, self.depth_scale, config.channels)
        self.s = _mlp((3 + config.illumination, *config.shading_mlp, 3))

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Every parameter at the trainer's rate but f's output layer, at ``head_lr_scale`` times it."""
        head = list(self.f.layers[-1].parameters())
        ids = {id(p) for p in head}
        return [
            {"params": [p for p in self.parameters() if id(p) not in ids], "lr_scale": 1.0},
            {"params": head, "lr_scale": self.head_lr_scale},
        ]

    def encode(self, image) -> PhorhumFeatures:
        """G's last feature map and the illumination code of ``image`` (B, 3, H, W) in [-1, 1]."""
        maps = self.encoder(image)[-1]
        return PhorhumFeatures(maps, self.light(maps.mean((2, 3))), image if self.albedo_prior else None)

    def point_features(self, points, world_to_cam, depth_center):
        """(B, P, 3 (1 + 2 fourier)): ``points`` (B, P, 3) world in the view's frame, from its
        target, over ``depth_scale``, with their Fourier features."""
        w2c = world_to_cam.float()
        cam = points.float() @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]
        offset = torch.zeros_like(cam)
        offset[..., 2] = depth_center.float()[:, None]
        q = (cam - offset) / self.depth_scale
        if not len(self.frequencies):
            return q
        angles = (q[..., None] * self.frequencies).flatten(-2)
        return torch.cat([q, torch.sin(angles), torch.cos(angles)], -1)

    def surface(self, features: PhorhumFeatures, points, K, world_to_cam, orthographic, depth_center, size):
        """Signed distance (B, P), metres, and albedo (B, P, 3) in [0, 1] of world ``points``
        (B, P, 3) seen through cameras ``K`` (B, 3, 3), ``world_to_cam`` (B, 4, 4) in images of
        ``size`` = (width, height) pixels; ``depth_center`` (B,): the camera depth of each view's target."""
        grid, _ = project_to_grid(points, K, world_to_cam, orthographic, *size)

        def sample(maps):
            return F.grid_sample(maps, grid[:, :, None], mode="bilinear", align_corners=False)[..., 0].transpose(1, 2)

        d, logits = self.f(
            torch.cat([sample(features.maps).float(), self.point_features(points, world_to_cam, depth_center)], -1)
        )
        if features.image is not None:  # the albedo as a change of the colour seen at the point's pixel
            seen = (sample(features.image).float() * 0.5 + 0.5).clamp(PRIOR_CLAMP, 1 - PRIOR_CLAMP)
            logits = logits + torch.logit(seen)
        return d, torch.sigmoid(logits)

    def query(self, features: PhorhumFeatures, points, K, world_to_cam, orthographic, depth_center, size):
        """Signed distance (B, P) only (what :class:`~avatarkit.methods.image_method.PixelAlignedPredictor` asks)."""
        return self.surface(features, points, K, world_to_cam, orthographic, depth_center, size)[0]

    def shading(self, normals, world_to_cam, light):
        """Positive RGB shading factors (B, P, 3) at unit world ``normals`` (B, P, 3) for views
        ``world_to_cam`` (B, 4, 4) lit as the illumination codes ``light`` (B, L) say."""
        n_cam = normals.float() @ world_to_cam[:, :3, :3].float().transpose(1, 2)
        y = torch.cat([n_cam, light[:, None].float().expand(-1, n_cam.shape[1], -1)], -1)
        for i, layer in enumerate(self.s):
            y = layer(y)
            if i < len(self.s) - 1:
                y = F.relu(y)
        return F.softplus(y)

    def shade(self, albedo, normals, world_to_cam, light):
        """The shaded colour (B, P, 3), sRGB in [0, 1]: albedo times :meth:`shading` in linear light."""
        return linear_to_srgb(srgb_to_linear(albedo.float()) * self.shading(normals, world_to_cam, light)).clamp(0, 1)

    def forward(self, image, points, K, world_to_cam, orthographic, depth_center):
        """Signed distance (B, P) and albedo (B, P, 3) of ``points`` seen in ``image`` (see :meth:`surface`)."""
        h, w = image.shape[-2:]
        return self.surface(self.encode(image), points, K, world_to_cam, orthographic, depth_center, (w, h))


def sdf_gradient(d, points, create_graph: bool = True):
    """grad d / d points (B, P, 3) of signed distances ``d`` (B, P) of ``points`` (which require grad)."""
    (grad,) = torch.autograd.grad(d.sum(), points, create_graph=create_graph)
    return grad
