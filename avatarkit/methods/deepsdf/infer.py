"""A trained DeepSDF asked about one shape: a training shape's code (``reconstruct RUN
--latent I``), or a code fitted to a samples file's points (``reconstruct RUN samples.h5``,
DeepSDF's ``reconstruct.py``), meshed in the shape's unit sphere and returned in world metres.

- :func:`fit_latent`: DeepSDF's latent optimisation with the decoder frozen.
- :func:`mean_latent`: the mean of the training codes (a neutral start, a prior's centre).
- :func:`sdf_field`: a code's signed distance as an
  :class:`~avatarkit.reconstruct.field.ImplicitField` over its unit sphere's cube.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from avatarkit.errors import InputError, OptionError
from avatarkit.methods.deepsdf.data import Normalization, half_and_half, normalization, to_unit

if TYPE_CHECKING:
    from avatarkit.methods.contract import RunState
    from avatarkit.methods.deepsdf.config import DeepSDFConfig
    from avatarkit.methods.deepsdf.model import Decoder, DeepSDF
    from avatarkit.methods.deepsdf.train import DeepSDFState
    from avatarkit.reconstruct.field import ImplicitField
    from avatarkit.reconstruct.inputs import LatentInput, SamplesInput


def fit_latent(
    decoder: Decoder,
    points_unit: torch.Tensor,
    sdf_unit: torch.Tensor,
    iterations: int = 800,
    lr: float = 5e-3,
    samples: int = 8000,
    clamp: float = 0.1,
    l2reg: float = 1e-4,
    init_std: float = 0.01,
    seed: int = 0,
) -> torch.Tensor:
    """The code (L,) under which ``decoder`` best explains a shape's points, as DeepSDF's
    ``reconstruct.py`` finds it: a code drawn from N(0, ``init_std``), Adam at ``lr`` divided by
    10 after half the ``iterations``; each iteration ``samples`` points (half with sdf >= 0,
    half < 0, drawn afresh), loss the mean L1 of predictions and targets clamped to +-
    ``clamp`` plus ``l2reg`` times the mean squared code. The decoder is frozen, in eval mode
    (no dropout), and left as it was.

    Args:
        decoder: a :class:`~avatarkit.methods.deepsdf.model.Decoder` (with ``latent_size``).
        points_unit: (P, 3) points in the shape's unit sphere.
        sdf_unit: (P,) their signed distances, unit-sphere units (negative inside).
        seed: seeds the initial code and the draws.

    Returns:
        The code (L,), detached, on the decoder's device.
    """
    if iterations < 1 or samples < 1:
        raise OptionError(f"the code fit needs iterations and samples, got {iterations} and {samples}")
    if len(points_unit) == 0:
        raise InputError("no points to fit a code to")
    device = next(decoder.parameters()).device
    generator = torch.Generator().manual_seed(int(seed))
    points = torch.as_tensor(points_unit, dtype=torch.float32).reshape(-1, 3).to(device)
    sdf = torch.as_tensor(sdf_unit, dtype=torch.float32).reshape(-1).to(device)
    sdf_np = sdf.cpu().numpy()

    def draw(pool: np.ndarray, k: int) -> np.ndarray:
        return pool[torch.randint(len(pool), (k,), generator=generator).numpy()]

    latent = (torch.randn(decoder.latent_size, generator=generator) * init_std).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=lr)
    was_training = decoder.training
    frozen = [(p, p.requires_grad) for p in decoder.parameters()]
    decoder.eval()
    try:
        for p, _ in frozen:
            p.requires_grad_(False)
        with torch.enable_grad():
            for i in range(iterations):
                for group in optimizer.param_groups:
                    group["lr"] = lr * (0.1 ** (i // max(1, iterations // 2)))
                index = torch.from_numpy(half_and_half(sdf_np, samples, draw)).to(device)
                pred = decoder(latent, points[index])[:, 0].clamp(-clamp, clamp)
                loss = (pred - sdf[index].clamp(-clamp, clamp)).abs().mean()
                if l2reg:
                    loss = loss + l2reg * latent.pow(2).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        decoder.train(was_training)
    return latent.detach()


def mean_latent(model: DeepSDF) -> torch.Tensor:
    """(L,) the mean of a trained model's codes (``model.codes.weight``, (S, L))."""
    return model.codes.weight.detach().mean(0)


