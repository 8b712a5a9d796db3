"""Mesh files (OBJ, PLY, GLB/GLTF, OFF) to and from :class:`~avatarkit.structures.Mesh`.

trimesh parses and writes the formats. trimesh keeps one UV per vertex, so vertices
are split at UV seams on the way out and welded back on the way in: face-corner
positions and UVs survive a round trip exactly (to the format's float precision), and
our OBJ-style ``uvs``/``face_uvs`` topology is restored. The split keeps vertex ids: the
mesh's V vertices are written first, in order, and only the seam duplicates follow, so
vertex i of a mesh HDF5 is vertex i of its OBJ, PLY or GLB (landmark and region files
made on one hold for the other). Normals are written where a
format holds them but not read back: they are derived from the geometry when needed.

What each format holds (anything else is dropped, with a warning from ``convert``):

========  =====  =======  ==============  ==============  ========
format    UVs    texture  vertex colours  vertex labels   normals
========  =====  =======  ==============  ==============  ========
OBJ       yes    yes      yes (no tex)    no              written
PLY       yes    no       yes             yes (``label``) written
GLB/GLTF  yes    yes      yes (no tex)    no              written
OFF       no     no       yes             no              no
========  =====  =======  ==============  ==============  ========
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarkitWarning, InputError, MeshError, OptionError
from avatarkit.io.atomic import atomic_paths
from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES
from avatarkit.io.units import METRES_PER_UNIT
from avatarkit.structures import Mesh
from avatarkit.structures.mesh import ZERO_AREA, empty_mesh_error, surface_area

UP_TO_Y = {
    # rotations taking the file's up axis to +Y, facing direction to +Z
    "y": np.eye(3),
    # Z-up (Blender, many scanners): subject faces -Y; (x, y, z) -> (x, z, -y)
    "z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
}
PLAUSIBLE_SIZE = (0.1, 3.0)
"""Largest extent, metres, outside of which a mesh's units are likely wrong."""


def load_mesh(path: str | Path, units: str | None = None, up: str = "y", units_flag: str = "--units") -> Mesh:
    """Load a mesh file or a ``mesh`` HDF5 file into our frame and units.

    Args:
        path: OBJ, PLY, GLB, GLTF, OFF or avatarkit ``mesh`` HDF5 file.
        units: the file's units, ``m``, ``cm`` or ``mm``. None means metres, with an
            :class:`AvatarkitWarning` if the size is implausible (HDF5 files are
            always metres).
        up: the file's up axis, ``y`` or ``z`` (Z-up meshes are assumed to face -Y).
        units_flag: the calling verb's option for ``units``, named by that warning.

    Returns:
        A validated mesh, metres, +Y up, facing +Z.

    Raises:
        InputError: missing, unreadable or not a mesh; MeshError: empty, NaN, bad faces.
    """
    path = Path(path)
    if units is not None and units not in METRES_PER_UNIT:
        raise OptionError(f"unknown units {units!r}; use one of {', '.join(METRES_PER_UNIT)}")
    if up not in UP_TO_Y:
        raise OptionError(f"unknown up axis {up!r}; use y or z")
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        from avatarkit.io.hdf5 import read_mesh

        if units is not None or up != "y":
            raise OptionError("--units and --up apply to mesh files; mesh HDF5 files are already metres, +Y up")

        return read_mesh(path)
    if suffix not in MESH_SUFFIXES:
        raise InputError(
            f"unknown mesh format {suffix or '(no extension)'!r}; expected OBJ, PLY, GLB, GLTF, OFF or HDF5", path
        )
    if not path.exists():
        raise InputError("no such file", path)
    mesh = _read_with_trimesh(path)
    mesh.validate(path)
    scale = METRES_PER_UNIT[units or "m"]
    if scale != 1.0 or up != "y":
        mesh = mesh.transformed(_rotation4(UP_TO_Y[up]), scale=scale)
    if units is None:
        check_plausible_size(mesh, path, units_flag)
    return mesh


def load_pair_member(path: str | Path, units: str | None = None, up: str = "y", units_flag: str = "--units") -> Mesh:
    """:func:`load_mesh` for verbs comparing two meshes, where one may be a mesh file and the
    other a mesh HDF5: ``units`` and ``up`` convert mesh files; HDF5 files are already
    metres, +Y up, and are read as they are. ``units_flag``: as for :func:`load_mesh`. A mesh
    whose faces all have zero area is a :class:`MeshError` naming the file."""
    mesh = load_mesh(path) if Path(path).suffix.lower() in HDF5_SUFFIXES else load_mesh(path, units, up, units_flag)
    if not surface_area(mesh.vertices, mesh.faces) > 0:  # nothing to compare: say which file, here
        raise MeshError(f"{ZERO_AREA} (no surface to compare)", path)
    return mesh


