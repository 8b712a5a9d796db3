"""``track-face``'s core: frames in, landmarks found or given, a face model fitted, a ``face``
artifact out (and, when the truth is known, NoW's score of the fit).

The fit itself is :func:`avatarkit.fitting.face.fit_face`; this module decides the cameras
(a views file's own, or one per photo from a focal-length guess), gets the 2D landmarks (a
file, the truth's projection, or a :class:`~avatarkit.structures.detection.LandmarkDetector`),
and packs the result as :class:`~avatarkit.structures.face.FaceTrack`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.errors import InputError, MeshError
from avatarkit.fitting.face import FRONTAL, FaceFit, FaceFitConfig, fit_face
from avatarkit.io.frames import Frames
from avatarkit.structures import Cameras, Mesh
from avatarkit.structures.face import FaceTrack

if TYPE_CHECKING:
    from avatarkit.evaluate.face_truth import FaceScore
    from avatarkit.fitting.progress import Reporter
    from avatarkit.parametric.face import FaceModel
    from avatarkit.structures.detection import FaceDetection, LandmarkDetector

DEFAULT_FOCAL_MM = 50.0
"""The focal-length guess for a photo without EXIF (35 mm equivalent): optimised from there."""


@dataclasses.dataclass
class Tracked:
    """:func:`track_face`'s result: the fit, the detections, and the score when the truth is known."""

    track: FaceTrack
    fit: FaceFit
    detections: list[FaceDetection] | None
    scores: list[FaceScore] | None = None
    truth_landmark_px: np.ndarray | None = None
    """(N,) mean distance of the fitted 2D points to the truth's projected points, pixels."""
    truth_path: Path | None = None
    """The true head's file, when the fit was scored."""


def photo_cameras(n: int, width: int, height: int, focal_mm: float) -> Cameras:
    """N cameras of photos: at the world origin looking along world -Z (the face, facing +Z,
    seen from the front, +Y up), a ``focal_mm`` (35 mm equivalent) lens, principal point at the
    image centre."""
    from avatarkit.render.rigs import FULL_FRAME_DIAGONAL_MM

    f = focal_mm * float(np.hypot(width, height)) / FULL_FRAME_DIAGONAL_MM
    k = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    pose = np.eye(4)
    pose[:3, :3] = np.asarray(FRONTAL)
    return Cameras(np.repeat(k[None], n, 0), np.repeat(pose[None], n, 0), "perspective", width, height)


def detect_landmarks(frames: Frames, detector: LandmarkDetector) -> tuple[np.ndarray, list[FaceDetection]]:
    """(N, 68, 3) points and confidences found by ``detector`` in each frame; an
    :class:`InputError` naming the frame when it finds no face."""
    points, found = [], []
    for image, name, source in zip(frames.images, frames.names, frames.sources, strict=True):
        detection = detector.detect(image)
        if detection is None:
            where = name if frames.kind != "photos" else None
            raise InputError(
                f"no face found{f' in frame {where}' if where else ''} (detector: {detector.name})", source
            )
        points.append(np.concatenate([detection.points, detection.confidence[:, None]], axis=1))
        found.append(detection)
    return np.asarray(points, dtype=np.float64), found


def truth_landmarks(truth: Mesh, path: Path, anny_model: FaceModel) -> np.ndarray:
    """(68, 3) iBUG points of a true head: its own ``ibug_*`` landmarks (a ``face`` file), or
    Anny's landmark embedding when it has the Anny head's triangles (``synth --part head``)."""
    from avatarkit.parametric.face_landmarks import landmark_points

    if truth.landmarks is not None:
        named = truth.landmarks.as_dict()
        keys = [f"ibug_{i:02d}" for i in range(68)]
        if all(k in named for k in keys):
            return np.stack([named[k] for k in keys]).astype(np.float64)
    faces = anny_model.faces.cpu().numpy()
    if truth.faces.shape != faces.shape or not np.array_equal(truth.faces, faces):
        raise MeshError(
            "the truth has neither 68 iBUG landmarks nor the Anny head's triangles (synth --part head): "
            "cannot place its landmarks",
            path,
        )
    return landmark_points(truth.vertices.astype(np.float64), anny_model.embeddings["ibug68"])


def projected_truth(frames: Frames, cameras: Cameras, truth3d: np.ndarray, noise_px: float, seed: int) -> np.ndarray:
    """The truth's 68 points projected into each frame, with Gaussian noise of ``noise_px``
    pixels per coordinate (``seed``): (N, 68, 3) with confidence 1."""
    clean = cameras.project(truth3d)[0]
    noisy = clean + np.random.default_rng(seed).normal(0.0, noise_px, clean.shape) if noise_px > 0 else clean
    return np.concatenate([noisy, np.ones((*noisy.shape[:2], 1))], axis=-1)


