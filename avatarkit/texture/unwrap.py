"""Textures in a mesh's UV layout from views (the core of ``avatarkit unwrap-uv``).

Every texel of the UV layout is a point on the surface (its face and barycentric
coordinates). For each view, the texel's point is projected with the view's camera; it
was *seen* when it lands inside the image and the mask, and nothing of the mesh lies in
front of it (its depth matches the depth of the surface rendered at that pixel). Its
``visibility`` in that view is the cosine between its normal and the direction to the
camera. Colours are sampled bilinearly and blended over the views with visibility as
weight; the texture's ``visibility`` is the best cosine over the views.

``symmetric=True`` fills texels never seen from their mirror texel: the surface point
closest to the texel's point reflected across the mesh's sagittal plane (x = the median
x of the vertices), recorded in ``mirrored``. This is exact for meshes in a symmetric pose
(``synth --pose rest``) and approximate for posed ones.

Without a mesh, per-pixel UV images (``/images/uv`` of a views file) are splatted into the
texture directly (the DensePose-IUV route of Sample&Refine).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from avatarkit.errors import AvatarkitWarning, InputError, MeshError, OptionError
from avatarkit.geometry.surface import interpolate, vertex_normals
from avatarkit.geometry.uv_raster import check_texture_size, dilate_into_gutter, rasterize_uv
from avatarkit.io.view_folders import IuvImages
from avatarkit.structures import Cameras, Mesh, Texture, Views

MIN_MASK_IOU = 0.5
"""Views whose mask and the mesh's own silhouette overlap less than this get a warning."""

DEPTH_TOLERANCE = 0.01
"""A texel is hidden in a view when the surface rendered at its pixel is this much (relative
to its depth, plus one pixel's footprint) in front of it."""


def make_atlas(mesh: Mesh, size: int = 1024) -> Mesh:
    """A copy of ``mesh`` with a UV atlas from xatlas, and its vertex colours (or a flat
    grey) baked into a ``size`` texture."""
    import xatlas

    _, indices, uvs = xatlas.parametrize(mesh.vertices.astype(np.float32), mesh.faces.astype(np.uint32))
    out = Mesh(
        mesh.vertices,
        mesh.faces,
        vertex_normals=mesh.vertex_normals,
        vertex_colors=mesh.vertex_colors,
        uvs=uvs,
        face_uvs=indices.astype(np.int32),
        vertex_labels=mesh.vertex_labels,
        label_names=mesh.label_names,
        landmarks=mesh.landmarks,
        params=mesh.params,
        regions=mesh.regions,
    )
    face, bary = rasterize_uv(out.uvs, out.face_uvs, size)
    covered = face >= 0
    texture = np.full((size, size, 3), 128, np.uint8)
    if mesh.vertex_colors is not None:
        rgb = interpolate(mesh.vertex_colors.astype(np.float32), mesh.faces, face[covered], bary[covered])
        texture[covered] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    out.texture = dilate_into_gutter(texture, covered)
    return out


def unwrap_uv(
    mesh: Mesh | None,
    views: Views | IuvImages | None,
    size: int | None = None,
    symmetric: bool = False,
    atlas: bool = False,
    device: str = "cpu",
    per_view: bool = False,
) -> Texture | Mesh:
    """The core of ``avatarkit unwrap-uv``: ``views`` onto ``mesh``'s UV layout (:func:`unwrap`;
    ``atlas``: an xatlas layout made first, the result a mesh wearing the texture), or without
    a mesh the views' UV images splatted (:func:`splat_uv_images`), or photos with DensePose
    IUV images into DensePose's atlas (:func:`splat_iuv_images`). ``size``: texels per side
    (default 1024; each DensePose part's tile, default 200). ``per_view``: each view's own
    partial texture too (:func:`unwrap`)."""
    check_unwrap(mesh is not None, views, size, symmetric, atlas, per_view)
    if isinstance(views, IuvImages):
        return splat_iuv_images(views.rgb, views.iuv, size or 200, views.names)
    size = size or 1024
    if mesh is None:
        return splat_uv_images(views, size)
    if atlas:
        mesh = make_atlas(mesh, size)
    elif not mesh.has_uvs:
        raise MeshError("the mesh has no UVs; pass --atlas to make an atlas")
    if views is None:
        return mesh  # the atlas with its baked colours
    texture = unwrap(mesh, views, size, symmetric, device, per_view=per_view)
    return dataclasses.replace(mesh, texture=texture.texture) if atlas else texture


