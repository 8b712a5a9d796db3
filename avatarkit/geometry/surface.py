"""Points on a mesh surface and the attributes found there (normals, colours).

A surface point is a face index and barycentric coordinates; positions, normals and
colours are interpolated from them, so the same sample can carry all three.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from avatarkit.structures import Mesh


class SurfacePoints(NamedTuple):
    """``points`` (P, 3) float32, ``face`` (P,) int32, ``bary`` (P, 3) float32 weights of the
    face's three corners."""

    points: np.ndarray
    face: np.ndarray
    bary: np.ndarray


def face_areas_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F,) face areas and (F, 3) unit face normals (zero for degenerate faces)."""
    corners = vertices[faces].astype(np.float64)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(cross, axis=1)
    normals = np.divide(cross, length[:, None], out=np.zeros_like(cross), where=length[:, None] > 0)
    return 0.5 * length, normals.astype(np.float32)


def vertex_normals(mesh: Mesh) -> np.ndarray:
    """(V, 3) unit vertex normals: the mesh's own, or area-weighted face normals."""
    if mesh.vertex_normals is not None:
        return mesh.vertex_normals
    areas, normals = face_areas_normals(mesh.vertices, mesh.faces)
    acc = np.zeros((len(mesh.vertices), 3))
    weighted = normals * areas[:, None]
    for corner in range(3):
        np.add.at(acc, mesh.faces[:, corner], weighted)
    length = np.linalg.norm(acc, axis=1, keepdims=True)
    return np.divide(acc, length, out=np.zeros_like(acc), where=length > 0).astype(np.float32)


def sample_surface(mesh: Mesh, count: int, rng: np.random.Generator) -> SurfacePoints:
    """``count`` points uniformly distributed by area over the surface."""
    areas, _ = face_areas_normals(mesh.vertices, mesh.faces)
    total = areas.sum()
    if not total > 0:
        from avatarkit.errors import MeshError

        raise MeshError("every face has zero area")
    face = rng.choice(len(areas), size=count, p=areas / total).astype(np.int32)
    # Uniform in a triangle: reflect points of the unit square that fall outside it.
    r = rng.random((count, 2))
    flip = r.sum(axis=1) > 1
    r[flip] = 1 - r[flip]
    bary = np.column_stack([1 - r[:, 0] - r[:, 1], r[:, 0], r[:, 1]]).astype(np.float32)
    return SurfacePoints(interpolate(mesh.vertices, mesh.faces, face, bary), face, bary)


def interpolate(values: np.ndarray, faces: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Per-vertex ``values`` (V, C) interpolated at (face, bary), float32."""
    corners = values[faces[face]].astype(np.float32)  # (P, 3, C)
    return np.einsum("pk,pkc->pc", bary.astype(np.float32), corners)


def surface_normals(mesh: Mesh, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """(P, 3) unit normals at surface points, interpolated from the vertex normals (smooth
    shading normals; the face normal where they cancel)."""
    n = interpolate(vertex_normals(mesh), mesh.faces, face, bary)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    _, flat = face_areas_normals(mesh.vertices, mesh.faces[face])
    return np.where(length > 1e-8, n / np.maximum(length, 1e-8), flat).astype(np.float32)


def surface_colors(mesh: Mesh, face: np.ndarray, bary: np.ndarray) -> np.ndarray | None:
    """(P, 3) uint8 sRGB at surface points: the texture (bilinear, at the interpolated UV) if
    the mesh has one, else interpolated vertex colours, else None."""
    if mesh.texture is not None and mesh.has_uvs:
        uv = interpolate(mesh.uvs, mesh.face_uvs, face, bary)
        return sample_texture(mesh.texture, uv)
    if mesh.vertex_colors is not None:
        rgb = interpolate(mesh.vertex_colors.astype(np.float32), mesh.faces, face, bary)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return None


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of (P, 2) UVs in an (H, W, 3) uint8 texture (row 0 is v = 1; texel
    centres at half-integers; UVs wrap, as OpenGL's default repeat)."""
    h, w = texture.shape[:2]
    x = np.mod(uv[:, 0], 1.0) * w - 0.5
    y = (1.0 - np.mod(uv[:, 1], 1.0)) * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    x1, y1 = np.mod(x0 + 1, w), np.mod(y0 + 1, h)
    x0, y0 = np.mod(x0, w), np.mod(y0, h)
    tex = texture.astype(np.float32)
    top = tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx
    bottom = tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)
