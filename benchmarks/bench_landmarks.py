"""The built-in face landmark detector (``avatarkit.methods.landmarks``) on held-out synthetic
faces and on real photographs, with dlib's 68-point shape predictor as the real-photo reference
and peer.

Synthetic (``FACES`` subjects, default 40; Anny heads the detector never saw: pool seed 902,
one ``SIZE``-pixel portrait each, default 512, composited on procedural clutter): NME (mean
point error over the inter-ocular distance, outer eye corners, as 300-W reports it, %), the
error in pixels, the share of faces found; dlib's detector and shape predictor on the same
photos for comparison. False positives: the share of background-only images in which a face is
reported (``NEGATIVES`` procedural ones, default 100, and scikit-image's photos without a
person: coffee, chelsea (a cat), rocket, hubble_deep_field, immunohistochemistry, coins,
page, brick, grass, gravel).

Real (``skimage.data.astronaut()``; ``Tom_Hanks_54745.png`` and the six faces of ``t1.jpg``
from the insightface wheel's ``insightface/data/images`` when ``REAL_PHOTOS`` names a folder
holding them, e.g. unzipped from ``pip download --no-deps insightface``): dlib's 68 points on
the original photo are the reference, carried through each transform (rotated 15, 30, 45
degrees about the centre on a larger canvas; flipped; cut so that the face's left 35 % is
outside; shrunk into a 640 x 480 frame with the face about 48 px wide; enlarged twice): our
NME over all 68 points and over the 51 inner ones (the jaw excluded: iBUG's jaw follows the
silhouette, ours the model's jaw line), whether we found the face, and whether dlib's own HOG
detector finds it in the transformed photo. ``seconds_per_image``: our ``detect`` per photo.

dlib is a benchmark-only peer: ``pip install dlib-bin face_recognition_models`` (the models'
package gives ``shape_predictor_68_face_landmarks.dat``; nothing of dlib ships with avatarkit).
Without it, the synthetic figures and our found rates are still measured.

    python benchmarks/bench_landmarks.py OUT       # or through benchmarks/run.py landmarks
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine

TRANSFORMS = ("original", "rot15", "rot30", "rot45", "flip", "cut", "small", "large")
INNER = np.arange(17, 68)


def setting(name: str, default: str) -> str:
    return os.environ.get(name, default)


def nme(pred: np.ndarray, truth: np.ndarray, which: np.ndarray | None = None) -> float:
    """Mean point error over the outer-eye-corner distance, %."""
    which = np.arange(68) if which is None else which
    ocular = np.linalg.norm(truth[36] - truth[45])
    return float(100 * np.linalg.norm(pred[which] - truth[which], axis=1).mean() / ocular)


class Dlib:
    """dlib's HOG face detector and 68-point shape predictor (None when not installed)."""

    def __init__(self) -> None:
        import importlib.util

        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("face_recognition_models is not installed")
        model = Path(next(iter(spec.submodule_search_locations))) / "models" / "shape_predictor_68_face_landmarks.dat"
        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(model))

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """The 68 points of the most confident face (upsampling once), or None."""
        rects, scores, _ = self.detector.run(np.ascontiguousarray(image), 1, 0.0)
        if not rects:
            return None
        best = rects[int(np.argmax(scores))]
        shape = self.predictor(np.ascontiguousarray(image), best)
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64)

    def boxes(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in self.detector(np.ascontiguousarray(image), 1)]


def load_dlib():
    try:
        return Dlib()
    except ImportError:
        return None


def composite(rgb: np.ndarray, mask: np.ndarray, back: np.ndarray) -> np.ndarray:
    alpha = mask[..., None].astype(np.float32) / 255
    return (back.astype(np.float32) * (1 - alpha) + rgb * alpha).round().astype(np.uint8)


