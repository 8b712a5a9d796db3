"""Where Geo-PIFu's coarse volume lies for a view: a box in the view's camera frame, aligned
with the network's input image (Geo-PIFu's normalisation, ``lib/geometry.py``, ``VrnNet.filter``).

The image is the volume's front face: its ``Y`` voxels span the image's full height, its ``X``
voxels the centred ``X / Y`` of it (Geo-PIFu resizes the image to 2Y rows and crops the
central 2X columns: 384 x 256 for 192 x 128 voxels), and its ``Z`` voxels the same length in
depth around the view's target: the voxels are cubes of the image's height / ``Y``. In
``grid_sample`` units (align_corners False, voxel centres at their true places)::

    x_vol = x_img * Y / X,   y_vol = y_img,   z_vol = (depth - depth_center) / h * Y / Z

where ``x_img, y_img`` in [-1, 1] are the point's place in the input image
(:func:`~avatarkit.render.projection.to_grid`) and ``h`` is half the image's height in metres
at the target (``S / 2 fy`` orthographic, times the target's depth perspective). Volumes are
stored (B, C, Z, Y, X): depth first, as ``grid_sample`` reads (x, y, z) coordinates.

The voxels files are world grids (``origin``, ``pitch``): :func:`view_occupancy` samples one at
the world places of a view's volume voxels, so the supervision follows every view's camera
(and its augmentation) without a voxels file per view.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from avatarkit.render.projection import project_to_grid


def half_height(K: torch.Tensor, orthographic, depth_center: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) half the image's height in metres at the target's depth, for ``size``-pixel images."""
    h = size / (2 * K[:, 1, 1].abs().float())
    if isinstance(orthographic, torch.Tensor):
        return torch.where(orthographic.reshape(-1).bool(), h, h * depth_center.float())
    return h if bool(orthographic) else h * depth_center.float()


def volume_coords(points, K, world_to_cam, orthographic, depth_center, size: int, grid) -> torch.Tensor:
    """(B, P, 3) ``grid_sample`` coordinates (x, y, z) in the view volume of world ``points``
    (B, P, 3), seen by cameras ``K`` (B, 3, 3), ``world_to_cam`` (B, 4, 4) in ``size``-pixel
    square images; ``grid``: the volume's (X, Y, Z) voxels."""
    xy, z = project_to_grid(points, K, world_to_cam, orthographic, size, size)
    return to_volume(xy, z, K, orthographic, depth_center, size, grid)


def to_volume(xy, z, K, orthographic, depth_center, size: int, grid) -> torch.Tensor:
    """:func:`volume_coords` from a projection already made: image grid coordinates ``xy``
    (B, P, 2) and camera depths ``z`` (B, P)."""
    X, Y, Z = grid
    h = half_height(K, orthographic, depth_center, size)
    depth = (z - depth_center.float()[:, None]) / h[:, None]
    return torch.stack([xy[..., 0] * (Y / X), xy[..., 1], depth * (Y / Z)], -1)


def volume_points(K, world_to_cam, orthographic, depth_center, size: int, grid) -> torch.Tensor:
    """(B, Z, Y, X, 3) world positions (metres) of the view volume's voxel centres: the inverse
    of :func:`volume_coords`."""
    X, Y, Z = grid
    dev = K.device
    axes = [(torch.arange(n, device=dev, dtype=torch.float32) + 0.5) / n * 2 - 1 for n in (Z, Y, X)]
    cz, cy, cx = torch.meshgrid(*axes, indexing="ij")
    K, world_to_cam = K.float(), world_to_cam.float()
    h = half_height(K, orthographic, depth_center, size)[:, None, None, None]
    # image grid units -> pixels (to_grid's inverse) -> camera
    u = ((cx * (X / Y) + 1) * size / 2 - 0.5)[None]
    v = ((cy + 1) * size / 2 - 0.5)[None]
    depth = depth_center.float()[:, None, None, None] + (cz * (Z / Y))[None] * h
    fx, fy = K[:, 0, 0, None, None, None], K[:, 1, 1, None, None, None]
    px, py = K[:, 0, 2, None, None, None], K[:, 1, 2, None, None, None]
    xc, yc = (u - px) / fx, (v - py) / fy
    if isinstance(orthographic, torch.Tensor):
        scale = torch.where(orthographic.reshape(-1, 1, 1, 1).bool(), torch.ones_like(depth), depth)
    else:
        scale = torch.ones_like(depth) if bool(orthographic) else depth
    cam = torch.stack([xc * scale, yc * scale, depth], -1)
    R, t = world_to_cam[:, :3, :3], world_to_cam[:, :3, 3]
    return torch.einsum("bzyxj,bjk->bzyxk", cam - t[:, None, None, None], R)  # R^T (cam - t)


def view_occupancy(occupancy, origin, pitch, K, world_to_cam, orthographic, depth_center, size: int, grid):
    """(B, Z, Y, X) float occupancy of world voxels ``occupancy`` (B, X', Y', Z') (voxel (i, j,
    k) centred at ``origin`` (B, 3) + (index + 0.5) * ``pitch`` (B,)) at the view volume's voxel
    centres: the nearest voxel, 0 outside the file's grid."""
    world = volume_points(K, world_to_cam, orthographic, depth_center, size, grid)  # (B, Z, Y, X, 3)
    shape = torch.tensor(occupancy.shape[1:], dtype=torch.float32, device=world.device)
    index = (world - origin.float()[:, None, None, None]) / pitch.float()[:, None, None, None, None]
    coords = (index / shape) * 2 - 1  # align_corners False: index + 0.5 is the centre -> (i + 0.5) / n * 2 - 1
    # occupancy (B, 1, X', Y', Z') is read as (D, H, W) = (x, y, z): grid_sample wants (z, y, x) order
    sampled = F.grid_sample(
        occupancy[:, None].float(), coords.flip(-1), mode="nearest", padding_mode="zeros", align_corners=False
    )
    return sampled[:, 0]


def sample_volume(volume, coords, displacement: float = 0.0) -> torch.Tensor:
    """Features (B, C * n, P) of ``volume`` (B, C, Z, Y, X) trilinearly sampled at ``coords``
    (B, P, 3); with ``displacement`` > 0 also at +-displacement along x, y and z (n = 7,
    Geo-PIFu's ``multiRanges_deepVoxels_sampling``), else n = 1."""
    offsets = [(0.0, 0.0, 0.0)]
    if displacement > 0:
        for axis in range(3):
            for sign in (-1.0, 1.0):
                d = [0.0, 0.0, 0.0]
                d[axis] = sign * displacement
                offsets.append((d[0], d[1], d[2]))
    shifts = torch.tensor(offsets, dtype=coords.dtype, device=coords.device)  # (n, 3)
    where = coords[:, None, :, :] + shifts[None, :, None, :]  # (B, n, P, 3)
    sampled = F.grid_sample(volume, where[:, None].to(volume.dtype), mode="bilinear", align_corners=False)
    b, c, _, n, p = sampled.shape  # (B, C, 1, n, P)
    return sampled[:, :, 0].permute(0, 2, 1, 3).reshape(b, n * c, p)
