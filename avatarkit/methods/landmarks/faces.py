"""The synthetic faces ``train landmarks`` learns from: Anny's head, rendered once into a pool.

Subject ``i`` of a pool with seed ``s`` and split ``k`` (0 train, 1 validation) draws from its
own generator ``[s, 11, k, i]``, so a pool is the same however it is made, in one go or resumed:

- skin texture, phenotype and facial actions: ``synth --part head --expressions --texture skin``'s
  subject (:class:`~avatarkit.synth.generate.HumanGenerator`, seed ``s * 2 + k``, index ``i``);
- identity beyond the phenotype: the Anny face model's 139 local changes of the face and head
  (:class:`~avatarkit.parametric.anny_face.AnnyFaceModel`), drawn as ``synth`` draws them
  (:func:`~avatarkit.parametric.anny_face.draw_local_changes`: the model's prior, truncated);
  the head turned on its neck (N(0, 0.15) rad per axis) and the eyes rolled (N(0, 0.15) rad);
- ``views`` photos (``render --preset portrait``: a random head pose relative to the camera, yaw
  within :data:`YAWS`, a 24-85 mm focal length, a random SH studio light per photo), ``size``
  pixels high, on black;
- the truth: the model's iBUG-68 points (:mod:`~avatarkit.parametric.face_landmarks`, the jaw
  points where the model puts them, not on the silhouette) projected by each camera.

Each view is kept as a ``crop`` x ``crop`` RGBA square around the face (the render's mask as
alpha) with its 68 points in that square's pixels (OpenCV centres); training composes them onto
backgrounds (:mod:`.scenes`). One ``.npz`` per subject under the pool folder, written atomically,
so an interrupted pool resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from avatarkit.structures import Views

POOL_VERSION = 2
"""2: local changes from ``draw_local_changes`` (1: N(0, 0.4) clipped to -1 .. 1)."""
YAWS = (-55.0, 55.0)
"""Head yaw relative to the camera, degrees (the portrait rig's default is -45 45)."""
NECK_STD = 0.15
EYES_STD = 0.15
FACE_MARGIN = 2.4
"""The stored square is this times the larger side of the 68 points' box, centred on that box."""


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """What a pool of rendered faces is: the generator's settings (its folder's name)."""

    seed: int
    split: int
    subjects: int
    views: int = 8
    size: int = 256
    crop: int = 160

    def folder(self, root: Path) -> Path:
        name = "train" if self.split == 0 else "val"
        return Path(root) / f"faces-v{POOL_VERSION}-seed{self.seed}-{name}-{self.size}px-{self.crop}"


@dataclasses.dataclass
class FacePool:
    """Rendered faces: ``rgba`` (N, C, C, 4) uint8 (alpha: the head's mask), ``points`` (N, 68, 2)
    float32 pixels of that square (OpenCV centres), ``subject`` (N,) int32."""

    rgba: np.ndarray
    points: np.ndarray
    subject: np.ndarray

    def __len__(self) -> int:
        return len(self.rgba)


class FaceRenderer:
    """Draws and renders subjects of pools (loads Anny's head model once)."""

    def __init__(self) -> None:
        from avatarkit.parametric.face import load_face_model
        from avatarkit.synth.generate import HumanGenerator, SynthConfig

        self.model = load_face_model("anny")
        self.synth_config = SynthConfig
        self.generator_class = HumanGenerator
        self.generators: dict[int, HumanGenerator] = {}

    def _generator(self, seed: int):
        if seed not in self.generators:
            body = next(iter(self.generators.values())).body if self.generators else None
            options: dict[str, Any] = {
                "seed": seed,
                "part": "head",
                "expressions": True,
                "texture": "skin",
                "texture_size": 512,
            }
            if "face_variation" in self.synth_config.__dataclass_fields__:
                options["face_variation"] = False  # the face shape is drawn here (its draws stay apart)
            config = self.synth_config(**options)
            self.generators[seed] = self.generator_class(config, body=body)
        return self.generators[seed]

    def subject(self, spec: PoolSpec, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Subject ``index`` of ``spec``'s pool: (V, C, C, 4) uint8 RGBA squares and (V, 68, 2)
        float32 points."""
        views, points = self.photos(spec, index)
        squares, square_points = [], []
        for rgb, mask, p in zip(views.rgb, views.mask, points, strict=True):
            square, q = head_square(rgb, mask, p, spec.crop)
            squares.append(square)
            square_points.append(q)
        return np.stack(squares), np.stack(square_points).astype(np.float32)

    def photos(self, spec: PoolSpec, index: int) -> tuple[Views, np.ndarray]:
        """Subject ``index`` of ``spec``'s pool as whole photos (``views`` of them, ``size`` high,
        on black, with masks) and their true (V, 68, 2) float64 points, pixels."""
        import torch

        from avatarkit.parametric.anny_face import draw_local_changes
        from avatarkit.parametric.face_landmarks import H3DS_NAMES
        from avatarkit.render.render import RenderConfig, render_rig
        from avatarkit.render.rigs import RigSpec
        from avatarkit.structures import Landmarks, Mesh

        rng = np.random.default_rng([spec.seed, 11, spec.split, index])
        source = self._generator(spec.seed * 2 + spec.split).subject(index)
        anny = source.params["anny"]
        model: Any = self.model  # AnnyFaceModel: its label tuples
        phenotype = [float(anny["phenotype"][name]) for name in model.phenotype_labels]
        local = draw_local_changes(rng, len(model.local_change_labels))
        actions = dict(zip(anny["facial_action_labels"], anny["facial_actions"], strict=True))
        expression = [float(actions.get(name, 0.0)) for name in model.expression_labels]
        groups = {
            "identity": np.concatenate([phenotype, local]),
            "expression": np.asarray(expression),
            "neck": rng.normal(0.0, NECK_STD, 3),
            "eyes": rng.normal(0.0, EYES_STD, (2, 3)),
        }
        with torch.no_grad():
            out = model(**{k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in groups.items()})
        vertices = out.vertices[0].numpy().astype(np.float64)
        mesh = Mesh(
            vertices=vertices,
            faces=model.faces.numpy(),
            uvs=source.uvs,
            face_uvs=source.face_uvs,
            texture=source.texture,
            vertex_labels=source.vertex_labels,
            label_names=source.label_names,
            landmarks=Landmarks(list(H3DS_NAMES), out.h3ds[0].numpy(), np.full(len(H3DS_NAMES), -1)),
        )
        rig = RigSpec(preset="portrait", views=spec.views, size=spec.size, yaw_range=YAWS)
        views = render_rig(mesh, rig, RenderConfig(lighting="sh", environments="random"), seed=int(rng.integers(2**31)))
        return views, views.cameras().project(out.landmarks68[0].numpy().astype(np.float64))[0]


def head_square(rgb: np.ndarray, mask: np.ndarray, points: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``crop`` x ``crop`` RGBA square around the face (:data:`FACE_MARGIN` times the larger
    side of the box of ``points``, centred on it) of one render, and ``points`` moved into it."""
    import cv2

    if not mask.any():
        raise InputError("a rendered face left its photo empty")
    low, high = points.min(axis=0), points.max(axis=0)
    cx, cy = 0.5 * (low + high)
    side = FACE_MARGIN * float(max(high - low))
    scale = crop / side
    # pixel centres: u' = scale * (u - (cx - side / 2) + 0.5) - 0.5
    shift = np.array([scale * (0.5 - (cx - side / 2)) - 0.5, scale * (0.5 - (cy - side / 2)) - 0.5])
    matrix = np.array([[scale, 0.0, shift[0]], [0.0, scale, shift[1]]])
    rgba: np.ndarray = np.dstack([rgb, mask]).astype(np.uint8)
    if scale < 1:  # area-average the downscale: blur by the footprint first
        sigma = 0.5 * (1 / scale - 1) ** 0.5 * 1.2
        rgba = cv2.GaussianBlur(rgba, (0, 0), sigma)
    square = cv2.warpAffine(rgba, matrix, (crop, crop), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    return square, points * scale + shift


def pool_ready(spec: PoolSpec, root: Path) -> bool:
    folder = spec.folder(root)
    return all((folder / f"{i:05d}.npz").is_file() for i in range(spec.subjects))


def make_pool(
    spec: PoolSpec,
    root: Path,
    progress: Callable[[int, int], None] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> None:
    """Render the subjects of ``spec`` missing under ``root`` (``shard`` K/N: every N-th from K)."""
    from avatarkit.io.atomic import atomic_path

    folder = spec.folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / "pool.json"
    if not info.is_file():
        with atomic_path(info) as tmp:
            tmp.write_text(json.dumps({**dataclasses.asdict(spec), "version": POOL_VERSION}, indent=2) + "\n")
    missing = [i for i in range(spec.subjects) if not (folder / f"{i:05d}.npz").is_file()]
    missing = missing[shard[0] :: shard[1]]
    renderer = FaceRenderer() if missing else None
    for done, index in enumerate(missing):
        assert renderer is not None
        rgba, points = renderer.subject(spec, index)
        with atomic_path(folder / f"{index:05d}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, rgba=rgba, points=points)
        if progress is not None:
            progress(done + 1, len(missing))


def load_pool(spec: PoolSpec, root: Path) -> FacePool:
    """The pool of ``spec`` under ``root`` (all its subjects must be there)."""
    folder = spec.folder(root)
    rgba, points, subject = [], [], []
    for i in range(spec.subjects):
        path = folder / f"{i:05d}.npz"
        try:
            with np.load(path) as data:
                rgba.append(data["rgba"])
                points.append(data["points"])
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"unreadable rendered face ({exc}); delete it to render it again", path) from None
        subject.append(np.full(len(rgba[-1]), i, np.int32))
    return FacePool(np.concatenate(rgba), np.concatenate(points), np.concatenate(subject))
