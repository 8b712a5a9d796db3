"""The triangle mesh that every avatarkit verb passes around.

Shapes and units follow ``docs/conventions.md``: metres, world frame (+Y up, the
subject faces +Z, +X is the subject's left), faces counter-clockwise seen from outside.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from avatarkit.errors import MeshError
from avatarkit.structures.indices import index_set_problems

EMPTY_MESH = "empty mesh"
ZERO_AREA = "every face has zero area"
"""How the errors for a mesh without a surface begin: what evaluate-chamfer scores as a failed
reconstruction (:func:`is_failed_surface`) rather than an unreadable file."""


def empty_mesh_error(n_vertices: int, n_faces: int, source: str | Path | None = None) -> MeshError:
    """The error for a mesh with no vertices or no faces, the same from every reader."""
    return MeshError(f"{EMPTY_MESH} ({n_vertices} vertices, {n_faces} faces)", source)


def is_failed_surface(exc: Exception) -> bool:
    """Whether ``exc`` says a mesh has no surface (empty, or every face of zero area)."""
    return isinstance(exc, MeshError) and exc.message.startswith((EMPTY_MESH, ZERO_AREA))


def surface_area(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Total area of the triangles, float64 (0 for a degenerate mesh)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    return float(0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1).sum())


@dataclasses.dataclass
class Landmarks:
    """Named 3D landmarks.

    Attributes:
        names: (L,) landmark names, e.g. ``nose_tip`` or ``left_knee``.
        points: (L, 3) float32, metres, world frame.
        vertex_ids: (L,) int32, the mesh vertex each landmark sits on, or -1 for
            landmarks that are not on the surface (joint centres).
    """

    names: list[str]
    points: np.ndarray
    vertex_ids: np.ndarray

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32).reshape(-1, 3)
        self.vertex_ids = np.asarray(self.vertex_ids, dtype=np.int32).reshape(-1)
        self.names = [str(n) for n in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def as_dict(self) -> dict[str, np.ndarray]:
        """Name to (3,) point."""
        return {n: self.points[i] for i, n in enumerate(self.names)}


@dataclasses.dataclass
class Mesh:
    """A triangle mesh with its optional attributes.

    Attributes:
        vertices: (V, 3) float32, metres, world frame.
        faces: (F, 3) int32, counter-clockwise seen from outside.
        vertex_normals: (V, 3) float32 unit vectors, or None.
        vertex_colors: (V, 3) uint8 sRGB, or None.
        uvs: (T, 2) float32 texture coordinates, origin bottom-left, or None.
        face_uvs: (F, 3) int32 indices into ``uvs`` (OBJ-style UV topology, separate
            from the vertex topology so that seams do not split vertices), or None.
        texture: (H, W, 3) uint8 sRGB image, row 0 is v = 1, or None.
        vertex_labels: (V,) int16 index into ``label_names``, or None.
        label_names: names of the labels, or None.
        landmarks: named landmarks, or None.
        params: parametric model parameters (e.g. ``{"anny": {...}}``): nested dicts
            of arrays and scalars, stored under ``/params``.
        regions: named vertex regions, name -> (R,) int32 vertex indices (e.g. H3DS's
            ``face_sphere`` and ``face``; see :func:`~avatarkit.synth.generate.face_regions`),
            stored under ``/regions``; or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_normals: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    uvs: np.ndarray | None = None
    face_uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_labels: np.ndarray | None = None
    label_names: list[str] | None = None
    landmarks: Landmarks | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    regions: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int32).reshape(-1, 3)
        if self.vertex_normals is not None:
            self.vertex_normals = np.asarray(self.vertex_normals, dtype=np.float32).reshape(-1, 3)
        if self.vertex_colors is not None:
            self.vertex_colors = np.asarray(self.vertex_colors, dtype=np.uint8).reshape(-1, 3)
        if self.uvs is not None:
            self.uvs = np.asarray(self.uvs, dtype=np.float32).reshape(-1, 2)
        if self.face_uvs is not None:
            self.face_uvs = np.asarray(self.face_uvs, dtype=np.int32).reshape(-1, 3)
        if self.texture is not None:
            self.texture = np.asarray(self.texture, dtype=np.uint8)
        if self.vertex_labels is not None:
            self.vertex_labels = np.asarray(self.vertex_labels, dtype=np.int16).reshape(-1)
        if self.regions is not None:
            self.regions = {str(k): np.asarray(v, dtype=np.int32).reshape(-1) for k, v in self.regions.items()}

    @property
    def has_uvs(self) -> bool:
        return self.uvs is not None and self.face_uvs is not None

    def face_corners(self) -> np.ndarray:
        """(F, 3, 3) float32: the position of each face corner."""
        return self.vertices[self.faces]

    def face_corner_uvs(self) -> np.ndarray:
        """(F, 3, 2) float32: the UV of each face corner (requires UVs)."""
        if not self.has_uvs:
            raise MeshError("mesh has no UVs")
        return self.uvs[self.face_uvs]

    def with_texture(self, texture: np.ndarray, source: str | Path | None = None) -> Mesh:
        """A copy wearing ``texture`` (H, W, 3) uint8 in its UV layout; a :class:`MeshError`
        naming ``source`` when the mesh has no UVs to wear it by."""
        if not self.has_uvs:
            raise MeshError("--texture needs a mesh with UVs", source)
        return dataclasses.replace(self, texture=texture)

    def landmark_ids(self) -> dict[str, int]:
        """Landmarks that sit on a vertex: name -> vertex index (joint centres left out)."""
        if self.landmarks is None:
            return {}
        lm = self.landmarks
        return {n: int(v) for n, v in zip(lm.names, lm.vertex_ids, strict=True) if v >= 0}

    def landmark_points(self, ids: dict[str, int] | None = None) -> dict[str, np.ndarray]:
        """Landmark positions by name, (3,) float64 metres: the vertices ``ids`` names when given
        (indices already checked), else the mesh's own landmarks (the vertex where one is
        given, else the stored point; unplaced ones left out)."""
        if ids is not None:
            return {n: self.vertices[v].astype(np.float64) for n, v in ids.items()}
        if self.landmarks is None:
            return {}
        lm, out = self.landmarks, {}
        for name, point, vertex in zip(lm.names, lm.points, lm.vertex_ids, strict=True):
            point = self.vertices[vertex] if 0 <= vertex < len(self.vertices) else point
            if np.all(np.isfinite(point)):
                out[name] = np.asarray(point, dtype=np.float64)
        return out

    def face_forward(self) -> np.ndarray | None:
        """(3,) float64 unit vector the face looks along, world frame, from the landmarks:
        ``(left_eye - right_eye) x (eyes' midpoint - lips' midpoint)`` (+Z for a subject in our
        rest frame, whatever its head's pose); None without those four landmarks."""
        points = self.landmark_points()
        if not all(n in points for n in ("left_eye", "right_eye", "left_lips", "right_lips")):
            return None
        across = points["left_eye"] - points["right_eye"]
        up = 0.5 * (points["left_eye"] + points["right_eye"] - points["left_lips"] - points["right_lips"])
        forward = np.cross(across, up)
        length = np.linalg.norm(forward)
        return forward / length if length > 0 else None

    def bounding_sphere(self, scale: float = 1.0) -> tuple[np.ndarray, float]:
        """(3,) float64 centre (the bounding box's midpoint) and radius (to the farthest vertex,
        times ``scale``), metres: where cameras aim and what IDR's unit sphere holds."""
        v = self.vertices.astype(np.float64)
        center = 0.5 * (v.min(axis=0) + v.max(axis=0))
        return center, float(np.linalg.norm(v - center, axis=1).max() * scale)

    def extent(self) -> np.ndarray:
        """(3,) size of the axis-aligned bounding box, metres."""
        return self.vertices.max(axis=0) - self.vertices.min(axis=0)

    def validate(self, source: str | Path | None = None) -> None:
        """Raise :class:`MeshError` naming ``source`` if the mesh is unusable.

        Checks: at least one vertex and face, finite vertices, faces inside the vertex
        range, UV indices inside the UV range, per-vertex arrays of the right length.
        """
        v, f = self.vertices, self.faces
        if len(v) == 0 or len(f) == 0:
            raise empty_mesh_error(len(v), len(f), source)
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            raise MeshError(
                f"{int(bad.sum())} vertices are NaN or infinite (first: vertex {int(np.argmax(bad))})",
                source,
            )
        if f.min() < 0 or f.max() >= len(v):
            raise MeshError(
                f"faces index vertex {int(f.max() if f.max() >= len(v) else f.min())} "
                f"but the mesh has {len(v)} vertices",
                source,
            )
        for name in ("vertex_normals", "vertex_colors", "vertex_labels"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != len(v):
                raise MeshError(f"{name} has {len(arr)} rows for {len(v)} vertices", source)
        if (self.uvs is None) != (self.face_uvs is None):
            raise MeshError("uvs and face_uvs must be given together", source)
        if self.has_uvs:
            if len(self.face_uvs) != len(f):
                raise MeshError(f"face_uvs has {len(self.face_uvs)} rows for {len(f)} faces", source)
            if self.face_uvs.min() < 0 or self.face_uvs.max() >= len(self.uvs):
                raise MeshError(f"face_uvs index past the {len(self.uvs)} UVs", source)
        if self.texture is not None and (self.texture.ndim != 3 or self.texture.shape[2] != 3):
            raise MeshError(f"texture must be (H, W, 3), got {self.texture.shape}", source)
        labels, names = self.vertex_labels, self.label_names
        if labels is not None and names is not None and (labels.min() < 0 or labels.max() >= len(names)):
            raise MeshError(f"vertex_labels index past the {len(self.label_names)} label names", source)
        if self.landmarks is not None:
            lm = self.landmarks
            if len(lm.points) != len(lm.names) or len(lm.vertex_ids) != len(lm.names):
                raise MeshError("landmark names, points and vertex_ids differ in length", source)
            if lm.vertex_ids.max(initial=-1) >= len(v):
                raise MeshError(f"a landmark names vertex {int(lm.vertex_ids.max())} of {len(v)}", source)
        for problem in index_set_problems(self.regions or {}, len(v), "region", "vertex", "vertices"):
            raise MeshError(problem, source)

    def sub_mesh_regions(self, remap: np.ndarray) -> dict[str, np.ndarray] | None:
        """The regions of a sub-mesh whose vertex ``i`` is this mesh's vertex ``j`` where
        ``remap[j] == i`` (-1: left out): each region's kept vertices, renumbered."""
        if self.regions is None:
            return None
        remap = np.asarray(remap)
        return {name: remap[ids][remap[ids] >= 0] for name, ids in self.regions.items()}

    def transformed(self, matrix: np.ndarray, scale: float = 1.0) -> Mesh:
        """A copy moved by a 4x4 rigid ``matrix`` after uniform ``scale``: x' = R (s x) + t.

        Normals and landmark points move with the mesh; vertex regions and labels are kept.
        """
        m = np.asarray(matrix, dtype=np.float64)
        r, t = m[:3, :3], m[:3, 3]
        out = dataclasses.replace(self)
        out.vertices = ((self.vertices.astype(np.float64) * scale) @ r.T + t).astype(np.float32)
        if self.vertex_normals is not None:
            out.vertex_normals = (self.vertex_normals.astype(np.float64) @ r.T).astype(np.float32)
        if self.landmarks is not None:
            pts = (self.landmarks.points.astype(np.float64) * scale) @ r.T + t
            out.landmarks = Landmarks(self.landmarks.names, pts, self.landmarks.vertex_ids)
        return out
