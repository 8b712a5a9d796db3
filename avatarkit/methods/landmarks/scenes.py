"""Training images made from the rendered faces (:mod:`.faces`): backgrounds, composition and
augmentation, all in numpy and OpenCV, one image at a time from a seeded generator.

- :func:`background`: procedural clutter (smooth colour noise, gradients, stripes and checks,
  blurred random shapes) and, on request, fragments of other faces;
- :func:`face_crop`: what the point network sees, a ``size`` square around one face at a jittered
  centre, scale and in-plane rotation (up to :data:`ROTATION` degrees), flipped half the time
  (with the iBUG-68 mirror permutation), on a background, dressed (:func:`dressed`: hair, brows,
  a beard, glasses, a neck and shirt, a hand or object over it), sometimes cut by an image border;
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


# ----------------------------------------------------------------------------- what Anny's heads lack
#
# Anny's heads are bald, bodiless and bare; real photos show hair, brows, beards, glasses, a neck
# and clothed shoulders, and hands or objects over faces. :func:`dressed` paints them around and
# over a face at its (exact) 68 points and the render's alpha mask: pixels only, the points stay.

HAIR_COLOURS = np.array(
    [
        [18, 14, 12],  # black
        [45, 30, 22],  # dark brown
        [85, 58, 38],  # brown
        [120, 80, 50],  # light brown
        [140, 62, 30],  # red
        [200, 165, 105],  # blond
        [225, 205, 150],  # platinum
        [150, 148, 145],  # grey
        [215, 212, 205],  # white
    ],
    np.float32,
)
HAIR_WEIGHTS = np.array([6, 6, 5, 3, 1.5, 2.5, 1, 1.5, 1], np.float64)
BROWS, NOSE_BOTTOM, CHIN = slice(17, 27), 33, 8


class _Frame:
    """A face's frame on an image: per pixel, ``a`` (along the eye line, image-left eye to
    image-right eye) and ``b`` (up the face) in face sizes from the points' mean, and the points'
    own ``pa``, ``pb``."""

    def __init__(self, points: np.ndarray, h: int, w: int) -> None:
        centre, self.size, angle = face_frame(points)
        self.right = np.array([np.cos(angle), np.sin(angle)])
        self.up = np.array([np.sin(angle), -np.cos(angle)])
        self.centre = centre
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = x - np.float32(centre[0]), y - np.float32(centre[1])
        s = np.float32(self.size)
        self.a = (dx * np.float32(self.right[0]) + dy * np.float32(self.right[1])) / s
        self.b = (dx * np.float32(self.up[0]) + dy * np.float32(self.up[1])) / s
        self.pa = (points - centre) @ self.right / self.size
        self.pb = (points - centre) @ self.up / self.size
        self.mid = 0.5 * (self.pa[0] + self.pa[16])  # the jaw's middle, along the eye line
        self.half = 0.5 * abs(self.pa[16] - self.pa[0])

    def image(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Face-frame coordinates to image pixels, (..., 2)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return self.centre + self.size * (a[..., None] * self.right + b[..., None] * self.up)

    def brow_line(self) -> np.ndarray:
        """Per pixel, ``b`` of the brows' top at the pixel's ``a`` (flat beyond the brows)."""
        order = np.argsort(self.pa[BROWS])
        return np.interp(self.a, self.pa[BROWS][order], self.pb[BROWS][order]).astype(np.float32)


def _over(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """``image`` (float32, in place) under ``colour`` ((3,) or (h, w, 3)) at ``alpha`` (h, w)."""
    a = np.clip(alpha, 0, 1)[..., None].astype(np.float32)
    image[:] = image * (1 - a) + np.asarray(colour, np.float32) * a


def _strands(rng: np.random.Generator, frame: _Frame, density: float) -> np.ndarray:
    """(h, w) float32 around 1: hair strands running down the face frame (``density`` strands per
    face size), gently waved, with a slow sheen along them."""
    table = rng.uniform(0, 1, 512).astype(np.float32)
    table = 0.6 * table + 0.4 * np.convolve(table, np.ones(3) / 3, mode="same").astype(np.float32)
    wave = np.float32(rng.uniform(0, 0.3)) * np.sin(
        frame.b * np.float32(rng.uniform(1, 4)) + np.float32(rng.uniform(0, 6))
    )
    u = (frame.a + wave) * np.float32(density) + np.float32(rng.uniform(0, 256))
    strands = np.interp(u.ravel() % 512, np.arange(512), table).reshape(u.shape).astype(np.float32)
    sheen = 0.2 * np.sin(frame.b * np.float32(rng.uniform(2, 6)) + np.float32(rng.uniform(0, 6)))
    light = np.float32(rng.uniform(-0.25, 0.25)) * frame.a + np.float32(rng.uniform(0, 0.2)) * frame.b
    return np.clip(0.45 + 0.9 * strands + sheen + light, 0.2, 2.0).astype(np.float32)


def _hair_colour(rng: np.random.Generator) -> np.ndarray:
    base = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_WEIGHTS / HAIR_WEIGHTS.sum())]
    return np.clip(base * np.float32(rng.uniform(0.75, 1.25)) + rng.normal(0, 8, 3).astype(np.float32), 0, 255)


def _hair_paint(rng: np.random.Generator, frame: _Frame, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 3) hair of ``colour`` (strands, sheen, a light from a side, highlights towards
    white) and its (h, w) strand texture."""
    texture = _strands(rng, frame, rng.uniform(6, 30))
    paint = colour[None, None] * texture[..., None]
    glint = np.clip(texture - 1.2, 0, None)[..., None] * np.float32(rng.uniform(0, 120))
    return paint + glint, texture


