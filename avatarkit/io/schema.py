"""The HDF5 kinds: which datasets each holds, their dtypes and shapes.

One table drives the writers, the readers and ``avatarkit inspect``'s validation, so
the three cannot disagree. Shapes use symbols (``"V"``, ``"N"``, ...): every dataset
that names a symbol must agree on its value within a file. See ``docs/hdf5.md``.
"""

from __future__ import annotations

import dataclasses

SCHEMA_VERSION = 1

ROOT_ATTRS = ("avatarkit_kind", "avatarkit_schema", "avatarkit_version", "command", "inputs", "units")


@dataclasses.dataclass(frozen=True)
class Field:
    """One dataset of a kind.

    Attributes:
        path: HDF5 path, e.g. ``/mesh/vertices``.
        attr: the attribute of the structure it holds.
        dtype: numpy dtype written (``str`` for variable-length strings).
        shape: symbols and integers, e.g. ``("V", 3)``.
        required: whether every file of the kind has it.
        per_item: chunk one item (first axis) per chunk and compress (views).
    """

    path: str
    attr: str
    dtype: str
    shape: tuple[str | int, ...]
    required: bool = True
    per_item: bool = False


@dataclasses.dataclass(frozen=True)
class IndexSets:
    """A group of named index lists into one axis of a kind: each member ``PATH/NAME`` is a
    (K,) ``int32`` dataset of indices in [0, size of ``indexes``).

    Attributes:
        path: the group, e.g. ``/subsets``.
        attr: the attribute of the structure it holds (a dict, name -> indices).
        indexes: the shape symbol of the axis the indices point into (``"N"``, ``"V"``).
        what, item, items: words for messages (``subset``, ``view``, ``views``).
    """

    path: str
    attr: str
    indexes: str
    what: str
    item: str
    items: str


@dataclasses.dataclass(frozen=True)
class KindSpec:
    kind: str
    fields: tuple[Field, ...]
    attrs: tuple[str, ...] = ()
    """Root attributes required beyond the common ones."""
    index_sets: tuple[IndexSets, ...] = ()
    """Optional groups of named index lists (``/regions``, ``/subsets``)."""

    def field(self, attr: str) -> Field:
        return next(f for f in self.fields if f.attr == attr)


KINDS: dict[str, KindSpec] = {
    "mesh": KindSpec(
        "mesh",
        (
            Field("/mesh/vertices", "vertices", "float32", ("V", 3)),
            Field("/mesh/faces", "faces", "int32", ("F", 3)),
            Field("/mesh/vertex_normals", "vertex_normals", "float32", ("V", 3), False),
            Field("/mesh/vertex_colors", "vertex_colors", "uint8", ("V", 3), False),
            Field("/mesh/uvs", "uvs", "float32", ("T", 2), False),
            Field("/mesh/face_uvs", "face_uvs", "int32", ("F", 3), False),
            Field("/mesh/texture", "texture", "uint8", ("H", "W", 3), False),
            Field("/mesh/vertex_labels", "vertex_labels", "int16", ("V",), False),
            Field("/landmarks/names", "landmark_names", "str", ("L",), False),
            Field("/landmarks/points", "landmark_points", "float32", ("L", 3), False),
            Field("/landmarks/vertex_ids", "landmark_vertex_ids", "int32", ("L",), False),
        ),
        index_sets=(IndexSets("/regions", "regions", "V", "region", "vertex", "vertices"),),
    ),
    "views": KindSpec(
        "views",
        (
            Field("/cameras/K", "K", "float32", ("N", 3, 3)),
            Field("/cameras/world_to_cam", "world_to_cam", "float32", ("N", 4, 4)),
            Field("/cameras/target", "target", "float32", ("N", 3), False),
            Field("/images/rgb", "rgb", "uint8", ("N", "H", "W", 3), per_item=True),
            Field("/images/mask", "mask", "uint8", ("N", "H", "W"), per_item=True),
            Field("/images/depth", "depth", "float32", ("N", "H", "W"), False, per_item=True),
            Field("/images/normal", "normal", "float32", ("N", "H", "W", 3), False, per_item=True),
            Field("/images/uv", "uv", "float32", ("N", "H", "W", 2), False, per_item=True),
            Field("/images/label", "label", "int16", ("N", "H", "W"), False, per_item=True),
            Field("/images/albedo", "albedo", "uint8", ("N", "H", "W", 3), False, per_item=True),
        ),
        attrs=("projection", "width", "height"),
        index_sets=(IndexSets("/subsets", "subsets", "N", "subset", "view", "views"),),
    ),
    "samples": KindSpec(
        "samples",
        (
            Field("/points", "points", "float32", ("P", 3)),
            Field("/sdf", "sdf", "float32", ("P",)),
            Field("/occupancy", "occupancy", "uint8", ("P",)),
            Field("/normals", "normals", "float32", ("P", 3), False),
            Field("/colors", "colors", "uint8", ("P", 3), False),
        ),
    ),
    "voxels": KindSpec(
        "voxels",
        (Field("/occupancy", "occupancy", "bool", ("X", "Y", "Z")),),
        attrs=("origin", "pitch"),
    ),
    "texture": KindSpec(
        "texture",
        (
            Field("/texture", "texture", "uint8", ("H", "W", 3)),
            Field("/visibility", "visibility", "float32", ("H", "W")),
            Field("/normal_map", "normal_map", "float32", ("H", "W", 3), False),
            Field("/mirrored", "mirrored", "uint8", ("H", "W"), False),
            Field("/per_view/texture", "view_texture", "uint8", ("N", "H", "W", 3), False, True),
            Field("/per_view/visibility", "view_visibility", "float32", ("N", "H", "W"), False, True),
            Field("/per_view/mirrored", "view_mirrored", "uint8", ("N", "H", "W"), False, True),
            Field("/per_view/yaw", "view_yaw", "float32", ("N",), False),
        ),
    ),
    "transform": KindSpec(
        "transform",
        (Field("/transform", "source_to_target", "float64", (4, 4)),),
        attrs=("scale", "rmse", "fitness", "iterations", "method"),
    ),
    "metrics": KindSpec("metrics", (), attrs=("protocol", "metric_units")),
    "face": KindSpec(
        "face",
        (
            Field("/mesh/faces", "faces", "int32", ("F", 3)),
            Field("/frames/vertices", "vertices", "float32", ("N", "V", 3)),
            Field("/frames/names", "frame_names", "str", ("N",)),
            Field("/cameras/K", "K", "float32", ("N", 3, 3)),
            Field("/cameras/world_to_cam", "world_to_cam", "float32", ("N", 4, 4)),
            Field("/landmarks/input", "landmarks_input", "float32", ("N", 68, 3)),
            Field("/landmarks/fitted", "landmarks_fitted", "float32", ("N", 68, 2)),
            Field("/landmarks/points3d", "landmarks3d", "float32", ("N", 68, 3)),
            Field("/residuals/landmark_px", "landmark_error_px", "float32", ("N",)),
            Field("/residuals/converged", "converged", "uint8", ("N",)),
            Field("/residuals/photometric", "photometric_residual", "float32", ("N",), False),
            Field("/residuals/mask_iou", "mask_iou", "float32", ("N",), False),
            Field("/appearance/albedo", "albedo", "uint8", ("A", "V", 3), False),
            Field("/appearance/sh", "sh", "float32", ("N", 9, 3), False),
        ),
        attrs=("model", "width", "height"),
    ),
}
