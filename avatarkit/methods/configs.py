"""Method configs: dataclasses whose fields are the options of ``avatarkit train METHOD``.

A config is a frozen dataclass with a docstring under each field (as nerfstudio's
configs are written); :func:`field_docs` reads those docstrings for the command's help.
Every field is an option, except the :func:`derived` ones: facts the method fills from its
data when a run starts (DeepSDF's number of shapes), saved with the config like the rest so
that a trained run's network can be built from its config alone.
:func:`to_dict` and :func:`from_dict` turn a config into the plain dict stored in every
checkpoint and back, so that a run can be resumed and used without the flags that made it.

This module imports no torch: ``avatarkit train --help`` reads configs without it.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
import types
import typing
from typing import Any

from avatarkit.errors import OptionError
from avatarkit.fitting.optim import OPTIMIZERS


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What every trainable method shares: optimisation, schedule, validation, logging."""

    max_steps: int = 200_000
    """Optimisation steps in all (one step = one batch on each process)."""
    max_time: float = 0.0
    """Seconds of training after which the run ends as if at max_steps (0: no limit; validations count): a budget that ends on time on any machine. The learning rate decays at lr_decay_at of whichever of steps and time is further along."""
    batch_size: int = 2
    """Subjects per step on each process (with torchrun, the global batch is this times the processes)."""
    lr: float = 1e-3
    """Learning rate."""
    optimizer: str = "rmsprop"
    """rmsprop (PIFu's) or adam."""
    lr_decay_at: tuple[float, ...] = (0.6, 0.8)
    """Fractions of max_steps at which the learning rate is multiplied by lr_decay."""
    lr_decay: float = 0.1
    """Factor applied to the learning rate at each lr_decay_at."""
    val_fraction: float = 0.1
    """Share of subjects held out for validation (at least one when there are two or more subjects)."""
    val_every: int = 1000
    """Steps between validations on the held-out subjects' points."""
    mesh_every: int = 5000
    """Steps between reconstructions of a held-out subject scored with chamfer and P2S (0: only at the end)."""
    checkpoint_every: int = 1000
    """Steps between checkpoints (the last one is always kept; the best by validation too)."""
    log_every: int = 50
    """Steps between TensorBoard scalars (and log lines when the output is not a terminal)."""
    image_every: int = 1000
    """Steps between TensorBoard image grids of the training inputs."""
    seed: int = 0
    """Seeds the network's initial weights and every data draw; runs are reproducible."""
    amp: bool = True
    """Mixed precision on CUDA (bfloat16 where supported, else float16 with loss scaling); ignored on the CPU."""

    def check(self) -> None:
        at_least_one(self, "max_steps", "batch_size", "val_every", "checkpoint_every", "log_every", "image_every")
        if not self.lr > 0:
            raise OptionError(f"--lr must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise OptionError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0 <= self.val_fraction < 1:
            raise OptionError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if not self.max_time >= 0:
            raise OptionError(f"--max-time takes seconds, 0 or more, got {self.max_time}")
        if self.mesh_every < 0:
            raise OptionError(f"--mesh-every must be 0 or more, got {self.mesh_every}")
        if any(not 0 < f <= 1 for f in self.lr_decay_at):
            raise OptionError(f"--lr-decay-at takes fractions of max-steps in (0, 1], got {self.lr_decay_at}")


@dataclasses.dataclass(frozen=True)
class ImageDataConfig(TrainConfig):
    """What every image-based method shares: the network's input image, the points drawn per
    step, and the augmentations (PIFu's names and values in brackets)."""

    image_size: int = 512
    """Side of the square image the network sees; views are resized to it and cameras scaled (PIFu's loadSize)."""
    mask_input: bool = True
    """Multiply the image by its mask, as PIFu does (reconstruct then needs a mask)."""
    points: int = 5000
    """Points drawn from a subject's samples file each step (PIFu's num_sample_inout)."""
    balance: bool = True
    """PIFu's balanced draw: at most half of the points inside, the rest outside."""
    silhouette_draw: float = 0.0
    """Share of the outside points drawn from those the view sees inside its silhouette: in front of and behind the subject, the depth one image leaves open (0: PIFu's draw)."""
    flip: bool = True
    """Random horizontal flips of image and camera together (PIFu's random_flip)."""
    scale_jitter: float = 0.1
    """Random zoom of image and camera together, 1 +- this (PIFu's random_scale: 0.1)."""
    shift_jitter: float = 0.02
    """Random shift of image and camera together, up to this share of the image side (PIFu's random_trans)."""
    brightness: float = 0.2
    """Colour jitter: brightness factor 1 +- this (PIFu's aug_bri)."""
    contrast: float = 0.2
    """Colour jitter: contrast factor 1 +- this (PIFu's aug_con)."""
    saturation: float = 0.05
    """Colour jitter: saturation factor 1 +- this (PIFu's aug_sat)."""
    hue: float = 0.05
    """Colour jitter: hue shift up to this many turns (PIFu's aug_hue)."""
    blur: float = 0.0
    """Gaussian blur with a random sigma up to this many pixels (PIFu's aug_blur)."""
    background_dir: str | None = None
    """Folder of images; each training view gets a random crop of one behind the subject (matters with --no-mask-input)."""
    val_resolution: int = 128
    """Grid resolution of validation meshes (a power of two)."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "image_size", "points")
        if self.image_size % 4:
            raise OptionError(f"--image-size must be a multiple of 4 (the encoder's stride), got {self.image_size}")
        if not 0 <= self.silhouette_draw <= 1:
            raise OptionError(f"--silhouette-draw must be in [0, 1], got {self.silhouette_draw}")
        if not 0 <= self.scale_jitter < 1 or not 0 <= self.shift_jitter < 0.5:
            raise OptionError("--scale-jitter must be in [0, 1) and --shift-jitter in [0, 0.5)")
        if self.val_resolution < 8 or self.val_resolution & (self.val_resolution - 1):
            raise OptionError(f"--val-resolution must be a power of two of at least 8, got {self.val_resolution}")
        from avatarkit.reconstruct.extract import check_lattice_memory

        check_lattice_memory(self.val_resolution, option="--val-resolution")


def derived(default: Any) -> Any:
    """A config field that is not an option: the method sets it from its data in
    :meth:`~avatarkit.methods.contract.Trainable.setup` (e.g. how many latent codes its network
    holds); it is saved in checkpoints with the other fields."""
    return dataclasses.field(default=default, metadata={"derived": True})


def option_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a config class that are command-line options (all but :func:`derived` ones)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("derived")]


def at_least_one(config: Any, *names: str) -> None:
    """Raise :class:`OptionError` naming the first of ``names`` whose value is below 1."""
    for name in names:
        if getattr(config, name) < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (and of its dataclass bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update(_class_field_docs(klass))
    return docs


@functools.cache
def _class_field_docs(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.ClassDef)
    body = node.body
    docs = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def field_types(cls: type) -> dict[str, Any]:
    """Each field's resolved type annotation."""
    return typing.get_type_hints(cls)


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain dict (tuples become lists): what checkpoints store."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """A config from :func:`to_dict`'s output; fields it lacks (added since) take the class's
    ``ABSENT`` value for them where it has one (what runs stored before the field existed did),
    else their defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise OptionError(f"the stored config has fields this avatarkit does not know: {', '.join(unknown)}")
    return replace(cls(), **{**getattr(cls, "ABSENT", {}), **values})


def replace(config: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` with values coerced to the fields' types (lists to tuples,
    ints to floats, comma-separated strings to tuples)."""
    types_ = field_types(type(config))
    coerced = {name: coerce(types_[name], value, name) for name, value in changes.items()}
    return dataclasses.replace(config, **coerced)


def coerce(kind: Any, value: Any, name: str = "") -> Any:
    """``value`` as the field type ``kind`` (bool, int, float, str, Path/str | None, tuple[...])."""
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return coerce(inner[0], value, name)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        try:
            return tuple(coerce(args[0], v, name) for v in value)
        except TypeError:
            raise OptionError(f"--{name.replace('_', '-')}: expected a list, got {value!r}") from None
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return kind(value)
    except (TypeError, ValueError):
        raise OptionError(f"--{name.replace('_', '-')}: expected {kind.__name__}, got {value!r}") from None
