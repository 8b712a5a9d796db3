"""Surfaces seen from one camera: the volume a single-view reconstruction fills.

PIFu reconstructs inside a box aligned with the input camera: the image's extent across,
as deep as it is wide, centred on the camera's target (the subject's centre). Here that
box lives in camera coordinates (OpenCV axes); the occupancy function is asked about world
points, and the mesh is mapped back to the world, so a reconstruction lands in the frame
of the cameras it was given (the ground truth's frame, for rendered views).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from avatarkit.errors import OptionError
from avatarkit.reconstruct.field import ImplicitField, Reconstruction, reconstruct_field
from avatarkit.structures import Cameras


def view_box(camera: Cameras, target: np.ndarray) -> np.ndarray:
    """(2, 3) min and max corners, camera coordinates, of the volume seen by the first view of
    ``camera``: the whole image across, centred on ``target`` (world), as deep as the larger
    side. For perspective cameras the image's extent is taken at the target's depth."""
    one = camera.subset(0)
    one.target = np.asarray(target, dtype=np.float64)[None]
    depth, k = float(one.target_depths()[0]), one.K[0]
    scale = depth if camera.projection == "perspective" else 1.0
    if not scale > 0:
        raise OptionError("the camera's target is behind it")
    # the image spans its pixel centres 0..W-1 and half a pixel beyond each edge
    x = (np.array([-0.5, camera.width - 0.5]) - k[0, 2]) / k[0, 0] * scale
    y = (np.array([-0.5, camera.height - 0.5]) - k[1, 2]) / k[1, 1] * scale
    half_depth = 0.5 * max(np.ptp(x), np.ptp(y))
    z = np.array([depth - half_depth, depth + half_depth])
    if camera.projection == "perspective":
        z[0] = max(z[0], 1e-3 * depth)  # never behind the camera
    return np.stack([[x.min(), y.min(), z[0]], [x.max(), y.max(), z[1]]])


def view_field(
    values: Callable[[np.ndarray], np.ndarray],
    camera: Cameras,
    target: np.ndarray,
    level: float = 0.5,
    inside: str = "above",
    colors: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ImplicitField:
    """The field ``values`` (world points (P, 3) -> (P,)) over the volume the first camera of
    ``camera`` sees around ``target`` (:func:`view_box`, in camera coordinates)."""
    return ImplicitField(values, view_box(camera, target), camera.world_to_cam[0], level, inside, colors)


def reconstruct_view(
    occupancy: Callable[[np.ndarray], np.ndarray],
    camera: Cameras,
    target: np.ndarray,
    resolution: int = 256,
    initial: int = 32,
    threshold: float = 0.5,
    keep_all: bool = False,
    tolerance: float | None = 0.01,
) -> Reconstruction:
    """Mesh of ``occupancy`` (world points (P, 3) -> (P,) in [0, 1], 1 inside) in the volume
    seen by the first camera of ``camera`` (see :func:`view_box`), evaluated coarse to fine
    on a ``resolution``^3 grid (PIFu's rule: cells whose corners differ by less than
    ``tolerance`` are filled), marching cubes at ``threshold``, in world metres."""
    field = view_field(occupancy, camera, target, threshold)
    return reconstruct_field(field, resolution, initial, keep_all, tolerance)
