"""Training images made from the rendered faces (:mod:`.faces`): backgrounds, composition and
augmentation, all in numpy and OpenCV, one image at a time from a seeded generator.

- :func:`background`: procedural clutter (smooth colour noise, gradients, stripes and checks,
  blurred random shapes) and, on request, fragments of other faces;
- :func:`face_crop`: what the point network sees, a ``size`` square around one face at a jittered
  centre, scale and in-plane rotation (up to :data:`ROTATION` degrees), flipped half the time
  (with the iBUG-68 mirror permutation), on a background, with a dark "hair" and a "torso" blob
  behind the head, sometimes cut by an image border;
- :func:`scene`: what the box network sees, a ``size`` square letterboxed photo with zero to three
  faces whose size runs from a tenth of the photo's side to filling it, partly outside it;
- :func:`photometric`: colour, gamma, greyscale, blur, noise and JPEG.

Face geometry: a face's **centre** is the mean of its 68 points and its **size** the root mean
square distance of the points from it (rotation invariant); crops and boxes are multiples of it.
"""

from __future__ import annotations

import numpy as np

from avatarkit.methods.landmarks.faces import FacePool
from avatarkit.parametric.face_landmarks import IBUG68_MIRROR

MIRROR = np.asarray(IBUG68_MIRROR)
CROP_SIDE = 4.0
"""A point crop's side, in face sizes (the face's jaw spans about 2.6 sizes)."""
ROTATION = 50.0
"""Largest in-plane rotation of a training crop or scene face, degrees (either way)."""
PAD_VALUE = 114
"""The grey of letterbox bands and of the image beyond its border in a crop."""
RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)


