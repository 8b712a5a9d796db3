"""A face model fitted to frames (photos, a video): the ``face`` kind (``track-face``'s output)."""

from __future__ import annotations

import dataclasses

import numpy as np

from avatarkit.structures.cameras import Cameras
from avatarkit.structures.mesh import Landmarks, Mesh

IBUG68_NAMES = tuple(f"ibug_{i:02d}" for i in range(68))
"""The names of the 68 iBUG points as mesh landmarks (``ibug_00`` .. ``ibug_67``, iBUG's order)."""


@dataclasses.dataclass
class FaceTrack:
    """A parametric face fitted to N frames; world frame, metres.

    Attributes:
        model: the face model's name (``anny``, ``flame``); ``model_file`` its file (FLAME), or "".
        vertices: (N, V, 3) float32, each frame's fitted head.
        faces: (F, 3) int32, the model's triangles.
        params: the model's parameter groups, name -> (N, *shape) float32 (``model(**params)``
            rebuilds :attr:`vertices`).
        K, world_to_cam: (N, 3, 3), (N, 4, 4) float32 each frame's perspective camera (OpenCV),
            K with the fitted focal length; ``width``, ``height`` the frames' size in pixels.
        frame_names: (N,) the frames' names (file names, ``video.mp4#12``, views indices).
        landmarks_input: (N, 68, 3) float32 the 2D iBUG points fitted to: x, y pixels (OpenCV),
            confidence 0..1.
        landmarks_fitted: (N, 68, 2) float32 the fitted model's iBUG points projected, pixels.
        landmarks3d: (N, 68, 3) float32 the fitted model's iBUG points, world frame.
        landmark_error_px: (N,) float32 mean distance between the two over the points used.
        converged: (N,) bool the frame's landmarks were met (see ``fitting/face.py``).
        photometric_residual: (N,) float32 mean absolute sRGB difference on the face, or None.
        mask_iou: (N,) float32 silhouette overlap, or None (no masks).
        albedo: (A, V, 3) uint8 sRGB per-vertex albedo, A = 1 (one person) or N, or None.
        sh: (N, 9, 3) float32 SH lighting per frame in the camera's axes, or None.
        attrs: plain attributes (``same_person``, ``stopped``, ``landmark_source``, ``seconds``).
    """

    model: str
    vertices: np.ndarray
    faces: np.ndarray
    params: dict[str, np.ndarray]
    K: np.ndarray
    world_to_cam: np.ndarray
    width: int
    height: int
    frame_names: list[str]
    landmarks_input: np.ndarray
    landmarks_fitted: np.ndarray
    landmarks3d: np.ndarray
    landmark_error_px: np.ndarray
    converged: np.ndarray
    photometric_residual: np.ndarray | None = None
    mask_iou: np.ndarray | None = None
    albedo: np.ndarray | None = None
    sh: np.ndarray | None = None
    model_file: str = ""
    attrs: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frame_names = [str(n) for n in self.frame_names]
        self.converged = np.asarray(self.converged, dtype=bool)

    def __len__(self) -> int:
        return int(self.vertices.shape[0])

    def cameras(self) -> Cameras:
        return Cameras(self.K, self.world_to_cam, "perspective", int(self.width), int(self.height))

    def mesh(self, frame: int = 0) -> Mesh:
        """Frame ``frame``'s head (albedo as vertex colours, the 68 iBUG points as landmarks)."""
        colors = None
        if self.albedo is not None:
            colors = self.albedo[0 if len(self.albedo) == 1 else frame]
        landmarks = Landmarks(list(IBUG68_NAMES), self.landmarks3d[frame], np.full(68, -1, np.int32))
        return Mesh(self.vertices[frame], self.faces, vertex_colors=colors, landmarks=landmarks)
