"""What a method reconstructs from (the observations a
:class:`~avatarkit.methods.contract.Predictor` takes; a method's ``MethodSpec.observes`` names
them):

- ``image``: :class:`ImageInput`, one image, its subject's mask, and the camera that saw it,
  aimed at the subject. :func:`read_image_input` reads one from a views file (a rendered or
  captured view, with its own camera and, for rendered views, the true normals) or from a
  photo (its mask found as :func:`~avatarkit.io.images.read_image_and_mask` does, its camera
  given); :func:`choose_camera` picks a photo's camera: a trained run's, or one from a camera
  file.
- ``samples``: :class:`SamplesInput`, points with signed distances from a samples file
  (:func:`read_samples_input`), with the bounding sphere of the mesh they were sampled from.
- ``latent``: :class:`LatentInput`, the index of a training shape whose learned code is meshed.

:func:`check_request` refuses options that cannot go together before a run is loaded,
:func:`check_observed` inputs the run's method does not reconstruct from, and
:func:`read_input` reads one input as the method observes it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from avatarkit.errors import InputError, OptionError
from avatarkit.io.formats import IMAGE_SUFFIXES, is_hdf5, is_image
from avatarkit.structures import Cameras


@dataclasses.dataclass
class ImageInput:
    """One view of a subject.

    Attributes:
        rgb: (H, W, 3) uint8 sRGB.
        mask: (H, W) bool, true on the subject.
        camera: a one-camera rig whose ``target`` (1, 3) is where it aims (the subject's centre).
        normal: (H, W, 3) float32 world-frame normals of the true surface (rendered views), or None.
    """

    rgb: np.ndarray
    mask: np.ndarray
    camera: Cameras
    normal: np.ndarray | None = None

    @property
    def target(self) -> np.ndarray:
        """(3,) world point the camera aims at."""
        assert self.camera.target is not None, "an ImageInput's camera knows its target"
        return self.camera.target[0]


@dataclasses.dataclass
class SamplesInput:
    """Points around one shape with their signed distances (a samples file).

    Attributes:
        points: (P, 3) float32, metres, world frame.
        sdf: (P,) float32 signed distances, metres, negative inside.
        center: (3,) float64, metres: the sampled mesh's bounding-box midpoint.
        radius: metres: the distance from ``center`` to the mesh's farthest vertex (what
            :meth:`~avatarkit.structures.Mesh.bounding_sphere` gives; the samples file's
            ``unit_radius`` without its buffer).
        path: the file it came from.
    """

    points: np.ndarray
    sdf: np.ndarray
    center: np.ndarray
    radius: float
    path: Path | None = None


@dataclasses.dataclass(frozen=True)
class LatentInput:
    """The training shape ``index`` of a run that learned one latent code per shape
    (``reconstruct RUN --latent I``): code ``index`` is the run's ``split["train"][index]``."""

    index: int

    def __str__(self) -> str:
        return f"--latent {self.index}"


def read_samples_input(path: Path) -> SamplesInput:
    """A samples file's points and signed distances, and the bounding sphere of its mesh (from
    its ``unit_center``, ``unit_radius`` and ``unit_buffer`` attributes:
    :func:`~avatarkit.geometry.sample_sdf.bounding_sphere_of`)."""
    from avatarkit.geometry.sample_sdf import bounding_sphere_of
    from avatarkit.io.hdf5 import read_artifact

    samples = read_artifact(path, "samples")
    if not len(samples.points):
        raise InputError("the samples file holds no points", path)
    if not (np.isfinite(samples.points).all() and np.isfinite(samples.sdf).all()):
        raise InputError("the samples file has NaN or infinite points or signed distances", path)
    center, radius = bounding_sphere_of(samples.attrs, path)
    return SamplesInput(samples.points, samples.sdf, center, radius, Path(path))


def read_image_input(
    path: Path,
    view: int = 0,
    camera: Cameras | None = None,
    masks: Path | None = None,
    mask_threshold: float | None = None,
) -> ImageInput:
    """View ``view`` of a views file, or a photo seen by ``camera`` (see the module docstring)."""
    if is_hdf5(path):
        return read_view_input(path, view)
    if not is_image(path):
        raise InputError(f"not an image or views file ({', '.join(IMAGE_SUFFIXES)}, .h5)", path)
    from avatarkit.io.images import read_image_and_mask

    rgb, mask = read_image_and_mask(path, masks, mask_threshold)
    if camera is None:
        raise InputError("a photo needs a camera: give --camera", path)
    return ImageInput(rgb, mask, camera)


