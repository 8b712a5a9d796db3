"""Mesh conversion between files and HDF5 (the core of ``avatarkit convert``)."""

from __future__ import annotations

from pathlib import Path

from avatarkit.errors import OptionError
from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES
from avatarkit.io.hdf5 import Provenance, write_artifact
from avatarkit.io.meshfile import load_mesh, save_mesh
from avatarkit.structures import Mesh

# what each file format cannot hold, by Mesh attribute
_NOT_HELD = {
    ".obj": ("vertex_labels", "landmarks", "params", "regions"),
    ".ply": ("texture", "landmarks", "params", "regions"),
    ".glb": ("vertex_labels", "landmarks", "params", "regions"),
    ".gltf": ("vertex_labels", "landmarks", "params", "regions"),
    ".off": ("uvs", "texture", "vertex_labels", "landmarks", "params", "regions"),
}


def convert_mesh(
    source: str | Path,
    target: str | Path,
    units: str | None = None,
    up: str = "y",
    provenance: Provenance | None = None,
) -> tuple[list[Path], list[str]]:
    """Read ``source`` (file units/up axis as given), write ``target`` by its extension.

    Returns the files written and the names of attributes the target could not hold.
    """
    source, target = Path(source), Path(target)
    suffix = target.suffix.lower()
    if suffix not in (*MESH_SUFFIXES, *HDF5_SUFFIXES):
        raise OptionError(
            f"{target}: cannot write {suffix or 'files without an extension'}; use .obj .ply .glb .gltf .off or .h5"
        )
    mesh = load_mesh(source, units=units, up=up)
    if suffix in HDF5_SUFFIXES:
        return write_mesh(mesh, target, provenance), []
    dropped = [name for name in _NOT_HELD[suffix] if _has(mesh, name)]
    if suffix in (".obj", ".glb", ".gltf") and mesh.has_uvs and mesh.vertex_colors is not None:
        dropped.append("vertex_colors")  # one visual per mesh in these writers: the texture wins
    return write_mesh(mesh, target, provenance), dropped


def write_mesh(mesh: Mesh, target: str | Path, provenance: Provenance | None = None) -> list[Path]:
    """Write ``mesh`` as a ``mesh`` HDF5 file or a mesh file, by ``target``'s extension; returns
    the files written."""
    target = Path(target)
    if target.suffix.lower() in HDF5_SUFFIXES:
        return [write_artifact(target, mesh, provenance)]
    return save_mesh(mesh, target)


def _has(mesh: Mesh, name: str) -> bool:
    value = getattr(mesh, name)
    return bool(value) if isinstance(value, dict) else value is not None
