"""The method contract: what a method gives the shared trainer, and what a trained run gives
``reconstruct``. A new method implements these (``docs/adding_a_method.md`` walks through one);
``nox -s lint`` has mypy check that every registered method does.

- :class:`Trainable`: one training run's data, network, loss and validation. The trainer
  (:func:`avatarkit.methods.trainer.train`) owns everything else: the optimiser and its
  schedule, mixed precision, DDP, checkpoints, TensorBoard, a clean stop on Ctrl-C.
- :class:`Predictor`: a trained network asked about one observation; it answers with an
  :class:`~avatarkit.reconstruct.field.ImplicitField` (occupancy or signed distance, with
  colours if it has them), which ``reconstruct`` meshes. What it observes is one of the
  types of :mod:`avatarkit.reconstruct.inputs` (:data:`OBSERVATIONS`): an ``image``
  (:class:`~avatarkit.reconstruct.inputs.ImageInput`, image-based methods), a ``samples``
  file (:class:`~avatarkit.reconstruct.inputs.SamplesInput`: points with signed distances) or
  a ``latent`` (:class:`~avatarkit.reconstruct.inputs.LatentInput`: a training shape's code);
  the method's :class:`~avatarkit.methods.registry.MethodSpec` says which, in ``observes``,
  and ``reconstruct`` reads its inputs accordingly.
- :class:`RunState`: what a run must remember beyond its weights, saved in every checkpoint
  (so ``--resume`` and ``reconstruct`` need none of the flags that made it).
- :class:`ParameterGroups`: optional, on a network whose parts step at different rates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

    from avatarkit.methods.configs import TrainConfig
    from avatarkit.reconstruct.field import ImplicitField

OBSERVATIONS = ("image", "samples", "latent")
"""What a :class:`Predictor` can be asked about (``MethodSpec.observes``): ``image`` (photos and
views files, as :class:`~avatarkit.reconstruct.inputs.ImageInput`), ``samples`` (samples files,
as :class:`~avatarkit.reconstruct.inputs.SamplesInput`), ``latent`` (``reconstruct --latent I``,
as :class:`~avatarkit.reconstruct.inputs.LatentInput`)."""

Observation = TypeVar("Observation", contravariant=True)


@dataclasses.dataclass(frozen=True)
class BestMetric:
    """The validation metric that picks ``best.pt``, and which way is better."""

    name: str
    higher_is_better: bool = True

    def improves(self, value: float | None, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` (None: no best yet); non-finite values never do."""
        if value is None or not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


class CameraRecord(TypedDict):
    """A run's camera, as plain lists (JSON and checkpoints): where ``reconstruct`` places a
    photo given without a camera of its own."""

    K: list[list[float]]
    world_to_cam: list[list[float]]
    target: list[float]
    projection: str
    width: int
    height: int


class Split(TypedDict):
    """The subjects (file stems) a run trains on and holds out."""

    train: list[str]
    val: list[str]


class RunState(TypedDict, total=False):
    """What a checkpoint carries beyond the weights (``Trainable.state()``).

    ``data``: each data option's paths (absolute), so ``--resume`` needs none; ``split``: the
    subjects, so a resumed run keeps its held-out ones; ``camera``: image-based methods' run
    camera. A method may add keys of its own (they are saved and handed back as ``restored``).
    """

    data: dict[str, list[str]]
    split: Split
    camera: CameraRecord


class Trainable(Protocol):
    """One training run of a method (built as ``Class(config, restored=state, **data)``)."""

    name: str
    best_metric: BestMetric

    @property
    def config(self) -> TrainConfig:
        """The run's config (a method's own subclass of :class:`TrainConfig`)."""

    def setup(self, device: torch.device) -> None:
        """Check the data and prepare it (raises :class:`~avatarkit.errors.InputError`). A
        config with :func:`~avatarkit.methods.configs.derived` fields gets them here (the method
        replaces its ``config``); the trainer reads ``config`` again after this call."""

    def build_model(self) -> torch.nn.Module:
        """The network, freshly initialised (the trainer seeds torch first)."""

    def loader(self, start: int, stop: int, rank: int, world: int, workers: int) -> Iterable[Any]:
        """Batches for steps ``start`` to ``stop`` of process ``rank`` of ``world``; the same
        steps give the same batches after a resume and on any number of processes."""

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimise and scalars to log (``model`` may be wrapped by DDP)."""

    def validate(self, model: torch.nn.Module, meshes: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Metrics (``val/...``) and (H, W, 3) uint8 images on the held-out data; ``meshes``:
        also reconstruct and score meshes (less often: slower)."""

    def batch_images(self, batch: Any) -> np.ndarray:
        """An (H, W, 3) uint8 picture of a batch's inputs, for TensorBoard."""

    def state(self) -> RunState:
        """What a checkpoint must carry beyond the weights."""

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the data (subjects, held out, ...), for ``--json``."""

    def close(self) -> None:
        """Release open files (called when training ends, however it ends)."""


class Predictor(Protocol[Observation]):
    """A trained network on a device, asked about one observation (built as
    ``Class(model, config, device, state)`` by
    :meth:`~avatarkit.methods.registry.Trained.predictor`; ``state`` is the run's
    :class:`RunState`). ``Predictor[ImageInput]`` answers about images;
    ``Predictor[SamplesInput | LatentInput]`` about samples files and latent codes."""

    def field(self, observation: Observation, /) -> ImplicitField:
        """The implicit surface of ``observation``, in world metres, over the box to mesh."""


@runtime_checkable
class ParameterGroups(Protocol):
    """A network whose parts the trainer steps at different rates (optional).

    ``parameter_groups()`` returns ``[{"params": iterable, "lr_scale": float}, ...]``: each
    group is stepped at ``lr_scale`` times the config's rate, and follows its schedule (DeepSDF:
    its decoder at ``lr``, its latent codes at twice that). A network without the method is one
    group at ``lr``.
    """

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The optimiser's parameter groups, each with its ``lr_scale``."""
