"""``--detector mediapipe``: MediaPipe's FaceLandmarker behind the LandmarkDetector protocol.

No ``face_landmarker.task`` can be downloaded here, so the wiring (MediaPipe's result -> iBUG-68
pixels, box, score) runs against a fake landmarker; the errors (no package, a missing or wrong
model file) run against the real package when it is installed. Only detection on a real photo
needs the real model: it runs when ``AVATARKIT_MEDIAPIPE_MODEL`` names one.
"""

from __future__ import annotations

import os
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from avatarkit.errors import InputError, OptionError
from avatarkit.io.face_landmarks import mediapipe_to_ibug68
from avatarkit.methods.landmarks import mediapipe as mp_detector
from avatarkit.methods.landmarks.mediapipe import MediaPipeDetector, detection_from_result
from avatarkit.structures.detection import FaceDetection, LandmarkDetector


class Landmark(types.SimpleNamespace):
    """Like MediaPipe's NormalizedLandmark: x, y, z, visibility, presence."""


def fake_result(normalised, presence=None):
    face = [Landmark(x=x, y=y, z=z, visibility=None, presence=presence) for x, y, z in normalised]
    return types.SimpleNamespace(face_landmarks=[face], face_blendshapes=[], facial_transformation_matrixes=[])


class FakeLandmarker:
    def __init__(self, result):
        self.result, self.images, self.closed = result, [], False

    def detect(self, image):
        self.images.append(image)
        return self.result

    def close(self):
        self.closed = True


@pytest.fixture
def fake_mediapipe(monkeypatch, tmp_path):
    """MediaPipe replaced by a fake landmarker (whether or not the package is installed)."""
    rng = np.random.default_rng(0)
    normalised = np.column_stack([rng.uniform(0.3, 0.7, (478, 2)), rng.normal(0, 0.05, 478)])
    landmarker = FakeLandmarker(fake_result(normalised))
    made = {}

    def create(vision, model_file):
        made["model_file"] = model_file
        return landmarker

    monkeypatch.setattr(mp_detector, "_import_mediapipe", lambda: types.SimpleNamespace())
    monkeypatch.setattr(mp_detector, "_create_landmarker", create)
    monkeypatch.setattr(mp_detector, "_mediapipe_image", lambda image: ("mp.Image", image))
    model = tmp_path / "face_landmarker.task"
    model.write_bytes(b"PK fake")
    return types.SimpleNamespace(landmarker=landmarker, normalised=normalised, model=model, made=made)


def test_detect_converts_478_normalised_points_to_68_pixels(fake_mediapipe):
    detector = MediaPipeDetector(fake_mediapipe.model)
    as_protocol: LandmarkDetector = detector  # mypy holds the class to the protocol (see the module)
    assert as_protocol.name == "mediapipe"
    assert fake_mediapipe.made["model_file"] == fake_mediapipe.model
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    found = detector.detect(image)
    assert isinstance(found, FaceDetection)
    assert np.array_equal(fake_mediapipe.landmarker.images[0][1], image)  # handed to MediaPipe as it is
    expected = mediapipe_to_ibug68(fake_mediapipe.normalised[:, :2] * [640, 480] - 0.5)
    np.testing.assert_allclose(found.points, expected)
    assert found.points.shape == (68, 2) and found.confidence.shape == (68,)
    np.testing.assert_array_equal(found.confidence, 1.0)
    np.testing.assert_allclose(found.box, [*expected.min(axis=0), *expected.max(axis=0)])
    assert found.score == 1.0  # the face landmarker reports no face score
    with detector:
        pass
    assert fake_mediapipe.landmarker.closed


def test_detection_pixel_convention_score_and_no_face():
    # a point at normalised (0.5, 0.5) of a 640x480 image is the centre, pixel (319.5, 239.5)
    normalised = np.full((478, 3), 0.5)
    found = detection_from_result(fake_result(normalised, presence=0.9), 640, 480)
    assert found is not None
    np.testing.assert_allclose(found.points, np.tile([319.5, 239.5], (68, 1)))
    assert found.score == pytest.approx(0.9)
    # MediaPipe leaves presence at 0 or unset where its model has none: score 1
    assert detection_from_result(fake_result(normalised, presence=0.0), 640, 480).score == 1.0
    # 468 points (a face mesh without the iris points) map the same way
    assert detection_from_result(fake_result(normalised[:468]), 640, 480) is not None
    empty = types.SimpleNamespace(face_landmarks=[])
    assert detection_from_result(empty, 640, 480) is None


