"""Geo-PIFu's networks (``lib/model/VrnNet.py``, ``HGPIFuNet.py``, ``lib/net_util.py``,
``lib/geometry.py``), written for our cameras; PIFu's building blocks are shared, not copied
(:mod:`avatarkit.methods.pifu.model`).

- Volume network (stage 1, :class:`CoarseVolumeNet`): the input image resized to 2Y rows and
  its central 2X columns kept (384 x 256 for a 128 x 192 x 128 grid), a stride-8 stem (7x7
  conv, then residual blocks and two poolings), ``coarse_stacks`` hourglasses; each stack's
  2D features (``volume_channels * Z / 4`` channels) are lifted into a latent volume
  (``volume_channels``, Z/4, Y/4, X/4) refined by a small 3D U-Net and fed back into the next
  stack. A head upsamples a latent volume x4 (trilinear; ``coarse_upsample``) and gives
  occupancy at the grid's resolution: 3x3x3 conv, norm, LeakyReLU(0.2), 1x1x1 conv, sigmoid.
- Query network (stage 2): PIFu's stacked hourglass and occupancy MLP; each point's MLP input
  is the last stack's latent volume sampled trilinearly at the point and at six points
  ``displacement`` away (7 x ``volume_channels``: Geo-PIFu's early fusion with
  ``multiRanges_deepVoxels``), then the pixel-aligned 2D feature, then the depth feature
  (313-1024-512-256-128-1 by default).

Geo-PIFu normalises its 3D convolutions with BatchNorm3d; here they use group norm, as the 2D
network does, so that a batch of one or two per process trains and infers alike.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from avatarkit.methods.geopifu import volume as V
from avatarkit.methods.pifu.model import HourglassEncoder, OccupancyMLP, _groups, _Hourglass, _Residual
from avatarkit.render.projection import project_to_grid


def _norm3d(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, 4), channels)


def _conv3d_same(cin: int, cout: int, kernel: int, bias: bool = True) -> nn.Sequential:
    """A stride-1 3D convolution padded by replication to keep the size (Geo-PIFu's Conv3dSame)."""
    return nn.Sequential(nn.ReplicationPad3d(kernel // 2), nn.Conv3d(cin, cout, kernel, bias=bias))


class Unet3D(nn.Module):
    """Geo-PIFu's small 3D U-Net on a latent volume (B, C, D, H, W), D, H, W multiples of 4:
    two stride-2 levels (C -> 2C -> 4C) and back, with skips; same shape out."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.pre = nn.Sequential(_conv3d_same(c, c, 3, bias=False), _norm3d(c), nn.LeakyReLU(0.2))
        self.enc1 = nn.Sequential(
            nn.ReplicationPad3d(1), nn.Conv3d(c, 2 * c, 4, stride=2, bias=False), _norm3d(2 * c), nn.LeakyReLU(0.2)
        )
        self.enc2 = nn.Sequential(nn.ReplicationPad3d(1), nn.Conv3d(2 * c, 4 * c, 4, stride=2), nn.LeakyReLU(0.2))
        self.dec2 = nn.Sequential(nn.ConvTranspose3d(4 * c, 2 * c, 4, stride=2, padding=1), nn.ReLU())
        self.dec1 = nn.Sequential(
            nn.ConvTranspose3d(4 * c, c, 4, stride=2, padding=1, bias=False), _norm3d(c), nn.ReLU()
        )
        self.final = nn.Sequential(_conv3d_same(2 * c, c, 3, bias=False), _norm3d(c), nn.ReLU())

    def forward(self, x):
        skip0 = self.pre(x)
        skip1 = self.enc1(skip0)
        y = self.dec2(self.enc2(skip1))
        y = self.dec1(torch.cat([skip1, y], 1))
        return self.final(torch.cat([skip0, y], 1))


class CoarseVolumeNet(nn.Module):
    """Image (B, 3, S, S) in [-1, 1] -> one latent volume (B, volume_channels, Z/4, Y/4, X/4) per
    stack; :meth:`occupancy` turns one into (B, Z, Y, X) occupancy in [0, 1] (see :mod:`.volume`
    for where the volume lies)."""

    def __init__(self, config) -> None:
        super().__init__()
        X, Y, Z = config.grid
        self.grid = (int(X), int(Y), int(Z))
        c, s, vc = config.coarse_channels, config.coarse_stem_channels, config.volume_channels
        self.latent = (Z // 4, Y // 4, X // 4)
        flat = vc * self.latent[0]
        self.volume_channels = vc
        self.upsample = int(config.coarse_upsample)
        self.stem = nn.Sequential(
            nn.Conv2d(3, s, 7, stride=2, padding=3),
            nn.GroupNorm(_groups(s), s),
            nn.ReLU(),
            _Residual(s, 2 * s),
            nn.AvgPool2d(2),
            _Residual(2 * s, 2 * s),
            nn.AvgPool2d(2),
            _Residual(2 * s, 2 * s),
            _Residual(2 * s, c),
        )
        n = config.coarse_stacks
        self.hourglasses = nn.ModuleList(_Hourglass(config.coarse_hourglass_depth, c) for _ in range(n))
        self.heads = nn.ModuleList(
            nn.Sequential(_Residual(c, c), nn.Conv2d(c, c, 1), nn.GroupNorm(_groups(c), c), nn.ReLU()) for _ in range(n)
        )
        self.lift = nn.ModuleList(nn.Conv2d(c, flat, 1) for _ in range(n))
        self.unets = nn.ModuleList(Unet3D(vc) for _ in range(n))
        self.merge = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(n - 1))
        self.merge_volume = nn.ModuleList(nn.Conv2d(flat, c, 1) for _ in range(n - 1))
        self.classify = nn.Sequential(
            _conv3d_same(vc, vc, 3, bias=False), _norm3d(vc), nn.LeakyReLU(0.2), nn.Conv3d(vc, 1, 1), nn.Sigmoid()
        )

    def forward(self, image) -> list[torch.Tensor]:
        X, Y, _ = self.grid
        x = F.interpolate(image, size=(2 * Y, 2 * Y), mode="bilinear", align_corners=False, antialias=True)
        left = Y - X
        x = self.stem(x[..., left : left + 2 * X])
        volumes = []
        for i, (hourglass, head) in enumerate(zip(self.hourglasses, self.heads, strict=True)):
            y = head(hourglass(x))
            flat = self.lift[i](y)  # (B, vc * Z/4, Y/4, X/4)
            b, _, h, w = flat.shape
            volume = self.unets[i](flat.reshape(b, self.volume_channels, self.latent[0], h, w))
            volumes.append(volume)
            if i < len(self.merge):
                x = x + self.merge[i](y) + self.merge_volume[i](volume.reshape(b, -1, h, w))
        return volumes

    def occupancy(self, latent) -> torch.Tensor:
        """(B, Z, Y, X) occupancy in [0, 1] of a latent volume (B, C, Z/4, Y/4, X/4) (at
        ``coarse_upsample`` times the latent's resolution: the grid's by default)."""
        up = latent
        if self.upsample > 1:
            up = F.interpolate(latent, scale_factor=self.upsample, mode="trilinear", align_corners=False)
        return self.classify(up)[:, 0]


class Features(NamedTuple):
    """What :meth:`GeoPifuNet.encode` gives: PIFu's 2D feature maps (one per stack), the last
    stack's latent volume, and (when asked) its occupancy volume (B, Z, Y, X)."""

    maps: list[torch.Tensor]
    latent: torch.Tensor
    occupancy: torch.Tensor | None = None


class GeoPifuNet(nn.Module):
    """The volume network and the query network, sized by a :class:`GeoPifuConfig`. The
    buffers ``coarse_trained`` and ``query_trained`` record which stages have trained (they
    travel with the weights): an untrained query network answers with the volume's occupancy."""

    def __init__(self, config) -> None:
        super().__init__()
        self.depth_scale = float(config.depth_scale)
        self.displacement = float(config.displacement)
        self.grid = tuple(int(g) for g in config.grid)
        self.coarse = CoarseVolumeNet(config)
        self.encoder = HourglassEncoder(config.stacks, config.channels, config.hourglass_depth, config.stem_channels)
        n3d = config.volume_channels * (7 if self.displacement > 0 else 1)
        self.mlp = OccupancyMLP((n3d + config.channels + 1, *config.mlp, 1))
        self.register_buffer("coarse_trained", torch.zeros((), dtype=torch.bool))
        self.register_buffer("query_trained", torch.zeros((), dtype=torch.bool))

    def mark_trained(self, stage: str) -> None:
        """Record that ``stage`` (coarse or query) has trained (a buffer: saved with the weights)."""
        buffer = self.coarse_trained if stage == "coarse" else self.query_trained
        assert isinstance(buffer, torch.Tensor)
        buffer.fill_(True)

    def encode(self, image, train_coarse: bool = False, occupancy: bool = False) -> Features:
        """Features of ``image`` (B, 3, S, S) in [-1, 1]; the volume network runs without
        gradients unless ``train_coarse``."""
        with torch.set_grad_enabled(train_coarse and torch.is_grad_enabled()):
            latent = self.coarse(image)[-1]
            volume = self.coarse.occupancy(latent) if occupancy else None
        return Features(self.encoder(image), latent, volume)

    def query(self, features: Features, points, K, world_to_cam, orthographic, depth_center, size: tuple[int, int]):
        """Occupancy (B, P) in [0, 1] of ``points`` (B, P, 3) from each 2D feature map, through
        cameras ``K`` (B, 3, 3) and ``world_to_cam`` (B, 4, 4) of square images of ``size`` =
        (width, height) pixels; ``depth_center`` (B,): camera depth of each view's target."""
        xy, z = project_to_grid(points, K, world_to_cam, orthographic, *size)
        coords = V.to_volume(xy, z, K, orthographic, depth_center, size[1], self.grid)
        sampled_3d = V.sample_volume(features.latent, coords, self.displacement)
        z_feature = ((z - depth_center.float()[:, None]) / self.depth_scale)[:, None]
        out = []
        for feature in features.maps:
            sampled = F.grid_sample(feature, xy[:, :, None], mode="bilinear", align_corners=False)[..., 0]
            point = torch.cat([sampled_3d.to(sampled.dtype), sampled, z_feature.to(sampled.dtype)], 1)
            out.append(self.mlp(point)[:, 0])
        return out

    def volume_query(self, occupancy, points, K, world_to_cam, orthographic, depth_center, size: tuple[int, int]):
        """Occupancy (B, P) of ``points`` read from an occupancy volume (B, Z, Y, X) (trilinear)."""
        coords = V.volume_coords(points, K, world_to_cam, orthographic, depth_center, size[1], self.grid)
        return V.sample_volume(occupancy[:, None], coords)[:, 0]

    def forward(
        self, image, points, K, world_to_cam, orthographic, depth_center, stage: str = "query", train_coarse=False
    ):
        """``stage`` coarse: the occupancy volume (B, Z, Y, X) of every stack of the volume
        network; query: occupancy (B, P) of ``points`` per 2D stack (see :meth:`query`)."""
        if stage == "coarse":
            return [self.coarse.occupancy(v) for v in self.coarse(image)]
        h, w = image.shape[-2:]
        features = self.encode(image, train_coarse=train_coarse)
        return self.query(features, points, K, world_to_cam, orthographic, depth_center, (w, h))
