"""The networks of a neural surface fitted to one scene (IDR, Yariv et al. 2020): a signed
distance network that also gives a geometry feature, and a colour network conditioned on the
surface point, its normal, the viewing direction and that feature.

Coordinates are the scene's *unit sphere* (IDR's ``scale_mat`` frame: the subject inside the
sphere of radius 1 at the origin); signed distances are in its units.

- :class:`SdfNetwork`: IDR's ``ImplicitNetwork`` (``code/model/implicit_differentiable_renderer.py``):
  positional encoding of the point (``multires`` 6), 8 x 256 layers with weight norm, the input
  concatenated again at layer 4, Softplus (beta 100), and IDR's geometric initialisation (a
  sphere of radius ``bias`` 0.6), answering ``(sdf, feature)``.
- :class:`ColorNetwork`: IDR's ``RenderingNetwork`` in its ``idr`` mode: point, view direction
  (encoded, ``multires_view`` 4), normal and feature through 4 x 256 layers to RGB in [0, 1].

Any module with ``forward(points (N, 3)) -> (sdf (N, 1), feature (N, F))`` and a
``feature_size`` attribute can stand in for :class:`SdfNetwork` (a learned prior does: see
``avatarkit fit-head --prior``).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """NeRF's encoding: x and sin, cos of 2^k x for k < ``frequencies`` (log-sampled)."""

    def __init__(self, frequencies: int, dims: int = 3) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.out_dims = dims * (1 + 2 * frequencies)
        self.bands: torch.Tensor
        self.register_buffer("bands", 2.0 ** torch.arange(frequencies, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.frequencies:
            return x
        scaled = x[..., None, :] * self.bands[:, None]  # (..., F, D)
        return torch.cat([x, torch.sin(scaled).flatten(-2), torch.cos(scaled).flatten(-2)], dim=-1)


class SdfNetwork(nn.Module):
    """IDR's implicit network: ``forward(points (N, 3)) -> (sdf (N, 1), feature (N, feature_size))``."""

    def __init__(
        self, width: int = 256, layers: int = 8, skip: tuple[int, ...] = (4,), multires: int = 6,
        feature_size: int = 256, bias: float = 0.6,
    ) -> None:  # fmt: skip
        super().__init__()
        self.encoding = PositionalEncoding(multires)
        self.feature_size = feature_size
        self.skip = set(skip)
        d_in = self.encoding.out_dims
        dims = [d_in] + [width] * layers + [1 + feature_size]
        self.linears = nn.ModuleList()
        for i in range(len(dims) - 1):
            out = dims[i + 1] - (d_in if i + 1 in self.skip else 0)
            lin = nn.Linear(dims[i], out)
            _geometric_init(
                lin, i, len(dims) - 2, d_in, 3, bias, i in self.skip, dims[i] - d_in if i in self.skip else 0
            )
            self.linears.append(nn.utils.parametrizations.weight_norm(lin))
        self.activation = nn.Softplus(beta=100)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x0 = self.encoding(points)
        x = x0
        last = len(self.linears) - 1
        for i, lin in enumerate(self.linears):
            if i in self.skip:
                x = torch.cat([x, x0], dim=-1) / math.sqrt(2)
            x = lin(x)
            if i < last:
                x = self.activation(x)
        return x[..., :1], x[..., 1:]


def _geometric_init(
    lin: nn.Linear, i: int, last: int, d_in: int, xyz: int, bias: float, skip: bool, skip_from: int
) -> None:
    """IDR's initialisation (Atzmon and Lipman's SAL): the network starts as the SDF of a
    sphere of radius ``bias``; encoded frequencies start at zero weight."""
    out_dim, in_dim = lin.weight.shape
    with torch.no_grad():
        if i == last:
            nn.init.normal_(lin.weight, mean=math.sqrt(math.pi) / math.sqrt(in_dim), std=1e-4)
            nn.init.constant_(lin.bias, -bias)
        elif i == 0:
            nn.init.constant_(lin.bias, 0.0)
            nn.init.constant_(lin.weight[:, xyz:], 0.0)
            nn.init.normal_(lin.weight[:, :xyz], 0.0, math.sqrt(2) / math.sqrt(out_dim))
        elif skip:
            nn.init.constant_(lin.bias, 0.0)
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2) / math.sqrt(out_dim))
            nn.init.constant_(lin.weight[:, skip_from + xyz :], 0.0)
        else:
            nn.init.constant_(lin.bias, 0.0)
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2) / math.sqrt(out_dim))


class ColorNetwork(nn.Module):
    """IDR's rendering network (``idr`` mode): ``forward(points, normals, view_dirs, features)
    -> (N, 3)`` RGB in [0, 1]; ``view_dirs`` point from the camera into the scene."""

    def __init__(self, feature_size: int, width: int = 256, layers: int = 4, multires_view: int = 4) -> None:
        super().__init__()
        self.view_encoding = PositionalEncoding(multires_view)
        dims = [9 - 3 + self.view_encoding.out_dims + feature_size] + [width] * layers + [3]
        self.linears = nn.ModuleList(
            nn.utils.parametrizations.weight_norm(nn.Linear(a, b)) for a, b in itertools.pairwise(dims)
        )

    def forward(
        self, points: torch.Tensor, normals: torch.Tensor, view_dirs: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        x = torch.cat([points, self.view_encoding(view_dirs), normals, features], dim=-1)
        for i, lin in enumerate(self.linears):
            x = lin(x)
            if i < len(self.linears) - 1:
                x = torch.relu(x)
        return torch.sigmoid(x)


def sdf_and_gradient(sdf_net: nn.Module, points: torch.Tensor, create_graph: bool = True):
    """(sdf (N, 1), feature (N, F), gradient (N, 3)) of ``sdf_net`` at ``points``; the gradient
    is differentiable (for the eikonal term and normals) when ``create_graph``."""
    with torch.enable_grad():
        x = points if points.requires_grad else points.detach().requires_grad_(True)
        sdf, feature = sdf_net(x)
        (grad,) = torch.autograd.grad(sdf.sum(), x, create_graph=create_graph)
    return sdf, feature, grad