def test_detect_returns_none_without_a_face(fake_mediapipe):
    fake_mediapipe.landmarker.result = types.SimpleNamespace(face_landmarks=[])
    assert MediaPipeDetector(fake_mediapipe.model).detect(np.zeros((64, 64, 3), np.uint8)) is None


def test_detect_wants_rgb_uint8(fake_mediapipe):
    detector = MediaPipeDetector(fake_mediapipe.model)
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))


def test_missing_package_is_an_option_error(monkeypatch, tmp_path):
    model = tmp_path / "face_landmarker.task"
    model.write_bytes(b"PK")
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe raises ImportError
    monkeypatch.setitem(sys.modules, "mediapipe.tasks", None)
    monkeypatch.setitem(sys.modules, "mediapipe.tasks.python", None)
    with pytest.raises(OptionError) as info:
        MediaPipeDetector(model)
    assert str(info.value) == "--detector mediapipe needs the mediapipe package: pip install mediapipe"


def refused(model: Path, match: str) -> None:
    with pytest.raises(InputError) as info:
        MediaPipeDetector(model)
    message = str(info.value)
    assert message.startswith(f"{model}: ") and "\n" not in message, message
    assert match in message, message


def test_missing_model_file(fake_mediapipe, tmp_path):
    refused(tmp_path / "absent.task", "no such file: --detector-model must be MediaPipe's face_landmarker.task")
    refused(tmp_path, "not a file")


def test_bad_model_files_with_the_real_package(tmp_path):
    pytest.importorskip("mediapipe")
    garbage = tmp_path / "garbage.task"
    garbage.write_bytes(b"not a zip archive")
    refused(garbage, "not a MediaPipe FaceLandmarker model (face_landmarker.task): Unable to open zip archive")
    other = tmp_path / "hand_landmarker.task"  # a task bundle of another task
    with zipfile.ZipFile(other, "w") as bundle:
        bundle.writestr("hand_detector.tflite", b"TFL3" + bytes(64))
    refused(other, "face_detector.tflite")
    broken = tmp_path / "broken.task"  # the right names, not models
    with zipfile.ZipFile(broken, "w") as bundle:
        for name in ("face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite"):
            bundle.writestr(name, b"TFL3" + bytes(200))
    refused(broken, "not a MediaPipe FaceLandmarker model")


def test_real_model_on_a_face():
    """Needs MediaPipe's face_landmarker.task (not downloadable here): set AVATARKIT_MEDIAPIPE_MODEL."""
    model = os.environ.get("AVATARKIT_MEDIAPIPE_MODEL")
    if not model:
        pytest.skip(
            "needs MediaPipe's face_landmarker.task, which cannot be downloaded here: set AVATARKIT_MEDIAPIPE_MODEL"
        )
    pytest.importorskip("mediapipe")
    photo = os.environ.get("AVATARKIT_FACE_PHOTO")
    if not photo:
        pytest.skip("needs a photo of a face: set AVATARKIT_FACE_PHOTO")
    from PIL import Image

    image = np.asarray(Image.open(photo).convert("RGB"))
    with MediaPipeDetector(Path(model)) as detector:
        found = detector.detect(image)
    assert found is not None
    height, width = image.shape[:2]
    assert (found.box[:2] > -0.1 * width).all() and found.box[2] < 1.1 * width and found.box[3] < 1.1 * height
    # the iBUG layout: the right eye (36-41) is left of the left eye (42-47) in a frontal photo,
    # the chin (8) below the nose tip (30)
    assert found.points[36:42, 0].mean() < found.points[42:48, 0].mean()
    assert found.points[8, 1] > found.points[30, 1]