def track_face(
    frames: Frames,
    model: FaceModel,
    *,
    landmarks: np.ndarray | None = None,
    detector: LandmarkDetector | None = None,
    landmark_source: str = "",
    same_person: bool = True,
    focal_mm: float | None = None,
    focal: str | None = None,
    config: FaceFitConfig | None = None,
    device: str = "cpu",
    truth: tuple[Mesh, Path] | None = None,
    anny_model: FaceModel | None = None,
    model_name: str = "anny",
    model_file: str = "",
    reporter: Reporter | None = None,
) -> Tracked:
    """Fit ``model`` to ``frames``.

    Args:
        frames: the frames (:func:`avatarkit.io.frames.read_frames`).
        model: the face model, on ``device``.
        landmarks: (N, 68, 3) given points (x, y, confidence), or None to run ``detector``.
        detector: finds the landmarks when none are given.
        landmark_source: how the landmarks were found, for the output (``file``, ``truth``, a
            detector's name).
        same_person: one identity and albedo for all frames (always for a video).
        focal_mm: the 35 mm-equivalent focal length of photos (default: EXIF, else 50 mm).
        focal: ``given`` or ``optimise`` (default: given for a views file's cameras and a
            focal length from the user or EXIF, optimised from a 50 mm guess otherwise).
        config: the fit's settings (:class:`~avatarkit.fitting.face.FaceFitConfig`).
        truth: (mesh, path) the true head, to score the fit (NoW), or None.
        anny_model: Anny's head model to place the truth's landmarks (default: ``model``).
    """
    from avatarkit.evaluate.face_truth import landmark_error_px, score_face

    n, height, width = frames.images.shape[:3]
    if frames.cameras is not None:
        cameras = frames.cameras
        default_focal = "given"
    else:
        chosen = focal_mm or frames.focal_mm
        cameras = photo_cameras(n, width, height, chosen or DEFAULT_FOCAL_MM)
        default_focal = "given" if chosen else "optimise"
    config = dataclasses.replace(config or FaceFitConfig(), focal=focal or default_focal)
    detections = None
    if landmarks is None:
        if detector is None:
            raise InputError("no landmarks given and no detector to find them")
        landmarks, detections = detect_landmarks(frames, detector)
        landmark_source = landmark_source or detector.name
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (n, 68, 3):
        raise InputError(f"{landmarks.shape[0]} frames of landmarks for {n} frames", frames.sources[0])
    fit = fit_face(
        frames.images, frames.masks, landmarks, cameras, model, same_person=same_person, device=device,
        config=config, sequence=frames.sequence and same_person, reporter=reporter,
    )  # fmt: skip
    track = _pack(fit, frames, model, landmarks, landmark_source, same_person, model_name, model_file, device)
    track.attrs["focal"] = config.focal
    result = Tracked(track, fit, detections)
    if truth is not None:
        mesh, path = truth
        result.truth_path = path
        region = (mesh.regions or {}).get("face")
        if region is None or not len(region):
            raise MeshError("the truth has no face region (/regions/face) to score", path)
        truth3d = truth_landmarks(mesh, path, anny_model or model)
        result.scores = [
            score_face(track.vertices[i], track.faces, track.landmarks3d[i], mesh.vertices, truth3d, region)
            for i in range(n)
        ]
        clean = projected_truth(frames, fit.cameras, truth3d, 0.0, 0)[..., :2]
        result.truth_landmark_px = landmark_error_px(fit.landmarks2d, clean)
    return result


def _pack(fit: FaceFit, frames: Frames, model, landmarks, source: str, same_person: bool, name: str, file: str,
          device: str) -> FaceTrack:  # fmt: skip
    import torch

    with torch.no_grad():
        out = model(**{g: torch.as_tensor(v, device=device) for g, v in fit.groups.items()})
        points3d = out.landmarks68.cpu().numpy().astype(np.float32)
    albedo = None
    if fit.albedo is not None:
        albedo = np.rint(np.clip(fit.albedo, 0, 1) * 255).astype(np.uint8)
        albedo = albedo[None] if albedo.ndim == 2 else albedo
    return FaceTrack(
        model=name,
        model_file=file,
        vertices=fit.vertices.astype(np.float32),
        faces=fit.faces.astype(np.int32),
        params={g: np.asarray(v, dtype=np.float32) for g, v in fit.groups.items()},
        K=fit.cameras.K.astype(np.float32),
        world_to_cam=fit.cameras.world_to_cam.astype(np.float32),
        width=fit.cameras.width,
        height=fit.cameras.height,
        frame_names=frames.names,
        landmarks_input=landmarks.astype(np.float32),
        landmarks_fitted=fit.landmarks2d.astype(np.float32),
        landmarks3d=points3d,
        landmark_error_px=fit.landmark_error_px.astype(np.float32),
        converged=fit.converged,
        photometric_residual=None if fit.photometric_residual is None else fit.photometric_residual.astype(np.float32),
        mask_iou=None if fit.mask_iou is None else fit.mask_iou.astype(np.float32),
        albedo=albedo,
        sh=None if fit.sh is None else fit.sh.astype(np.float32),
        attrs={
            "same_person": int(same_person),
            "stopped": fit.stopped,
            "landmark_source": source,
            "seconds": float(fit.seconds),
        },
    )


