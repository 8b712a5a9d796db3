"""Synthetic people from Anny: the core of ``avatarkit synth``.

Subject ``i`` of seed ``s`` is drawn from its own generator ``numpy.random.default_rng([s, i])``
and evaluated alone (batch of one), so it is bit-identical whatever ``-n`` is and
whichever other subjects are made in the same run. Its face's local changes (the face
variation) come from a second generator of its own, ``default_rng([s, i, FACE_STREAM])``, so
turning the variation off leaves every other draw (phenotype, pose, expression, texture)
as it was: the same person, with the face of the phenotype alone, as before the variation.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.errors import OptionError
from avatarkit.parametric.anny_head import HIDDEN_PARTS as HIDDEN_PARTS
from avatarkit.structures import Landmarks, Mesh
from avatarkit.synth.phenotype import GENDERS, PhenotypeSampler
from avatarkit.synth.pose import sample_pose
from avatarkit.synth.texture import TEXTURES, paint_texture

if TYPE_CHECKING:
    from avatarkit.parametric.anny import AnnyBody

POSES = ("rest", "random")
FACE_STREAM = 1
"""The third number of the face variation's generator's seed ``[seed, index, FACE_STREAM]``
(not 0: numpy's ``SeedSequence`` reads a trailing 0 as absent, so ``[s, i, 0]`` would replay
the subject's main generator ``[s, i]``)."""
PARTS = ("body", "head")
FACE_SPHERE_RADIUS = 0.095
"""H3DS's face region: the vertices within this many metres (95 mm) of the nose tip."""
NOT_FACE_SKIN = ("eye", "mouth_cavity", "tongue")
"""Anny's labels (prefixes) of what is not the face's skin: eyeballs and eye sockets, the
inside of the mouth, the tongue."""


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """How to draw synthetic people."""

    seed: int = 0
    """Fixes every random choice; subject i of a seed is always the same person."""
    pose: str = "random"
    """``rest`` (Anny's relaxed A-pose) or ``random`` (natural joint angles within limits)."""
    expressions: bool = False
    """Random facial expressions from Anny's 52 ARKit-style facial actions."""
    age_range: tuple[float, float] = (18.0, 80.0)
    """Ages in years, drawn uniformly."""
    gender: str = "any"
    """``any``, ``female`` or ``male``."""
    texture: str = "skin"
    """``skin``, ``clothes``, ``checker`` or ``none`` (see ``avatarkit.synth.texture``)."""
    texture_size: int = 1024
    """Texture width and height, texels."""
    part: str = "body"
    """``body`` or ``head`` (head and neck only, for head datasets)."""
    face_variation: bool = True
    """Draw each person's face shape too: Anny's 139 local changes of the face and head (nose,
    eyes, lips, jaw, ears, ...), from the Anny face model's prior
    (:func:`~avatarkit.parametric.anny_face.draw_local_changes`). Off: the face follows from
    the phenotype alone (every face of a phenotype alike), as ``synth`` made them before."""

    def check(self) -> None:
        if self.pose not in POSES:
            raise OptionError(f"--pose must be one of {', '.join(POSES)}, got {self.pose!r}")
        if self.texture not in TEXTURES:
            raise OptionError(f"--texture must be one of {', '.join(TEXTURES)}, got {self.texture!r}")
        if self.gender not in GENDERS:
            raise OptionError(f"--gender must be one of {', '.join(GENDERS)}, got {self.gender!r}")
        if self.part not in PARTS:
            raise OptionError(f"--part must be one of {', '.join(PARTS)}, got {self.part!r}")
        lo, hi = self.age_range
        if not 0 <= lo <= hi <= 90:
            raise OptionError(f"--age-range must satisfy 0 <= min <= max <= 90 years, got {lo:g} {hi:g}")
        if not 16 <= self.texture_size <= 8192:
            raise OptionError(f"--texture-size must be between 16 and 8192, got {self.texture_size}")


class HumanGenerator:
    """Loads Anny once and draws subjects from it."""

    def __init__(self, config: SynthConfig, device: str = "cpu", body: AnnyBody | None = None) -> None:
        # avatarkit.parametric.anny imports torch: not at module level, which the CLI imports for --help
        from avatarkit.parametric.anny import AnnyBody
        from avatarkit.parametric.anny_face import anny_with_local_changes, face_local_changes
        from avatarkit.parametric.anny_head import head_face_mask

        config.check()
        self.config = config
        self.body = body if body is not None else AnnyBody.load(device)
        self.phenotypes = PhenotypeSampler(self.body.model)
        self._head_faces = head_face_mask(self.body)
        self.local_change_labels: tuple[str, ...] = face_local_changes()
        """The local changes drawn per person (``/params/anny/local_changes``), in this order."""
        self._varied = anny_with_local_changes(self.local_change_labels, self.body) if config.face_variation else None

    def subject(self, index: int) -> Mesh:
        """Draw subject ``index``: a validated mesh in our frame, feet on y = 0."""
        import torch

        from avatarkit.parametric.anny import ANNY_TO_WORLD, JOINTS

        cfg, body = self.config, self.body
        model = body.model
        rng = np.random.default_rng([cfg.seed, index])
        phenotype = self.phenotypes.sample(rng, cfg.age_range, cfg.gender)
        bones = body.bone_labels
        pose = (
            sample_pose(rng, bones, body.rest_heads) if cfg.pose == "random" else np.tile(np.eye(4), (len(bones), 1, 1))
        )
        actions = np.zeros(len(model.facial_action_labels), dtype=np.float32)
        if cfg.expressions:
            active = rng.random(len(actions)) < 0.15
            actions[active] = rng.uniform(0.2, 0.9, int(active.sum()))
        local = self.local_changes(index)
        dev = model.device

        def tensor(a):
            return torch.as_tensor(np.asarray(a, dtype=np.float32), device=dev)

        # without the variation, Anny without local changes: bit for bit the people of before
        extra = {} if self._varied is None else {"local_changes_kwargs": tensor(local)[None]}
        with torch.no_grad():
            out = (model if self._varied is None else self._varied)(
                pose_parameters=tensor(pose)[None],
                phenotype_kwargs={k: tensor([phenotype[k]]) for k in model.phenotype_labels},
                facial_actions=tensor(actions)[None],
                **extra,
            )
        vertices = out["vertices"][0].cpu().numpy().astype(np.float64) @ ANNY_TO_WORLD.T
        rest = out["rest_vertices"][0].cpu().numpy().astype(np.float64) @ ANNY_TO_WORLD.T
        joints = out["bone_poses"][0, :, :3, 3].cpu().numpy().astype(np.float64) @ ANNY_TO_WORLD.T
        floor = vertices[:, 1].min()
        lift = np.array([0.0, -floor, 0.0])
        vertices, joints = vertices + lift, joints + lift
        anny_to_world = np.eye(4)
        anny_to_world[:3, :3], anny_to_world[:3, 3] = ANNY_TO_WORLD, lift

        names = list(body.landmark_vertices) + list(JOINTS)
        ids = [*body.landmark_vertices.values(), *([-1] * len(JOINTS))]
        points = [vertices[i] for i in body.landmark_vertices.values()]
        points += [joints[bones.index(bone)] for bone in JOINTS.values()]
        texture = paint_texture(
            cfg.texture,
            rng,
            cfg.texture_size,
            body.uvs,
            body.face_uvs,
            body.face_labels,
            body.label_names,
            rest - [0.0, rest[:, 1].min(), 0.0],
            body.faces,
        )
        mesh = Mesh(
            vertices=vertices,
            faces=body.faces,
            uvs=body.uvs,
            face_uvs=body.face_uvs,
            texture=texture,
            vertex_labels=body.vertex_labels,
            label_names=body.label_names,
            landmarks=Landmarks(names, points, ids),
            params={
                "anny": {
                    "phenotype": {k: np.float32(v) for k, v in phenotype.items()},
                    "pose": pose.astype(np.float32),
                    "pose_parameterization": "local-ref",
                    "bone_labels": bones,
                    "facial_actions": actions,
                    "facial_action_labels": list(model.facial_action_labels),
                    "local_changes": local,
                    "local_change_labels": list(self.local_change_labels),
                    "anny_to_world": anny_to_world,
                    "seed": np.int64(cfg.seed),
                    "index": np.int64(index),
                    "anny_version": _anny_version(),
                }
            },
        )
        mesh.regions = face_regions(mesh)
        if cfg.part == "head":
            mesh = _head_only(mesh, self._head_faces, body.faces)
        mesh.validate(f"subject {index}")
        return mesh

    def local_changes(self, index: int) -> np.ndarray:
        """Subject ``index``'s face variation: (L,) float32 local changes in
        :attr:`local_change_labels` order, all 0 when ``face_variation`` is off."""
        if not self.config.face_variation:
            return np.zeros(len(self.local_change_labels), dtype=np.float32)
        from avatarkit.parametric.anny_face import draw_local_changes

        rng = np.random.default_rng([self.config.seed, index, FACE_STREAM])
        return draw_local_changes(rng, len(self.local_change_labels)).astype(np.float32)


def face_regions(mesh: Mesh) -> dict[str, np.ndarray] | None:
    """H3DS's face regions of a mesh with the six face landmarks (None without them):

    - ``face_sphere``: the vertices within :data:`FACE_SPHERE_RADIUS` (95 mm) of the
      ``nose_tip`` landmark, H3DS's definition of its ``face`` region;
    - ``face``: the ``face_sphere`` vertices that are skin on the front of the head: labelled
      ``head`` (Anny's skin of the head and neck: not the eyes, eye sockets, mouth cavity or
      tongue, nor a body's torso; a mesh without that label: labelled none of
      :data:`NOT_FACE_SKIN`), with a vertex normal pointing forward (a positive dot product
      with :meth:`~avatarkit.structures.Mesh.face_forward`, which follows the head however it
      is posed).

    Returns name -> (R,) int32 sorted vertex indices.
    """
    from avatarkit.geometry.surface import vertex_normals

    nose, forward = mesh.landmark_points().get("nose_tip"), mesh.face_forward()
    if nose is None or forward is None:
        return None
    v = mesh.vertices.astype(np.float64)
    sphere = np.flatnonzero(np.linalg.norm(v - nose, axis=1) <= FACE_SPHERE_RADIUS)
    skin = np.ones(len(v), dtype=bool)
    names = mesh.label_names or []
    if mesh.vertex_labels is not None and names:
        if "head" in names:
            skin = mesh.vertex_labels == names.index("head")
        else:
            inside = [i for i, n in enumerate(names) if n.startswith(NOT_FACE_SKIN)]
            skin = ~np.isin(mesh.vertex_labels, inside)
    front = vertex_normals(mesh)[sphere].astype(np.float64) @ forward > 0
    face = sphere[skin[sphere] & front]
    return {"face_sphere": sphere.astype(np.int32), "face": face.astype(np.int32)}


def _head_only(mesh: Mesh, keep_faces: np.ndarray, faces: np.ndarray) -> Mesh:
    """Keep the head's faces (``keep_faces``, from
    :func:`~avatarkit.parametric.anny_head.head_face_mask`: skinned mostly to the neck, head
    or eyes, and touching the outside: one vertex at least not of :data:`HIDDEN_PARTS`, so
    the rims of the lips and eyelids, where the lip-corner landmarks sit, stay)."""
    used = np.unique(faces[keep_faces])
    remap = np.full(len(mesh.vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    face_uvs = mesh.face_uvs[keep_faces]
    used_uv = np.unique(face_uvs)
    remap_uv = np.full(len(mesh.uvs), -1, dtype=np.int64)
    remap_uv[used_uv] = np.arange(len(used_uv))
    lm = mesh.landmarks
    keep_lm = [
        i
        for i, (n, v) in enumerate(zip(lm.names, lm.vertex_ids, strict=True))
        if (v >= 0 and remap[v] >= 0) or n in ("neck", "head")
    ]
    return dataclasses.replace(
        mesh,
        vertices=mesh.vertices[used],
        faces=remap[faces[keep_faces]],
        uvs=mesh.uvs[used_uv],
        face_uvs=remap_uv[face_uvs],
        vertex_labels=mesh.vertex_labels[used],
        regions=mesh.sub_mesh_regions(remap),
        landmarks=Landmarks(
            [lm.names[i] for i in keep_lm],
            lm.points[keep_lm],
            [remap[lm.vertex_ids[i]] if lm.vertex_ids[i] >= 0 else -1 for i in keep_lm],
        ),
    )


def _anny_version() -> str:
    from importlib.metadata import version

    return version("anny")