def check_unwrap(
    has_mesh: bool,
    views: Views | IuvImages | None,
    size: int | None,
    symmetric: bool,
    atlas: bool,
    per_view: bool = False,
) -> None:
    """Raise :class:`OptionError` for a request :func:`unwrap_uv` cannot do (before a mesh is read)."""
    if not has_mesh and views is None:
        raise OptionError("give a mesh, --views, or both")
    if per_view and (not has_mesh or atlas or views is None or isinstance(views, IuvImages)):
        raise OptionError("--per-view projects each view onto a mesh's own UV layout: give the mesh and --views")
    if views is None and not atlas:
        raise OptionError("nothing to project: give --views, or --atlas to make an atlas for the mesh")
    if size is not None and size < 1:
        raise OptionError(f"--size must be positive, got {size}")
    if isinstance(views, IuvImages) and (has_mesh or atlas or symmetric):
        raise OptionError("DensePose IUV images fill DensePose's own atlas: give no mesh, --atlas or --symmetric")
    if size is not None:
        check_texture_size(*((6 * size, 4 * size) if isinstance(views, IuvImages) else (size, size)))


def export_images(result: Mesh | Texture) -> list[np.ndarray]:
    """What ``unwrap-uv --export png`` writes of a result: its texture image, and its
    visibility (0-255, white where seen) when it has one."""
    images = [result.texture]
    if isinstance(result, Texture) and result.visibility is not None:
        images.append((np.clip(result.visibility, 0, 1) * 255).astype(np.uint8))
    return images


def coverage(result: Mesh | Texture) -> dict:
    """A texture's coverage figures (its ``seen_fraction``, ``mirrored_fraction`` and ``completion`` attributes)."""
    if not isinstance(result, Texture):
        return {}
    return {k: result.attrs[k] for k in ("seen_fraction", "mirrored_fraction", "completion") if k in result.attrs}


def uv_layout(mesh: Mesh) -> str:
    """A fingerprint of ``mesh``'s UV layout (its UVs to 1e-4 and their faces): meshes with the
    same layout (every ``synth`` person: Anny's) give the same string; textures record it as
    their ``uv_layout`` attribute, so a texture of another layout can be refused by name."""
    import hashlib

    if not mesh.has_uvs:
        raise MeshError("the mesh has no UVs")
    digest = hashlib.blake2b(digest_size=8)
    digest.update(np.rint(np.asarray(mesh.uvs, np.float64) * 1e4).astype(np.int64).tobytes())
    digest.update(np.asarray(mesh.face_uvs, np.int64).tobytes())
    return f"uv-{digest.hexdigest()}"


def view_yaws(cameras: Cameras) -> np.ndarray:
    """(N,) float32: the yaw each camera looks from, degrees about +Y, rounded to 0.1 (0: from
    +Z, in front of the subject; 90: from +X, its left), as orbit rigs count it."""
    back = -cameras.world_to_cam[:, 2, :3]  # from the subject towards the camera
    return (np.round(np.degrees(np.arctan2(back[:, 0], back[:, 2])), 1) + 0.0).astype(np.float32)  # no -0


