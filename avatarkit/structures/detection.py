"""One face found in one image by a landmark detector (the built-in network, MediaPipe, a run).

Detectors live above the fitting layer (they are trained methods or third-party models);
:func:`avatarkit.fitting` code and the ``track-face`` verb see them only through
:class:`LandmarkDetector`, so any of them can feed a fit.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np


@dataclasses.dataclass
class FaceDetection:
    """The iBUG-68 points of one face in one image.

    Attributes:
        points: (68, 2) float64 pixels, OpenCV convention (integer coordinates are pixel
            centres, x right, y down), iBUG-68 order (jaw 0-16, brows 17-26, nose 27-35, eyes
            36-47, mouth 48-67).
        confidence: (68,) float64 in [0, 1] (0: the point is missing).
        box: (4,) float64 ``x0, y0, x1, y1`` pixels, the face's box.
        score: the detector's confidence that this is a face, in [0, 1].
    """

    points: np.ndarray
    confidence: np.ndarray
    box: np.ndarray
    score: float


class LandmarkDetector(Protocol):
    """What ``track-face`` needs of a detector."""

    name: str
    """A short name for messages and provenance (``builtin``, ``mediapipe``, a run's path)."""

    def detect(self, image: np.ndarray) -> FaceDetection | None:
        """The most confident face in ``image`` ((H, W, 3) uint8 sRGB), or None when there is none."""
        ...
