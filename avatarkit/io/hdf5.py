"""Read, write and validate avatarkit's HDF5 files (one artifact per file).

Writers are atomic (``avatarkit.io.atomic``) and stamp provenance; readers check the
kind and schema before anything else and raise :class:`~avatarkit.errors.KindError`
naming the file, the kind found and the kind expected.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from avatarkit import __version__
from avatarkit.errors import InputError, KindError, MeshError
from avatarkit.io.atomic import atomic_path
from avatarkit.io.formats import is_hdf5
from avatarkit.io.schema import KINDS, ROOT_ATTRS, SCHEMA_VERSION, Field, IndexSets, KindSpec
from avatarkit.structures import Landmarks, Mesh, Metrics, Samples, Texture, Transform, Views, Voxels
from avatarkit.structures.cameras import PROJECTIONS, camera_problems
from avatarkit.structures.face import FaceTrack
from avatarkit.structures.mesh import EMPTY_MESH, empty_mesh_error

_KIND_OF_TYPE: dict[type, str] = {
    Mesh: "mesh",
    Views: "views",
    Samples: "samples",
    Voxels: "voxels",
    Texture: "texture",
    Transform: "transform",
    Metrics: "metrics",
    FaceTrack: "face",
}


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Who wrote a file: the full command line and the input paths."""

    command: str
    inputs: tuple[str, ...] = ()

    @classmethod
    def from_argv(cls, inputs: list[str | Path] | tuple = ()) -> Provenance:
        argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else []
        return cls(shlex.join(argv), tuple(str(p) for p in inputs))


def kind_of(obj: Any) -> str:
    return _KIND_OF_TYPE[type(obj)]


# ---------------------------------------------------------------------------- writing


def write_artifact(path: str | Path, obj: Any, provenance: Provenance | None = None) -> Path:
    """Write one artifact (a :class:`Mesh`, :class:`Views`, ...) atomically to ``path``."""
    import h5py

    kind = kind_of(obj)
    spec = KINDS[kind]
    provenance = provenance or Provenance.from_argv()
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["avatarkit_kind"] = kind
        f.attrs["avatarkit_schema"] = SCHEMA_VERSION
        f.attrs["avatarkit_version"] = __version__
        f.attrs["command"] = provenance.command
        f.attrs["inputs"] = list(provenance.inputs)
        f.attrs["units"] = "m"
        values = _flatten(obj)
        for field in spec.fields:
            value = values.get(field.attr)
            if value is not None:
                _write_field(f, field, value)
        for sets in spec.index_sets:
            lists = values.get(sets.attr) or {}
            group = f.create_group(sets.path, track_order=True) if lists else None  # read back in this order
            for name, ids in lists.items():
                group.create_dataset(name, data=np.asarray(ids, dtype=np.int32))
        _write_extras(f, obj)
    return path


def _write_field(f, field: Field, value) -> None:
    import h5py

    if field.dtype == "str":
        f.create_dataset(field.path, data=np.asarray(value, dtype=object), dtype=h5py.string_dtype())
        return
    arr = np.ascontiguousarray(value, dtype=field.dtype)
    kwargs: dict[str, Any] = {}
    if field.per_item and arr.ndim > 1 and arr.shape[0] > 0:
        _write_per_item(f, field.path, arr)
        return
    if arr.size > 65536:
        kwargs = dict(compression="gzip", compression_opts=1, shuffle=True)
    f.create_dataset(field.path, data=arr, **kwargs)


def _write_per_item(f, path: str, arr: np.ndarray) -> None:
    """One item (view) per chunk, shuffled and deflated (level 1): the standard HDF5 filters,
    readable by any HDF5 library. The chunks are compressed on every CPU thread (zlib lets go
    of the GIL) and written as they are (``write_direct_chunk``): writing a views file is mostly
    compression, and HDF5 compresses on one thread."""
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    from avatarkit.backends.warp import cpu_threads

    dset = f.create_dataset(
        path, shape=arr.shape, dtype=arr.dtype, chunks=(1, *arr.shape[1:]), compression="gzip", compression_opts=1,
        shuffle=True,
    )  # fmt: skip
    size = arr.dtype.itemsize

    def encode(item: np.ndarray) -> bytes:
        raw = np.ascontiguousarray(item).view(np.uint8)
        shuffled = raw if size == 1 else raw.reshape(-1, size).T  # HDF5's shuffle: byte k of every value, k = 0, 1, ...
        return zlib.compress(np.ascontiguousarray(shuffled).tobytes(), 1)

    zero = (0,) * (arr.ndim - 1)
    with ThreadPoolExecutor(max(1, min(cpu_threads(), len(arr)))) as pool:
        for i, chunk in enumerate(pool.map(encode, arr)):
            dset.id.write_direct_chunk((i, *zero), chunk)