def unwrap(
    mesh: Mesh,
    views: Views,
    size: int = 1024,
    symmetric: bool = False,
    device: str = "cpu",
    min_visibility: float = 0.05,
    per_view: bool = False,
) -> Texture:
    """Blend ``views`` into ``mesh``'s UV layout; see the module docstring. ``per_view``: each
    view's own partial texture as well (``view_texture``, ``view_visibility``,
    ``view_mirrored``, ``view_yaw``: what a single photo gives, mirror-filled with
    ``symmetric``: Sample&Refine's training inputs).

    Raises:
        MeshError: the mesh has no UVs.
        OptionError: a texture size below 1.
    """
    from avatarkit.render.raycast import RayCaster

    if not mesh.has_uvs:
        raise MeshError("the mesh has no UVs; pass --atlas to make some")
    if size < 1:
        raise OptionError(f"--size must be positive, got {size}")
    face, bary = rasterize_uv(mesh.uvs, mesh.face_uvs, size)
    covered = face >= 0
    f, b = face[covered], bary[covered]
    points = interpolate(mesh.vertices, mesh.faces, f, b).astype(np.float64)
    normals = interpolate(vertex_normals(mesh), mesh.faces, f, b).astype(np.float64)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)

    cameras = views.cameras()
    caster = RayCaster(mesh.vertices, mesh.faces, device)
    accum = np.zeros((len(points), 3))
    weight = np.zeros(len(points))
    best = np.zeros(len(points))
    blind, disagree, each = [], [], []
    for i in range(len(views)):
        depth = caster.gbuffer(cameras, slice(i, i + 1)).depth[0]
        cos, pix = _seen(cameras, i, points, normals, depth, views.mask[i])
        seen = cos > min_visibility
        if not seen.any():
            blind.append(i)
        elif _iou(depth > 0, views.mask[i] > 0) < MIN_MASK_IOU:
            disagree.append(i)
        colors = _bilinear(views.rgb[i], pix[seen])
        accum[seen] += cos[seen, None] * colors
        weight[seen] += cos[seen]
        best = np.maximum(best, np.where(seen, cos, 0.0))
        if per_view:
            each.append((seen, np.where(seen, cos, 0.0), colors))
    if len(blind) == len(views):
        raise InputError("no view sees any texel of the mesh (cameras, masks or mesh do not match?)")
    if blind:
        warnings.warn(
            f"{_views_named(blind)} see{'s' * (len(blind) == 1)} nothing of the mesh", AvatarkitWarning, stacklevel=2
        )
    if disagree:
        warnings.warn(
            f"{_views_named(disagree)}: the mask and the mesh's silhouette overlap less than "
            f"{MIN_MASK_IOU:.0%} (IoU); are these the mesh's views?",
            AvatarkitWarning,
            stacklevel=2,
        )

    texture = np.zeros((size, size, 3), np.uint8)
    visibility = np.zeros((size, size), np.float32)
    rgb = np.where(weight[:, None] > 0, accum / np.maximum(weight, 1e-12)[:, None], 0.0)
    texture[covered] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    visibility[covered] = best
    normal_map = np.zeros((size, size, 3), np.float32)
    normal_map[covered] = normals
    mirrored = np.zeros((size, size), np.uint8)
    source = _mirror_source(mesh, covered, points, device) if symmetric else None
    if source is not None:
        _fill_from_mirror(texture, visibility, mirrored, source)
    seen_texels = visibility > 0
    filled = seen_texels | (mirrored > 0)
    texture = dilate_into_gutter(texture, filled)  # bilinear lookups never blend in the unfilled black
    stacks: dict[str, np.ndarray] = {}
    if per_view:
        stacks = _per_view(each, covered, source, size)
        stacks["view_yaw"] = view_yaws(cameras)
    attrs = {
        "source": "views",
        "views": np.int64(len(views)),
        "size": np.int64(size),
        "symmetric": bool(symmetric),
        "min_visibility": float(min_visibility),
        "seen_fraction": float(seen_texels[covered].mean()) if covered.any() else 0.0,
        "mirrored_fraction": float((mirrored[covered] > 0).mean()) if covered.any() else 0.0,
        "uv_layout": uv_layout(mesh),
        "per_view": bool(per_view),
    }
    return Texture(texture, visibility, normal_map, mirrored if symmetric else None, attrs, **stacks)


def _per_view(each, covered: np.ndarray, source, size: int) -> dict[str, np.ndarray]:
    """Each view's own texture, visibility and mirror-filled texels (N, H, W, ...)."""
    n = len(each)
    textures = np.zeros((n, size, size, 3), np.uint8)
    visibilities = np.zeros((n, size, size), np.float32)
    mirrors = np.zeros((n, size, size), np.uint8)
    for i, (seen, cos, colors) in enumerate(each):
        texture, visibility, mirrored = textures[i], visibilities[i], mirrors[i]
        rows, cols = np.nonzero(covered)
        texture[rows[seen], cols[seen]] = np.clip(np.rint(colors), 0, 255).astype(np.uint8)
        visibility[covered] = cos
        if source is not None:
            _fill_from_mirror(texture, visibility, mirrored, source)
        textures[i] = dilate_into_gutter(texture, (visibility > 0) | (mirrored > 0))
    return {"view_texture": textures, "view_visibility": visibilities, "view_mirrored": mirrors}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def _views_named(indices: list[int]) -> str:
    return f"view{'s' * (len(indices) > 1)} {', '.join(map(str, indices))}"


