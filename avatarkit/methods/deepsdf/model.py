"""DeepSDF's networks as its repository codes them (``networks/deep_sdf_decoder.py``,
``train_deep_sdf.py``).

- :class:`Decoder`: an MLP from a latent code and a point to a signed distance. ``layers``
  hidden layers of ``hidden`` (8 x 512), its input ``[code, xyz]`` (latent_size + 3) fed again
  at each layer of ``latent_in`` (layer 4: the layer before gives hidden - latent_size - 3
  features, so the concatenation is ``hidden`` wide), weight normalisation on every hidden
  layer, ReLU then dropout (0.2, training only) after each, a linear output and ``tanh``.
- :class:`DeepSDF`: the decoder and the codes (``codes``, an ``nn.Embedding``: one row per
  training shape, drawn from N(0, code_init_std / sqrt(latent_size)), rows longer than
  ``code_bound`` scaled back at each training step), which the trainer optimises together; the codes step
  at ``code_lr_scale`` times the decoder's rate (:meth:`DeepSDF.parameter_groups`).

Points and distances are in the shape's unit sphere (see
:mod:`avatarkit.methods.deepsdf.config`). Sizes come from
:class:`~avatarkit.methods.deepsdf.config.DeepSDFConfig`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class Decoder(nn.Module):
    """(code, point) -> signed distance, both in the shape's unit sphere."""

    def __init__(
        self,
        latent_size: int,
        hidden: int = 512,
        layers: int = 8,
        latent_in: tuple[int, ...] = (4,),
        dropout: float = 0.2,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        self.latent_size, self.width = int(latent_size), int(hidden)
        self.latent_in = tuple(int(i) for i in latent_in)
        self.dropout = float(dropout)
        inputs = self.latent_size + 3
        self.hidden = nn.ModuleList()
        width_in = inputs
        for layer in range(layers):
            width_out = hidden - inputs if layer + 1 in self.latent_in else hidden
            linear = nn.Linear(width_in, width_out)
            if weight_norm:
                linear = nn.utils.parametrizations.weight_norm(linear)
            self.hidden.append(linear)
            width_in = width_out + (inputs if layer + 1 in self.latent_in else 0)
        self.output = nn.Linear(width_in, 1)

    def features(self, latent: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed distances and the last hidden layer's activations.

        Args:
            latent: (N, L) one code per point, or (L,) / (1, L): one code for every point.
            points: (N, 3) in the shape's unit sphere.

        Returns:
            sdf (N, 1) in unit-sphere units (``tanh``: in (-1, 1)), and features (N, H) with
            H = ``hidden``: the activations the output layer reads (after ReLU and dropout).
        """
        if latent.dim() == 1:
            latent = latent[None]
        if latent.shape[0] == 1 and points.shape[0] != 1:
            latent = latent.expand(points.shape[0], -1)
        start = torch.cat([latent.to(points.dtype), points], 1)
        x = start
        for layer, linear in enumerate(self.hidden):
            if layer in self.latent_in:
                x = torch.cat([x, start], 1)
            x = F.relu(linear(x))
            if self.dropout > 0:
                x = F.dropout(x, p=self.dropout, training=self.training)
        return torch.tanh(self.output(x)), x

    def forward(self, latent: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """(N, 1) signed distances, unit-sphere units, of ``points`` (N, 3) under ``latent``
        (N, L), or one code (L,) for all (see :meth:`features`)."""
        return self.features(latent, points)[0]


class DeepSDF(nn.Module):
    """DeepSDF's auto-decoder: ``decoder`` and ``codes`` (one per training shape), built as
    ``DeepSDF(config)`` with ``config.shapes`` codes."""

    def __init__(self, config) -> None:
        super().__init__()
        self.latent_size = int(config.latent_size)
        self.code_lr_scale = float(config.code_lr_scale)
        self.decoder = Decoder(
            config.latent_size, config.hidden, config.layers, config.latent_in, config.dropout, config.weight_norm
        )
        self.codes = nn.Embedding(int(config.shapes), config.latent_size)
        nn.init.normal_(self.codes.weight, 0.0, config.code_init_std / math.sqrt(config.latent_size))
        self.code_bound = float(config.code_bound)

    def forward(self, shapes: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed distances (B, P), unit-sphere units, of ``points`` (B, P, 3) of the training
        shapes ``shapes`` (B,) (their unit spheres), and the codes used (B, L).

        Codes longer than ``code_bound`` are first scaled back to it in place, as
        ``nn.Embedding(max_norm=CodeBound)`` does in DeepSDF; here every row, not only the
        batch's, so that the processes of a DDP run, whose batches differ, keep equal codes."""
        if self.code_bound > 0:
            with torch.no_grad():
                weight = self.codes.weight
                weight.mul_((self.code_bound / weight.norm(dim=1, keepdim=True).clamp_min(1e-7)).clamp(max=1.0))
        codes = self.codes(shapes)
        b, p, _ = points.shape
        sdf = self.decoder(codes[:, None].expand(b, p, -1).reshape(b * p, -1), points.reshape(b * p, 3))
        return sdf.reshape(b, p), codes

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The decoder at the trainer's rate, the codes at ``code_lr_scale`` times it (DeepSDF's
        two learning-rate schedules: 5e-4 and 1e-3, halved together)."""
        return [
            {"params": self.decoder.parameters(), "lr_scale": 1.0},
            {"params": self.codes.parameters(), "lr_scale": self.code_lr_scale},
        ]
