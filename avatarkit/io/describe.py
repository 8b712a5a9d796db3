"""What is inside a file, validated (the core of ``avatarkit inspect``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatarkit.errors import AvatarkitError
from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES
from avatarkit.io.hdf5 import describe
from avatarkit.io.meshfile import load_mesh


def describe_file(path: str | Path) -> dict[str, Any]:
    """Describe an avatarkit HDF5 file (tree and verdict) or a mesh file (summary and verdict).

    Never raises for a bad file: problems land in ``problems`` and ``valid`` is False.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in MESH_SUFFIXES:
            return _describe_mesh_file(path)
        if path.suffix.lower() not in HDF5_SUFFIXES and path.is_file() and not _looks_hdf5(path):
            raise AvatarkitError("neither an HDF5 file nor a known mesh format", path)
        return describe(path)
    except AvatarkitError as exc:
        return {"path": str(path), "kind": None, "valid": False, "problems": [exc.message]}


def _looks_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _describe_mesh_file(path: Path) -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mesh = load_mesh(path)
    return {
        "path": str(path),
        "kind": f"{path.suffix.lstrip('.').lower()} mesh file",
        "summary": {
            "vertices": len(mesh.vertices),
            "faces": len(mesh.faces),
            "uvs": None if mesh.uvs is None else len(mesh.uvs),
            "texture": None if mesh.texture is None else list(mesh.texture.shape),
            "vertex_colors": mesh.vertex_colors is not None,
            "vertex_labels": mesh.vertex_labels is not None,
            "extent_m": [round(float(x), 6) for x in mesh.extent()],
        },
        "valid": True,
        "problems": [],
        "warnings": [str(w.message) for w in caught],
    }
