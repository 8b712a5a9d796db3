"""``avatarkit icp-align``: rigid or similarity alignment of one mesh onto another."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Overwrite, Quiet, Seed, Units, Up
from avatarkit.geometry.align import METHODS, ROBUST


def icp_align(
    source: Annotated[Path, typer.Argument(help="Mesh to move (.h5, .obj, .ply, ...).")],
    target: Annotated[Path, typer.Argument(help="Mesh to align it to.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="transform .h5 (source_to_target).")],
    method: Annotated[Literal[METHODS], typer.Option(help="ICP variant (open3d).")] = "point-to-plane",
    scale: Annotated[
        bool, typer.Option("--scale", help="Also estimate a uniform scale (symmetric similarity ICP).")
    ] = False,
    scale_range: Annotated[
        tuple[float, float],
        typer.Option(
            help="With --scale: keep the scale within MIN..MAX times the landmarks' (or 1).", metavar="MIN MAX"
        ),
    ] = (0.5, 2.0),
    landmarks_source: Annotated[
        Path | None, typer.Option(help="Landmarks on the source, 'name vertex_id' lines (default: its /landmarks).")
    ] = None,
    landmarks_target: Annotated[
        Path | None, typer.Option(help="Landmarks on the target, 'name vertex_id' lines (default: its /landmarks).")
    ] = None,
    no_landmarks: Annotated[bool, typer.Option("--no-landmarks", help="Skip the landmark alignment.")] = False,
    allow_reflection: Annotated[bool, typer.Option("--allow-reflection", help="Let the landmark fit mirror.")] = False,
    max_distance: Annotated[
        float | None, typer.Option(help="Drop correspondences farther than this, metres (default 5% of the size).")
    ] = None,
    robust: Annotated[Literal[ROBUST] | None, typer.Option(help="Robust weights for partial overlap.")] = None,
    levels: Annotated[int, typer.Option(help="Coarse-to-fine levels (voxel sizes halving).")] = 3,
    samples: Annotated[int, typer.Option(help="Points sampled on each surface.")] = 50_000,
    aligned: Annotated[Path | None, typer.Option(help="Also write the moved source mesh here.")] = None,
    seed: Seed = 0,
    device: Device = "auto",
    units: Units = None,
    up: Up = "y",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Align SOURCE onto TARGET: landmark similarity (Procrustes), then ICP; write the transform.

    The transform file holds source_to_target (4x4, x_target = M x_source, scale folded in),
    scale, rmse, fitness, iterations and method; --json adds coverage (the share of target
    samples within --max-distance of the moved source: low where the source covers only part
    of the target). Landmarks come from the files given, or from both meshes' /landmarks when
    they share names.
    """
    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.geometry.align import AlignOptions, align_meshes, moved_mesh
    from avatarkit.io.atomic import landing
    from avatarkit.io.convert import write_mesh
    from avatarkit.io.formats import is_hdf5, is_mesh_file
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.landmarks import check_vertex_ids, read_landmark_file
    from avatarkit.io.meshfile import load_pair_member
    from avatarkit.io.outputs import check_outputs

    options = AlignOptions(
        method=method,
        scale=scale,
        scale_range=scale_range,
        landmarks=not no_landmarks,
        allow_reflection=allow_reflection,
        max_distance=max_distance,
        robust=robust,
        levels=levels,
        samples=samples,
    )
    options.check()
    read = [source, target, landmarks_source, landmarks_target]
    check_outputs([output], read, "transform", overwrite)
    if aligned is not None:
        if not (is_hdf5(aligned) or is_mesh_file(aligned)):
            raise OptionError(f"--aligned must name a mesh file (.h5, .obj, .ply, .glb, .gltf, .off), got {aligned}")
        check_outputs([aligned], read, "mesh", overwrite)
    device = resolve_device(device, "warp")
    src, tgt = load_pair_member(source, units, up), load_pair_member(target, units, up)
    named = {}
    for side, path, mesh in (("source", landmarks_source, src), ("target", landmarks_target, tgt)):
        if path is not None and not no_landmarks:
            named[side] = read_landmark_file(path)
            check_vertex_ids(named[side], len(mesh.vertices), path, "landmark")
    result = align_meshes(src, tgt, options, named.get("source"), named.get("target"), seed, device)
    with landing():  # the transform and the moved mesh land together
        written = [write_artifact(output, result, console.provenance([source, target]))]
        if aligned is not None:
            written += write_mesh(moved_mesh(src, result), aligned, console.provenance([source]))
    summary = {
        "written": [str(p) for p in written],
        "scale": result.scale,
        "rmse": result.rmse,
        "fitness": result.fitness,
        "coverage": result.coverage,
        "iterations": result.iterations,
        "method": result.method,
        "source_to_target": result.source_to_target.tolist(),
    }
    if json:
        console.emit_json(summary)
    else:
        console.info(
            f"rmse {result.rmse:.4g} m, fitness {result.fitness:.3f}, coverage {result.coverage:.3f}, "
            f"scale {result.scale:.4f}",
            quiet,
        )
