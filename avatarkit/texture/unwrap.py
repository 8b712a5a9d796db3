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

import numpy as np

from avatarkit.errors import MeshError, OptionError
from avatarkit.geometry.surface import interpolate, vertex_normals
from avatarkit.geometry.uv_raster import dilate_into_gutter, rasterize_uv
from avatarkit.render.cameras import Cameras
from avatarkit.structures import Mesh, Texture, Views

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
    )
    face, bary = rasterize_uv(out.uvs, out.face_uvs, size)
    covered = face >= 0
    texture = np.full((size, size, 3), 128, np.uint8)
    if mesh.vertex_colors is not None:
        rgb = interpolate(mesh.vertex_colors.astype(np.float32), mesh.faces, face[covered], bary[covered])
        texture[covered] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    out.texture = dilate_into_gutter(texture, covered)
    return out


def unwrap(
    mesh: Mesh,
    views: Views,
    size: int = 1024,
    symmetric: bool = False,
    device: str = "cpu",
    min_visibility: float = 0.05,
) -> Texture:
    """Blend ``views`` into ``mesh``'s UV layout; see the module docstring.

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

    cameras = Cameras(views.K, views.world_to_cam, views.projection, views.width, views.height)
    caster = RayCaster(mesh.vertices, mesh.faces, device)
    accum = np.zeros((len(points), 3))
    weight = np.zeros(len(points))
    best = np.zeros(len(points))
    for i in range(len(views)):
        depth = caster.gbuffer(cameras, slice(i, i + 1)).depth[0]
        cos, pix = _seen(cameras, i, points, normals, depth, views.mask[i])
        seen = cos > min_visibility
        accum[seen] += cos[seen, None] * _bilinear(views.rgb[i], pix[seen])
        weight[seen] += cos[seen]
        best = np.maximum(best, np.where(seen, cos, 0.0))

    texture = np.zeros((size, size, 3), np.uint8)
    visibility = np.zeros((size, size), np.float32)
    rgb = np.where(weight[:, None] > 0, accum / np.maximum(weight, 1e-12)[:, None], 0.0)
    texture[covered] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    visibility[covered] = best
    normal_map = np.zeros((size, size, 3), np.float32)
    normal_map[covered] = normals
    mirrored = np.zeros((size, size), np.uint8)
    if symmetric:
        _fill_from_mirror(mesh, texture, visibility, mirrored, covered, points, device)
    seen_texels = visibility > 0
    filled = seen_texels | (mirrored > 0)
    texture = dilate_into_gutter(texture, filled)  # bilinear lookups never blend in the unfilled black
    attrs = {
        "source": "views",
        "views": np.int64(len(views)),
        "size": np.int64(size),
        "symmetric": bool(symmetric),
        "min_visibility": float(min_visibility),
        "seen_fraction": float(seen_texels[covered].mean()) if covered.any() else 0.0,
        "mirrored_fraction": float((mirrored[covered] > 0).mean()) if covered.any() else 0.0,
    }
    return Texture(texture, visibility, normal_map, mirrored if symmetric else None, attrs)


def _seen(cameras: Cameras, i: int, points, normals, depth_image, mask) -> tuple[np.ndarray, np.ndarray]:
    """Per texel point: visibility cosine in view ``i`` (0 where unseen), and its pixel (u, v)."""
    one = Cameras(
        cameras.K[i : i + 1], cameras.world_to_cam[i : i + 1], cameras.projection, cameras.width, cameras.height
    )
    pix, z = one.project(points)
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


def _fill_from_mirror(mesh, texture, visibility, mirrored, covered, points, device) -> None:
    """Texels never seen take the colour of the texel at their mirror point, if that was seen."""
    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.geometry.surface import sample_texture

    plane = float(np.median(mesh.vertices[:, 0]))
    reflected = points * np.array([-1.0, 1.0, 1.0]) + np.array([2 * plane, 0.0, 0.0])
    hit = MeshDistance(mesh.vertices, mesh.faces, device).query(reflected, "normal")
    uv = interpolate(mesh.uvs, mesh.face_uvs, hit.face, hit.bary)
    size = texture.shape[0]
    col = np.clip((uv[:, 0] * size).astype(np.int64), 0, size - 1)
    row = np.clip(((1 - uv[:, 1]) * size).astype(np.int64), 0, size - 1)
    rows, cols = np.nonzero(covered)
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
    cameras = Cameras(views.K, views.world_to_cam, views.projection, views.width, views.height)
    accum = np.zeros((size * size, 3))
    weight = np.zeros(size * size)
    best = np.zeros(size * size)
    for i in range(len(views)):
        m = (views.mask[i] > 0) & (views.uv[i, ..., 0] >= 0)
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
    seen = weight > 0
    texture = np.zeros((size * size, 3), np.uint8)
    texture[seen] = np.clip(np.rint(accum[seen] / weight[seen, None]), 0, 255).astype(np.uint8)
    visibility = best.reshape(size, size).astype(np.float32)
    texture = dilate_into_gutter(texture.reshape(size, size, 3), visibility > 0)
    attrs = {"source": "uv images", "views": np.int64(len(views)), "size": np.int64(size)}
    return Texture(texture, visibility, None, None, attrs)