def synthetic(detector, peer, faces: int, size: int, out: Path) -> dict:
    from avatarkit.methods.landmarks import scenes as S
    from avatarkit.methods.landmarks.faces import FaceRenderer, PoolSpec

    renderer = FaceRenderer()
    rng = np.random.default_rng(901)
    ours, theirs, px, found, found_peer, seconds = [], [], [], 0, 0, []
    for index in range(faces):
        views, points = renderer.photos(PoolSpec(seed=902, split=1, subjects=faces, views=1, size=size), index)
        photo = composite(views.rgb[0], views.mask[0], S.background(rng, *views.rgb[0].shape[:2]))
        truth = points[0]
        started = time.perf_counter()
        got = detector.detect(photo)
        seconds.append(time.perf_counter() - started)
        if got is not None:
            found += 1
            ours.append(nme(got.points, truth))
            px.append(float(np.linalg.norm(got.points - truth, axis=1).mean()))
        if peer is not None:
            theirs_points = peer.detect(photo)
            if theirs_points is not None:
                found_peer += 1
                theirs.append(nme(theirs_points, truth))
        if index < 4:
            from avatarkit.io.images import write_png

            write_png(out / f"synthetic_{index}.png", draw(photo, got.points if got is not None else None))
    result = {
        "faces": faces,
        "size_px": size,
        "found": round(found / faces, 3),
        "nme_mean_pct": round(float(np.mean(ours)), 2) if ours else None,
        "nme_median_pct": round(float(np.median(ours)), 2) if ours else None,
        "error_px_mean": round(float(np.mean(px)), 2) if px else None,
        "error_px_median": round(float(np.median(px)), 2) if px else None,
        "seconds_per_image_median": round(float(np.median(seconds)), 3),
    }
    if peer is not None:
        result["dlib"] = {
            "found": round(found_peer / faces, 3),
            "nme_mean_pct": round(float(np.mean(theirs)), 2) if theirs else None,
            "nme_median_pct": round(float(np.median(theirs)), 2) if theirs else None,
        }
    return result


def negatives(detector, count: int) -> dict:
    from skimage import data

    from avatarkit.methods.landmarks import scenes as S

    rng = np.random.default_rng(907)
    procedural = [S.background(rng, int(rng.integers(200, 600)), int(rng.integers(200, 600))) for _ in range(count)]
    names = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
    names += ("coins", "page", "brick", "grass", "gravel")
    photos = []
    for name in names:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    false = [detector.detect(image) is not None for image in procedural]
    false_photos = {name: detector.detect(image) is not None for name, image in zip(names, photos, strict=True)}
    return {
        "procedural": count,
        "false_positive_rate": round(float(np.mean(false)), 3),
        "photos_without_a_face": len(names),
        "false_positives_in_photos": [name for name, hit in false_photos.items() if hit],
    }


