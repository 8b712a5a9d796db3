"""Rasterise a mesh's UV layout: which face, at which barycentric coordinates, covers each texel.

Texel (row, col) has its centre at u = (col + 0.5) / W, v = 1 - (row + 0.5) / H
(UV origin bottom-left, texture row 0 at v = 1; see ``docs/conventions.md``).
"""

from __future__ import annotations

import numpy as np

from avatarkit.errors import ResourceError

MAX_CANDIDATES = 200_000_000


def rasterize_uv(uvs: np.ndarray, face_uvs: np.ndarray, size: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cover a texture of ``size`` with the UV triangles.

    Args:
        uvs: (T, 2) float UVs. face_uvs: (F, 3) int indices into ``uvs``.
        size: W (square) or (H, W) texels.

    Returns:
        face: (H, W) int32 face index covering each texel centre, -1 where none.
        bary: (H, W, 3) float32 barycentric coordinates of the texel centre in that face.
        Where UV islands overlap, the face with the larger index wins.
    """
    h, w = (size, size) if isinstance(size, int) else size
    tri = np.asarray(uvs, dtype=np.float64)[np.asarray(face_uvs)]  # (F, 3, 2)
    x = tri[..., 0] * w - 0.5  # texel-centre coordinates: centre of (row, col) at (col, row)
    y = (1.0 - tri[..., 1]) * h - 0.5
    x0 = np.clip(np.ceil(x.min(1)), 0, w - 1).astype(np.int64)
    x1 = np.clip(np.floor(x.max(1)), 0, w - 1).astype(np.int64)
    y0 = np.clip(np.ceil(y.min(1)), 0, h - 1).astype(np.int64)
    y1 = np.clip(np.floor(y.max(1)), 0, h - 1).astype(np.int64)
    bw, bh = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
    counts = bw * bh
    total = int(counts.sum())
    if total > MAX_CANDIDATES:
        raise ResourceError(f"UV rasterisation would test {total} texels; the UV layout is not in [0, 1]?")
    fid = np.repeat(np.arange(len(tri)), counts)
    local = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    cx = x0[fid] + local % bw[fid]
    cy = y0[fid] + local // bw[fid]
    # barycentrics of (cx, cy) in triangle fid
    ax, ay = x[fid, 0], y[fid, 0]
    e1x, e1y = x[fid, 1] - ax, y[fid, 1] - ay
    e2x, e2y = x[fid, 2] - ax, y[fid, 2] - ay
    px, py = cx - ax, cy - ay
    det = e1x * e2y - e2x * e1y
    with np.errstate(divide="ignore", invalid="ignore"):
        b1 = (px * e2y - e2x * py) / det
        b2 = (e1x * py - px * e1y) / det
    b0 = 1.0 - b1 - b2
    eps = 1e-9
    inside = (b0 >= -eps) & (b1 >= -eps) & (b2 >= -eps) & (det != 0)
    face = np.full((h, w), -1, dtype=np.int32)
    bary = np.zeros((h, w, 3), dtype=np.float32)
    face[cy[inside], cx[inside]] = fid[inside]
    bary[cy[inside], cx[inside]] = np.stack([b0, b1, b2], axis=1)[inside]
    return face, bary


def dilate_into_gutter(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Fill texels outside the UV islands with the nearest covered texel's value.

    Bilinear lookups near island borders then never blend in background colour.
    """
    from scipy import ndimage

    if covered.all() or not covered.any():
        return image
    _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return image[rows, cols]