def _seen(cameras: Cameras, i: int, points, normals, depth_image, mask) -> tuple[np.ndarray, np.ndarray]:
    """Per texel point: visibility cosine in view ``i`` (0 where unseen), and its pixel (u, v)."""
    pix, z = cameras.subset(i).project(points)
    pix, z = pix[0], z[0]
    h, w = depth_image.shape
    col, row = np.rint(pix[:, 0]).astype(np.int64), np.rint(pix[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (z > 0)
    col, row = np.clip(col, 0, w - 1), np.clip(row, 0, h - 1)
    rendered = depth_image[row, col]
    k = cameras.K[i]
    footprint = z / k[0, 0] if cameras.projection == "perspective" else 1.0 / k[0, 0]
    front = np.abs(rendered - z) <= DEPTH_TOLERANCE * z + 2 * footprint
    visible = inside & (mask[row, col] > 0) & (rendered > 0) & front
    if cameras.projection == "perspective":
        to_camera = cameras.centers()[i] - points
        to_camera /= np.linalg.norm(to_camera, axis=1, keepdims=True)
    else:
        to_camera = -cameras.world_to_cam[i, 2, :3][None]
    cos = np.sum(normals * to_camera, axis=1)
    return np.where(visible, np.clip(cos, 0.0, 1.0), 0.0), pix


def _bilinear(image: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """(P, 3) float colours of ``image`` at pixel coordinates (u, v) (pixel centres at integers)."""
    h, w = image.shape[:2]
    x = np.clip(pix[:, 0], 0, w - 1)
    y = np.clip(pix[:, 1], 0, h - 1)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    img = image.astype(np.float64)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _mirror_source(mesh, covered, points, device) -> tuple[np.ndarray, ...]:
    """Per covered texel: its (row, col), and the UV and texel (row, col) of its mirror point."""
    from avatarkit.geometry.sdf import MeshDistance

    plane = float(np.median(mesh.vertices[:, 0]))
    reflected = points * np.array([-1.0, 1.0, 1.0]) + np.array([2 * plane, 0.0, 0.0])
    hit = MeshDistance(mesh.vertices, mesh.faces, device).query(reflected, "normal")
    uv = interpolate(mesh.uvs, mesh.face_uvs, hit.face, hit.bary)
    size = covered.shape[0]
    col = np.clip((uv[:, 0] * size).astype(np.int64), 0, size - 1)
    row = np.clip(((1 - uv[:, 1]) * size).astype(np.int64), 0, size - 1)
    rows, cols = np.nonzero(covered)
    return rows, cols, uv, row, col


def _fill_from_mirror(texture, visibility, mirrored, source) -> None:
    """Texels never seen take the colour of the texel at their mirror point, if that was seen."""
    from avatarkit.geometry.surface import sample_texture

    rows, cols, uv, row, col = source
    unseen = visibility[rows, cols] == 0
    source_seen = visibility[row, col] > 0
    take = unseen & source_seen
    colors = sample_texture(texture, uv[take])  # bilinear inside the seen island
    texture[rows[take], cols[take]] = colors
    mirrored[rows[take], cols[take]] = 1


def splat_uv_images(views: Views, size: int = 1024) -> Texture:
    """A texture from per-pixel UV images alone (``views.uv``): each covered pixel's colour
    goes to the texel at its UV, weighted by the cosine of its viewing angle when the views
    carry normals; ``visibility`` is the best such cosine (1 without normals)."""
    if views.uv is None:
        raise OptionError("the views have no /images/uv; give the mesh, or render with a UV-mapped mesh")
    if size < 1:
        raise OptionError(f"--size must be positive, got {size}")
    check_texture_size(size, size)
    cameras = views.cameras()
    accum = np.zeros((size * size, 3))
    weight = np.zeros(size * size)
    best = np.zeros(size * size)
    blind = []
    for i in range(len(views)):
        m = (views.mask[i] > 0) & (views.uv[i, ..., 0] >= 0)
        if not m.any():
            blind.append(i)
            continue
        uv = views.uv[i][m]
        texel = np.clip(((1 - uv[:, 1]) * size).astype(np.int64), 0, size - 1) * size + np.clip(
            (uv[:, 0] * size).astype(np.int64), 0, size - 1
        )
        if views.normal is not None:
            rows, cols = np.nonzero(m)
            if cameras.projection == "perspective":
                k = cameras.K[i]
                d = np.stack([(cols - k[0, 2]) / k[0, 0], (rows - k[1, 2]) / k[1, 1], np.ones(len(rows))], -1)
                d = d @ cameras.world_to_cam[i, :3, :3]  # to the world: R^T d
                d /= np.linalg.norm(d, axis=1, keepdims=True)
            else:
                d = np.broadcast_to(cameras.world_to_cam[i, 2, :3], (len(rows), 3))
            cos = np.clip(-np.sum(views.normal[i][m] * d, axis=1), 0.0, 1.0)
        else:
            cos = np.ones(len(uv))
        np.add.at(accum, texel, cos[:, None] * views.rgb[i][m])
        np.add.at(weight, texel, cos)
        np.maximum.at(best, texel, cos)
    if len(blind) == len(views):
        raise InputError("no view has any pixel with a mesh UV")
    if blind:
        warnings.warn(
            f"{_views_named(blind)} see{'s' * (len(blind) == 1)} nothing of the mesh", AvatarkitWarning, stacklevel=2
        )
    visibility = best.reshape(size, size).astype(np.float32)
    texture = _weighted_texture(accum, weight, (size, size))
    attrs = {
        "source": "uv images",
        "views": np.int64(len(views)),
        "size": np.int64(size),
        "seen_fraction": float((visibility > 0).mean()),
    }
    return Texture(texture, visibility, None, None, attrs)


def _weighted_texture(accum: np.ndarray, weight: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8: the weighted mean colour ``accum / weight`` of every texel with weight,
    seen texels' colours carried into the unseen gutter around them."""
    seen = weight > 0
    texture = np.zeros((len(weight), 3), np.uint8)
    texture[seen] = np.clip(np.rint(accum[seen] / weight[seen, None]), 0, 255).astype(np.uint8)
    return dilate_into_gutter(texture.reshape(*shape, 3), seen.reshape(shape))


DENSEPOSE_PARTS = 24


def densepose_texel(part: np.ndarray, u: np.ndarray, v: np.ndarray, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) in DensePose's texture atlas of parts ``part`` (1-24) at ``u``, ``v`` (0-255).

    The atlas (``texture_from_SURREAL.png``, detectron2's texture visualiser) is 6 x 4 square
    tiles of side ``tile`` (6 tile high, 4 tile wide): part p at tile row (p - 1) % 6 and tile
    column (p - 1) // 6; inside a tile, row (255 - V) (tile - 1) / 255 and column U (tile - 1) / 255,
    as DensePose's ``TransferTexture``.
    """
    index = part.astype(np.int64) - 1
    row = (index % 6) * tile + ((255 - v.astype(np.int64)) * (tile - 1) // 255)
    col = (index // 6) * tile + (u.astype(np.int64) * (tile - 1) // 255)
    return row, col


def splat_iuv_images(rgb: np.ndarray, iuv: np.ndarray, tile: int = 200, names=None) -> Texture:
    """A texture in DensePose's atlas from photos and their IUV images (I, U, V channels):
    each pixel on the body adds its colour to its texel (:func:`densepose_texel`); colours are
    averaged over the images, ``visibility`` is 1 where a texel was seen."""
    if tile < 1:
        raise OptionError(f"--size must be positive, got {tile}")
    h, w = 6 * tile, 4 * tile
    check_texture_size(h, w)
    accum = np.zeros((h * w, 3))
    count = np.zeros(h * w)
    empty = []
    for i in range(len(rgb)):
        on_body = iuv[i, ..., 0] > 0
        if not on_body.any():
            empty.append(i)
            continue
        coords = iuv[i][on_body]
        row, col = densepose_texel(coords[:, 0], coords[:, 1], coords[:, 2], tile)
        np.add.at(accum, row * w + col, rgb[i][on_body])
        np.add.at(count, row * w + col, 1.0)
    if len(empty) == len(rgb):
        raise InputError("no IUV image has any body part (I > 0)")
    if empty:
        named = [str(names[i]) for i in empty] if names is not None else [f"image {i}" for i in empty]
        warnings.warn(f"no body part in the IUV images of {', '.join(named)}", AvatarkitWarning, stacklevel=2)
    visibility = (count > 0).reshape(h, w).astype(np.float32)
    texture = _weighted_texture(accum, count, (h, w))
    attrs = {
        "source": "densepose iuv",
        "layout": "densepose atlas",
        "tile": np.int64(tile),
        "views": np.int64(len(rgb)),
        "seen_fraction": float(visibility.mean()),
    }
    return Texture(texture, visibility, None, None, attrs)