def check_plausible_size(mesh: Mesh, path: str | Path, units_flag: str = "--units") -> None:
    """Warn, naming the verb's units option ``units_flag``, when a mesh read as metres is
    implausibly large or small (largest extent outside :data:`PLAUSIBLE_SIZE`)."""
    size = float(mesh.extent().max())
    low, high = PLAUSIBLE_SIZE
    if size > high:
        warnings.warn(
            f"{path}: mesh is {size:.4g} units across, implausible in metres; "
            f"if it is in centimetres or millimetres pass {units_flag} cm or {units_flag} mm",
            AvatarkitWarning,
            stacklevel=2,
        )
    elif size < low:
        warnings.warn(
            f"{path}: mesh is only {size:.4g} m across; if that is not metres pass {units_flag}",
            AvatarkitWarning,
            stacklevel=2,
        )


def check_sizes(pred: Mesh, gt: Mesh, flag: str = "--units") -> None:
    """Warn (:class:`AvatarkitWarning`) when the two meshes' sizes differ by 10x or more: a
    likely units mistake (``flag`` names the option that fixes it)."""
    size_pred, size_gt = float(pred.extent().max()), float(gt.extent().max())
    # a hair of tolerance: a mesh scaled by exactly 10 must warn despite float32 rounding
    if size_pred > 0 and size_gt > 0 and max(size_pred / size_gt, size_gt / size_pred) >= 10 * (1 - 1e-6):
        warnings.warn(
            f"the prediction is {size_pred:.3g} m across and the ground truth {size_gt:.3g} m: "
            f"a units mistake? ({flag} on mesh files)",
            AvatarkitWarning,
            stacklevel=3,
        )


