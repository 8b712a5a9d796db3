"""A trained DeepSDF run as the shape prior of a per-scene fit (H3D-Net: ``fit-head --prior``).

:class:`PriorSdf` is the run's decoder with one latent code of its own, answering as the SDF
network of :func:`avatarkit.fitting.head.fit_head` does: ``forward(points) -> (sdf, feature)``
in the scene's unit sphere, the feature being the decoder's last hidden layer. The code starts
at the mean of the training codes; the fit moves the code first (the decoder frozen), then both.

The prior's unit sphere is each training shape's own (``avatarkit.methods.deepsdf.data``: the
sphere ``render --export idr`` writes as ``scale_mat``), so a scene's ``scale_mat`` frame is
the prior's frame for scenes made that way. Other scenes (H3DS's own ``scale_mat``, a sphere
found from masks) place it differently: a scale and an offset of the prior in the scene's
sphere are fitted with the code (``x_prior = (x - offset) / scale``, distances times scale).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from avatarkit.errors import InputError


class PriorSdf(nn.Module):
    """A DeepSDF decoder and a latent code to fit: the SDF network of a head fit."""

    def __init__(self, decoder: Any, latent: torch.Tensor) -> None:
        super().__init__()
        self.decoder: Any = decoder
        self.latent = nn.Parameter(latent.detach().clone().reshape(-1))
        # where the prior's sphere sits in the scene's: x_prior = (x - offset) / scale, fitted with the
        # code (a scene's sphere may not be the prior's: H3DS's scale_mat, or one made from masks)
        self.offset = nn.Parameter(torch.zeros(3, dtype=self.latent.dtype, device=self.latent.device))
        self.log_scale = nn.Parameter(torch.zeros(1, dtype=self.latent.dtype, device=self.latent.device))
        self.feature_size = int(decoder.width)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.log_scale.exp()
        sdf, feature = self.decoder.features(self.latent, (points - self.offset) / scale)
        return sdf * scale, feature

    def code_parameters(self) -> list[nn.Parameter]:
        """What stage 1 fits: the latent code and the prior's placement in the scene."""
        return [self.latent, self.offset, self.log_scale]

    def train(self, mode: bool = True) -> PriorSdf:
        super().train(mode)
        self.decoder.eval()  # no dropout while a scene is fitted: the surface must be one field
        return self

    def prior_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters())


def load_prior(run: str | Path, device: str | torch.device = "cpu") -> PriorSdf:
    """The prior of a ``train deepsdf`` run folder or checkpoint; :class:`InputError` for a run
    of another method."""
    from avatarkit.methods.deepsdf.infer import mean_latent
    from avatarkit.methods.registry import load_trained

    trained = load_trained(run, str(device))
    if trained.spec.name != "deepsdf":
        raise InputError(f"the prior must be a `train deepsdf` run; this one trains {trained.spec.name}", run)
    model = trained.model
    prior = PriorSdf(model.decoder, mean_latent(model))
    for p in prior.decoder.parameters():
        p.requires_grad_(True)
    return prior.to(device)
