"""The Anny parametric body model, loaded once, with what avatarkit derives from it.

Anny (PyPI ``anny``, Apache-2.0 code, CC0 MakeHuman assets) works in metres, Z up,
the body facing -Y, +X the subject's left. :data:`ANNY_TO_WORLD` turns that into our
frame (+Y up, facing +Z). Everything derived here from the template is computed once
per model: body-part labels from Anny's own UV segmentation, landmark vertices,
joint axes for pose sampling.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

ANNY_TO_WORLD = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
"""(x, y, z) Anny -> (x, z, -y) ours: a rotation of -90 degrees about X."""

FACE_LANDMARKS = ("right_eye", "left_eye", "nose_tip", "nose_base", "right_lips", "left_lips")
"""The six H3DS face landmarks (subject's left and right)."""

JOINTS = {
    "pelvis": "root",
    "spine": "spine03",
    "chest": "spine01",
    "neck": "neck01",
    "head": "head",
    "left_shoulder": "upperarm01.L",
    "left_elbow": "lowerarm01.L",
    "left_wrist": "wrist.L",
    "right_shoulder": "upperarm01.R",
    "right_elbow": "lowerarm01.R",
    "right_wrist": "wrist.R",
    "left_hip": "upperleg01.L",
    "left_knee": "lowerleg01.L",
    "left_ankle": "foot.L",
    "right_hip": "upperleg01.R",
    "right_knee": "lowerleg01.R",
    "right_ankle": "foot.R",
}
"""Landmark name -> Anny bone whose head is that joint centre."""

HEAD_BONES = ("neck01", "neck02", "neck03", "head", "eye.L", "eye.R")


def anny_cache_dir() -> Path:
    """Where Anny keeps its model cache: ``$ANNY_CACHE_DIR`` or ``~/.cache/anny``."""
    return Path(os.environ.get("ANNY_CACHE_DIR", Path.home() / ".cache" / "anny"))


def anny_cache_is_warm() -> bool:
    """True when a built Anny model is cached (the next load takes seconds, not minutes)."""
    return any(anny_cache_dir().glob("v*/build_compact_model_data_*"))


@dataclasses.dataclass
class AnnyBody:
    """A loaded Anny model and the template-derived data avatarkit needs.

    Attributes:
        model: the ``anny.Anny`` torch module (float32, on ``device``).
        faces: (F, 3) int32. uvs: (T, 2) float32. face_uvs: (F, 3) int32.
        label_names: body-part names from Anny's segmentation.
        face_labels: (F,) int16. vertex_labels: (V,) int16 (majority of incident faces).
        landmark_vertices: face landmark name -> vertex index.
        dominant_bone: (V,) int64 index of the bone with the largest skinning weight.
        rest_heads: (J, 3) float32 bone heads of the default rest body, Anny frame.
    """

    model: object
    faces: np.ndarray
    uvs: np.ndarray
    face_uvs: np.ndarray
    label_names: list[str]
    face_labels: np.ndarray
    vertex_labels: np.ndarray
    landmark_vertices: dict[str, int]
    dominant_bone: np.ndarray
    rest_heads: np.ndarray

    @property
    def bone_labels(self) -> list[str]:
        return list(self.model.bone_labels)

    @property
    def device(self):
        return self.model.device

    @classmethod
    def load(cls, device: str = "cpu") -> AnnyBody:
        """Build (first time: about a minute or two, cached) and load the model."""
        from avatarkit.backends.warp import import_warp

        import_warp()  # anny uses warp: initialise it quietly first
        import anny
        import torch

        model = anny.Anny(facial_actions="all").to(dtype=torch.float32, device=device)
        faces = model.faces.cpu().numpy().astype(np.int32)
        uvs = model.texture_coordinates.cpu().numpy().astype(np.float32)
        face_uvs = model.face_texture_coordinate_indices.cpu().numpy().astype(np.int32)
        names, face_labels = _segment_faces(uvs, face_uvs)
        vertex_labels = _vertex_majority(faces, face_labels, len(names), model.template_vertices.shape[0])
        with torch.no_grad():
            rest = model(pose_parameters=None, phenotype_kwargs=None)
        rest_vertices = rest["vertices"][0].cpu().numpy()
        weights = model.vertex_bone_weights.cpu().numpy()
        indices = model.vertex_bone_indices.cpu().numpy()
        dominant = indices[np.arange(len(indices)), weights.argmax(1)]
        landmarks = _face_landmark_vertices(rest_vertices, faces, face_labels, names)
        return cls(
            model=model,
            faces=faces,
            uvs=uvs,
            face_uvs=face_uvs,
            label_names=names,
            face_labels=face_labels,
            vertex_labels=vertex_labels,
            landmark_vertices=landmarks,
            dominant_bone=dominant.astype(np.int64),
            rest_heads=rest["rest_bone_heads"][0].cpu().numpy(),
        )


def _segment_faces(uvs: np.ndarray, face_uvs: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Per-face body part from Anny's segmentation image, sampled at each face's UV centre."""
    import PIL.Image
    import yaml
    from anny.paths import get_anny_root_dir

    folder = get_anny_root_dir() / "data" / "segmentation"
    image = np.asarray(PIL.Image.open(folder / "body_parts_segmentation.png").convert("RGB")).astype(np.int32)
    palette = yaml.safe_load((folder / "body_parts_segmentation.yaml").read_text())["colors"]
    names = list(palette)
    colors = np.array([palette[n] for n in names], dtype=np.int32)
    h, w = image.shape[:2]
    centre = uvs[face_uvs].mean(axis=1)
    col = np.clip(np.round(centre[:, 0] * w).astype(int), 0, w - 1)
    row = np.clip(np.round((1 - centre[:, 1]) * h).astype(int), 0, h - 1)
    sampled = image[row, col]
    nearest = ((sampled[:, None, :] - colors[None]) ** 2).sum(-1).argmin(1)
    return names, nearest.astype(np.int16)


def _vertex_majority(faces: np.ndarray, face_labels: np.ndarray, n_labels: int, n_vertices: int) -> np.ndarray:
    counts = np.zeros((n_vertices, n_labels), dtype=np.int32)
    np.add.at(counts, (faces.reshape(-1), np.repeat(face_labels, 3)), 1)
    return counts.argmax(1).astype(np.int16)


def _face_landmark_vertices(
    vertices: np.ndarray, faces: np.ndarray, face_labels: np.ndarray, names: list[str]
) -> dict[str, int]:
    """The six H3DS landmarks as template vertices, found geometrically (Anny frame).

    Eyes: the most forward vertex of each eye's front (cornea). Lip corners: the
    outermost skin vertices touching the mouth cavity. Nose tip: the most forward
    midline skin vertex between mouth and eyes. Nose base (subnasale): the deepest
    midline skin vertex between the upper lip and the nose tip.
    """
    forward = -vertices[:, 1]  # Anny faces -Y
    label = {n: i for i, n in enumerate(names)}

    def vertices_of(part: str) -> np.ndarray:
        return np.unique(faces[face_labels == label[part]])

    out: dict[str, int] = {}
    for side, suffix in (("left", "L"), ("right", "R")):
        eye = vertices_of(f"eye_front.{suffix}")
        out[f"{side}_eye"] = int(eye[forward[eye].argmax()])
    skin = vertices_of("head")
    lips = np.intersect1d(skin, vertices_of("mouth_cavity"))
    out["left_lips"] = int(lips[vertices[lips, 0].argmax()])  # +X is the subject's left
    out["right_lips"] = int(lips[vertices[lips, 0].argmin()])
    mouth_z = vertices[[out["left_lips"], out["right_lips"]], 2].mean()
    eye_z = vertices[[out["left_eye"], out["right_eye"]], 2].mean()
    midline = skin[np.abs(vertices[skin, 0]) < 0.004]
    band = midline[(vertices[midline, 2] > mouth_z) & (vertices[midline, 2] < eye_z)]
    tip = int(band[forward[band].argmax()])
    out["nose_tip"] = tip
    tip_z = vertices[tip, 2]
    low = mouth_z + 0.3 * (tip_z - mouth_z)
    front = band[forward[band] > forward[tip] - 0.04]  # the face, not the back of the head
    below = front[(vertices[front, 2] > low) & (vertices[front, 2] < tip_z)]
    out["nose_base"] = int(below[forward[below].argmin()])
    return {name: out[name] for name in FACE_LANDMARKS}
