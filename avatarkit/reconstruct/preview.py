"""Pictures of a reconstruction: normal maps from the input camera, panels side by side."""

from __future__ import annotations

import numpy as np

from avatarkit.render.rigs import look_at
from avatarkit.structures import Cameras, Mesh


def normal_colors(normals_world: np.ndarray, world_to_cam: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 normal map as papers draw it: the camera-frame normal with +X right,
    +Y up, +Z towards the viewer mapped to RGB; white where ``mask`` is false."""
    n = normals_world @ world_to_cam[:3, :3].T * np.array([1.0, -1.0, -1.0])
    image = np.rint((n * 0.5 + 0.5).clip(0, 1) * 255).astype(np.uint8)
    image[~mask] = 255
    return image


def render_normals(mesh: Mesh, camera: Cameras, device: str = "cpu") -> np.ndarray:
    """(H, W, 3) uint8 normal map of ``mesh`` seen by the first camera of ``camera``."""
    from avatarkit.render.raycast import RayCaster

    gb = RayCaster(mesh.vertices, mesh.faces, device).gbuffer(camera, slice(0, 1))
    return normal_colors(gb.normal[0], camera.world_to_cam[0], gb.face[0] >= 0)


def side_camera(camera: Cameras, target: np.ndarray) -> Cameras:
    """The first camera of ``camera`` turned 90 degrees about the vertical through ``target``
    (world +Y), at the same distance: the profile view."""
    offset = camera.centers()[0] - target
    turned = np.array([offset[2], offset[1], -offset[0]])  # a quarter turn about +Y
    pose = look_at(target + turned, target)
    return Cameras(camera.K[:1], pose[None], camera.projection, camera.width, camera.height, target[None])


def side_by_side(panels: list[np.ndarray], height: int = 512) -> np.ndarray:
    """Panels (H, W, 3) uint8 scaled to one ``height`` and placed left to right."""
    from PIL import Image

    out = []
    for panel in panels:
        image = Image.fromarray(np.asarray(panel, dtype=np.uint8))
        width = max(1, round(image.width * height / image.height))
        out.append(np.asarray(image.resize((width, height), Image.Resampling.BILINEAR)))
    return np.concatenate(out, axis=1)


def preview(view, mesh: Mesh, device: str = "cpu", height: int = 512) -> np.ndarray:
    """(H, W, 3) uint8 panels side by side: the input image of ``view`` (an
    :class:`~avatarkit.reconstruct.inputs.ImageInput`), the true normals when it has them, and
    ``mesh``'s normals from the input camera and from the side (a quarter turn about the target)."""
    panels = [view.rgb]
    if view.normal is not None:
        panels.append(normal_colors(view.normal, view.camera.world_to_cam[0], view.mask))
    panels.append(render_normals(mesh, view.camera, device))
    panels.append(render_normals(mesh, side_camera(view.camera, view.target), device))
    return side_by_side(panels, height)