def _flatten(obj: Any) -> dict[str, Any]:
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mesh) and obj.landmarks is not None:
        values.update(
            landmark_names=obj.landmarks.names,
            landmark_points=obj.landmarks.points,
            landmark_vertex_ids=obj.landmarks.vertex_ids,
        )
    return values


def _write_extras(f, obj: Any) -> None:
    """What the field table does not cover: attributes, name lists, free-form groups."""
    if isinstance(obj, Mesh):
        if obj.vertex_labels is not None and obj.label_names is not None:
            f["/mesh/vertex_labels"].attrs["label_names"] = list(obj.label_names)
        for model, params in obj.params.items():
            group = f.create_group(f"/params/{model}")
            group.attrs["model"] = model
            _write_tree(group, params)
    elif isinstance(obj, Views):
        f.attrs["projection"] = obj.projection
        f.attrs["width"] = obj.width
        f.attrs["height"] = obj.height
        if obj.lighting:
            _write_tree(f.create_group("/lighting"), obj.lighting)
    elif isinstance(obj, (Samples, Texture)):
        _write_attrs(f, obj.attrs)
    elif isinstance(obj, Voxels):
        f.attrs["origin"] = np.asarray(obj.origin, dtype=np.float64)
        f.attrs["pitch"] = float(obj.pitch)
        _write_attrs(f, obj.attrs)
    elif isinstance(obj, Transform):
        for name in ("scale", "rmse", "fitness", "coverage"):
            f.attrs[name] = float(getattr(obj, name))
        f.attrs["iterations"] = int(obj.iterations)
        f.attrs["method"] = obj.method
    elif isinstance(obj, FaceTrack):
        f.attrs["model"] = obj.model
        f.attrs["model_file"] = obj.model_file
        f.attrs["width"] = int(obj.width)
        f.attrs["height"] = int(obj.height)
        f.attrs["projection"] = "perspective"
        _write_attrs(f, obj.attrs)
        group = f.create_group("/params")
        group.attrs["model"] = obj.model
        _write_tree(group, obj.params)
    elif isinstance(obj, Metrics):
        f.attrs["protocol"] = obj.protocol
        f.attrs["metric_units"] = obj.units
        group = f.create_group("/metrics")
        for name, value in obj.values.items():
            group.attrs[name] = float(value)
        for name, arr in obj.per_point.items():
            f.create_dataset(f"/per_point/{name}", data=np.asarray(arr, dtype=np.float32))


def _write_attrs(f, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        if key in ROOT_ATTRS:
            raise ValueError(f"attribute {key!r} is reserved")
        f.attrs[key] = value


def _write_tree(group, tree: dict[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.create_group(key), value)
        elif isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], str)):
            group.attrs[key] = value
        else:
            group.create_dataset(key, data=np.asarray(value))


# ---------------------------------------------------------------------------- reading


def open_h5(path: str | Path):
    """Open an HDF5 file for reading, with one clear error when it is not one."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a folder, not a file", path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = "truncated or damaged" if path.stat().st_size > 0 else "empty"
        raise InputError(f"not a readable HDF5 file ({reason}: {exc.args[0] if exc.args else exc})", path) from None


def file_kind(f, path: str | Path | None = None) -> str | None:
    """The file's ``avatarkit_kind``, or None when it has none; a :class:`KindError` naming
    ``path`` when its root attributes are malformed (see :func:`root_header`)."""
    kind, _, problem = root_header(f)
    if problem is not None:
        raise KindError(problem, path)
    return kind


def root_header(f) -> tuple[str | None, int, str | None]:
    """``(kind, schema, problem)`` from a file's root attributes: ``avatarkit_kind`` (None
    when absent), ``avatarkit_schema`` (0 when absent) and the first way they are malformed
    (a kind that is not a string, a schema that is not a whole number), or None."""
    raw_kind = _plain(f.attrs.get("avatarkit_kind"))
    if raw_kind is not None and not isinstance(raw_kind, str):
        return None, 0, f"root attribute avatarkit_kind is {_show(raw_kind)}, not a kind name"
    raw_schema = _plain(f.attrs.get("avatarkit_schema", 0))
    schema = _whole_number(raw_schema)
    if schema is None:
        return raw_kind, 0, f"root attribute avatarkit_schema is {_show(raw_schema)}, not a schema number"
    return raw_kind, schema, None


def _whole_number(value) -> int | None:
    """``value`` as an int when it is a whole number (an integer, or a float without a
    fraction), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and np.isfinite(value) and value == int(value):
        return int(value)
    return None