def _soft(mask: np.ndarray, frame: _Frame, sigma: float = 0.03) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.4, sigma * frame.size))


def _neck(rng: np.random.Generator, image: np.ndarray, frame: _Frame, skin: np.ndarray) -> tuple[float, float, float]:
    """A neck in the face's skin colour, shaded, behind the head; its (middle, half width,
    neckline) in the face's frame."""
    chin = frame.pb[CHIN]
    mid = frame.mid + 0.5 * (frame.pa[CHIN] - frame.mid) * rng.uniform(0, 1)
    width = rng.uniform(0.6, 0.95)
    neckline = chin - rng.uniform(0.15, 0.8)
    neck = (np.abs(frame.a - mid) < width) & (frame.b < chin + 1.0) & (frame.b > neckline - 0.5)
    shade = np.clip(0.6 + 0.3 * (chin - frame.b) / 1.5, 0.55, 0.95)[..., None] * rng.uniform(0.8, 1.05)
    _over(image, skin[None, None] * shade, _soft(neck, frame))
    return mid, width, neckline


def _shirt(
    rng: np.random.Generator, image: np.ndarray, frame: _Frame, mid: float, width: float, neckline: float
) -> None:
    """Clothed shoulders (a textured shirt, sometimes a collar) from ``neckline`` down past the
    image, over the rendered neck's cut but never up to the jaw."""
    import cv2

    below = (frame.b < frame.pb[3:14].min() - 0.1).astype(np.float32)
    span, drop = rng.uniform(2.0, 3.6), rng.uniform(0.3, 0.9)
    t = np.linspace(0, 1, 9)
    left = np.stack([mid - width - 0.1 - (span - width) * t, neckline - drop * np.sqrt(t) - 0.05], axis=1)
    right = left * [-1, 1] + [2 * mid, 0]
    if rng.random() < 0.5:  # a V neck
        dip = np.array([[mid, neckline - rng.uniform(0.4, 1.2)]])
    else:  # a round neck
        s = np.linspace(-1, 1, 7)
        dip = np.stack([mid + (width + 0.1) * s, neckline - rng.uniform(0.1, 0.4) * np.sqrt(1 - s**2)], 1)[::-1]
    polygon = np.concatenate([left, [[left[-1, 0] - 0.5, -40], [right[-1, 0] + 0.5, -40]], right[::-1], dip])
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.round(frame.image(polygon[:, 0], polygon[:, 1])).astype(np.int32)], 1.0)
    kind = rng.random()
    c1, c2 = _colour(rng), _colour(rng)
    cloth: np.ndarray
    if kind < 0.45:
        cloth = np.broadcast_to(c1, image.shape).astype(np.float32)
    elif kind < 0.75:  # stripes or checks in the shirt's frame
        period = rng.uniform(0.1, 0.6)
        u = np.sin(2 * np.pi * frame.a / period) if rng.random() < 0.5 else np.sin(2 * np.pi * frame.b / period)
        if rng.random() < 0.4:
            u = u * np.sin(2 * np.pi * (frame.b if rng.random() < 0.5 else frame.a) / period)
        t2 = (u > 0).astype(np.float32)[..., None]
        cloth = c1 * (1 - t2) + c2 * t2
    else:  # a knit or print: colour noise
        cells = int(rng.integers(4, 30))
        low = rng.uniform(0, 1, (cells, cells, 1)).astype(np.float32)
        t2 = cv2.resize(low, image.shape[1::-1], interpolation=cv2.INTER_CUBIC)[..., None]
        cloth = c1 * (1 - t2) + c2 * t2
    folds = 0.8 + 0.2 * np.sin(frame.a * rng.uniform(1, 4) + rng.uniform(0, 6))
    _over(image, cloth * folds[..., None].astype(np.float32), _soft(mask, frame, 0.015) * below)
    if rng.random() < 0.6:  # a collar along the neckline
        collar = _colour(rng) if rng.random() < 0.5 else np.array([235, 235, 230]) * rng.uniform(0.7, 1.0)
        line = np.concatenate([left[:3][::-1], dip[::-1] if len(dip) > 1 else dip, right[:3]])
        pixels = np.round(frame.image(line[:, 0], line[:, 1])).astype(np.int32)
        edge = np.zeros_like(mask)
        cv2.polylines(edge, [pixels], False, 1.0, max(1, round(frame.size * rng.uniform(0.08, 0.25))))
        _over(image, collar * 0.9, _soft(edge, frame, 0.01) * below)


