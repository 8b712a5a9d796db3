"""``avatarkit sample-sdf``: training points with exact signed distances."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import batch, console
from avatarkit.cli.options import Bounds, Device, Jobs, Json, Overwrite, Quiet, Seed, Shard, Units, Up
from avatarkit.geometry.sample_sdf import BACKENDS, PRESETS
from avatarkit.geometry.sdf import SIGN_METHODS


def sample_sdf(
    inputs: Annotated[list[Path], typer.Argument(help="Meshes: mesh .h5, .obj, .ply, .glb, .gltf, .off.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A .h5 file (one input) or a folder.")],
    preset: Annotated[
        Literal[tuple(PRESETS)],
        typer.Option(
            help="pifu: Gaussian 5 cm + box 16:1, balanced; geopifu: Gaussian 3.5 voxels of its 128 x 192 x 128 "
            "box + that box 16:1, balanced; deepsdf: DeepSDF's; osa: surface + far."
        ),
    ] = "pifu",
    points: Annotated[int | None, typer.Option(help="Points per mesh (default: the preset's).")] = None,
    sigma: Annotated[
        list[float] | None, typer.Option(help="Near-surface Gaussian sigma in metres; repeat for several groups.")
    ] = None,
    uniform_fraction: Annotated[float | None, typer.Option(help="Share of uniform points.")] = None,
    surface_fraction: Annotated[float | None, typer.Option(help="Share of points on the surface (sdf 0).")] = None,
    bounds: Annotated[
        Bounds | None, typer.Option(help="Box for uniform points: MINX MINY MINZ MAXX MAXY MAXZ, metres.")
    ] = None,
    margin: Annotated[
        float | None, typer.Option(help="Without --bounds: grow the mesh's box by this share of its longest side.")
    ] = None,
    normals: Annotated[
        bool | None, typer.Option("--normals/--no-normals", help="Store surface normals (default: the preset's).")
    ] = None,
    colors: Annotated[
        bool | None,
        typer.Option("--colors/--no-colors", help="Store surface colours from the texture or vertex colours."),
    ] = None,
    sign: Annotated[
        Literal[SIGN_METHODS],
        typer.Option(help="winding: robust to holes and self-intersections; normal, parity: faster."),
    ] = "winding",
    backend: Annotated[
        Literal[BACKENDS],
        typer.Option(help="warp: exact, CPU or CUDA; mesh-to-sdf: match datasets made with that package."),
    ] = "warp",
    seed: Seed = 0,
    device: Device = "auto",
    jobs: Jobs = 1,
    units: Units = None,
    up: Up = "y",
    overwrite: Overwrite = False,
    shard: Shard = None,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Sample points around meshes with exact signed distances (negative inside), one samples file each.

    Distances are to the closest point on the triangles; signs come from the generalized
    winding number, so meshes with holes and self-intersections get correct labels. Every
    sampling parameter is stored in the file's attributes (docs/sampling.md).
    """
    import functools

    from avatarkit.device import resolve_device
    from avatarkit.geometry.sample_sdf import preset_config

    config = preset_config(
        preset,
        points=points,
        sigmas=sigma or None,
        uniform_fraction=uniform_fraction,
        surface_fraction=surface_fraction,
        bounds=bounds,
        margin=margin,
        normals=normals,
        colors=colors,
        sign=sign,
        backend=backend,
    )
    pairs = batch.plan_outputs(inputs, output)
    job = functools.partial(
        _sample_one,
        config=config,
        seed=seed,
        device=resolve_device(device, "warp"),
        units=units,
        up=up,
        provenance=console.provenance(),
    )
    outcomes = batch.run(job, pairs, "samples", overwrite, jobs, quiet, "sample-sdf", shard)
    batch.finish(outcomes, json, quiet, "samples files")


def _sample_one(src: Path, dst: Path, *, config, seed, device, units, up, provenance) -> dict:
    from avatarkit.geometry.sample_sdf import sample_sdf
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.meshfile import load_mesh

    mesh = load_mesh(src, units, up)
    samples = sample_sdf(mesh, config, seed=seed, device=device)
    write_artifact(dst, samples, batch.for_input(provenance, src))
    return {"points": len(samples.points), "inside_fraction": float(samples.occupancy.mean())}
