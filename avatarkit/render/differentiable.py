"""Differentiable rendering of mesh attributes (torch), beside the fast ray caster.

The split of PyTorch3D and nvdiffrast: visibility is found once, without gradients, and
attributes are then interpolated differentiably.

1. :func:`rasterize` finds the face seen at each pixel centre with
   :class:`~avatarkit.render.raycast.RayCaster` (warp, no gradients): :class:`Fragments`.
2. :func:`barycentrics` intersects each covered pixel's ray with its face again, in torch
   (Moller-Trumbore, the same rays as the warp kernel: from the camera centre for
   perspective cameras, along the camera axis from the image-plane point for orthographic
   ones), so that the weights are functions of the vertex positions and gradients reach the
   vertices. Weights from a ray intersection are perspective-correct by construction; in
   the forward pass they equal the ray caster's.
3. :func:`interpolate` weights per-vertex or per-corner attributes by them: gradients reach
   the attributes, and the vertices when the weights come from :func:`barycentrics`.

:func:`render_attributes` does the three in turn. Every pixel is sampled at its centre, as
``avatarkit render`` samples its G-buffers, so an unlit vertex-colour image from here is the
one ``render`` writes (before its rounding to 8 bits).

Left out: antialiasing, and with it gradients at silhouettes and occlusion boundaries. Which
face a pixel sees is piecewise constant in the vertices; the gradients here are exact for
the visibility held fixed (inside each visible face) and are zero for the pixels a small
move would uncover or cover. nvdiffrast's ``antialias`` gets approximate gradients there by
blending across the edges between neighbouring pixels of different faces (PyTorch3D's soft
rasterizer by blurring the faces' coverage); both change the forward image, which would then
no longer be the pixel-centre sample that ``render``'s G-buffers, masks and depth maps
record, and both need the edge pixels found and the mesh's silhouette edges known. The
uses this path serves (fitting colours, textures, and small moves of a mesh already in
place against depth or colour inside its silhouette) need the interior gradients only; a fit
driven by silhouettes needs an antialiasing step of its own on top of these.

Tensors are on the torch device the caller names; warp runs on the same device (``cpu`` or
``cuda[:N]``). The visibility pass rebuilds the ray caster (its BVH) at each call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from avatarkit.errors import MeshError, OptionError
from avatarkit.structures import Cameras


class Fragments(NamedTuple):
    """What each pixel centre of each view sees, (N, H, W[, 3]), on one torch device.

    Attributes:
        face: (N, H, W) int64, index of the face seen at the pixel centre, -1 on background.
        bary: (N, H, W, 3) float32, no gradient: weights of the face's three corners where the
            pixel's ray meets it (sum 1), 0 on background.
        depth: (N, H, W) float32, metres along camera +Z of that point, 0 on background.
    """

    face: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(N, H, W) bool: pixels that see the mesh."""
        return self.face >= 0


def rasterize(vertices, faces, cameras: Cameras, device: str = "cpu") -> Fragments:
    """The face, barycentric weights and depth seen at every pixel centre of ``cameras``.

    No gradients: visibility is piecewise constant (see the module docstring).

    Args:
        vertices: (V, 3) float, metres, world frame; numpy or torch (detached here).
        faces: (F, 3) int, counter-clockwise seen from outside; numpy or torch.
        cameras: N cameras (perspective or orthographic), images H x W pixels.
        device: ``cpu``, ``cuda`` or ``cuda:N``: where warp runs and the tensors live.

    Returns:
        :class:`Fragments` on ``device``.

    Raises:
        MeshError: vertices or faces not (V, 3) and (F, 3), non-finite, or out of range.
    """
    from avatarkit.render.raycast import RayCaster

    vertices = _numpy(vertices, np.float32)
    faces = _numpy(faces, np.int64)
    _check_mesh(vertices.shape, faces.shape)
    gb = RayCaster(vertices, faces, str(device)).gbuffer(cameras)
    tdev = torch.device(device)
    return Fragments(
        face=torch.as_tensor(gb.face, device=tdev).long(),
        bary=torch.as_tensor(gb.bary, device=tdev).float(),
        depth=torch.as_tensor(gb.depth, device=tdev).float(),
    )