def _long_hair(rng: np.random.Generator, frame: _Frame, top: float, length: float, extra: float) -> np.ndarray:
    """(h, w) mask of long hair: from ``top`` down ``length`` sizes past the chin, reaching
    ``extra`` sizes beyond the face's sides (wider as it falls)."""
    chin = frame.pb[CHIN]
    bottom = chin - length
    fall = np.clip((top - frame.b) / max(top - bottom, 1e-3), 0, 1)
    half = frame.half + extra * (0.6 + 0.6 * fall)
    edge = bottom + 0.25 * np.sin(frame.a * 6 + rng.uniform(0, 6))
    return (np.abs(frame.a - frame.mid) < half) & (frame.b < top) & (frame.b > edge)


def _cap(rng: np.random.Generator, frame: _Frame, head: np.ndarray, bangs: bool) -> np.ndarray:
    """(h, w) mask of hair on the skull: the head's silhouette grown by the hair's volume, above
    a hairline (over the forehead above the brows; lower, down the temples, at the sides)."""
    import cv2

    volume = max(1, round(frame.size * rng.uniform(0.05, 0.4)))
    grown = cv2.dilate(
        (head > 0.5).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * volume + 1,) * 2)
    )
    brow = frame.brow_line()
    if bangs:  # a fringe down to the brows, straight, ragged or swept to a side
        offset = rng.uniform(0.0, 0.25) + rng.uniform(-0.3, 0.3) * (frame.a - frame.mid)
        offset = offset + 0.06 * np.sin(frame.a * rng.uniform(10, 30) + rng.uniform(0, 6))
    else:
        offset = rng.uniform(0.3, 0.9) + 0.1 * (frame.a - frame.mid) ** 2
    side = np.clip((np.abs(frame.a - frame.mid) - frame.half * rng.uniform(0.7, 0.95)) / 0.3, 0, 1)
    hairline = brow + 0.12 + offset - side * (offset + rng.uniform(0.2, 0.9))
    return (grown > 0) & (frame.b > hairline)


