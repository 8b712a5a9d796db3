"""The Anny parametric body model, loaded once, with what avatarkit derives from it.

Anny (PyPI ``anny``, Apache-2.0 code, CC0 MakeHuman assets) works in metres, Z up,
the body facing -Y, +X the subject's left. :data:`ANNY_TO_WORLD` turns that into our
frame (+Y up, facing +Z). Everything derived here from the template is computed once
per model: body-part labels from Anny's own UV segmentation, landmark vertices,
joint axes for pose sampling.

:class:`AnnyModel` is Anny as a :class:`~avatarkit.parametric.base.ParametricModel`:
named, differentiable parameter groups in, vertices, joints and landmarks in our world
frame out, for fitting.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avatarkit.parametric.base import ModelOutput

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

    model: Any  # anny.Anny
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


class AnnyModel(torch.nn.Module):
    """Anny as a :class:`~avatarkit.parametric.base.ParametricModel`, in our world frame.

    Parameter groups (``B`` the batch; every group is ``(B, *shape)``, omitted groups are
    neutral and groups of batch 1 broadcast):

    - ``phenotype`` (B, 6): Anny's phenotype values in :attr:`phenotype_labels` order
      (``gender`` 0 male .. 1 female, ``age`` -1/3 newborn, 0 baby, 1/3 child, 2/3 young
      adult, 1 old, then ``muscle``, ``weight``, ``height``, ``proportions`` 0 .. 1);
      Anny's default, and neutral here, is 0.5 for all. Anny interpolates linearly
      between anchor shapes and clamps outside those ranges: the gradient is zero
      beyond them and changes at the anchors (0.5 for muscle and weight, the ages above).
    - ``expression`` (B, 52): facial action weights (ARKit-style blend shapes, 0 neutral,
      1 full) in :attr:`expression_labels` order. Linear, not clamped.
    - ``pose`` (B, J - 1, 3): one rotation vector (axis times angle, radians) per bone of
      :attr:`pose_bone_names` (all of Anny's J = 104 bones but the root), in Anny's
      ``local-ref`` convention with our world axes: each bone turns about its own head,
      carried by its parents, by a rotation expressed in world axes of the rest pose
      (rotating a bone of a rest body about +Y turns it about the vertical). Zero is
      Anny's rest pose (relaxed A-pose). :meth:`from_anny_pose` and :meth:`to_anny_pose`
      convert from and to Anny's 4x4 ``pose_parameters`` (what ``synth`` stores).
    - ``rotation`` (B, 3): global rotation, axis-angle in radians, world axes, about the
      world origin, which is Anny's root joint (between the hips).
    - ``translation`` (B, 3): global translation, metres, applied after ``rotation``.

    ``x_world = R(rotation) @ ANNY_TO_WORLD @ x_anny + translation``. Unlike ``synth``,
    nothing lifts the feet to y = 0 (use ``translation``).

    Outputs (:class:`~avatarkit.parametric.base.ModelOutput`, float32, metres):
    ``vertices`` (B, 13718, 3); ``joints`` (B, 104, 3), the heads of Anny's bones
    (:attr:`joint_names`); ``landmarks`` (B, 23, 3), the six H3DS face landmarks (mesh
    vertices, :attr:`landmark_vertex_ids`) then the joint centres of :data:`JOINTS`, as
    ``synth`` writes them.

    The Anny module is ``body.model``, shared (not copied): moving this module to another
    device or dtype moves it for ``body`` too. It holds no ``nn.Parameter``; optimise the
    group tensors (e.g. from :meth:`zero_parameters`).
    """

    faces: torch.Tensor
    joint_names: tuple[str, ...]
    landmark_names: tuple[str, ...]
    anny: Any  # anny.Anny
    _landmark_vertices: torch.Tensor
    _landmark_joints: torch.Tensor
    _anny_to_world: torch.Tensor

    def __init__(self, body: AnnyBody | None = None, device: str = "cpu") -> None:
        super().__init__()
        body = body if body is not None else AnnyBody.load(device)
        self.body = body
        self.anny = body.model  # registered as a submodule: .to() moves it
        bones = tuple(body.bone_labels)
        self.phenotype_labels: tuple[str, ...] = tuple(body.model.phenotype_labels)
        """Names of the ``phenotype`` group's entries."""
        self.expression_labels: tuple[str, ...] = tuple(body.model.facial_action_labels)
        """Names of the ``expression`` group's entries (Anny's facial actions)."""
        self.pose_bone_names: tuple[str, ...] = bones[1:]
        """Bones of the ``pose`` group's rows (all but the root)."""
        self.joint_names = bones
        self.landmark_names = (*body.landmark_vertices, *JOINTS)
        self.landmark_vertex_ids: tuple[int, ...] = (*body.landmark_vertices.values(), *([-1] * len(JOINTS)))
        """Mesh vertex of each landmark, -1 for joint centres."""
        dev = body.model.device
        self.register_buffer("faces", torch.as_tensor(body.faces, dtype=torch.int64, device=dev), persistent=False)
        self.register_buffer(
            "_landmark_vertices",
            torch.as_tensor(list(body.landmark_vertices.values()), dtype=torch.int64, device=dev),
            persistent=False,
        )
        self.register_buffer(
            "_landmark_joints",
            torch.as_tensor([bones.index(b) for b in JOINTS.values()], dtype=torch.int64, device=dev),
            persistent=False,
        )
        self.register_buffer(
            "_anny_to_world", torch.as_tensor(ANNY_TO_WORLD, dtype=body.model.dtype, device=dev), persistent=False
        )

    @property
    def device(self) -> torch.device:
        return self.anny.device

    @property
    def dtype(self) -> torch.dtype:
        return self.anny.dtype

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """``phenotype`` (6,), ``expression`` (52,), ``pose`` (103, 3), ``rotation`` (3,), ``translation`` (3,)."""
        return {
            "phenotype": (len(self.phenotype_labels),),
            "expression": (len(self.expression_labels),),
            "pose": (len(self.pose_bone_names), 3),
            "rotation": (3,),
            "translation": (3,),
        }

    def zero_parameters(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """Neutral groups, ``(batch, *shape)``: phenotype 0.5 (Anny's default), the rest zero."""
        out = {}
        for name, shape in self.parameter_shapes().items():
            fill = 0.5 if name == "phenotype" else 0.0
            out[name] = torch.full((batch, *shape), fill, dtype=self.dtype, device=self.device)
        return out

    def forward(self, **groups: torch.Tensor) -> ModelOutput:
        """Evaluate Anny for the given groups (see the class docstring), in the world frame."""
        from avatarkit.parametric.base import axis_angle_to_matrix

        values = self._batched(groups)
        out = self.anny(
            pose_parameters=self.to_anny_pose(values["pose"]),
            phenotype_kwargs=values["phenotype"],
            facial_actions=values["expression"],
        )
        to_world = axis_angle_to_matrix(values["rotation"]) @ self._anny_to_world  # (B, 3, 3)
        shift = values["translation"][:, None, :]
        vertices = out["vertices"] @ to_world.transpose(1, 2) + shift
        joints = out["bone_poses"][:, :, :3, 3] @ to_world.transpose(1, 2) + shift
        landmarks = torch.cat((vertices[:, self._landmark_vertices], joints[:, self._landmark_joints]), dim=1)
        return ModelOutput(vertices, joints, landmarks, self.joint_names, self.landmark_names)

    def to_anny_pose(self, pose: torch.Tensor) -> torch.Tensor:
        """Anny's ``local-ref`` ``pose_parameters`` for a ``pose`` group (differentiable).

        Args:
            pose: (B, J - 1, 3) rotation vectors, radians, world axes.

        Returns:
            (B, J, 4, 4) per-bone deltas in Anny's axes, the root's the identity.
        """
        from avatarkit.parametric.base import axis_angle_to_matrix

        a = self._anny_to_world
        rotations = a.T @ axis_angle_to_matrix(pose) @ a  # world axes -> Anny's
        batch, bones = pose.shape[:2]
        top = torch.cat((rotations, rotations.new_zeros(batch, bones, 3, 1)), dim=-1)
        bottom = rotations.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(batch, bones, 1, 4)
        eye = torch.eye(4, dtype=rotations.dtype, device=rotations.device).expand(batch, 1, 4, 4)
        return torch.cat((eye, torch.cat((top, bottom), dim=-2)), dim=1)

    def from_anny_pose(self, matrices) -> torch.Tensor:
        """The ``pose`` group for Anny ``local-ref`` pose parameters (e.g. ``/params/anny/pose``).

        Args:
            matrices: (J, 4, 4) or (B, J, 4, 4) array or tensor: rotations only (zero
                translations) and an identity root, as ``synth`` writes them.

        Returns:
            (B, J - 1, 3) rotation vectors (radians, world axes) on the model's device.
        """
        from scipy.spatial.transform import Rotation

        m = matrices.detach().cpu().numpy() if isinstance(matrices, torch.Tensor) else np.asarray(matrices)
        m = m.astype(np.float64)
        if m.ndim == 3:
            m = m[None]
        if m.shape[1:] != (len(self.joint_names), 4, 4):
            raise ValueError(f"Anny pose must be (B, {len(self.joint_names)}, 4, 4), got {m.shape}")
        if np.abs(m[:, :, :3, 3]).max() > 1e-6 or np.abs(m[:, 0] - np.eye(4)).max() > 1e-6:
            raise ValueError("Anny pose with translations or a posed root is not a rotation-only pose")
        rotvecs = Rotation.from_matrix(m[:, 1:, :3, :3].reshape(-1, 3, 3)).as_rotvec().reshape(len(m), -1, 3)
        return torch.as_tensor(rotvecs @ ANNY_TO_WORLD.T, dtype=self.dtype, device=self.device)

    def _batched(self, groups: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from avatarkit.parametric.base import broadcast_groups

        shapes = self.parameter_shapes()
        return broadcast_groups(groups, shapes, self.zero_parameters(1), self.dtype, self.device, "AnnyModel")


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
