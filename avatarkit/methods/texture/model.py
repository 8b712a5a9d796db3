"""Sample&Refine's networks, in UV space (textures (B, C, H, W), values in [0, 1]).

- :class:`SamplerNet`: from the partial (mirror-filled) texture, its mask of filled texels and
  the normal map, where each texel samples from (``grid_sample`` coordinates, kept inside the
  texture: ``tanh(atanh(identity) + output)``; a free offset drifted out of the texture in a
  long CPU run, and with it the sampled texture); the sampled texture is the partial texture
  (its unfilled texels carried from the nearest filled one) read at that grid. The last layer
  starts at zero: a new SamplerNet samples every texel where it is.
- :class:`RefinerNet`: the sampled texture, the partial texture, its mask and the normal map
  -> a correction added to the sampled texture (also zero at the start).
- :class:`PatchDiscriminator`: a three-layer PatchGAN over a texture and the layout's coverage.

:class:`TextureNet` holds the three, with flags saying which were trained; its
:meth:`~TextureNet.complete` is the whole completion of a batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from avatarkit.methods.texture.config import TextureConfig

SAMPLER_INPUTS = 7
"""Partial texture (3), its mask (1), normal map (3): the seed's ``S1-mirror-norm_map_vis_mask``."""
REFINER_INPUTS = 10
"""Sampled texture (3), partial texture (3), its mask (1), normal map (3)."""


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
    )


class UNet(nn.Module):
    """A U-Net: ``depth`` stride-2 levels (channels ``width`` doubled per level, at most 8 times),
    bilinear up-sampling with skip connections, a 1x1 output layer initialised to zero."""

    def __init__(self, cin: int, cout: int, width: int, depth: int) -> None:
        super().__init__()
        widths = [width * min(2**i, 8) for i in range(depth + 1)]
        self.inp = _block(cin, widths[0])
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1], stride=2) for i in range(depth))
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(widths[0], cout, 1)
        nn.init.zeros_(self.out.weight)
        if self.out.bias is not None:
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inp(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], 1))
        return self.out(y)


def identity_grid(b: int, h: int, w: int, device, dtype=torch.float32) -> torch.Tensor:
    """(B, H, W, 2) ``grid_sample`` coordinates (x, y in [-1, 1], texel centres) of every texel."""
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)
    return grid[None].expand(b, h, w, 2)


class SamplerNet(nn.Module):
    """Partial texture, mask, normal map -> sampling offsets (B, 2, H, W) and the sampled texture."""

    def __init__(self, config: TextureConfig) -> None:
        super().__init__()
        self.net = UNet(SAMPLER_INPUTS, 2, config.width, config.depth)

    def forward(self, partial, mask, normal, source) -> tuple[torch.Tensor, torch.Tensor]:
        """``partial`` (B, 3, H, W) zero where unfilled, ``mask`` (B, 1, H, W), ``normal`` (B, 3,
        H, W) in [-1, 1], ``source`` (B, 3, H, W): the partial texture with its unfilled texels
        carried from the nearest filled one (what is sampled). Returns (sampled, offsets)."""
        raw = self.net(torch.cat([partial, mask, normal], 1)).float()
        b, _, h, w = partial.shape
        identity = identity_grid(b, h, w, partial.device)
        # the grid stays inside the texture: tanh of the identity's atanh plus the network's output
        grid = torch.tanh(torch.atanh(identity) + raw.permute(0, 2, 3, 1))
        offsets = (grid - identity).permute(0, 3, 1, 2)
        sampled = F.grid_sample(source.float(), grid, mode="bilinear", padding_mode="border",
                                align_corners=False)  # fmt: skip
        return sampled, offsets


class RefinerNet(nn.Module):
    """Sampled texture and the inputs -> the refined texture (sampled + a learnt correction)."""

    def __init__(self, config: TextureConfig) -> None:
        super().__init__()
        self.net = UNet(REFINER_INPUTS, 3, config.width, config.depth)

    def forward(self, sampled, partial, mask, normal) -> torch.Tensor:
        return sampled + self.net(torch.cat([sampled, partial, mask, normal], 1))


class PatchDiscriminator(nn.Module):
    """PatchGAN (three stride-2 layers): a realness score per patch of a texture (B, 3, H, W)
    given the layout's coverage (B, 1, H, W)."""

    def __init__(self, config: TextureConfig) -> None:
        super().__init__()
        w = config.disc_width
        self.net = nn.Sequential(
            nn.Conv2d(4, w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 1, 3, padding=1),
        )

    def forward(self, texture: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([texture * coverage, coverage], 1))


class TextureNet(nn.Module):
    """SamplerNet, RefinerNet and the discriminator, with which of them were trained
    (buffers, saved in checkpoints: completion uses RefinerNet only once it was trained)."""

    def __init__(self, config: TextureConfig) -> None:
        super().__init__()
        self.sampler = SamplerNet(config)
        self.refiner = RefinerNet(config)
        self.discriminator = PatchDiscriminator(config)
        self.register_buffer("sampler_trained", torch.tensor(False))
        self.register_buffer("refiner_trained", torch.tensor(False))

    def mark_trained(self, part: str) -> None:
        getattr(self, f"{part}_trained").fill_(True)

    def complete(self, partial, mask, normal, source) -> torch.Tensor:
        """The network's full texture (B, 3, H, W), not clamped: the refined texture when
        RefinerNet was trained, else the sampled one (SamplerNet alone)."""
        sampled, _ = self.sampler(partial, mask, normal, source)
        if not bool(self.refiner_trained):
            return sampled
        return self.refiner(sampled, partial, mask, normal)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(B, 1, H, W) SSIM map of two (B, C, H, W) images in [0, 1] (Gaussian window, Wang et
    al.'s constants), averaged over channels; borders padded by reflection."""
    x = torch.arange(window, device=a.device, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    c = a.shape[1]
    kx = g.view(1, 1, 1, window).expand(c, 1, 1, window)
    ky = g.view(1, 1, window, 1).expand(c, 1, window, 1)
    pad = window // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.pad(t, (pad, pad, pad, pad), mode="reflect")
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    a, b = a.float(), b.float()
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(1, keepdim=True)