def real_photos(folder: Path | None, peer) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, photo, dlib's reference points) of each real face: astronaut, and with ``folder``
    Tom Hanks and the faces of t1.jpg (each cropped to 2.2 times dlib's box about it)."""
    import cv2
    from skimage.data import astronaut

    photos = [("astronaut", np.ascontiguousarray(astronaut()))]
    if folder is not None:
        hanks = folder / "Tom_Hanks_54745.png"
        if hanks.is_file():
            photos.append(("tom_hanks", cv2.imread(str(hanks))[:, :, ::-1].copy()))
        group = folder / "t1.jpg"
        if group.is_file():
            image = cv2.imread(str(group))[:, :, ::-1].copy()
            for k, (x0, y0, x1, y1) in enumerate(sorted(peer.boxes(image))):
                cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 1.1 * max(x1 - x0, y1 - y0)
                a, b = max(0, int(cx - half)), max(0, int(cy - half))
                c, d = min(image.shape[1], int(cx + half)), min(image.shape[0], int(cy + half))
                photos.append((f"t1_face{k}", np.ascontiguousarray(image[b:d, a:c])))
    out = []
    for name, photo in photos:
        reference = peer.detect(photo)
        if reference is not None:
            out.append((name, photo, reference))
    return out


def transform(name: str, photo: np.ndarray, points: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """``photo`` and ``points`` through the transform ``name``."""
    import cv2
    from skimage.data import coffee

    h, w = photo.shape[:2]
    if name == "original":
        return photo, points
    if name.startswith("rot"):
        angle = float(name[3:])
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
        c, s = abs(matrix[0, 0]), abs(matrix[0, 1])
        nw, nh = int(np.ceil(h * s + w * c)), int(np.ceil(h * c + w * s))
        matrix[:, 2] += [(nw - w) / 2, (nh - h) / 2]
        return cv2.warpAffine(photo, matrix, (nw, nh)), points @ matrix[:, :2].T + matrix[:, 2]
    if name == "flip":
        from avatarkit.methods.landmarks.scenes import flip_points

        return np.ascontiguousarray(photo[:, ::-1]), flip_points(points, w)
    if name == "cut":
        x0, x1 = points[:, 0].min(), points[:, 0].max()
        cut = round(float(x0 + 0.35 * (x1 - x0)))
        return np.ascontiguousarray(photo[:, cut:]), points - [cut, 0]
    if name == "small":
        width = points[:, 0].max() - points[:, 0].min()
        f = 48.0 / width
        small = cv2.resize(photo, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA)
        frame = cv2.resize(coffee(), (640, 480), interpolation=cv2.INTER_AREA)
        sh, sw = min(small.shape[0], 480), min(small.shape[1], 640)
        x, y = int(rng.integers(0, 640 - sw + 1)), int(rng.integers(0, 480 - sh + 1))
        frame[y : y + sh, x : x + sw] = small[:sh, :sw]
        fx, fy = small.shape[1] / w, small.shape[0] / h
        return frame, (points + 0.5) * [fx, fy] - 0.5 + [x, y]
    if name == "large":
        big = cv2.resize(photo, (w * 2, h * 2), interpolation=cv2.INTER_CUBIC)
        return big, (points + 0.5) * 2 - 0.5
    raise ValueError(name)


def real(detector, peer, folder: Path | None, out: Path) -> dict:
    rng = np.random.default_rng(5)
    photos = real_photos(folder, peer)
    table: dict[str, dict] = {}
    rows = []
    for t in TRANSFORMS:
        scores, inner, found, found_peer = [], [], 0, 0
        for name, photo, reference in photos:
            image, truth = transform(t, photo, reference, rng)
            got = detector.detect(image)
            h, w = image.shape[:2]
            inside = (truth[:, 0] >= 0) & (truth[:, 1] >= 0) & (truth[:, 0] <= w - 1) & (truth[:, 1] <= h - 1)
            row = {"photo": name, "transform": t, "found": got is not None, "dlib_found": bool(peer.boxes(image))}
            if got is not None:
                found += 1
                scores.append(nme(got.points, truth, np.flatnonzero(inside)))
                inner.append(nme(got.points, truth, np.intersect1d(INNER, np.flatnonzero(inside))))
                row.update(nme_pct=round(scores[-1], 2), nme_inner_pct=round(inner[-1], 2))
            found_peer += row["dlib_found"]
            rows.append(row)
            if t in ("original", "rot45", "cut", "small") and name in ("astronaut", "t1_face0"):
                from avatarkit.io.images import write_png

                write_png(out / f"real_{name}_{t}.png", draw(image, got.points if got is not None else None, truth))
        table[t] = {
            "faces": len(photos),
            "found": found,
            "dlib_found": found_peer,
            "nme_mean_pct": round(float(np.mean(scores)), 2) if scores else None,
            "nme_median_pct": round(float(np.median(scores)), 2) if scores else None,
            "nme_inner_mean_pct": round(float(np.mean(inner)), 2) if inner else None,
        }
    return {"photos": [name for name, _, _ in photos], "table": table, "rows": rows}


def draw(image: np.ndarray, points: np.ndarray | None, reference: np.ndarray | None = None) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(image).copy()
    r = max(1, round(max(out.shape[:2]) / 300))
    for group, colour in ((reference, (255, 64, 64)), (points, (0, 255, 0))):
        if group is not None:
            for x, y in group:
                cv2.circle(out, (round(float(x)), round(float(y))), r, colour, -1)
    return out


def run(out: Path | None = None) -> dict:
    from avatarkit.methods.landmarks.detect import WEIGHTS, load_detector

    root = Path(out or tempfile.mkdtemp(prefix="bench_landmarks_"))
    root.mkdir(parents=True, exist_ok=True)
    faces, size = int(setting("FACES", "40")), int(setting("SIZE", "512"))
    folder = Path(setting("REAL_PHOTOS", "")) if setting("REAL_PHOTOS", "") else None
    started = time.perf_counter()
    detector = load_detector(os.environ.get("DETECTOR") or None)
    peer = load_dlib()
    result = {
        "machine": machine(),
        "detector": detector.name,
        "weights_bytes": (WEIGHTS / "detector.npz").stat().st_size if (WEIGHTS / "detector.npz").is_file() else None,
        "synthetic": synthetic(detector, peer, faces, size, root),
        "negatives": negatives(detector, int(setting("NEGATIVES", "100"))),
        "real": real(detector, peer, folder, root) if peer is not None else "dlib not installed: no reference",
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    (root / "bench_landmarks.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2, default=float))
