"""PIFu's networks, as published (``lib/model/HGPIFuNet.py``, ``HGFilters.py``,
``SurfaceClassifier.py``), written for our cameras.

- Image encoder: a stacked hourglass (``stacks`` x ``channels``, hourglass depth
  ``hourglass_depth``) after a stride-4 stem; every stack yields a feature map (intermediate
  supervision trains all of them).
- Pixel alignment: a world point is projected with its view's own camera (``K``,
  ``world_to_cam``, perspective or orthographic, OpenCV pixel centres;
  :mod:`avatarkit.render.projection`) and the feature map
  is sampled bilinearly there; the point's camera depth, measured from the depth of the
  view's target (the subject's centre) and divided by ``depth_scale``, is appended (PIFu's
  ``DepthNormalizer``).
- Occupancy MLP: 1x1 convolutions (channels + 1, ``mlp``..., 1: 257-1024-512-256-128-1 by
  default) with the input feature concatenated to every hidden layer but the first (PIFu's
  ``no_residual`` False), a sigmoid at the end.

Sizes come from :class:`avatarkit.methods.pifu.config.PifuConfig`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from avatarkit.render.projection import project_to_grid


def _groups(channels: int) -> int:
    return 32 if channels % 32 == 0 else 1


class _Residual(nn.Module):
    """Pre-activation bottleneck block of the hourglass (group norm, as PIFu's default)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        half = cout // 2
        self.n1, self.c1 = nn.GroupNorm(_groups(cin), cin), nn.Conv2d(cin, half, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(_groups(half), half), nn.Conv2d(half, cout - half, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        y1 = self.c1(F.relu(self.n1(x)))
        y2 = self.c2(F.relu(self.n2(y1)))
        return torch.cat([y1, y2], 1) + self.skip(x)


class _Hourglass(nn.Module):
    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        self.up = _Residual(channels, channels)
        self.down = _Residual(channels, channels)
        self.inner = _Hourglass(depth - 1, channels) if depth > 1 else _Residual(channels, channels)
        self.out = _Residual(channels, channels)

    def forward(self, x):
        skip = self.up(x)
        y = self.out(self.inner(self.down(F.avg_pool2d(x, 2))))
        return skip + F.interpolate(y, size=skip.shape[-2:], mode="bicubic", align_corners=True)


class HourglassEncoder(nn.Module):
    """Image (B, 3, H, W) in [-1, 1] -> one (B, channels, H/4, W/4) feature map per stack."""

    def __init__(self, stacks: int, channels: int, depth: int, stem: int = 64) -> None:
        super().__init__()
        c = channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 7, stride=2, padding=3),
            nn.GroupNorm(_groups(stem), stem),
            nn.ReLU(),
            _Residual(stem, 2 * stem),
            nn.AvgPool2d(2),
            _Residual(2 * stem, 2 * stem),
            _Residual(2 * stem, c),
        )
        self.hourglasses = nn.ModuleList(_Hourglass(depth, c) for _ in range(stacks))
        self.heads = nn.ModuleList(
            nn.Sequential(_Residual(c, c), nn.Conv2d(c, c, 1), nn.GroupNorm(_groups(c), c), nn.ReLU())
            for _ in range(stacks)
        )
        self.merge = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(stacks - 1))

    def forward(self, image):
        x = self.stem(image)
        features = []
        for i, (hourglass, head) in enumerate(zip(self.hourglasses, self.heads, strict=True)):
            y = head(hourglass(x))
            features.append(y)
            if i < len(self.merge):
                x = x + self.merge[i](y)
        return features


class OccupancyMLP(nn.Module):
    """Per-point features (B, C, P) -> occupancy (B, 1, P) in [0, 1]."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        super().__init__()
        first = sizes[0]
        layers = []
        for i in range(len(sizes) - 1):
            cin = sizes[i] + (first if i > 0 else 0)
            layers.append(nn.Conv1d(cin, sizes[i + 1], 1))
        self.layers = nn.ModuleList(layers)

    def forward(self, feature):
        y = feature
        for i, layer in enumerate(self.layers):
            y = layer(y if i == 0 else torch.cat([y, feature], 1))
            if i < len(self.layers) - 1:
                y = F.leaky_relu(y)
        return torch.sigmoid(y)


class PifuNet(nn.Module):
    """Image encoder + pixel-aligned occupancy MLP, sized by a :class:`PifuConfig`."""

    def __init__(self, config) -> None:
        super().__init__()
        self.depth_scale = float(config.depth_scale)
        self.encoder = HourglassEncoder(config.stacks, config.channels, config.hourglass_depth, config.stem_channels)
        self.mlp = OccupancyMLP((config.channels + 1, *config.mlp, 1))

    def encode(self, image):
        """Feature maps, one per stack, of ``image`` (B, 3, H, W) in [-1, 1]."""
        return self.encoder(image)

    def query(self, features, points, K, world_to_cam, orthographic, depth_center, size: tuple[int, int]):
        """Occupancy (B, P) in [0, 1] of ``points`` (B, P, 3) from each feature map in
        ``features``, through cameras ``K`` (B, 3, 3) and ``world_to_cam`` (B, 4, 4) of images
        ``size`` = (width, height) pixels; ``depth_center`` (B,): camera depth of each view's
        target (the origin of the depth feature)."""
        grid, z = project_to_grid(points, K, world_to_cam, orthographic, *size)  # float32
        z_feature = ((z - depth_center.float()[:, None]) / self.depth_scale)[:, None]
        out = []
        for feature in features:
            sampled = F.grid_sample(feature, grid[:, :, None], mode="bilinear", align_corners=False)
            sampled = sampled[..., 0]
            out.append(self.mlp(torch.cat([sampled, z_feature.to(sampled.dtype)], 1))[:, 0])
        return out

    def forward(self, image, points, K, world_to_cam, orthographic, depth_center):
        """Occupancy per stack: list of (B, P) for ``points`` seen in ``image`` (see :meth:`query`)."""
        h, w = image.shape[-2:]
        return self.query(self.encode(image), points, K, world_to_cam, orthographic, depth_center, (w, h))