def read_view_input(path: Path, index: int = 0) -> ImageInput:
    """View ``index`` of a views file, with its camera aimed where the file says (or, in files
    without ``/cameras/target``, at the rig's focus)."""
    from avatarkit.io.cameras import read_cameras
    from avatarkit.io.hdf5 import read_view

    views = read_view(path, index)
    try:
        cameras = read_cameras(path).aimed().subset(index)
    except OptionError as exc:
        raise InputError(str(exc), path) from None
    mask = views.mask[0] > 127
    if not mask.any():
        raise InputError(f"view {index} has an empty mask", path)
    return ImageInput(views.rgb[0], mask, cameras, None if views.normal is None else views.normal[0])


def choose_camera(
    run_camera: Cameras | None,
    camera_file: Path | None = None,
    index: int = 0,
    target: tuple[float, float, float] | None = None,
    run: Path | None = None,
) -> Cameras:
    """A photo's camera: camera ``index`` of ``camera_file`` (IDR ``cameras.npz``, NeRF
    ``transforms.json`` or a views file) or else the trained run's own (``run_camera``; ``run``
    names the run in errors); aimed at ``target`` when given, else where the file says."""
    if camera_file is None:
        if run_camera is None:
            raise InputError("the run has no camera of its own: give --camera", run)
        cameras = run_camera.subset(0)
    else:
        from avatarkit.io.cameras import read_cameras

        rig = read_cameras(camera_file)
        if not -len(rig) <= index < len(rig):
            raise InputError(f"has {len(rig)} cameras; there is no camera {index}", camera_file)
        aims = rig.targets()
        cameras = rig.subset(index)
        cameras.target = None if aims is None else aims[index][None]
    if target is not None:
        cameras.target = np.asarray(target, dtype=np.float64)[None]
    if cameras.target is None:
        raise InputError("the camera file does not say where the camera aims; give --target X Y Z", camera_file)
    return cameras


OBSERVED = {"image": "images or views files", "samples": "samples files", "latent": "--latent I"}
"""What each kind of observation is, as a user gives it."""


def observed(observes: tuple[str, ...]) -> str:
    """What a method with ``MethodSpec.observes`` reconstructs from, in words."""
    return " or ".join(OBSERVED[o] for o in observes)


def check_request(
    inputs: list[Path],
    *,
    resolution: int,
    tolerance: float,
    mask: Path | None,
    mask_threshold: float | None,
    latent: int | None,
) -> None:
    """Refuse, in one line, options of ``reconstruct`` that cannot go together or cannot be met
    (a lattice that would not fit in memory), before any run is loaded."""
    from avatarkit.reconstruct.extract import check_lattice_memory

    if resolution < 8 or resolution & (resolution - 1):
        raise OptionError(f"--resolution must be a power of two of at least 8, got {resolution}")
    check_lattice_memory(resolution)
    if tolerance < 0:
        raise OptionError(f"--tolerance must be 0 or more, got {tolerance}")
    if mask is not None and mask_threshold is not None:
        raise OptionError("--mask and --mask-threshold both give the mask; pass one")
    if latent is not None and inputs:
        raise OptionError("--latent meshes a training shape: give it or input files, not both")
    if latent is None and not inputs:
        raise OptionError("no input files given (nor --latent I, for a method with a code per training shape)")
    if mask is not None and mask.is_file() and len(inputs) > 1:
        raise OptionError("one --mask file for several images: give a folder of masks named like the images")


def check_observed(observes: tuple[str, ...], name: str, inputs: list[Path], latent: int | None, preview: bool) -> None:
    """Refuse inputs the method ``name`` (observing ``observes``) does not reconstruct from."""
    if latent is not None and "latent" not in observes:
        raise OptionError(f"--latent: {name} learns no code per shape; it reconstructs from {observed(observes)}")
    if "image" in observes:
        return
    others = [p for p in inputs if not is_hdf5(p)]
    if others:
        p = others[0]
        what = "images" if is_image(p) else "a folder" if p.is_dir() else f"a {p.suffix or 'suffix-less'} file"
        raise OptionError(f"{p}: {name} reconstructs from {observed(observes)}, not {what}")
    if preview:
        raise OptionError(f"--preview shows the input image; {name} has none")


def read_input(
    src: Path | LatentInput,
    observes: tuple[str, ...],
    view: int = 0,
    camera: Cameras | None = None,
    masks: Path | None = None,
    mask_threshold: float | None = None,
) -> ImageInput | SamplesInput | LatentInput:
    """One input as a method observing ``observes`` takes it (a latent index as it is)."""
    if isinstance(src, LatentInput):
        return src
    if "image" in observes:
        return read_image_input(src, view, camera, masks, mask_threshold)
    return read_samples_input(src)
