"""Camera rigs around a subject: look-at poses, orbits, random rigs, PIFu's rig, and
:func:`make_rig`, which picks one from a render's options (the cameras ``avatarkit render`` uses).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarkitWarning, OptionError
from avatarkit.structures import Cameras, Mesh
from avatarkit.structures.cameras import PROJECTIONS


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """4x4 ``world_to_cam`` of a camera at ``eye`` looking at ``target``, world ``up`` at the
    top of the image (OpenCV: +Z forward, +Y down)."""
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:  # looking straight up or down: any right vector will do
        x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, :3] = np.stack([x, y, z])
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def direction(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Unit vector from the subject to a camera at ``yaw`` about +Y (0: in front, on +Z;
    90: on the subject's left, +X) and ``pitch`` above the horizon."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    return np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])


def orbit(
    center: np.ndarray,
    radius: float,
    yaws: np.ndarray,
    pitches: np.ndarray,
    size: tuple[int, int],
    projection: str = "perspective",
    fov_deg: float = 40.0,
    fill: float = 0.9,
) -> Cameras:
    """Cameras around ``center`` at every (yaw, pitch) pair, framing a sphere of ``radius``.

    Perspective cameras stand far enough for the sphere to fill ``fill`` of the shorter
    image side at vertical field of view ``fov_deg``; orthographic ones scale fx so it does.
    """
    width, height = size
    pairs = [(y, p) for p in np.atleast_1d(pitches) for y in np.atleast_1d(yaws)]
    short = min(width, height)
    if projection == "perspective":
        f = 0.5 * height / np.tan(np.radians(fov_deg) / 2)
        distance = radius / np.sin(np.arctan(fill * short / (2 * f)))
    else:
        f = fill * short / (2 * radius)
        distance = 3.0 * radius  # in front of the subject; orthographic depth is relative
    k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    poses = [look_at(center + distance * direction(y, p), center) for y, p in pairs]
    targets = np.repeat(np.asarray(center, dtype=np.float64)[None], len(poses), 0)
    return Cameras(np.repeat(k[None], len(poses), 0), np.stack(poses), projection, width, height, targets)


def random_rig(
    rng: np.random.Generator,
    count: int,
    center: np.ndarray,
    radius: float,
    size: tuple[int, int],
    projection: str = "perspective",
    pitch_range: tuple[float, float] = (-15.0, 30.0),
    fov_range: tuple[float, float] = (30.0, 50.0),
    yaw_range: tuple[float, float] = (0.0, 360.0),
) -> Cameras:
    """``count`` cameras at uniformly random yaws and pitches (and, for perspective, fields of
    view), all framing the subject."""
    rigs = []
    for _ in range(count):
        yaw = rng.uniform(*yaw_range)
        pitch = rng.uniform(*pitch_range)
        fov = rng.uniform(*fov_range)
        rigs.append(orbit(center, radius, yaw, pitch, size, projection, fov))
    return Cameras(
        np.concatenate([c.K for c in rigs]),
        np.concatenate([c.world_to_cam for c in rigs]),
        projection,
        *size,
        np.concatenate([c.target for c in rigs]),
    )


def pifu_rig(vertices: np.ndarray, size: int = 512, yaws: np.ndarray | None = None, pitches=(0.0,)) -> Cameras:
    """PIFu's training cameras (``apps/render_data.py``): orthographic, one view per degree of
    yaw, the subject's vertical centre (x and z: medians of the vertices) at the image centre,
    and scaled as PIFu scales every scan to 180 units tall in a view 204.8 units high
    (``ortho_ratio`` 0.4 at 512 px): the subject spans 180/204.8 of the image height."""
    v = np.asarray(vertices, dtype=np.float64)
    center = np.median(v, axis=0)
    center[1] = 0.5 * (v[:, 1].min() + v[:, 1].max())
    height_m = float(v[:, 1].max() - v[:, 1].min())
    if not height_m > 0:
        raise OptionError("the mesh has no height to frame")
    f = size * 1.8 / (2.048 * height_m)
    yaws = np.arange(360.0) if yaws is None else np.asarray(yaws, dtype=np.float64)
    k = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1]])
    distance = 2.0 * height_m
    poses = [look_at(center + distance * direction(y, p), center) for p in pitches for y in yaws]
    targets = np.repeat(center[None], len(poses), 0)
    return Cameras(np.repeat(k[None], len(poses), 0), np.stack(poses), "orthographic", size, size, targets)


RIGS = ("orbit", "random")
RIG_PRESETS = ("pifu",)


@dataclasses.dataclass(frozen=True)
class RigSpec:
    """Which cameras a render uses (the camera options of ``avatarkit render``)."""

    views: int | None = None
    """Cameras evenly spaced in yaw per pitch (default 8; 360 with the ``pifu`` preset)."""
    pitches: tuple[float, ...] = (0.0,)
    """Camera elevations, degrees: one ring of cameras each."""
    yaw_range: tuple[float, float] = (0.0, 360.0)
    """Yaws of the cameras, degrees, MIN included and MAX not (0: in front of the subject, 90: on
    its left): the views are evenly spaced in it (random rigs draw from it)."""
    size: int | None = None
    """Image width and height, pixels (default 512; a camera file's own size)."""
    projection: str = "perspective"
    """``perspective`` or ``orthographic``."""
    fov: float = 40.0
    """Vertical field of view, degrees (perspective orbits)."""
    rig: str = "orbit"
    """``orbit``: even yaws; ``random``: random yaw, pitch and field of view."""
    preset: str | None = None
    """``pifu``: PIFu's orthographic rig, subject scaled as PIFu does."""
    cameras: Path | None = None
    """A camera file: IDR/H3DS ``cameras.npz``, NeRF ``transforms.json`` or a views file."""

    def check(self) -> None:
        if self.size is not None and self.size < 1:
            raise OptionError(f"--size must be positive, got {self.size}")
        if self.views is not None and self.views < 1:
            raise OptionError(f"--views must be positive, got {self.views}")
        if not 0 < self.fov < 180:  # NaN fails too
            raise OptionError(f"--fov must be between 0 and 180 degrees (exclusive), got {self.fov:g}")
        if not np.isfinite(np.asarray(self.pitches, dtype=np.float64)).all():
            raise OptionError(f"--pitch must be finite degrees, got {', '.join(f'{p:g}' for p in self.pitches)}")
        low, high = self.yaw_range
        if not (np.isfinite(low) and np.isfinite(high) and low < high <= low + 360):
            raise OptionError(f"--yaws takes MIN MAX degrees with MIN < MAX <= MIN + 360, got {low:g} {high:g}")
        if self.projection not in PROJECTIONS:
            raise OptionError(f"--projection must be one of {', '.join(PROJECTIONS)}, got {self.projection!r}")
        if self.rig not in RIGS:
            raise OptionError(f"--rig must be one of {', '.join(RIGS)}, got {self.rig!r}")
        if self.preset is not None and self.preset not in RIG_PRESETS:
            raise OptionError(f"--preset must be one of {', '.join(RIG_PRESETS)}, got {self.preset!r}")
        if self.cameras is not None and self.preset is not None:
            raise OptionError("--cameras and --preset both set the cameras; give one")

    @property
    def orthographic(self) -> bool:
        """Whether the rig's cameras are orthographic, when the options say (not a camera file)."""
        return self.cameras is None and (self.projection == "orthographic" or self.preset == "pifu")


def make_rig(mesh: Mesh, spec: RigSpec, seed: int = 0) -> Cameras:
    """The cameras a render of ``mesh`` uses, from ``spec``: a camera file's (warning when
    ``size`` crops them far from their own image), PIFu's rig, a random rig (seeded), or an
    orbit around the mesh's bounding sphere."""
    spec.check()
    if spec.cameras is not None:
        return _from_file(spec.cameras, spec.size)
    low, high = spec.yaw_range
    if spec.preset == "pifu":
        views = spec.views or 360
        yaws = low + np.arange(views) * (high - low) / views
        return pifu_rig(mesh.vertices, spec.size or 512, yaws, spec.pitches)
    size, views = spec.size or 512, spec.views or 8
    center, radius = mesh.bounding_sphere()
    if spec.rig == "random":
        rng = np.random.default_rng([seed, 1])
        return random_rig(rng, views, center, radius, (size, size), spec.projection, yaw_range=(low, high))
    yaws = low + np.arange(views) * (high - low) / views
    return orbit(center, radius, yaws, np.asarray(spec.pitches), (size, size), spec.projection, spec.fov)


def _from_file(path: Path, size: int | None) -> Cameras:
    from avatarkit.io.cameras import read_cameras

    cams = read_cameras(path, None if size is None else (size, size))
    centre = np.array([cams.width - 1, cams.height - 1]) / 2
    principal = np.stack([cams.K[:, 0, 2], cams.K[:, 1, 2]], -1)
    if size is not None and (np.abs(principal - centre) > centre / 2).any():
        native = np.rint(2 * principal[0] + 1).astype(int)
        warnings.warn(
            f"{path}: the cameras' principal point is far from the centre of a {size} x {size} image; "
            f"they look made for about {native[0]} x {native[1]} (--size crops, it does not scale)",
            AvatarkitWarning,
            stacklevel=3,
        )
    return cams
