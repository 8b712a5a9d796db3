from __future__ import annotations

import numpy as np

from avatarkit.geometry.uv_raster import dilate_into_gutter, rasterize_uv


def test_two_triangles_cover_the_square_once():
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    face, bary = rasterize_uv(uvs, np.array([[0, 1, 2], [0, 2, 3]]), (8, 16))
    assert (face >= 0).all()
    # barycentrics reproduce each texel centre's UV (texel centre convention, v up)
    rows, cols = np.indices((8, 16))
    u, v = (cols + 0.5) / 16, 1 - (rows + 0.5) / 8
    tri = uvs[np.array([[0, 1, 2], [0, 2, 3]])][face]
    uv = np.einsum("hwk,hwkc->hwc", bary, tri)
    assert np.allclose(uv[..., 0], u, atol=1e-6) and np.allclose(uv[..., 1], v, atol=1e-6)


def test_half_triangle_covers_half_and_gutter_is_filled():
    uvs = np.array([[0, 0], [1, 0], [0, 1]], np.float32)
    face, _ = rasterize_uv(uvs, np.array([[0, 1, 2]]), 64)
    assert abs((face >= 0).mean() - 0.5) < 0.02
    assert face[-1, 0] == 0 and face[0, -1] == -1  # bottom-left is v = 0
    image = np.where((face >= 0)[..., None], 200, 0).astype(np.uint8)
    filled = dilate_into_gutter(image, face >= 0)
    assert (filled == 200).all()
