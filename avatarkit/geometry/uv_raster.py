"""Rasterise a mesh's UV layout: which face, at which barycentric coordinates, covers each texel.

Texel (row, col) has its centre at u = (col + 0.5) / W, v = 1 - (row + 0.5) / H
(UV origin bottom-left, texture row 0 at v = 1; see ``docs/conventions.md``).
"""

from __future__ import annotations

import numpy as np

from avatarkit.errors import ResourceError

MAX_CANDIDATES = 200_000_000
"""Texel tests (texels in each UV triangle's bounding box, summed) a rasterisation may make:
its working arrays take about 100 bytes per test."""
MAX_TEXELS = MAX_CANDIDATES
"""Texels a texture may have (a 14142 x 14142 square): above it the per-texel working arrays
alone would take tens of GiB."""


def check_texture_size(height: int, width: int, flag: str = "--size") -> None:
    """Raise :class:`ResourceError` for a texture of more than :data:`MAX_TEXELS` texels,
    naming the option ``flag`` that sets its size."""
    texels = int(height) * int(width)
    if texels > MAX_TEXELS:
        raise ResourceError(
            f"a {width} x {height} texture is too large: {texels:,} texels, more than the {MAX_TEXELS:,} "
            f"that fit in memory here (about 100 bytes of working arrays each); lower {flag}"
        )


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
    check_texture_size(h, w)
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
        raise ResourceError(_too_many_tests(total, h, w, np.asarray(uvs)))
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


def _too_many_tests(total: int, h: int, w: int, uvs: np.ndarray) -> str:
    """Why a rasterisation would make ``total`` texel tests: a UV layout far outside [0, 1]
    (its triangles' boxes cover the texture many times over), or else a texture too large."""
    cover = total / (h * w)
    if cover > 16:  # a [0, 1] layout's triangle boxes cover the texture a few times at most
        lo, hi = float(uvs.min()), float(uvs.max())
        return (
            f"the UV triangles' boxes cover the {w} x {h} texture {cover:.0f} times over "
            f"(UVs from {lo:.3g} to {hi:.3g}): not a [0, 1] layout?"
        )
    side = int((MAX_CANDIDATES / cover) ** 0.5)
    return (
        f"a {w} x {h} texture is too large for this UV layout: rasterising it would test {total:,} texels, "
        f"more than the {MAX_CANDIDATES:,} that fit in memory; lower --size (to about {side} or less)"
    )


def dilate_into_gutter(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Fill texels outside the UV islands with the nearest covered texel's value.

    Bilinear lookups near island borders then never blend in background colour.
    """
    from scipy import ndimage

    if covered.all() or not covered.any():
        return image
    _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return image[rows, cols]
