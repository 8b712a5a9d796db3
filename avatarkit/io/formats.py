"""File formats by suffix: the one list of each (standard library only, cheap to import).

Suffixes are compared lower-case: ``X.H5`` is an HDF5 file, ``scan.OBJ`` a mesh file.
"""

from __future__ import annotations

from pathlib import Path

HDF5_SUFFIXES = (".h5", ".hdf5")
"""avatarkit's artifacts (``docs/hdf5.md``)."""
MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".off")
"""Mesh files read and written through trimesh (``avatarkit.io.meshfile``)."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
"""Photos and masks read through Pillow (``avatarkit.io.images``)."""


def is_hdf5(path: str | Path) -> bool:
    return Path(path).suffix.lower() in HDF5_SUFFIXES


def is_mesh_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in MESH_SUFFIXES


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
