"""Face fitting from one photo, scored as NoW scores it, on synthetic heads the fit never saw.

The pipeline, sized by environment variables:

- ``FACES`` held-out heads (``synth --part head --expressions --texture skin --seed 901``):
  random identity (Anny's phenotype), facial actions, skin colour;
- one photo each (``render --preset portrait --views 1``, ``SIZE`` px high): random head pose
  relative to the camera (yaw within 45 degrees, pitch 20, roll 10), a 24 to 85 mm focal length,
  a random SH studio light per photo;
- their true iBUG-68 points (the Anny head's landmark embedding evaluated on the truth's
  vertices: the synthetic heads share its topology) projected by the true camera, plus
  Gaussian noise of ``NOISE`` px (2 by default) per coordinate;
- ``fit_face`` with each of ``VARIANTS``: ``landmarks`` (stages 1-2), ``photometric`` (stages
  1-3), ``focal`` (stages 1-3, focal optimised from a 50 mm guess instead of the true K),
  ``masks`` (stages 1-3 with the photo's mask, so the silhouette term), ``detector`` (stages 1-3
  on the built-in landmark detector's points instead of the noisy true ones, as ``track-face
  photo.jpg`` runs; a face it misses counts as not found); ``neutral`` is the model's mean head
  put in place (no fit): the floor the fit must beat;
- ``CLIP`` frames (0 to skip): one more head photographed ``CLIP`` times (each a random
  portrait pose), fitted as one person (shared identity; no temporal term, the poses jump) from
  the noisy true points: seconds per frame of a batched multi-frame fit, and its score;
- NoW's score (``avatarkit.evaluate.face_truth``: seven-landmark similarity, rigid ICP, distances
  from the truth's ``/regions/face`` to the fitted surface in mm; median, mean and std of every
  distance pooled), the 2D landmark error against the noise-free points (px), and seconds per
  photo (``fit_face`` alone; one untimed fit first warms warp's kernels up).

    python benchmarks/bench_face.py OUT       # or through benchmarks/run.py face
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine

AVATARKIT = [sys.executable, "-m", "avatarkit"]
FOCAL_GUESS_MM = 50.0


def setting(name: str, default: str) -> str:
    return os.environ.get(name, default)


def avatarkit(*args) -> None:
    done = subprocess.run([*AVATARKIT, *map(str, args)], capture_output=True, text=True, check=False, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"avatarkit {' '.join(map(str, args))} failed: {done.stderr.strip()[-2000:]}")


def run(out: Path | None = None) -> dict:
    import numpy as np
    import torch

    from avatarkit.evaluate.face_truth import landmark_error_px, score_face, summarise
    from avatarkit.fitting.face import FaceFitConfig, fit_face
    from avatarkit.io.hdf5 import read_artifact
    from avatarkit.parametric.face import load_face_model
    from avatarkit.parametric.face_landmarks import landmark_points
    from avatarkit.render.rigs import FULL_FRAME_DIAGONAL_MM

    faces_n, size, noise = int(setting("FACES", "10")), int(setting("SIZE", "512")), float(setting("NOISE", "2.0"))
    variants = setting("VARIANTS", "neutral,landmarks,photometric,focal,detector").split(",")
    root = Path(out or tempfile.mkdtemp(prefix="bench_face_"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    heads, photos = root / "heads", root / "photos"
    if len(list(heads.glob("*.h5"))) < faces_n:
        avatarkit("synth", "-n", faces_n, "--part", "head", "--expressions", "--texture", "skin", "--seed", 901,
                  "-o", heads, "-q", "--overwrite")  # fmt: skip
    stems = sorted(p.stem for p in heads.glob("*.h5"))[:faces_n]
    missing = [heads / f"{s}.h5" for s in stems if not (photos / f"{s}.h5").is_file()]
    if missing:
        avatarkit("render", *missing, "--preset", "portrait", "--views", 1, "--size", size, "-o", photos, "-q")
    model = load_face_model("anny")
    embedding, triangles = model.embeddings["ibug68"], model.faces.numpy()
    with torch.no_grad():
        mean_head = model()
    detector = None
    if "detector" in variants:
        from avatarkit.methods.landmarks.detect import load_detector

        detector = load_detector("builtin")
    configs = {
        "detector": FaceFitConfig(),
        "landmarks": FaceFitConfig(photometric_steps=0),
        "photometric": FaceFitConfig(),
        "focal": FaceFitConfig(focal="optimise"),
        "masks": FaceFitConfig(),
    }
    rows, scores = [], {v: [] for v in variants}
    warmed = False
    for index, stem in enumerate(stems):
        truth = read_artifact(heads / f"{stem}.h5", "mesh")
        if truth.faces.shape != triangles.shape or not np.array_equal(truth.faces, triangles):
            raise RuntimeError(f"{stem}: not the Anny head's topology")
        photo = read_artifact(photos / f"{stem}.h5", "views")
        cameras = photo.cameras()
        truth3d = landmark_points(truth.vertices.astype(np.float64), embedding)
        clean = cameras.project(truth3d)[0]
        noisy = clean + np.random.default_rng([901, index]).normal(0.0, noise, clean.shape)
        region = truth.regions["face"]
        focal_mm = float(cameras.K[0, 0, 0] * FULL_FRAME_DIAGONAL_MM / np.hypot(cameras.width, cameras.height))
        row: dict = {"head": stem, "focal_mm": round(focal_mm, 1)}
        for variant in variants:
            if variant == "neutral":
                score = score_face(
                    mean_head.vertices[0].numpy(), triangles, mean_head.landmarks68[0].numpy(), truth.vertices,
                    truth3d, region,
                )  # fmt: skip
                scores[variant].append(score)
                row[variant] = {"median_mm": score.median, "mean_mm": score.mean}
                continue
            cams = cameras
            if variant == "focal":
                k = cameras.K.copy()
                k[:, 0, 0] = k[:, 1, 1] = (
                    FOCAL_GUESS_MM * np.hypot(cameras.width, cameras.height) / FULL_FRAME_DIAGONAL_MM
                )
                cams = dataclasses.replace(cameras, K=k)
            masks = photo.mask if variant == "masks" else None
            points = noisy
            if variant == "detector":
                assert detector is not None
                t = time.perf_counter()
                found = detector.detect(photo.rgb[0])
                detect_seconds = time.perf_counter() - t
                if found is None:
                    row[variant] = {"found": False}
                    continue
                points = np.concatenate([found.points, found.confidence[:, None]], axis=1)[None]
            if not warmed:  # warp's kernels load (or compile) on first use
                fit_face(photo.rgb, masks, points, cams, model, config=configs[variant])
                warmed = True
            fit = fit_face(photo.rgb, masks, points, cams, model, config=configs[variant])
            with torch.no_grad():
                fitted = model(**{g: torch.as_tensor(v) for g, v in fit.groups.items()}).landmarks68[0].numpy()
            score = score_face(fit.vertices[0], triangles, fitted, truth.vertices, truth3d, region)
            scores[variant].append(score)
            fit_mm = float(fit.cameras.K[0, 0, 0] * FULL_FRAME_DIAGONAL_MM / np.hypot(cameras.width, cameras.height))
            row[variant] = {
                "median_mm": score.median,
                "mean_mm": score.mean,
                "landmark_px": float(landmark_error_px(fit.landmarks2d, clean)[0]),
                "seconds": fit.seconds,
                "converged": bool(fit.converged[0]),
                "focal_mm": round(fit_mm, 1),
            }
            if variant == "detector":
                row[variant].update(
                    found=True,
                    detect_seconds=round(detect_seconds, 3),
                    detector_px=float(landmark_error_px(points[..., :2], clean)[0]),
                )
        rows.append(row)
        print(json.dumps(row, default=float), file=sys.stderr, flush=True)
    table = {}
    for variant in variants:
        table[variant] = {k: round(v, 3) for k, v in summarise(scores[variant]).items()}
        if variant != "neutral":
            done = [r for r in rows if r[variant].get("found", True)]
            px = [r[variant]["landmark_px"] for r in done]
            seconds = [r[variant]["seconds"] for r in done]
            table[variant].update(
                landmark_px_mean=round(float(np.mean(px)), 2),
                landmark_px_median=round(float(np.median(px)), 2),
                seconds_median=round(float(np.median(seconds)), 2),
                seconds_max=round(float(np.max(seconds)), 2),
                converged=sum(r[variant]["converged"] for r in done),
                found=len(done),
            )
            if variant == "detector" and done:
                table[variant].update(
                    detector_px_median=round(float(np.median([r[variant]["detector_px"] for r in done])), 2),
                    detect_seconds_median=round(float(np.median([r[variant]["detect_seconds"] for r in done])), 3),
                )
    clip_frames = int(setting("CLIP", "16"))
    if clip_frames:
        table["clip"] = _clip(root, clip_frames, size, noise, model, embedding, triangles)
    result = {
        "machine": machine(),
        "settings": {"faces": len(stems), "size": size, "noise_px": noise, "seed": 901, "model": "anny"},
        "table": table,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (root / "bench_face.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


def _clip(root: Path, frames: int, size: int, noise: float, model, embedding, triangles) -> dict:
    """One head photographed ``frames`` times, fitted as one person in one batched fit."""
    import numpy as np

    from avatarkit.evaluate.face_truth import landmark_error_px, score_face, summarise
    from avatarkit.fitting.face import fit_face
    from avatarkit.io.hdf5 import read_artifact
    from avatarkit.parametric.face_landmarks import landmark_points

    heads, photos = root / "clip_head", root / "clip_photos"
    if not (heads / "head_0000.h5").is_file():
        avatarkit("synth", "-n", 1, "--part", "head", "--expressions", "--texture", "skin", "--seed", 902,
                  "-o", heads, "-q", "--overwrite")  # fmt: skip
    if not (photos / "head_0000.h5").is_file():
        avatarkit("render", heads / "head_0000.h5", "--preset", "portrait", "--views", frames, "--size", size,
                  "-o", photos, "-q")  # fmt: skip
    truth = read_artifact(heads / "head_0000.h5", "mesh")
    photo = read_artifact(photos / "head_0000.h5", "views")
    cameras = photo.cameras()
    truth3d = landmark_points(truth.vertices.astype(np.float64), embedding)
    clean = cameras.project(truth3d)[0]
    noisy = clean + np.random.default_rng([902, 0]).normal(0.0, noise, clean.shape)
    # the views' poses jump (random portrait poses), so no temporal term: the cost is the same
    fit = fit_face(photo.rgb, None, noisy, cameras, model, same_person=True, sequence=False)
    import torch

    with torch.no_grad():
        fitted = model(**{g: torch.as_tensor(v) for g, v in fit.groups.items()}).landmarks68.numpy()
    scores = [
        score_face(fit.vertices[i], triangles, fitted[i], truth.vertices, truth3d, truth.regions["face"])
        for i in range(len(fit.vertices))
    ]
    summary = {k: round(v, 3) for k, v in summarise(scores).items()}
    summary.update(
        frames=frames,
        seconds=round(fit.seconds, 1),
        seconds_per_frame=round(fit.seconds / frames, 2),
        landmark_px_mean=round(float(np.mean(landmark_error_px(fit.landmarks2d, clean))), 2),
        converged=int(fit.converged.sum()),
    )
    return summary


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2, default=float))