def _brows(
    rng: np.random.Generator, image: np.ndarray, frame: _Frame, points: np.ndarray, head: np.ndarray, colour: np.ndarray
) -> None:
    import cv2

    mask = np.zeros(image.shape[:2], np.float32)
    thick = max(1, round(frame.size * rng.uniform(0.06, 0.16)))
    lower = frame.size * rng.uniform(0.0, 0.08) * frame.up  # brows sit just under the points' line
    for part in (points[17:22], points[22:27]):
        cv2.polylines(mask, [np.round((part - lower) * 4).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, shift=2)
    strength = rng.uniform(0.25, 0.9)
    _over(image, colour * 0.7, _soft(mask, frame, 0.02) * head * strength)


def _beard(
    rng: np.random.Generator, image: np.ndarray, frame: _Frame, points: np.ndarray, head: np.ndarray, colour: np.ndarray
) -> None:
    """Stubble, a moustache, a goatee or a full beard (on the skin, the lips left bare)."""
    import cv2

    h, w = image.shape[:2]
    kind = rng.choice(["stubble", "moustache", "goatee", "full"], p=[0.35, 0.2, 0.15, 0.3])
    mask = np.zeros((h, w), np.float32)
    nose_b = frame.pb[NOSE_BOTTOM]
    if kind in ("stubble", "full"):
        top = nose_b + rng.uniform(-0.5, 0.0)  # from the cheeks
        jaw = np.concatenate([points[0:17], points[[26, 17]]])
        cv2.fillPoly(mask, [np.round(jaw).astype(np.int32)], 1.0)
        mask *= (frame.b < top).astype(np.float32)
        grow = max(1, round(frame.size * rng.uniform(0.0, 0.3))) if kind == "full" else 1
        mask = cv2.dilate(mask, np.ones((2 * grow + 1,) * 2, np.uint8)) * (frame.b < top)
    if kind in ("moustache", "full", "goatee"):
        band = np.concatenate([points[[31, 32, 33, 34, 35]], points[[54, 53, 52, 51, 50, 49, 48]]])
        cv2.fillPoly(mask, [np.round(band).astype(np.int32)], 1.0)
        cv2.polylines(mask, [np.round(band).astype(np.int32)], True, 1.0, max(1, round(0.1 * frame.size)))
    if kind == "goatee":
        chin = np.concatenate([points[[48]], points[6:11], points[[54]], points[55:60]])
        cv2.fillPoly(mask, [np.round(chin).astype(np.int32)], 1.0)
    lips = np.zeros((h, w), np.float32)
    cv2.fillPoly(lips, [np.round(points[48:60]).astype(np.int32)], 1.0)
    mask = _soft(mask * (1 - lips), frame, 0.03) * head
    if kind == "stubble":
        dots = (rng.random((h, w)) < 0.5).astype(np.float32)
        _over(image, colour * 0.6, mask * dots * rng.uniform(0.15, 0.5))
    else:
        paint, texture = _hair_paint(rng, frame, colour)
        _over(image, paint * 0.8, mask * np.clip(texture, 0, 1) * rng.uniform(0.6, 1.0))


def _glasses(rng: np.random.Generator, image: np.ndarray, frame: _Frame, points: np.ndarray) -> None:
    import cv2

    h, w = image.shape[:2]
    frame_colour = _colour(rng) * rng.uniform(0.1, 1.0) if rng.random() < 0.7 else np.array([200, 190, 160.0])
    thick = max(1, round(frame.size * rng.uniform(0.03, 0.12)))
    rim = np.zeros((h, w), np.float32)
    lens = np.zeros((h, w), np.float32)
    width, height = rng.uniform(0.45, 0.65), rng.uniform(0.28, 0.45)
    square = rng.random() < 0.5
    degrees = float(np.degrees(np.arctan2(frame.right[1], frame.right[0])))
    inner = []
    for eye in (points[36:42], points[42:48]):
        c = eye.mean(axis=0) + frame.up * frame.size * rng.uniform(-0.05, 0.1)
        eye_w = np.linalg.norm(eye[3] - eye[0]) / frame.size
        axes = (max(1, round(frame.size * max(float(width), float(eye_w) * 0.75))), max(1, round(frame.size * height)))
        centre = tuple(int(v) for v in np.round(c))
        if square:
            box = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [axes[0], axes[1]]
            rot = np.array([frame.right, -frame.up]).T
            quad = np.round(c + box @ rot.T).astype(np.int32)
            cv2.fillPoly(lens, [quad], 1.0)
            cv2.polylines(rim, [quad], True, 1.0, thick)
        else:
            cv2.ellipse(lens, centre, axes, degrees, 0, 360, 1.0, -1)
            cv2.ellipse(rim, centre, axes, degrees, 0, 360, 1.0, thick)
        inner.append((c, axes[0]))
    (c0, r0), (c1, r1) = inner
    bridge0 = c0 + frame.right * r0
    bridge1 = c1 - frame.right * r1
    cv2.line(rim, tuple(int(v) for v in np.round(bridge0)), tuple(int(v) for v in np.round(bridge1)), 1.0, thick)
    for c, r, ear, sign in ((c0, r0, points[0], -1), (c1, r1, points[16], 1)):  # the arms, to the ears
        start = c + sign * frame.right * r
        cv2.line(
            rim, tuple(int(v) for v in np.round(start)), tuple(int(v) for v in np.round(ear)), 1.0, max(1, thick - 1)
        )
    if rng.random() < 0.25:  # tinted or dark lenses
        _over(image, _colour(rng) * 0.2, _soft(lens, frame, 0.01) * rng.uniform(0.3, 0.9))
    else:  # a faint glint
        _over(image, np.full(3, 255.0), _soft(lens, frame, 0.01) * rng.uniform(0.0, 0.12))
    _over(image, frame_colour, _soft(rim, frame, 0.005))


def _occluder(rng: np.random.Generator, image: np.ndarray, frame: _Frame, points: np.ndarray, skin: np.ndarray) -> None:
    """A hand (a palm and fingers in a skin colour) or an object partly over the face."""
    import cv2

    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.float32)
    at = points[rng.integers(68)] + rng.normal(0, 0.6, 2) * frame.size
    turn = rng.uniform(0, 2 * np.pi)
    along, across = np.array([np.cos(turn), np.sin(turn)]), np.array([-np.sin(turn), np.cos(turn)])
    scale = frame.size * rng.uniform(0.5, 1.1)
    if rng.random() < 0.6:  # a hand
        colour = (
            skin * rng.uniform(0.8, 1.15) if rng.random() < 0.6 else _colour(rng) * 0.3 + np.array([150, 110, 90]) * 0.7
        )
        palm = tuple(int(v) for v in np.round(at))
        cv2.ellipse(
            mask,
            palm,
            (max(1, round(scale * 0.9)), max(1, round(scale * 0.7))),
            float(np.degrees(turn)),
            0,
            360,
            1.0,
            -1,
        )
        for k in range(4):
            base = at + along * scale * 0.7 + across * scale * (k - 1.5) * 0.42
            tip = base + along * scale * rng.uniform(0.9, 1.6)
            cv2.line(
                mask,
                tuple(int(v) for v in np.round(base)),
                tuple(int(v) for v in np.round(tip)),
                1.0,
                max(1, round(scale * 0.36)),
            )
        shade = 0.85 + 0.15 * np.sin(frame.a * 3 + rng.uniform(0, 6))[..., None]
        _over(image, colour[None, None] * shade, _soft(mask, frame, 0.02))
    else:  # a phone, cup, microphone or scarf: a shape of a random colour with a highlight
        colour = _colour(rng)
        if rng.random() < 0.5:
            box = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [
                scale * rng.uniform(0.5, 1.8),
                scale * rng.uniform(0.3, 1.0),
            ]
            quad = np.round(at + box @ np.array([along, across])).astype(np.int32)
            cv2.fillPoly(mask, [quad], 1.0)
        else:
            axes = (max(1, round(scale * rng.uniform(0.4, 1.5))), max(1, round(scale * rng.uniform(0.3, 1.0))))
            cv2.ellipse(mask, tuple(int(v) for v in np.round(at)), axes, float(np.degrees(turn)), 0, 360, 1.0, -1)
        light = np.clip(0.7 + 0.5 * ((frame.a - at @ frame.right / frame.size) * 0.5), 0.5, 1.2)[..., None]
        _over(image, colour[None, None] * light, _soft(mask, frame, 0.01))


