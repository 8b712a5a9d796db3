"""Cameras in torch: world points to pixels, differentiably, batched over views.

The same convention as :class:`~avatarkit.structures.Cameras` (OpenCV axes, pixel centres at
integer coordinates; orthographic is PIFu's weak perspective, ``u = fx * X + cx``), for
networks that sample image features at projected points (pixel-aligned methods) and for the
differentiable rendering path (:mod:`avatarkit.render.differentiable`). Everything runs in
float32 even under autocast: half precision would move points by centimetres.
"""

from __future__ import annotations

import torch


def project(points, K, world_to_cam, orthographic) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates (B, P, 2) and camera depth (B, P) of world ``points`` (B, P, 3).

    ``K`` (B, 3, 3) pixels, ``world_to_cam`` (B, 4, 4); ``orthographic``: a bool for the whole
    batch or a (B,) bool tensor, one per view. Perspective depths are clamped at 1e-6 m before
    dividing (points behind the camera land far outside the image)."""
    if not isinstance(orthographic, torch.Tensor):
        orthographic = bool(orthographic)  # numpy's bool too
    with torch.autocast(points.device.type, enabled=False):
        points, K, world_to_cam = points.float(), K.float(), world_to_cam.float()
        cam = points @ world_to_cam[:, :3, :3].transpose(1, 2) + world_to_cam[:, None, :3, 3]
        z = cam[..., 2]
        if isinstance(orthographic, bool):
            xy = cam[..., :2] if orthographic else cam[..., :2] / z.clamp(min=1e-6)[..., None]
        else:
            ortho = orthographic.reshape(-1, 1, 1).to(torch.bool)
            xy = torch.where(ortho, cam[..., :2], cam[..., :2] / z.clamp(min=1e-6)[..., None])
        f = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]
        c = torch.stack([K[:, 0, 2], K[:, 1, 2]], -1)[:, None]
        return xy * f + c, z


def to_grid(uv: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Pixel coordinates (..., 2) to ``grid_sample`` coordinates in [-1, 1] with
    ``align_corners=False`` (pixel centres at their true places)."""
    size = torch.tensor([width, height], dtype=uv.dtype, device=uv.device)
    return (uv + 0.5) / size * 2 - 1


def project_to_grid(points, K, world_to_cam, orthographic, width: int, height: int):
    """:func:`project` then :func:`to_grid`: grid coordinates (B, P, 2) and depth (B, P)."""
    uv, z = project(points, K, world_to_cam, orthographic)
    return to_grid(uv, width, height), z