def _rotation4(r: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = r
    return m


def _read_with_trimesh(path: Path) -> Mesh:
    import trimesh

    try:
        loaded = trimesh.load(path, process=False, force="mesh")
    except Exception as exc:  # trimesh raises many types for junk input
        raise InputError(f"not a readable mesh ({type(exc).__name__}: {exc})", path) from None
    if not isinstance(loaded, trimesh.Trimesh):
        raise InputError("no triangle mesh in the file", path)
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(loaded.faces, dtype=np.int64).reshape(-1, 3)
    if len(vertices) == 0 or len(faces) == 0:
        raise empty_mesh_error(len(vertices) or _count_points(path), len(faces), path)
    check_face_indices(faces, len(vertices), path)  # before any indexing: NumPy would wrap -1
    visual = loaded.visual
    uv = getattr(visual, "uv", None)
    texture = _texture_image(visual)
    colors = None
    if getattr(visual, "kind", None) == "vertex":
        colors = np.asarray(visual.vertex_colors)[:, :3]
    labels = _ply_labels(loaded, len(vertices), path) if path.suffix.lower() == ".ply" else None

    # weld vertices split at UV seams: identical positions become one vertex again
    welded, first, inverse = np.unique(vertices, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)  # keep the file's vertex order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keep = first[order]
    mesh = Mesh(vertices=welded[order], faces=rank[inverse][faces])
    if colors is not None:
        mesh.vertex_colors = colors[keep]
    if labels is not None:
        mesh.vertex_labels = labels[keep]
    if uv is not None and len(uv) == len(vertices):
        uvs, face_uvs = np.unique(np.asarray(uv, dtype=np.float32), axis=0, return_inverse=True)
        mesh.uvs = uvs
        mesh.face_uvs = face_uvs.reshape(-1)[faces]
        mesh.texture = texture
    return mesh


def _count_points(path: Path) -> int:
    """How many vertices a file without faces holds (trimesh's ``force="mesh"`` drops a point
    cloud's vertices, and the error should not say 0 of a file that has some)."""
    import trimesh

    try:
        loaded = trimesh.load(path, process=False)
    except Exception:  # the file read once already; a count is not worth a second error
        return 0
    geometries = loaded.geometry.values() if isinstance(loaded, trimesh.Scene) else [loaded]
    return sum(len(getattr(g, "vertices", ())) for g in geometries)


def _texture_image(visual) -> np.ndarray | None:
    material = getattr(visual, "material", None)
    if material is None:
        return None
    image = getattr(material, "image", None)
    if image is None:
        image = getattr(material, "baseColorTexture", None)
    if image is None:
        return None
    arr = np.asarray(image.convert("RGB"))
    return None if arr.shape[0] <= 2 and arr.shape[1] <= 2 else arr  # trimesh's placeholder


def _ply_labels(loaded, n_vertices: int, path: Path) -> np.ndarray | None:
    """The ``label`` vertex property of a PLY as int16, or None. trimesh keeps a binary PLY's
    vertex data as a structured array and an ASCII one's as a dict of arrays."""
    raw = loaded.metadata.get("_ply_raw")
    if not raw or "vertex" not in raw:
        return None
    data = raw["vertex"].get("data")
    names = data.keys() if isinstance(data, dict) else getattr(getattr(data, "dtype", None), "names", None) or ()
    if "label" not in names:
        return None
    labels = np.asarray(data["label"])
    if labels.ndim == 2 and labels.shape[1] == 1:  # ASCII PLY: one column per property
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != n_vertices or labels.dtype.kind not in "iuf":
        raise MeshError("the vertex property 'label' must be one number per vertex", path)
    info = np.iinfo(np.int16)
    if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
        raise MeshError("the vertex property 'label' must hold whole numbers", path)
    if labels.min() < info.min or labels.max() > info.max:
        raise MeshError(f"the vertex property 'label' must lie in [{info.min}, {info.max}]", path)
    return labels.astype(np.int16)


def check_face_indices(faces: np.ndarray, n_vertices: int, path: str | Path | None = None) -> None:
    """Raise :class:`MeshError` naming ``path`` when a face index is negative or past the
    ``n_vertices`` vertices (check raw file indices before using them: NumPy wraps -1)."""
    faces = np.asarray(faces)
    if faces.size == 0:
        return
    low, high = int(faces.min()), int(faces.max())
    if low < 0:
        raise MeshError(f"faces index vertex {low}; indices must be 0 to {n_vertices - 1}", path)
    if high >= n_vertices:
        raise MeshError(f"faces index vertex {high} but the mesh has {n_vertices} vertices", path)


def save_mesh(mesh: Mesh, path: str | Path) -> list[Path]:
    """Write ``mesh`` to a mesh file (by extension), atomically; returns the files written.

    An OBJ with a texture also writes ``<stem>.mtl`` and ``<stem>.png`` beside it.
    Raises :class:`OptionError` for an unknown extension.
    """
    import trimesh

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise OptionError(
            f"cannot write {suffix or 'files without an extension'}; use .obj, .ply, .glb, .gltf, .off or .h5"
        )
    tm = _to_trimesh(mesh, name=path.stem, with_uv=suffix != ".off")
    if suffix == ".obj":
        text, extra = trimesh.exchange.obj.export_obj(
            tm, include_normals=mesh.vertex_normals is not None, return_texture=True, mtl_name=f"{path.stem}.mtl"
        )
        files = {path: text.encode()} | {path.with_name(name): data for name, data in extra.items()}
    else:
        files = {path: tm.export(file_type=suffix[1:])}
    targets = list(files)
    with atomic_paths(targets) as tmps:
        for tmp, target in zip(tmps, targets, strict=True):
            data = files[target]
            tmp.write_bytes(data if isinstance(data, bytes) else data.encode())
    return targets


def _to_trimesh(mesh: Mesh, name: str, with_uv: bool):
    import PIL.Image
    import trimesh

    vertices, faces, keep = mesh.vertices, mesh.faces, np.arange(len(mesh.vertices))
    visual = None
    if with_uv and mesh.has_uvs:
        keep, uv_ids, faces = split_at_seams(mesh.faces, mesh.face_uvs, len(mesh.vertices))
        vertices = mesh.vertices[keep]
        image = None if mesh.texture is None else PIL.Image.fromarray(mesh.texture)
        material = trimesh.visual.material.SimpleMaterial(image=image, name=name)
        visual = trimesh.visual.TextureVisuals(uv=mesh.uvs[uv_ids], material=material)
    elif mesh.vertex_colors is not None:
        visual = trimesh.visual.ColorVisuals(vertex_colors=mesh.vertex_colors)
    tm = trimesh.Trimesh(vertices=vertices, faces=faces, visual=visual, process=False)
    if mesh.vertex_normals is not None:
        tm.vertex_normals = mesh.vertex_normals[keep]
    if mesh.vertex_labels is not None:
        tm.vertex_attributes["label"] = mesh.vertex_labels[keep]
    return tm


def split_at_seams(
    faces: np.ndarray, face_uvs: np.ndarray, n_vertices: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One vertex per distinct (vertex, UV) pair, as formats with one UV per vertex need,
    keeping vertex ids: vertex i stays vertex i (with the UV of its first pair, by UV index;
    an unreferenced vertex gets UV 0) and only the extra pairs of vertices on UV seams are
    appended after the ``n_vertices`` originals, by vertex then UV index.

    Args:
        faces: (F, 3) vertex ids. face_uvs: (F, 3) UV ids. n_vertices: V.

    Returns:
        keep: (V + S,) original vertex of each written vertex (``keep[:V] == arange(V)``);
        uv_ids: (V + S,) UV id of each written vertex; faces: (F, 3) into the written vertices.
    """
    pairs = np.stack([np.asarray(faces).reshape(-1), np.asarray(face_uvs).reshape(-1)], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    first = np.ones(len(unique), dtype=bool)
    first[1:] = unique[1:, 0] != unique[:-1, 0]  # sorted by vertex: a vertex's first pair keeps its id
    extra = unique[~first]
    new_id = np.empty(len(unique), dtype=np.int64)
    new_id[first] = unique[first, 0]
    new_id[~first] = n_vertices + np.arange(len(extra))
    keep = np.concatenate([np.arange(n_vertices), extra[:, 0]])
    uv_ids = np.zeros(n_vertices + len(extra), dtype=np.int64)
    uv_ids[unique[first, 0]] = unique[first, 1]
    uv_ids[n_vertices:] = extra[:, 1]
    return keep, uv_ids, new_id[inverse.reshape(-1)].reshape(-1, 3)
