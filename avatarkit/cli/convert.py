"""``avatarkit convert``: between mesh files (OBJ, PLY, GLB/GLTF, OFF) and mesh HDF5."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Json, Overwrite, Quiet, Units, Up


def convert(
    source: Annotated[Path, typer.Argument(help="Input mesh: .obj .ply .glb .gltf .off or mesh .h5.")],
    target: Annotated[Path, typer.Argument(help="Output: .obj .ply .glb .gltf .off or .h5.")],
    units: Units = None,
    up: Up = "y",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Convert a mesh between file formats and avatarkit's mesh HDF5, into our units and frame.

    Geometry, UV topology, texture, vertex colours, labels and landmarks are kept
    wherever the target format can hold them; a warning names what it cannot.
    """
    from avatarkit.io.convert import convert_mesh
    from avatarkit.io.outputs import check_outputs

    companions = [target.with_suffix(".mtl"), target.with_suffix(".png")] if target.suffix.lower() == ".obj" else []
    check_outputs([target, *companions], [source], "mesh", overwrite)  # an OBJ may bring its MTL and PNG
    written, dropped = convert_mesh(source, target, units=units, up=up, provenance=console.provenance([source]))
    for what in dropped:
        console.warning(f"{target}: the {target.suffix.lstrip('.').upper()} format cannot hold {what}; dropped")
    if json:
        console.emit_json({"written": [str(p) for p in written], "dropped": dropped})
    else:
        console.info(f"wrote {', '.join(str(p) for p in written)}", quiet)