def sdf_field(
    decoder: Decoder,
    latent: torch.Tensor,
    norm: Normalization,
    clamp: float = 0.1,
    batch: int = 1 << 16,
) -> ImplicitField:
    """``latent``'s surface over its unit sphere's cube, in world metres.

    Values are signed distances in metres (unit-sphere distances times the radius), clamped to
    +- ``clamp`` times the radius (the band the network was trained in: far from the surface the
    field is flat and the octree fills it without queries); level 0, inside below.
    """
    from avatarkit.reconstruct.field import ImplicitField

    center, radius = np.asarray(norm["center"], dtype=np.float64), float(norm["radius"])
    device = next(decoder.parameters()).device
    code = latent.detach().reshape(-1).to(device)

    def values(points: np.ndarray) -> np.ndarray:
        out = np.empty(len(points), np.float32)
        unit = ((np.asarray(points, dtype=np.float64) - center) / radius).astype(np.float32)
        with torch.no_grad():
            for i in range(0, len(unit), batch):
                x = torch.from_numpy(unit[i : i + batch]).to(device)
                out[i : i + len(x)] = decoder(code, x)[:, 0].float().clamp(-clamp, clamp).cpu().numpy()
        return out * np.float32(radius)

    box = np.stack([center - radius, center + radius])
    return ImplicitField(values, box, level=0.0, inside="below")


class DeepSDFPredictor:
    """A trained :class:`~avatarkit.methods.deepsdf.model.DeepSDF` with its config and run state
    on a device (a ``Predictor[SamplesInput | LatentInput]``): a training shape's code meshed in
    its unit sphere (``state["normalization"]``), or a code fitted to a samples file's points
    meshed in that file's shape's unit sphere."""

    level = 0.0
    inside = "below"

    def __init__(
        self,
        model: torch.nn.Module,
        config: DeepSDFConfig,
        device: str | torch.device = "cpu",
        state: RunState | None = None,
    ) -> None:
        self.model: Any = model.eval()
        self.config = config
        self.device = torch.device(device)
        self.state = cast("DeepSDFState", state or {})

    def field(self, observation: SamplesInput | LatentInput, /) -> ImplicitField:
        """The surface of a training shape's code or of a samples file, in world metres."""
        from avatarkit.reconstruct.inputs import LatentInput

        if isinstance(observation, LatentInput):
            latent, norm = self.training_code(observation.index)
        else:
            norm = normalization(observation.center, observation.radius)
            points, sdf = to_unit(observation.points, observation.sdf, norm)
            c = self.config
            latent = fit_latent(
                self.model.decoder,
                torch.from_numpy(points),
                torch.from_numpy(sdf),
                c.fit_iterations,
                c.fit_lr,
                c.fit_samples,
                c.clamp,
                seed=c.seed,
            )
        return sdf_field(self.model.decoder, latent, norm, self.config.clamp)

    def training_code(self, index: int) -> tuple[torch.Tensor, Normalization]:
        """Training shape ``index``'s code (L,) and unit sphere."""
        shapes = self.state.get("split", {}).get("train", [])
        count = len(self.model.codes.weight)
        if not 0 <= index < count:
            raise OptionError(f"the run learned {count} training shapes' codes, numbered 0 to {count - 1}")
        norms = self.state.get("normalization", {})
        if index >= len(shapes) or shapes[index] not in norms:
            raise InputError(f"the run's state has no unit sphere for training shape {index}")
        return self.model.codes.weight[index].detach(), norms[shapes[index]]


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Predictor contract
    from avatarkit.methods.contract import Predictor

    _: type[Predictor[SamplesInput | LatentInput]] = DeepSDFPredictor
