"""``avatarkit voxelize``: solid occupancy grids from meshes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import batch, console
from avatarkit.cli.options import Bounds, Device, Jobs, Json, MaxMemory, Overwrite, Quiet, Shard, Units, Up
from avatarkit.geometry.voxelize import GRID_PRESETS, SIGNS
from avatarkit.io.voxel_export import EXPORTS


def voxelize(
    inputs: Annotated[list[Path], typer.Argument(help="Meshes: mesh .h5, .obj, .ply, .glb, .gltf, .off.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A .h5 file (one input) or a folder.")],
    resolution: Annotated[
        int | None, typer.Option(help="Voxels along the longest side of the box (default 256).")
    ] = None,
    pitch: Annotated[float | None, typer.Option(help="Voxel edge in metres, instead of --resolution.")] = None,
    bounds: Annotated[
        Bounds | None, typer.Option(help="Grid box MINX MINY MINZ MAXX MAXY MAXZ, metres (default: the mesh's).")
    ] = None,
    margin: Annotated[float, typer.Option(help="Grow the mesh's box by this share of its longest side.")] = 0.02,
    preset: Annotated[
        Literal[GRID_PRESETS] | None,
        typer.Option(help="geopifu: 128 x 192 x 128 voxels, mesh fitted with a 15% margin (Geo-PIFu/DeepHuman)."),
    ] = None,
    sign: Annotated[
        Literal[SIGNS],
        typer.Option(help="winding: robust to holes and overlapping parts; parity: ray parity, watertight meshes."),
    ] = "winding",
    surface: Annotated[
        bool, typer.Option("--surface", help="Also fill every voxel the surface passes through.")
    ] = False,
    export: Annotated[
        Literal[EXPORTS] | None, typer.Option(help="Also write STEM.npy or STEM.binvox beside each .h5.")
    ] = None,
    max_memory: MaxMemory = None,
    device: Device = "auto",
    jobs: Jobs = 1,
    units: Units = None,
    up: Up = "y",
    overwrite: Overwrite = False,
    shard: Shard = None,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Voxelize meshes into solid occupancy grids, one voxels file each.

    The occupancy array is indexed x, y, z; voxel centres are origin + (index + 0.5) * pitch.
    A voxel is inside when its centre is (generalized winding number above 0.5).
    """
    import functools

    from avatarkit.device import memory_limit, resolve_device

    if preset is None and resolution is None and pitch is None:
        resolution = 256
    limit = memory_limit(max_memory)
    pairs = batch.plan_outputs(inputs, output)
    job = functools.partial(
        _voxelize_one,
        grid_options=dict(resolution=resolution, pitch=pitch, bounds=bounds, margin=margin, preset=preset),
        sign=sign,
        surface=surface,
        export=export,
        limit=limit,
        device=resolve_device(device, "warp"),
        units=units,
        up=up,
        provenance=console.provenance(),
    )
    exports = functools.partial(_export_files, export=export)
    outcomes = batch.run(job, pairs, "voxels", overwrite, jobs, quiet, "voxelize", shard, extra_outputs=exports)
    batch.finish(outcomes, json, quiet, "voxel grids")


def _export_files(dst: Path, export: str | None) -> list[Path]:
    from avatarkit.io.voxel_export import export_path

    return [export_path(dst, export)] if export else []


def _voxelize_one(src: Path, dst: Path, *, grid_options, sign, surface, export, limit, device, units, up, provenance):
    from avatarkit.geometry.voxelize import check_memory, plan_grid, voxelize
    from avatarkit.io.atomic import atomic_path
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.meshfile import load_mesh
    from avatarkit.io.voxel_export import WRITERS, export_path

    mesh = load_mesh(src, units, up)
    grid = plan_grid(mesh, **grid_options)
    check_memory(grid, limit)
    voxels = voxelize(mesh, grid, sign=sign, surface=surface, device=device)
    if export is None:
        write_artifact(dst, voxels, batch.for_input(provenance, src))
    else:
        with atomic_path(export_path(dst, export)) as tmp:  # both files land, or neither
            WRITERS[export](tmp, voxels)
            write_artifact(dst, voxels, batch.for_input(provenance, src))
    return {
        "shape": list(grid.shape),
        "pitch": grid.pitch,
        "occupied": int(voxels.occupancy.sum()),
        "method": voxels.attrs["method"],
    }