def dressed(
    rng: np.random.Generator, image: np.ndarray, rgba: np.ndarray, matrix: np.ndarray, points: np.ndarray
) -> None:
    """Composite the RGBA face ``rgba`` onto ``image`` (float32 (h, w, 3), in place) through
    ``matrix``, with what a photo shows around and over a face and Anny's heads lack, at random:
    behind it a neck and clothed shoulders and long hair; over it hair on the skull (sometimes
    bangs), painted brows, stubble or a beard, glasses, a hand or an object. ``points``: the
    face's 68 points in ``image`` (they are not moved: only pixels are painted)."""
    import cv2

    h, w = image.shape[:2]
    warped = cv2.warpAffine(rgba, matrix, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
    head = warped[..., 3] / 255.0
    frame = _Frame(points, h, w)
    if frame.size < 1.5:  # too small to dress: paste it bare
        _over(image, warped[..., :3], head)
        return
    solid = head > 0.9
    skin = np.median(warped[..., :3][solid], axis=0) if solid.sum() > 4 else np.array([180.0, 140, 120])
    hair_colour = _hair_colour(rng)
    body = _neck(rng, image, frame, skin) if rng.random() < 0.8 else None
    long_hair = rng.random() < 0.3
    top = float(frame.pb[BROWS].max()) + rng.uniform(0.3, 1.0)
    if long_hair:
        length, extra = rng.uniform(0.0, 3.0), rng.uniform(0.15, 0.9)
        fall = _long_hair(rng, frame, top, length, extra)
        paint, texture = _hair_paint(rng, frame, hair_colour)
        _over(image, paint * 0.8, _soft(fall, frame) * np.clip(texture * 1.5, 0, 1))
    _over(image, warped[..., :3], head)
    if body is not None:
        _shirt(rng, image, frame, *body)
    if rng.random() < 0.75:
        brow = hair_colour if rng.random() < 0.7 else _hair_colour(rng)
        _brows(rng, image, frame, points, head, np.minimum(brow, skin * rng.uniform(0.3, 0.8)))
    if rng.random() < 0.2:
        _beard(rng, image, frame, points, head, hair_colour)
    if rng.random() < 0.85:
        cap = _cap(rng, frame, head, bangs=rng.random() < 0.25)
        paint, texture = _hair_paint(rng, frame, hair_colour)
        edge = np.clip(texture * 1.3, 0, 1)
        _over(image, paint, _soft(cap, frame) * edge)
    if long_hair and rng.random() < 0.5:  # locks falling in front of the shoulders, beside the face
        front = _long_hair(rng, frame, top, length, extra) & (
            np.abs(frame.a - frame.mid) > frame.half * rng.uniform(0.75, 1.0)
        )
        paint, texture = _hair_paint(rng, frame, hair_colour)
        _over(image, paint, _soft(front, frame) * np.clip(texture * 1.5, 0, 1))
    if rng.random() < 0.15:
        _glasses(rng, image, frame, points)
    if rng.random() < 0.12:
        _occluder(rng, image, frame, points, skin)


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
    dressed(rng, image, pool.rgba[index], matrix, target)
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
        dressed(rng, photo, pool.rgba[index], matrix, moved)
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
