"""Implicit surfaces as methods hand them to ``reconstruct``: a field of values over a box,
its surface level and which side is inside, and optionally the surface's colour.

Every method's predictor returns an :class:`ImplicitField` (the ``Predictor`` contract in
:mod:`avatarkit.methods.contract`); :func:`reconstruct_field` evaluates it coarse to fine
(:func:`~avatarkit.reconstruct.extract.evaluate_octree`), meshes it at its level, maps the
mesh to the world and colours its vertices. An occupancy network is ``level=0.5,
inside="above"``; a signed distance function is ``level=0.0, inside="below"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from avatarkit.errors import OptionError
from avatarkit.reconstruct.extract import evaluate_octree, extract_mesh
from avatarkit.structures import Mesh

INSIDE = ("above", "below")


@dataclasses.dataclass
class ImplicitField:
    """A scalar field whose level set is a surface.

    Attributes:
        values: ``fn(points (P, 3) world, metres) -> (P,)`` field values.
        box: (2, 3) min and max corners of the volume to mesh, in the box frame.
        world_to_box: (4, 4) rigid map from the world into the box frame (identity: the box
            is axis-aligned in the world; a camera's ``world_to_cam`` for a view's frustum box).
        level: the surface's value (0.5 for occupancy, 0 for a signed distance).
        inside: ``above`` (occupancy: values above ``level`` are inside) or ``below`` (SDF).
        colors: ``fn(points (P, 3) world) -> (P, 3)`` colours in [0, 1] or uint8 (albedo), or
            None; the mesh's vertices get them.
    """

    values: Callable[[np.ndarray], np.ndarray]
    box: np.ndarray
    world_to_box: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(4))
    level: float = 0.5
    inside: str = "above"
    colors: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float64).reshape(2, 3)
        self.world_to_box = np.asarray(self.world_to_box, dtype=np.float64).reshape(4, 4)
        if self.inside not in INSIDE:
            raise OptionError(f"inside must be above or below, got {self.inside!r}")
        if not (self.box[1] > self.box[0]).all():
            raise OptionError(f"the box must have a positive size, got {self.box.tolist()}")


@dataclasses.dataclass
class Reconstruction:
    """A mesh in world metres, the queries that made it, and its box (in the box frame)."""

    mesh: Mesh
    queries: int
    lattice_points: int
    bounds: np.ndarray

    def summary(self) -> dict:
        """What ``reconstruct`` reports per mesh: its size, the queries it cost, its height (metres)."""
        return {
            "vertices": len(self.mesh.vertices),
            "faces": len(self.mesh.faces),
            "queries": int(self.queries),
            "lattice_points": int(self.lattice_points),
            "height_m": float(np.ptp(self.mesh.vertices[:, 1])),
        }


def reconstruct_field(
    field: ImplicitField,
    resolution: int = 256,
    initial: int = 32,
    keep_all: bool = False,
    tolerance: float | None = 0.01,
) -> Reconstruction:
    """The mesh of ``field``: its box evaluated coarse to fine on a ``resolution``^3 grid (PIFu's
    rule: cells whose corners differ by less than ``tolerance`` are filled unqueried), marching
    cubes at its level (largest connected part unless ``keep_all``), in world metres, with
    vertex colours when the field has them."""
    rotation, translation = field.world_to_box[:3, :3], field.world_to_box[:3, 3]

    def in_box(points_box: np.ndarray) -> np.ndarray:
        return field.values((points_box - translation) @ rotation)

    values, queries = evaluate_octree(in_box, field.box, resolution, min(initial, resolution), field.level, tolerance)
    mesh = extract_mesh(values, field.box, field.level, keep_all, inside=field.inside)
    mesh.vertices = ((mesh.vertices.astype(np.float64) - translation) @ rotation).astype(np.float32)
    if field.colors is not None:
        mesh.vertex_colors = _as_uint8(field.colors(mesh.vertices.astype(np.float64)))
    return Reconstruction(mesh, queries, (resolution + 1) ** 3, field.box)


def _as_uint8(colors: np.ndarray) -> np.ndarray:
    colors = np.asarray(colors)
    if colors.dtype == np.uint8:
        return colors
    return np.rint(np.clip(colors, 0.0, 1.0) * 255).astype(np.uint8)