def _show(value) -> str:
    """A short description of an attribute value for an error message."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_kind(f, path: str | Path, expected: str | tuple[str, ...]) -> str:
    """Raise :class:`KindError` unless ``f`` is an avatarkit file of an expected kind."""
    expected = (expected,) if isinstance(expected, str) else expected
    kind, schema, problem = root_header(f)
    want = " or ".join(repr(e) for e in expected)
    if problem is not None:
        raise KindError(f"{problem}; expected kind {want}", path)
    if kind is None:
        raise KindError(f"not an avatarkit file (no avatarkit_kind attribute); expected kind {want}", path)
    if kind not in expected:
        raise KindError(f"is a {kind!r} file, expected kind {want}", path)
    if schema > SCHEMA_VERSION:
        raise KindError(
            f"schema {schema} is newer than this avatarkit reads ({SCHEMA_VERSION}); upgrade avatarkit", path
        )
    problems = validate_open(f, KINDS[kind])
    if problems and kind == "mesh" and problems[0].startswith(EMPTY_MESH):
        raise MeshError(problems[0], path)  # as a mesh file says it: evaluate-chamfer scores it as failed
    if problems:
        raise KindError(f"invalid {kind} file: {problems[0]}", path)
    return kind


def read_artifact(path: str | Path, expected: str | tuple[str, ...]) -> Any:
    """Read a file of an expected kind into its structure (``Mesh``, ``Views``, ...)."""
    path = Path(path)
    with open_h5(path) as f:
        kind = check_kind(f, path, expected)
        spec = KINDS[kind]
        values = {fld.attr: _read_field(f[fld.path], fld) for fld in spec.fields if fld.path in f}
        for sets in spec.index_sets:
            if sets.path in f:
                values[sets.attr] = {name: dset[()] for name, dset in f[sets.path].items()}
        return _BUILDERS[kind](f, values)


def read_if_kind(path: str | Path | None, kind: str) -> Any:
    """The ``kind`` artifact ``path`` holds when it is an HDF5 file of that kind, else None
    (another kind, another format, or no path)."""
    from avatarkit.io.formats import is_hdf5

    if path is None or not is_hdf5(path):
        return None
    with open_h5(path) as f:
        found = file_kind(f, path)
    return read_artifact(path, kind) if found == kind else None


def read_mesh(path: str | Path) -> Mesh:
    """Read a ``mesh`` file, or a ``face`` file's first frame (``track-face``'s fit, so every
    verb that takes a mesh takes a fit); the mesh is validated (see :meth:`Mesh.validate`)."""
    found = read_artifact(path, ("mesh", "face"))
    mesh = found.mesh(0) if isinstance(found, FaceTrack) else found
    mesh.validate(path)
    return mesh


def read_face_mesh(path: str | Path, frame: int = 0) -> Mesh:
    """Frame ``frame`` of a ``face`` file (``track-face``'s fit) as a validated :class:`Mesh`."""
    track = read_artifact(path, "face")
    if not -len(track) <= frame < len(track):
        raise InputError(f"has {len(track)} frames; there is no frame {frame}", path)
    mesh = track.mesh(frame)
    mesh.validate(path)
    return mesh


def read_view(path: str | Path, index: int) -> Views:
    """One view of a ``views`` file (a one-view :class:`Views`, without the file's subsets),
    without reading the others."""
    path = Path(path)
    with open_h5(path) as f:
        check_kind(f, path, "views")
        count = len(f["/cameras/K"])
        if not -count <= index < count:
            raise InputError(f"has {count} views; there is no view {index}", path)
        index %= count
        spec = KINDS["views"]
        values = {fld.attr: f[fld.path][index : index + 1] for fld in spec.fields if fld.path in f}
        return _build_views(f, values)


def _read_field(dset, field: Field):
    if field.dtype == "str":
        return [s.decode() if isinstance(s, bytes) else str(s) for s in dset[()]]
    return dset[()]


def _attrs(f, names: tuple[str, ...] = ()) -> dict[str, Any]:
    skip = set(ROOT_ATTRS) | set(names)
    return {k: _plain(v) for k, v in f.attrs.items() if k not in skip}


def _plain(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")  # a hostile file's bytes must not end in a traceback
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_tree(group) -> dict[str, Any]:
    out: dict[str, Any] = {k: _plain(v) for k, v in group.attrs.items() if k != "model"}
    for key, item in group.items():
        out[key] = _read_tree(item) if hasattr(item, "keys") else item[()]
    return out


def _build_mesh(f, v: dict[str, Any]) -> Mesh:
    landmarks = None
    if "landmark_names" in v:
        n = len(v["landmark_names"])
        landmarks = Landmarks(
            v["landmark_names"],
            v.get("landmark_points", np.full((n, 3), np.nan, np.float32)),
            v.get("landmark_vertex_ids", np.full(n, -1, np.int32)),
        )
    label_names = None
    if "vertex_labels" in v:
        names = f["/mesh/vertex_labels"].attrs.get("label_names")
        label_names = None if names is None else [_plain(s) for s in names]
    params = {k: _read_tree(g) for k, g in f["/params"].items()} if "/params" in f else {}
    fields = {fl.name for fl in dataclasses.fields(Mesh)}
    return Mesh(
        **{k: val for k, val in v.items() if k in fields},
        label_names=label_names,
        landmarks=landmarks,
        params=params,
    )


def _build_views(f, v: dict[str, Any]) -> Views:
    lighting = _read_tree(f["/lighting"]) if "/lighting" in f else {}
    return Views(projection=_plain(f.attrs["projection"]), lighting=lighting, **v)


_BUILDERS = {
    "mesh": _build_mesh,
    "views": _build_views,
    "samples": lambda f, v: Samples(attrs=_attrs(f), **v),
    "voxels": lambda f, v: Voxels(
        origin=np.asarray(f.attrs["origin"]), pitch=float(f.attrs["pitch"]), attrs=_attrs(f, ("origin", "pitch")), **v
    ),
    "texture": lambda f, v: Texture(attrs=_attrs(f), **v),
    "transform": lambda f, v: Transform(
        scale=float(f.attrs["scale"]),
        rmse=float(f.attrs["rmse"]),
        fitness=float(f.attrs["fitness"]),
        iterations=int(f.attrs["iterations"]),
        method=_plain(f.attrs["method"]),
        coverage=float(f.attrs.get("coverage", np.nan)),
        **v,
    ),
    "face": lambda f, v: FaceTrack(
        model=_plain(f.attrs["model"]),
        model_file=_plain(f.attrs.get("model_file", "")),
        width=int(f.attrs["width"]),
        height=int(f.attrs["height"]),
        params=_read_tree(f["/params"]) if "/params" in f else {},
        attrs=_attrs(f, ("model", "model_file", "width", "height", "projection")),
        **v,
    ),
    "metrics": lambda f, v: Metrics(
        values={k: float(x) for k, x in f["/metrics"].attrs.items()} if "/metrics" in f else {},
        units=_plain(f.attrs["metric_units"]),
        protocol=_plain(f.attrs["protocol"]),
        per_point={k: d[()] for k, d in f["/per_point"].items()} if "/per_point" in f else {},
    ),
}


# ---------------------------------------------------------------------------- validation


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_ATTR_RULES: dict[str, tuple[Any, str]] = {
    # root attributes of a kind beyond the common ones: what each must be, for readers that use it
    "projection": (lambda v: v in PROJECTIONS, f"one of {', '.join(PROJECTIONS)}"),
    "width": (lambda v: (n := _whole_number(v)) is not None and n >= 1, "a positive whole number"),
    "height": (lambda v: (n := _whole_number(v)) is not None and n >= 1, "a positive whole number"),
    "origin": (
        lambda v: isinstance(v, np.ndarray) and v.shape == (3,) and v.dtype.kind in "iuf" and np.isfinite(v).all(),
        "3 finite numbers",
    ),
    "pitch": (lambda v: _is_number(v) and np.isfinite(v) and v > 0, "a positive number"),
    "scale": (_is_number, "a number"),
    "rmse": (_is_number, "a number"),
    "fitness": (_is_number, "a number"),
    "iterations": (lambda v: _whole_number(v) is not None, "a whole number"),
    "method": (lambda v: isinstance(v, str), "a string"),
    "protocol": (lambda v: isinstance(v, str), "a string"),
    "metric_units": (lambda v: isinstance(v, str), "a string"),
    "model": (lambda v: isinstance(v, str), "a string"),
}


def _attr_problems(f, spec: KindSpec) -> list[str]:
    problems = []
    for name in spec.attrs:
        rule = _ATTR_RULES.get(name)
        if name in f.attrs and rule is not None and not rule[0](_plain(f.attrs[name])):
            problems.append(f"root attribute {name} is {_show(_plain(f.attrs[name]))}, expected {rule[1]}")
    if spec.kind == "metrics" and "/metrics" in f:
        for name, value in f["/metrics"].attrs.items():
            if not _is_number(_plain(value)):
                problems.append(f"metric {name} is {_show(_plain(value))}, not a number")
    return problems


def validate_open(f, spec: KindSpec) -> list[str]:
    """Every way an open file breaks its kind's contract, as short sentences (empty if valid)."""
    problems = [f"missing root attribute {a!r}" for a in (*ROOT_ATTRS, *spec.attrs) if a not in f.attrs]
    problems += _attr_problems(f, spec)
    sizes: dict[str, int] = {}
    for field in spec.fields:
        if field.path not in f:
            if field.required:
                problems.append(f"missing dataset {field.path}")
            continue
        dset = f[field.path]
        if not hasattr(dset, "shape"):
            problems.append(f"{field.path} is a group, not a dataset")
            continue
        if not _dtype_ok(dset.dtype, field.dtype):
            problems.append(f"{field.path} has dtype {dset.dtype}, expected {field.dtype}")
        if len(dset.shape) != len(field.shape):
            problems.append(f"{field.path} has shape {dset.shape}, expected {_shape_str(field.shape)}")
            continue
        for size, want in zip(dset.shape, field.shape, strict=True):
            if isinstance(want, int) and size != want:
                problems.append(f"{field.path} has shape {dset.shape}, expected {_shape_str(field.shape)}")
                break
            if isinstance(want, str) and sizes.setdefault(want, size) != size:
                problems.append(f"{field.path} has {want}={size} but another dataset has {want}={sizes[want]}")
                break
    if not problems:
        problems += [p for sets in spec.index_sets for p in _index_set_problems(f, sets, sizes.get(sets.indexes, 0))]
    if not problems and spec.kind == "mesh":
        problems += _mesh_content_problems(f)
    if not problems and spec.kind == "face":
        problems += _face_content_problems(f)
    if not problems and spec.kind in ("views", "face"):
        target = f["/cameras/target"][()] if "/cameras/target" in f else None
        problems += camera_problems(f["/cameras/K"][()], f["/cameras/world_to_cam"][()], target)
    return problems


def _index_set_problems(f, sets: IndexSets, count: int) -> list[str]:
    """The ways a group of named index lists (``/regions``, ``/subsets``) breaks the schema:
    members that are not (K,) int32 datasets, indices outside the ``count`` items."""
    from avatarkit.structures.indices import index_set_problems

    if sets.path not in f:
        return []
    group = f[sets.path]
    if hasattr(group, "shape"):
        return [f"{sets.path} is a dataset, not a group of {sets.what}s"]
    problems, lists = [], {}
    for name, dset in group.items():
        if not hasattr(dset, "shape"):
            problems.append(f"{sets.path}/{name} is a group, not a list of {sets.item} indices")
        elif not _dtype_ok(dset.dtype, "int32") or len(dset.shape) != 1:
            problems.append(f"{sets.path}/{name} has shape {dset.shape} and dtype {dset.dtype}, expected (K,) int32")
        else:
            lists[name] = dset[()]
    problems += index_set_problems(lists, count, sets.what, sets.item, sets.items, sets.path)
    return problems


def _mesh_content_problems(f) -> list[str]:
    vertices = f["/mesh/vertices"][()]
    faces = f["/mesh/faces"][()]
    problems = []
    if len(vertices) == 0 or len(faces) == 0:
        problems.append(empty_mesh_error(len(vertices), len(faces)).message)
        return problems
    if not np.isfinite(vertices).all():
        problems.append("vertices contain NaN or infinite values")
    if faces.min() < 0 or faces.max() >= len(vertices):
        problems.append(f"faces index past the {len(vertices)} vertices")
    if "/mesh/face_uvs" in f:
        if "/mesh/uvs" not in f:
            problems.append("face_uvs without uvs")
        else:
            fu = f["/mesh/face_uvs"][()]
            if fu.min() < 0 or fu.max() >= len(f["/mesh/uvs"]):
                problems.append("face_uvs index past the uvs")
    if "/mesh/vertex_labels" in f and "label_names" in f["/mesh/vertex_labels"].attrs:
        names = _plain(f["/mesh/vertex_labels"].attrs["label_names"])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append(f"/mesh/vertex_labels attribute label_names is {_show(names)}, not a list of names")
        else:
            labels = f["/mesh/vertex_labels"][()]
            if labels.min() < 0 or labels.max() >= len(names):
                problems.append(f"vertex_labels index past the {len(names)} label names")
    return problems


def _face_content_problems(f) -> list[str]:
    vertices = f["/frames/vertices"][()]
    faces = f["/mesh/faces"][()]
    if vertices.shape[0] == 0 or vertices.shape[1] == 0 or len(faces) == 0:
        return ["no frames, vertices or triangles"]
    if not np.isfinite(vertices).all():
        return ["vertices contain NaN or infinite values"]
    if faces.min() < 0 or faces.max() >= vertices.shape[1]:
        return [f"faces index past the {vertices.shape[1]} vertices"]
    return []


def _dtype_ok(actual: np.dtype, expected: str) -> bool:
    if expected == "str":
        return actual.kind in ("O", "S", "U")
    return actual == np.dtype(expected)


def _shape_str(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def describe(path: str | Path) -> dict[str, Any]:
    """A file's tree, shapes, dtypes and attributes, and a validation verdict.

    Returns a JSON-ready dict: ``path``, ``kind``, ``schema``, ``attrs``, ``datasets``
    (path to shape/dtype/attrs), ``groups``, ``valid`` and ``problems``.
    """
    path = Path(path)
    with open_h5(path) as f:
        datasets: dict[str, Any] = {}
        groups: dict[str, Any] = {}

        def visit(name, item):
            attrs = {k: _json_value(v) for k, v in item.attrs.items()}
            if hasattr(item, "shape"):
                datasets["/" + name] = {"shape": list(item.shape), "dtype": str(item.dtype), "attrs": attrs}
            else:
                groups["/" + name] = {"attrs": attrs}

        f.visititems(visit)
        kind, schema, problem = root_header(f)
        if problem is not None:
            problems = [problem]
        elif kind is None:
            problems = ["not an avatarkit file (no avatarkit_kind attribute)"]
        elif kind not in KINDS:
            problems = [f"unknown kind {kind!r}"]
        else:
            problems = validate_open(f, KINDS[kind])
            if schema > SCHEMA_VERSION:
                problems.append(f"schema {schema} is newer than this avatarkit reads ({SCHEMA_VERSION})")
        return {
            "path": str(path),
            "kind": kind,
            "schema": _json_value(f.attrs.get("avatarkit_schema")),
            "attrs": {k: _json_value(v) for k, v in f.attrs.items()},
            "groups": groups,
            "datasets": datasets,
            "valid": not problems,
            "problems": problems,
        }


def _json_value(value):
    value = _plain(value)
    if isinstance(value, np.ndarray):
        return [_plain(x) for x in value.tolist()]
    return value


def is_complete(path: str | Path, kind: str) -> bool:
    """True when ``path`` is a valid file of ``kind`` (a finished output to skip); any other
    file that exists is complete, since every writer renames its output into place whole."""
    path = Path(path)
    if not path.is_file():
        return False
    if not is_hdf5(path):
        return True
    try:
        with open_h5(path) as f:
            check_kind(f, path, kind)
    except InputError:
        return False
    return True
