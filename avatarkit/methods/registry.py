"""The trainable methods, by name (``avatarkit train METHOD``), as nerfstudio's
``method_configs``: adding a method is adding an entry here, not a branch in a command.

An entry names its config class and named presets (plain dataclasses, cheap to import),
the data options its command takes, and, as ``module:attribute`` strings imported only
when a run starts, the class that trains it and the function that loads a trained run.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from avatarkit.methods.pifu.config import PRESETS as PIFU_PRESETS
from avatarkit.methods.pifu.config import PifuConfig

if TYPE_CHECKING:
    from avatarkit.methods.contract import Predictor, RunState


@dataclasses.dataclass(frozen=True)
class DataOption:
    """A data input of a method's command (``--views``): folders or files, repeatable."""

    name: str
    help: str
    required: bool = True


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    name: str
    help: str
    config: type
    presets: dict[str, Any]
    data: tuple[DataOption, ...]
    trainer: str
    """``module:Class`` of its :class:`~avatarkit.methods.contract.Trainable`, built as
    ``Class(config, restored=state, **data)``."""
    model: str
    """``module:Class`` of the network, built as ``Class(config)``."""
    predictor: str
    """``module:Class`` of its :class:`~avatarkit.methods.contract.Predictor`, built as
    ``Class(model, config, device)``: what ``reconstruct`` asks."""

    def load(self, which: str):
        module, _, attribute = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), attribute)


METHODS: dict[str, MethodSpec] = {
    "pifu": MethodSpec(
        name="pifu",
        help="PIFu (Saito et al. 2019): a stacked-hourglass image encoder and a pixel-aligned occupancy MLP, "
        "trained on rendered views and sampled points.",
        config=PifuConfig,
        presets=PIFU_PRESETS,
        data=(
            DataOption("views", "views files from `avatarkit render` (files or folders; repeatable)."),
            DataOption("samples", "samples files from `avatarkit sample-sdf`, matched to views by file stem."),
            DataOption(
                "meshes",
                "ground-truth meshes by stem, for validation meshes (default: the meshes the samples came from).",
                required=False,
            ),
        ),
        trainer="avatarkit.methods.pifu.train:PifuMethod",
        model="avatarkit.methods.pifu.model:PifuNet",
        predictor="avatarkit.methods.pifu.infer:PifuPredictor",
    ),
}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (a method outside avatarkit, or one under development:
    ``docs/adding_a_method.md``); ``avatarkit train`` gains its command when
    :func:`avatarkit.cli.train.add_method` is called with it."""
    from avatarkit.errors import OptionError

    if spec.name in METHODS and METHODS[spec.name] is not spec:
        raise OptionError(f"a method named {spec.name!r} is registered already")
    METHODS[spec.name] = spec
    return spec


def method(name: str) -> MethodSpec:
    from avatarkit.errors import InputError

    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; this avatarkit trains {', '.join(METHODS)}")
    return METHODS[name]


@dataclasses.dataclass
class Trained:
    """A trained run, ready to use: its method, config, network (eval mode, on the device),
    the method's saved state (split, cameras), and the checkpoint it came from."""

    spec: MethodSpec
    config: Any
    model: Any
    state: RunState
    path: Any
    step: int

    def predictor(self, device) -> Predictor:
        return self.spec.load("predictor")(self.model, self.config, device)

    def camera(self):
        """The run's camera (where a photo given without one is placed), or None."""
        import numpy as np

        from avatarkit.structures import Cameras

        c = self.state.get("camera")
        if not c:
            return None
        return Cameras(
            np.asarray(c["K"]), np.asarray(c["world_to_cam"]), c["projection"], c["width"], c["height"], [c["target"]]
        )


def load_trained(run, device: str = "cpu", which: str = "best") -> Trained:
    """The network of a run folder (``best`` checkpoint, else ``last``) or checkpoint file."""
    from avatarkit.methods import checkpoint
    from avatarkit.methods.configs import from_dict

    path = checkpoint.find(run, which)
    state = checkpoint.load(path, device)
    spec = method(state["method"])
    config = from_dict(spec.config, state["config"])
    model = spec.load("model")(config)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return Trained(spec, config, model, state.get("method_state", {}), path, int(state.get("step", 0)))