@dataclasses.dataclass(frozen=True)
class TrackRequest:
    """What ``track-face`` was asked, beside its frames (see :func:`track_request`)."""

    model: str = "anny"
    flame_model: Path | None = None
    flame_landmarks: Path | None = None
    landmarks: str | None = None
    """A landmark file's path, ``truth``, or None (the detector finds them)."""
    landmark_noise: float = 0.0
    same_person: bool | None = None
    """None: one person for a video and a views file, else one per frame."""
    focal_mm: float | None = None
    focal: str | None = None
    photometric: bool = True
    time_budget: float = 0.0
    truth: Path | None = None
    """The true head to score against (default: a views file's recorded source mesh)."""
    seed: int = 0


def read_truth(path: Path | None, explicit: bool) -> tuple[Mesh, Path] | None:
    """(mesh, path) of the true head, or None: a ``--truth`` that cannot be read is an error; a
    views file's recorded source that is not a mesh file is passed over."""
    from avatarkit.errors import AvatarkitError
    from avatarkit.io.meshfile import load_mesh

    if path is None:
        return None
    try:
        return load_mesh(path), path
    except AvatarkitError:
        if explicit:
            raise
        return None


def track_request(
    frames: Frames,
    request: TrackRequest,
    detector: LandmarkDetector | None = None,
    device: str = "cpu",
    reporter: Reporter | None = None,
) -> Tracked:
    """``track-face``'s whole core: the truth, the landmarks (a file read before the model loads,
    the truth's projection, or ``detector``), the face model, and :func:`track_face`."""
    from avatarkit.errors import OptionError
    from avatarkit.parametric.face import load_face_model

    r = request
    truth = read_truth(r.truth if r.truth is not None else frames.truth, explicit=r.truth is not None)
    if r.landmarks == "truth" and truth is None:
        raise OptionError("--landmarks truth needs a views file of a head whose mesh is found, or --truth MESH")
    if r.landmarks == "truth" and frames.cameras is None:
        raise OptionError("--landmarks truth needs a views file (its cameras project the truth)")
    same_person = r.same_person if r.same_person is not None else frames.kind in ("video", "views")
    given, source = None, ""
    if r.landmarks not in (None, "truth"):  # read before the model loads: a bad file is refused at once
        from avatarkit.io.face_landmarks import read_face_landmarks

        sizes = [(frames.images.shape[2], frames.images.shape[1])] * len(frames)
        given, source = read_face_landmarks(Path(str(r.landmarks)), sizes, frames.names), "file"
    model = load_face_model(r.model, flame_model=r.flame_model, flame_landmarks=r.flame_landmarks, device=device)
    anny = model if r.model == "anny" or truth is None else load_face_model("anny", device=device)
    if r.landmarks == "truth":
        assert truth is not None and frames.cameras is not None
        points = truth_landmarks(truth[0], truth[1], anny)
        given = projected_truth(frames, frames.cameras, points, r.landmark_noise, r.seed)
        source = "truth" + (f" + {r.landmark_noise:g} px noise" if r.landmark_noise else "")
    config = FaceFitConfig(
        photometric_steps=FaceFitConfig.photometric_steps if r.photometric else 0, time_budget=r.time_budget
    )
    return track_face(
        frames, model, landmarks=given, detector=detector, landmark_source=source, same_person=same_person,
        focal_mm=r.focal_mm, focal=r.focal, config=config, device=device, truth=truth, anny_model=anny,
        model_name=r.model, model_file=str(r.flame_model or ""), reporter=reporter,
    )  # fmt: skip


def summary(tracked: Tracked, seconds: float) -> dict:
    """``track-face --json``'s figures of a fit (and of its score, when the truth was known)."""
    from avatarkit.evaluate.face_truth import summarise

    fit = tracked.track
    out: dict = {
        "frames": len(fit),
        "model": fit.model,
        "landmarks": fit.attrs["landmark_source"],
        "same_person": bool(fit.attrs["same_person"]),
        "focal": fit.attrs["focal"],
        "focal_px": [round(float(k), 2) for k in fit.K[:, 0, 0]],
        "landmark_error_px": [round(float(e), 3) for e in fit.landmark_error_px],
        "converged": [bool(c) for c in fit.converged],
        "stopped": fit.attrs["stopped"],
        "seconds": round(seconds, 2),
        "seconds_per_frame": round(seconds / len(fit), 2),
    }
    if fit.photometric_residual is not None:
        out["photometric_residual"] = [round(float(r), 4) for r in fit.photometric_residual]
    if tracked.scores is not None:
        out["truth"] = str(tracked.truth_path)
        out["score_mm"] = {k: round(float(v), 4) for k, v in summarise(tracked.scores).items()}
        out["score_mm_per_frame"] = [{"median": round(s.median, 4), "mean": round(s.mean, 4)} for s in tracked.scores]
        assert tracked.truth_landmark_px is not None
        out["truth_landmark_px"] = [round(float(e), 3) for e in tracked.truth_landmark_px]
    return out