def barycentrics(vertices: torch.Tensor, faces, fragments: Fragments, cameras: Cameras) -> torch.Tensor:
    """Barycentric weights (N, H, W, 3) of each covered pixel's ray with its visible face,
    differentiable in ``vertices``.

    The ray of pixel (u, v) is the warp kernel's: perspective, from the camera centre along
    ``R^T ((u - cx) / fx, (v - cy) / fy, 1)``; orthographic, along the camera axis through the
    image-plane point ``centre + R^T ((u - cx) / fx, (v - cy) / fy, 0)``. Its intersection
    with the plane of the face is found by Moller-Trumbore in the dtype of ``vertices``
    (float64 for gradient checks); the weights are rational in the vertex positions, so
    their gradients are exact for the visibility in ``fragments``. In the forward pass they
    are :attr:`Fragments.bary` (to float32 rounding).

    Args:
        vertices: (V, 3) float32 or float64 torch, metres, world frame; may require grad.
            The positions the visibility was found for, or ones near them.
        faces: (F, 3) int (torch or numpy), the faces ``fragments`` index.
        fragments: from :func:`rasterize` with the same ``cameras``.
        cameras: N cameras, images H x W pixels.

    Returns:
        (N, H, W, 3) tensor, dtype and device of ``vertices``, 0 on background.

    Raises:
        MeshError: vertices or faces of the wrong shape.
        OptionError: ``fragments`` not the size of ``cameras``' images.
    """
    if not torch.is_tensor(vertices) or not vertices.is_floating_point():
        raise MeshError("vertices must be a floating-point torch tensor (V, 3)")
    faces = torch.as_tensor(faces, device=vertices.device).long()
    _check_mesh(tuple(vertices.shape), tuple(faces.shape))
    n, h, w = _check_fragments(fragments, cameras)
    dtype, dev = vertices.dtype, vertices.device
    flat = fragments.face.to(dev).reshape(-1)
    index = torch.nonzero(flat >= 0).squeeze(1)
    face = flat[index]
    view = index // (h * w)
    pixel = index % (h * w)
    u, v = (pixel % w).to(dtype), (pixel // w).to(dtype)

    # the cameras as the warp kernel gets them: float32 (or float64) rotations, centres, intrinsics
    def tensor(array):
        return torch.as_tensor(np.asarray(array), device=dev).to(dtype)

    cam_to_world = tensor(np.transpose(cameras.world_to_cam[:, :3, :3], (0, 2, 1)))[view]  # (P, 3, 3)
    center = tensor(cameras.centers())[view]
    k = tensor(cameras.K)[view]
    local = torch.stack([(u - k[:, 0, 2]) / k[:, 0, 0], (v - k[:, 1, 2]) / k[:, 1, 1], torch.zeros_like(u)], -1)
    forward = cam_to_world[:, :, 2]
    if cameras.projection == "orthographic":
        origin = center + torch.einsum("pij,pj->pi", cam_to_world, local) - forward
        direction = forward
    else:
        origin = center
        direction = torch.einsum(
            "pij,pj->pi", cam_to_world, local + torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=dev)
        )

    corners = vertices[faces[face]]  # (P, 3, 3)
    a = corners[:, 0]
    e1 = corners[:, 1] - a
    e2 = corners[:, 2] - a
    p = torch.linalg.cross(direction, e2)
    det = (e1 * p).sum(-1)
    to_origin = origin - a
    q = torch.linalg.cross(to_origin, e1)
    b1 = (to_origin * p).sum(-1) / det
    b2 = (direction * q).sum(-1) / det
    bary = torch.stack([1 - b1 - b2, b1, b2], -1)
    out = vertices.new_zeros(n * h * w, 3).index_put((index,), bary)
    return out.reshape(n, h, w, 3)


