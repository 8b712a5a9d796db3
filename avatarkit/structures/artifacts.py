"""Containers for the HDF5 kinds other than ``mesh`` (see ``docs/hdf5.md``).

Plain numpy containers: the verbs that make them (render, sample-sdf, voxelize,
unwrap-uv, icp-align, evaluate-chamfer) fill them, ``avatarkit.io.hdf5`` stores them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from avatarkit.errors import OptionError


@dataclasses.dataclass
class Views:
    """Rendered or captured views of one subject.

    Attributes:
        K: (N, 3, 3) float32 intrinsics, pixels (OpenCV).
        world_to_cam: (N, 4, 4) float32, x_cam = R x_world + t (OpenCV camera axes).
        projection: ``perspective`` or ``orthographic`` (u = fx * X + cx, fx in px/m).
        rgb: (N, H, W, 3) uint8 sRGB.
        mask: (N, H, W) uint8, 0 or 255.
        depth: (N, H, W) float32 metres along camera +Z, 0 outside the mask, or None.
        normal: (N, H, W, 3) float32 world-frame unit normals, or None.
        uv: (N, H, W, 2) float32 mesh UV seen at each pixel, or None.
        label: (N, H, W) int16 body-part label, -1 for background, or None.
        albedo: (N, H, W, 3) uint8 sRGB surface colour, unlit, at each pixel centre (black
            outside the mask), or None: what ``render`` shades (written when it lights the views).
        target: (N, 3) float32 world point each camera is aimed at (the subject's centre,
            the origin of depth for pixel-aligned networks), or None when unknown.
        lighting: named lighting arrays per view (``/lighting/...``).
        subsets: named lists of view indices, name -> (K,) int32 (``/subsets/NAME``): the
            fixed few-view sets of a capture, e.g. H3DS's ``"3"``, ``"4"``, ``"8"``, ``"16"``,
            ``"32"`` (``render --preset h3ds``); empty when the views have none.
    """

    K: np.ndarray
    world_to_cam: np.ndarray
    projection: str
    rgb: np.ndarray
    mask: np.ndarray
    depth: np.ndarray | None = None
    normal: np.ndarray | None = None
    uv: np.ndarray | None = None
    label: np.ndarray | None = None
    target: np.ndarray | None = None
    lighting: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    subsets: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    albedo: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.subsets = {str(k): np.asarray(v, dtype=np.int32).reshape(-1) for k, v in self.subsets.items()}

    @property
    def width(self) -> int:
        return int(self.rgb.shape[2])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[1])

    def __len__(self) -> int:
        return int(self.K.shape[0])

    def cameras(self):
        """The views' cameras as a :class:`~avatarkit.structures.cameras.Cameras` rig."""
        from avatarkit.structures.cameras import Cameras

        return Cameras(self.K, self.world_to_cam, self.projection, self.width, self.height, self.target)

    def select(self, indices) -> Views:
        """The views at ``indices`` (in that order), with their cameras, images and per-view
        lighting; the result has no subsets (its views are numbered anew)."""
        ids = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)

        def take(value):
            if isinstance(value, dict):
                return {k: take(v) for k, v in value.items()}
            if isinstance(value, np.ndarray) and value.ndim and len(value) == n:
                return value[ids]
            return value

        arrays = ("K", "world_to_cam", "rgb", "mask", "depth", "normal", "uv", "label", "target")
        return dataclasses.replace(
            self, **{a: take(getattr(self, a)) for a in arrays}, lighting=take(self.lighting), subsets={}
        )

    def subset(self, name: str) -> Views:
        """The views of subset ``name`` (see :attr:`subsets`); an :class:`OptionError` naming the
        subsets there are when there is no such subset."""
        if name not in self.subsets:
            have = ", ".join(self.subsets) or "none"
            raise OptionError(f"no view subset {name!r} (the views have {have})")
        return self.select(self.subsets[name])


@dataclasses.dataclass
class Samples:
    """Points with signed distances, for implicit-function training.

    Attributes:
        points: (P, 3) float32, metres, world frame.
        sdf: (P,) float32 signed distance, negative inside.
        occupancy: (P,) uint8, 1 inside.
        normals: (P, 3) float32 or None.
        colors: (P, 3) uint8 or None.
        attrs: sampling parameters (preset, counts, sigmas, sign method).
    """

    points: np.ndarray
    sdf: np.ndarray
    occupancy: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Voxels:
    """A solid occupancy grid.

    Attributes:
        occupancy: (X, Y, Z) bool; ``occupancy[i, j, k]`` is x index i, y index j, z index k.
        origin: (3,) float64 corner of voxel (0, 0, 0), metres; voxel centre is
            ``origin + (index + 0.5) * pitch``.
        pitch: voxel edge length, metres.
        attrs: how the grid was made.
    """

    occupancy: np.ndarray
    origin: np.ndarray
    pitch: float
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def centers(self) -> np.ndarray:
        """(X, Y, Z, 3) float64 voxel centres, metres."""
        idx = np.stack(np.meshgrid(*[np.arange(s) for s in self.occupancy.shape], indexing="ij"), axis=-1)
        return np.asarray(self.origin) + (idx + 0.5) * self.pitch


@dataclasses.dataclass
class Texture:
    """A texture in a mesh's UV layout.

    Attributes:
        texture: (H, W, 3) uint8 sRGB, row 0 is v = 1.
        visibility: (H, W) float32 in [0, 1], how well each texel was seen.
        normal_map: (H, W, 3) float32 world-frame surface normal at each texel, or None.
        mirrored: (H, W) uint8, 1 where the colour came from the mirror texel, or None.
        view_texture: (N, H, W, 3) uint8, each view's own partial texture (``unwrap-uv
            --per-view``: what one photo gives, mirror-filled with ``--symmetric``), or None.
        view_visibility: (N, H, W) float32, each view's visibility, or None.
        view_mirrored: (N, H, W) uint8, each view's mirror-filled texels, or None.
        view_yaw: (N,) float32, each view's camera yaw about the subject, degrees (0: in front,
            90: on its left), or None.
        attrs: how it was made (``uv_layout``: a fingerprint of the mesh's UV layout).
    """

    texture: np.ndarray
    visibility: np.ndarray
    normal_map: np.ndarray | None = None
    mirrored: np.ndarray | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    view_texture: np.ndarray | None = None
    view_visibility: np.ndarray | None = None
    view_mirrored: np.ndarray | None = None
    view_yaw: np.ndarray | None = None


@dataclasses.dataclass
class Transform:
    """A similarity transform from a source to a target.

    Attributes:
        source_to_target: (4, 4) float64; x_target = M @ x_source (scale folded into M).
        scale, rmse, fitness, iterations, method: as computed by the aligner.
        coverage: share of target points within the correspondence distance of the moved
            source (fitness seen from the target), or NaN when not measured.
    """

    source_to_target: np.ndarray
    scale: float = 1.0
    rmse: float = float("nan")
    fitness: float = float("nan")
    iterations: int = 0
    method: str = ""
    coverage: float = float("nan")


@dataclasses.dataclass
class Metrics:
    """Named scalar metrics with their units and protocol, and optional per-point errors."""

    values: dict[str, float]
    units: str
    protocol: str
    per_point: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
