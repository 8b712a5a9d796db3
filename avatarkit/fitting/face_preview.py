"""``track-face --preview``: per frame, input | landmarks (given green, fitted red) | shaded fit
| blend, as metrical-tracker and DECA show their fits; at most ``rows`` frames, evenly spaced."""

from __future__ import annotations

import numpy as np

from avatarkit.structures.face import FaceTrack

PANEL_HEIGHT = 320
"""Each panel's height in pixels (frames are scaled to it)."""
GIVEN, FITTED = (40, 220, 60), (235, 40, 40)


def preview_image(images: np.ndarray, track: FaceTrack, rows: int = 6, device: str = "cpu") -> np.ndarray:
    """(H', W', 3) uint8: one row of four panels per chosen frame."""
    n = len(track)
    chosen = np.unique(np.linspace(0, n - 1, min(rows, n)).round().astype(int))
    shaded = shade_fit(track, chosen, device)
    lines = []
    for row, i in enumerate(chosen):
        image = images[i]
        marked = draw_points(
            draw_points(image, track.landmarks_input[i, :, :2], GIVEN), track.landmarks_fitted[i], FITTED
        )
        fit = shaded[row]
        covered = fit.any(-1, keepdims=True)
        blend = np.where(covered, (0.5 * image + 0.5 * fit).astype(np.uint8), image)
        lines.append(np.concatenate([_fit_height(p) for p in (image, marked, fit, blend)], axis=1))
    return np.concatenate(lines, axis=0)


def shade_fit(track: FaceTrack, frames: np.ndarray, device: str = "cpu") -> np.ndarray:
    """(len(frames), H, W, 3) uint8: each frame's fitted head, grey, lit from its camera, black
    where the head is not."""
    from avatarkit.render.differentiable import rasterize

    cameras = track.cameras()
    out = np.zeros((len(frames), track.height, track.width, 3), np.uint8)
    for row, i in enumerate(frames):
        v = track.vertices[i].astype(np.float64)
        tri = v[track.faces]
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        camera = cameras.subset([i])
        face = rasterize(v, track.faces, camera, device).face[0].cpu().numpy()
        seen = face >= 0
        rotation = camera.world_to_cam[0, :3, :3]
        n_cam = normals[face[seen]] @ rotation.T
        shade = np.clip(-n_cam[:, 2], 0.0, 1.0) ** 0.8 * 0.85 + 0.1
        out[row][seen] = (np.clip(shade, 0, 1) * 230)[:, None].astype(np.uint8)
    return out


def draw_points(image: np.ndarray, points: np.ndarray, color, radius: int | None = None) -> np.ndarray:
    """A copy of ``image`` with a filled disc at each point (pixels, OpenCV centres)."""
    out = image.copy()
    h, w = out.shape[:2]
    r = radius or max(1, round(max(h, w) / 250))
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dx * dx + dy * dy <= r * r]
    centres = np.rint(np.asarray(points, dtype=np.float64)).astype(int)
    for dy, dx in offsets:
        y, x = centres[:, 1] + dy, centres[:, 0] + dx
        keep = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        out[y[keep], x[keep]] = color
    return out


def _fit_height(image: np.ndarray, height: int = PANEL_HEIGHT) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, round(w * height / h))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