def interpolate(
    attributes: torch.Tensor, faces, fragments: Fragments, bary: torch.Tensor | None = None
) -> torch.Tensor:
    """Attributes at every pixel centre: the visible face's corners weighted by ``bary``.

    Args:
        attributes: (V, C) per vertex, or (F, 3, C) per face corner (UV seams, flat
            shading), float torch tensor (integers are taken as float32); any units and frame
            (world positions give world positions). May require grad.
        faces: (F, 3) int (torch or numpy), the faces ``fragments`` index.
        fragments: from :func:`rasterize`.
        bary: (N, H, W, 3) weights; default ``fragments.bary`` (no gradient). Pass
            :func:`barycentrics` for gradients to the vertex positions.

    Returns:
        (N, H, W, C) tensor on the device of ``attributes``, in the dtype of ``attributes``
        and ``bary`` promoted, 0 on background.

    Raises:
        OptionError: attributes neither (V, C) nor (F, 3, C), too few of them for the faces,
            or ``bary`` not the shape of the fragments.
    """
    if not torch.is_tensor(attributes):
        attributes = torch.as_tensor(np.asarray(attributes))
    if not attributes.is_floating_point():
        attributes = attributes.float()
    dev = attributes.device
    faces = torch.as_tensor(faces, device=dev).long()
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise OptionError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    if attributes.ndim == 2:
        if len(faces) and int(faces.max()) >= len(attributes):
            raise OptionError(f"{len(attributes)} vertex attributes for faces indexing {int(faces.max()) + 1} vertices")
        corners = attributes[faces]
    elif attributes.ndim == 3 and attributes.shape[:2] == (len(faces), 3):
        corners = attributes
    else:
        raise OptionError(f"attributes must be (V, C) or (F={len(faces)}, 3, C), got {tuple(attributes.shape)}")
    n, h, w = fragments.face.shape
    if bary is None:
        bary = fragments.bary
    if tuple(bary.shape) != (n, h, w, 3):
        raise OptionError(f"bary must be {(n, h, w, 3)} like the fragments, got {tuple(bary.shape)}")
    dtype = torch.promote_types(corners.dtype, bary.dtype)
    flat = fragments.face.to(dev).reshape(-1)
    index = torch.nonzero(flat >= 0).squeeze(1)
    weights = bary.to(device=dev, dtype=dtype).reshape(-1, 3)[index]
    values = (corners[flat[index]].to(dtype) * weights[..., None]).sum(-2)
    out = values.new_zeros(n * h * w, corners.shape[-1]).index_put((index,), values)
    return out.reshape(n, h, w, -1)


def render_attributes(
    vertices, faces, attributes, cameras: Cameras, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attributes seen at every pixel centre of ``cameras``: :func:`rasterize`, then
    :func:`barycentrics` (when ``vertices`` requires grad), then :func:`interpolate`.

    Args:
        vertices: (V, 3) float, metres, world frame; a torch tensor that requires grad for
            gradients to the positions (inside the silhouettes only), or numpy.
        faces: (F, 3) int (torch or numpy), counter-clockwise seen from outside.
        attributes: (V, C) per vertex or (F, 3, C) per face corner, float (torch or numpy).
        cameras: N cameras, images H x W pixels.
        device: ``cpu``, ``cuda`` or ``cuda:N``: where everything runs (inputs are moved there).

    Returns:
        image: (N, H, W, C), 0 on background; mask: (N, H, W) bool, pixels that see the mesh.
    """
    tdev = torch.device(device)
    if torch.is_tensor(vertices):
        vertices = vertices.to(tdev)
    else:
        vertices = torch.as_tensor(_numpy(vertices, np.float32), device=tdev)
    attributes = (
        attributes.to(tdev) if torch.is_tensor(attributes) else torch.as_tensor(np.asarray(attributes), device=tdev)
    )
    faces = torch.as_tensor(_numpy(faces, np.int64), device=tdev)
    fragments = rasterize(vertices, faces, cameras, device)
    bary = barycentrics(vertices, faces, fragments, cameras) if vertices.requires_grad else None
    return interpolate(attributes, faces, fragments, bary), fragments.mask


# ----------------------------------------------------------------------------- helpers


def _numpy(array, dtype) -> np.ndarray:
    if torch.is_tensor(array):
        array = array.detach().cpu().numpy()
    return np.asarray(array).astype(dtype, copy=False)


def _check_mesh(vertex_shape: tuple, face_shape: tuple) -> None:
    if len(vertex_shape) != 2 or vertex_shape[1] != 3:
        raise MeshError(f"vertices must be (V, 3), got {tuple(vertex_shape)}")
    if len(face_shape) != 2 or face_shape[1] != 3:
        raise MeshError(f"faces must be (F, 3), got {tuple(face_shape)}")


def _check_fragments(fragments: Fragments, cameras: Cameras) -> tuple[int, int, int]:
    shape = tuple(fragments.face.shape)
    if shape != (len(cameras), cameras.height, cameras.width):
        raise OptionError(
            f"fragments of {shape} (views, height, width) for {len(cameras)} cameras of "
            f"{cameras.width} x {cameras.height} pixels"
        )
    return shape
