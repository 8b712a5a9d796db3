"""The landmark detector's two networks, small enough to train on a CPU and run in milliseconds.

Both are the same shape of network: a plain convolutional encoder (3x3 convolutions, batch norm,
ReLU; five stride-2 stages, to 1/32) and a feature-pyramid decoder back to 1/4 (lateral 1x1
convolutions, nearest upsampling and sums, a 3x3 convolution), then 1x1 heads.

- :class:`BoxNet` reads a whole photo letterboxed to ``scene_size`` and predicts, per cell of
  the 1/4 grid, CenterNet's face-centre heatmap (a logit), the face's log size (relative to
  the image side) and the centre's sub-cell offset.
- :class:`PointNet` reads a ``crop_size`` square around one face and predicts 68 heatmaps on the
  1/4 grid, read out by a soft-argmax (integral regression: sub-pixel points, trained on the
  coordinates themselves), and a face-presence logit from the encoder's deepest features.

:class:`LandmarkNet` holds both: the network of a ``train landmarks`` run.
"""

from __future__ import annotations

import torch
from torch import nn

from avatarkit.methods.landmarks.config import LandmarksConfig

POINTS = 68
STRIDE = 4


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Backbone(nn.Module):
    """Encoder to 1/32 and a pyramid decoder back to 1/4 (``width`` channels at 1/2 and at the
    output; one convolution at 1/4, two at each deeper stage: the cost sits where it is cheap)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        widths = [width, 2 * width, 3 * width, 4 * width, 4 * width]
        self.stem = conv(3, widths[0], 2)
        self.stages = nn.ModuleList(
            nn.Sequential(conv(widths[i - 1], widths[i], 2), *([conv(widths[i], widths[i])] if i > 1 else []))
            for i in range(1, 5)
        )
        out = width
        self.lateral = nn.ModuleList(nn.Conv2d(w, out, 1) for w in widths[1:])
        self.smooth = conv(out, out)
        self.channels = out
        self.deep = widths[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] to (B, C, H/4, W/4) features and (B, deep, H/32, W/32)."""
        x = self.stem((x - 0.5) / 0.25)
        levels = []
        for stage in self.stages:
            x = stage(x)
            levels.append(x)
        y = self.lateral[-1](levels[-1])
        for lateral, level in zip(reversed(self.lateral[:-1]), reversed(levels[:-1]), strict=True):
            y = lateral(level) + nn.functional.interpolate(y, size=level.shape[-2:], mode="nearest")
        return self.smooth(y), levels[-1]


class BoxNet(nn.Module):
    """Faces in a letterboxed photo: (B, 4, S/4, S/4) = centre logit, log size, offset x, y."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.backbone = Backbone(width)
        c = self.backbone.channels
        self.head = nn.Conv2d(c, 4, 1)
        bias = self.head.bias
        assert bias is not None
        with torch.no_grad():
            bias.zero_()
            bias[0] = -4.6  # CenterNet's prior: a centre is rare

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features, _ = self.backbone(image)
        return self.head(features)


class PointNet(nn.Module):
    """68 heatmaps (B, 68, C/4, C/4) logits and a face-presence logit (B,) of a face crop."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.backbone = Backbone(width)
        c = self.backbone.channels
        self.head = nn.Conv2d(c, POINTS, 1)
        self.presence = nn.Linear(self.backbone.deep, 1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, deep = self.backbone(image)
        return self.head(features), self.presence(deep.mean(dim=(2, 3)))[:, 0]


class LandmarkNet(nn.Module):
    """A ``train landmarks`` network: :attr:`box` then :attr:`points`."""

    def __init__(self, config: LandmarksConfig) -> None:
        super().__init__()
        self.box = BoxNet(config.box_width)
        self.points = PointNet(config.width)


def soft_argmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integral regression over (B, K, h, w) heatmap logits: (B, K, 2) points in the input
    image's pixels (OpenCV centres; a cell c covers input pixels STRIDE c .. STRIDE c + STRIDE - 1,
    its centre at STRIDE c + (STRIDE - 1) / 2), the (B, K, h * w) softmax, and each point's
    confidence, the softmax's mass within 1.5 cells of the point (B, K)."""
    b, k, h, w = logits.shape
    prob = torch.softmax(logits.float().reshape(b, k, h * w), dim=-1)
    ys = torch.arange(h, device=logits.device, dtype=prob.dtype)
    xs = torch.arange(w, device=logits.device, dtype=prob.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    cells = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=-1)  # (h*w, 2)
    mean = prob @ cells  # (B, K, 2) cells
    near = ((cells[None, None] - mean[..., None, :]) ** 2).sum(-1) <= 1.5**2
    confidence = (prob * near).sum(-1)
    return mean * STRIDE + (STRIDE - 1) / 2, prob, confidence