def face_frame(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre (2,), size, angle in radians of the eye line from image +x) of (68, 2) points."""
    centre = points.mean(axis=0)
    size = float(np.sqrt(((points - centre) ** 2).sum(axis=1).mean()))
    eyes = points[LEFT_EYE].mean(axis=0) - points[RIGHT_EYE].mean(axis=0)
    return centre, size, float(np.arctan2(eyes[1], eyes[0]))


def crop_matrix(centre: np.ndarray, side: float, angle: float, size: int) -> np.ndarray:
    """(2, 3) affine from image pixels to a ``size`` square crop of ``side`` image pixels centred
    on ``centre`` and turned by ``angle`` (radians: image content turned by ``-angle``), OpenCV
    pixel centres."""
    s = size / side
    c, n = np.cos(angle), np.sin(angle)
    rotation = s * np.array([[c, n], [-n, c]])
    offset = np.array([(size - 1) / 2, (size - 1) / 2]) - rotation @ centre
    return np.concatenate([rotation, offset[:, None]], axis=1)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.invertAffineTransform(matrix)


# ----------------------------------------------------------------------------- backgrounds


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3)


def background(rng: np.random.Generator, h: int, w: int, pool: FacePool | None = None) -> np.ndarray:
    """(h, w, 3) uint8 clutter; with ``pool``, sometimes a fragment of a face among it."""
    import cv2

    image: np.ndarray
    kind = rng.random()
    if kind < 0.3:  # smooth colour noise at a random scale
        cells = int(rng.integers(2, 24))
        low = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        image = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    elif kind < 0.5:  # a gradient between two colours
        t = np.linspace(0, 1, w)[None, :, None] * np.cos(a := rng.uniform(0, np.pi)) + np.linspace(0, 1, h)[
            :, None, None
        ] * np.sin(a)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        image = (_colour(rng) * (1 - t) + _colour(rng) * t).astype(np.float32)
    elif kind < 0.6:  # stripes or checks
        period = rng.uniform(3, max(4.0, w / 2))
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, np.pi)
        u = (x * np.cos(a) + y * np.sin(a)) / period
        v = (-x * np.sin(a) + y * np.cos(a)) / period
        wave = np.sin(2 * np.pi * u) if rng.random() < 0.5 else np.sign(np.sin(np.pi * u) * np.sin(np.pi * v))
        t = (0.5 + 0.5 * wave)[..., None]
        image = (_colour(rng) * (1 - t) + _colour(rng) * t).astype(np.float32)
    else:  # a flat colour
        image = np.empty((h, w, 3), np.float32)
        image[:] = _colour(rng)
    for _ in range(int(rng.integers(0, 12))):  # random shapes on top
        _shape(rng, image, h, w)
    if pool is not None and rng.random() < 0.15:
        _face_fragment(rng, image, pool)
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 3.0))
    image += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(0, 12))
    return np.clip(image, 0, 255).astype(np.uint8)


def _shape(rng: np.random.Generator, image: np.ndarray, h: int, w: int) -> None:
    import cv2

    colour = tuple(float(c) for c in _colour(rng))
    scale = max(h, w)
    centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    kind = rng.random()
    if kind < 0.4:
        axes = (int(rng.uniform(2, scale / 2)), int(rng.uniform(2, scale / 2)))
        cv2.ellipse(image, centre, axes, rng.uniform(0, 180), 0, 360, colour, -1)
    elif kind < 0.75:
        corner = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.rectangle(image, centre, corner, colour, -1)
    else:
        end = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(image, centre, end, colour, int(rng.integers(1, max(2, scale // 16))))


def _face_fragment(rng: np.random.Generator, image: np.ndarray, pool: FacePool) -> None:
    """Half of a random face or less (a strip of it), pasted at a random place and scale."""
    import cv2

    i = int(rng.integers(len(pool)))
    rgba = pool.rgba[i].astype(np.float32)
    c = rgba.shape[0]
    keep = np.zeros((c, c), np.float32)
    a, b = sorted(rng.integers(0, c, 2))
    if rng.random() < 0.5:
        keep[a : a + max(4, (b - a) // 2)] = 1
    else:
        keep[:, a : a + max(4, (b - a) // 2)] = 1
    h, w = image.shape[:2]
    side = rng.uniform(0.3, 1.5) * max(h, w)
    matrix = crop_matrix(rng.uniform(0, c, 2), side * c / max(h, w), rng.uniform(-np.pi, np.pi), max(h, w))
    warped = cv2.warpAffine(rgba, matrix, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(keep, matrix, (w, h), flags=cv2.INTER_LINEAR)[..., None] * warped[..., 3:] / 255
    image[:] = image * (1 - alpha) + warped[..., :3] * alpha


def _behind(rng: np.random.Generator, image: np.ndarray, points: np.ndarray) -> None:
    """Hair over the skull and a torso under the neck, behind a face at ``points`` (image pixels)."""
    import cv2

    centre, size, angle = face_frame(points)
    up = np.array([np.sin(angle), -np.cos(angle)])
    degrees = float(np.degrees(angle))
    if rng.random() < 0.6:
        colour = (np.array([40, 30, 20]) * rng.uniform(0.2, 4.0) + rng.normal(0, 10, 3)).clip(0, 255)
        hair = centre + up * size * rng.uniform(0.4, 1.0)
        axes = (int(size * rng.uniform(1.5, 2.2)), int(size * rng.uniform(1.5, 2.8)))
        cv2.ellipse(image, tuple(int(v) for v in hair), axes, degrees, 0, 360, tuple(float(v) for v in colour), -1)
    if rng.random() < 0.5:
        torso = centre - up * size * rng.uniform(3.5, 4.5)
        axes = (int(size * rng.uniform(3.0, 5.0)), int(size * rng.uniform(1.8, 2.6)))
        cv2.ellipse(
            image, tuple(int(v) for v in torso), axes, degrees, 0, 360, tuple(float(v) for v in _colour(rng)), -1
        )


def paste(image: np.ndarray, rgba: np.ndarray, matrix: np.ndarray) -> None:
    """Composite an RGBA face onto ``image`` (float32, in place) through ``matrix``."""
    import cv2

    h, w = image.shape[:2]
    warped = cv2.warpAffine(rgba, matrix, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
    alpha = warped[..., 3:] / 255.0
    image[:] = image * (1 - alpha) + warped[..., :3] * alpha


def _cut(rng: np.random.Generator, image: np.ndarray, angle: float) -> None:
    """An image border across a crop: beyond a random line (square to the photo's axes, which
    the crop sees turned by ``angle``) the crop holds the pad grey."""
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    side = rng.integers(4) * np.pi / 2 - angle
    normal = np.array([np.cos(side), np.sin(side)])
    along = (x - w / 2) * normal[0] + (y - h / 2) * normal[1]
    image[along > rng.uniform(0.05, 0.45) * w] = PAD_VALUE


# ----------------------------------------------------------------------------- samples


def face_crop(
    rng: np.random.Generator, pool: FacePool, index: int, size: int, rotation: float = ROTATION
) -> tuple[np.ndarray, np.ndarray]:
    """One face of ``pool`` as the point network sees it: (size, size, 3) uint8 and its (68, 2)
    points in the crop's pixels. Half the crops are near the face's own frame (the refining pass:
    centre, scale and angle close to the points'), half far (the first pass from a box: upright
    crops at the face's in-image angle up to ``rotation`` degrees, looser centre and scale)."""
    points = pool.points[index].astype(np.float64)
    centre, face_size, angle = face_frame(points)
    if rng.random() < 0.5:
        angle += np.radians(rng.normal(0, 6))
        centre = centre + rng.normal(0, 0.05, 2) * face_size
        side = CROP_SIDE * face_size * np.exp(rng.normal(0, 0.06))
    else:
        angle += np.radians(rng.uniform(-rotation, rotation))
        centre = centre + rng.normal(0, 0.2, 2) * face_size
        side = CROP_SIDE * face_size * np.exp(rng.normal(0, 0.2))
    matrix = crop_matrix(centre, side, angle, size)
    image = background(rng, size, size, pool).astype(np.float32)
    target = apply(matrix, points)
    _behind(rng, image, target)
    paste(image, pool.rgba[index], matrix)
    if rng.random() < 0.15:
        _cut(rng, image, angle)
    if rng.random() < 0.5:
        image, target = image[:, ::-1], flip_points(target, size)
    return photometric(rng, image), target


def flip_points(points: np.ndarray, width: int) -> np.ndarray:
    """(68, 2) points of an image flipped left to right: x mirrored and the iBUG-68 order
    permuted (a left eye becomes a right eye)."""
    out = points[..., MIRROR, :].copy()
    out[..., 0] = width - 1 - out[..., 0]
    return out


def scene(rng: np.random.Generator, pool: FacePool, size: int, faces: int) -> tuple[np.ndarray, np.ndarray]:
    """A letterboxed photo as the box network sees it: (size, size, 3) uint8 and (F, 3) faces
    (centre x, y and size in its pixels) for ``faces`` faces."""
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0))) if rng.random() < 0.6 else 1.0
    pw, ph = (size, max(8, round(size / aspect))) if aspect >= 1 else (max(8, round(size * aspect)), size)
    photo = background(rng, ph, pw).astype(np.float32)
    boxes = []
    short = min(pw, ph)
    for _ in range(faces):
        index = int(rng.integers(len(pool)))
        points = pool.points[index].astype(np.float64)
        centre, face_size, angle = face_frame(points)
        # the jaw spans about 2.6 sizes: from a tenth of the photo's short side to filling its long side
        want = np.exp(rng.uniform(np.log(short / 10), np.log(max(pw, ph) * 1.1))) / 2.6
        at = rng.uniform([0, 0], [pw, ph])
        turn = np.radians(rng.uniform(-ROTATION, ROTATION))
        matrix = crop_matrix(centre, face_size * size / want, angle + turn, size)
        matrix[:, 2] += at - (size - 1) / 2
        moved = apply(matrix, points)
        if rng.random() < 0.5:
            moved = flip_points(moved, 1)
            matrix = np.array([[-1.0, 0, 0], [0, 1, 0]]) @ np.vstack([matrix, [0, 0, 1]])
            matrix[0, 2] += 2 * at[0]
            moved[:, 0] += 2 * at[0]
        _behind(rng, photo, moved)
        paste(photo, pool.rgba[index], matrix)
        c, s, _ = face_frame(moved)
        boxes.append([c[0], c[1], s])
    image = np.full((size, size, 3), PAD_VALUE, np.float32)
    x0, y0 = (size - pw) // 2, (size - ph) // 2
    image[y0 : y0 + ph, x0 : x0 + pw] = photo
    out = np.asarray(boxes, np.float64).reshape(-1, 3)
    out[:, :2] += [x0, y0]
    return photometric(rng, image), out


def photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Colour gains, contrast, gamma, greyscale, blur, noise and JPEG on a float image (0-255)."""
    import cv2

    image = np.ascontiguousarray(image, dtype=np.float32)
    gains = rng.uniform(0.85, 1.15, 3).astype(np.float32) * np.float32(rng.uniform(0.5, 1.5))
    contrast, mean = np.float32(rng.uniform(0.6, 1.4)), image.mean()
    image = (image * gains - mean) * contrast + mean
    lut = (255.0 * (np.arange(256) / 255.0) ** np.exp(rng.normal(0, 0.25))).astype(np.uint8)
    image = cv2.LUT(np.clip(image, 0, 255).astype(np.uint8), lut).astype(np.float32)
    if rng.random() < 0.2:
        image[:] = image.mean(axis=2, keepdims=True)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.8))
    if rng.random() < 0.5:
        image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(1, 10))
    out = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        _, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return out
