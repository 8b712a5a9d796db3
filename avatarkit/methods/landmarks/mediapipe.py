"""``track-face --detector mediapipe --detector-model face_landmarker.task``: MediaPipe's face landmarker.

MediaPipe is an optional dependency (``pip install avatarkit[mediapipe]`` or ``pip install
mediapipe``), imported when a :class:`MediaPipeDetector` is made. Its wheel ships no model: the
user brings the FaceLandmarker task bundle (``face_landmarker.task``, a zip of MediaPipe's face
detector and face mesh networks). The detector runs MediaPipe Tasks' ``FaceLandmarker`` in IMAGE
mode on one face and turns its 478 normalised face-mesh points into the 68 iBUG points in pixels
with :func:`avatarkit.io.face_landmarks.mediapipe_to_ibug68` (the correspondence and its source
are documented there).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.errors import InputError, OptionError
from avatarkit.io.face_landmarks import MEDIAPIPE_COUNTS, mediapipe_to_ibug68
from avatarkit.structures.detection import FaceDetection

if TYPE_CHECKING:
    from avatarkit.structures.detection import LandmarkDetector

MISSING_PACKAGE = "--detector mediapipe needs the mediapipe package: pip install mediapipe"


def _import_mediapipe() -> Any:
    """MediaPipe's vision tasks module (``mediapipe.tasks.python.vision``), or OptionError."""
    try:
        from mediapipe.tasks.python import vision
    except ImportError:
        raise OptionError(MISSING_PACKAGE) from None
    return vision


def _create_landmarker(vision: Any, model_file: Path) -> Any:
    """A FaceLandmarker for one face in IMAGE mode, from ``model_file``."""
    from mediapipe.tasks.python import BaseOptions

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_file)),
        running_mode=vision.RunningMode.IMAGE,
        num_faces=1,
    )
    return vision.FaceLandmarker.create_from_options(options)


def _mediapipe_image(image: np.ndarray) -> Any:
    """``image`` as a MediaPipe SRGB image."""
    from mediapipe import Image, ImageFormat

    return Image(image_format=ImageFormat.SRGB, data=np.ascontiguousarray(image))


class MediaPipeDetector:
    """MediaPipe's FaceLandmarker behind :class:`~avatarkit.structures.detection.LandmarkDetector`.

    Args:
        model_file: the user's ``face_landmarker.task``.

    Raises:
        OptionError: mediapipe is not installed.
        InputError: naming ``model_file``, when it is missing or is not a FaceLandmarker task.
    """

    name = "mediapipe"

    def __init__(self, model_file: Path) -> None:
        self.model_file = Path(model_file)
        vision = _import_mediapipe()
        if not self.model_file.is_file():
            what = "no such file" if not self.model_file.exists() else "not a file"
            raise InputError(f"{what}: --detector-model must be MediaPipe's face_landmarker.task", self.model_file)
        try:
            self._landmarker = _create_landmarker(vision, self.model_file)
        except (OSError, ValueError, RuntimeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise InputError(
                f"not a MediaPipe FaceLandmarker model (face_landmarker.task): {reason}", self.model_file
            ) from None

    def detect(self, image: np.ndarray) -> FaceDetection | None:
        """The face MediaPipe finds in ``image`` ((H, W, 3) uint8 sRGB), or None."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
        result = self._landmarker.detect(_mediapipe_image(image))
        height, width = image.shape[:2]
        return detection_from_result(result, width, height)

    def close(self) -> None:
        """Free MediaPipe's graph (also done when the detector is garbage collected)."""
        landmarker, self._landmarker = getattr(self, "_landmarker", None), None
        if landmarker is not None and hasattr(landmarker, "close"):
            landmarker.close()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detection_from_result(result: Any, width: int, height: int) -> FaceDetection | None:
    """A ``FaceLandmarkerResult``'s first face as iBUG-68 pixels, or None when it has no face.

    MediaPipe's x and y are normalised by the image's width and height with 0 and 1 at its
    edges: pixel centres (OpenCV) are ``x * width - 0.5``. Its z is ignored. The face's score is
    the mean of the points' ``presence`` when MediaPipe fills it in, else 1 (the face landmarker
    reports no face score of its own; faces under its presence threshold are not returned).
    """
    faces = list(getattr(result, "face_landmarks", None) or [])
    if not faces:
        return None
    face = faces[0]
    if len(face) not in MEDIAPIPE_COUNTS:
        raise ValueError(f"MediaPipe returned {len(face)} face points, expected 478 or 468")
    normalised = np.array([(p.x, p.y) for p in face], dtype=np.float64)
    if not np.isfinite(normalised).all():
        return None
    pixels = normalised * np.array([width, height], dtype=np.float64) - 0.5
    points = mediapipe_to_ibug68(pixels)
    presence = [p.presence for p in face if getattr(p, "presence", None) is not None]
    score = float(np.clip(np.mean(presence), 0.0, 1.0)) if presence and max(presence) > 0 else 1.0
    box = np.concatenate([points.min(axis=0), points.max(axis=0)])
    return FaceDetection(points=points, confidence=np.ones(len(points)), box=box, score=score)


if TYPE_CHECKING:

    def _is_a_landmark_detector(detector: MediaPipeDetector) -> LandmarkDetector:
        return detector  # mypy: MediaPipeDetector implements the LandmarkDetector protocol
