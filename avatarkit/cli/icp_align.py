"""``avatarkit icp-align``: rigid or similarity alignment of one mesh onto another."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Json, Quiet, Seed, Units, Up


def icp_align(
    source: Annotated[Path, typer.Argument(help="Mesh to move (.h5, .obj, .ply, ...).")],
    target: Annotated[Path, typer.Argument(help="Mesh to align it to.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="transform .h5 (source_to_target).")],
    method: Annotated[
        Literal["point-to-plane", "point-to-point", "generalized"], typer.Option(help="ICP variant (open3d).")
    ] = "point-to-plane",
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
    robust: Annotated[Literal["tukey"] | None, typer.Option(help="Robust weights for partial overlap.")] = None,
    levels: Annotated[int, typer.Option(help="Coarse-to-fine levels (voxel sizes halving).")] = 3,
    samples: Annotated[int, typer.Option(help="Points sampled on each surface.")] = 50_000,
    aligned: Annotated[Path | None, typer.Option(help="Also write the moved source mesh here.")] = None,
    seed: Seed = 0,
    units: Units = None,
    up: Up = "y",
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Align SOURCE onto TARGET: landmark similarity (Umeyama), then ICP; write the transform.

    The transform file holds source_to_target (4x4, x_target = M x_source, scale folded in),
    scale, rmse, fitness, iterations and method; --json adds coverage (the share of target
    samples within --max-distance of the moved source: low where the source covers only part
    of the target). Landmarks come from the files given, or from both meshes' /landmarks when
    they share names.
    """
    import numpy as np

    from avatarkit.errors import OptionError
    from avatarkit.evaluate.align import (
        check_scale_range,
        coverage,
        default_max_distance,
        icp,
        transform_scale,
        umeyama,
    )
    from avatarkit.evaluate.chamfer import check_sizes
    from avatarkit.evaluate.h3ds import read_landmark_file
    from avatarkit.geometry.surface import sample_surface, surface_normals
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.meshfile import HDF5_SUFFIXES, load_pair_member, save_mesh

    if samples < 3:
        raise OptionError(f"--samples must be at least 3, got {samples}")
    low, high = check_scale_range(scale_range)

    def load(path):
        return load_pair_member(path, units, up)

    src, tgt = load(source), load(target)
    check_sizes(src, tgt, "--units")
    init = np.eye(4)
    if not no_landmarks:
        ls = _landmark_points(src, read_landmark_file(landmarks_source) if landmarks_source else None, landmarks_source)
        lt = _landmark_points(tgt, read_landmark_file(landmarks_target) if landmarks_target else None, landmarks_target)
        if (landmarks_source or landmarks_target) and not (ls and lt):
            raise OptionError("landmarks are needed on both meshes (files or /landmarks)")
        common = [n for n in lt if n in ls]
        if (landmarks_source or landmarks_target) and len(common) < 3:
            raise OptionError(
                f"landmark names do not match: {len(common)} shared ({', '.join(common) or 'none'}); need 3"
            )
        if len(common) >= 3:
            init = umeyama(
                np.array([ls[n] for n in common]), np.array([lt[n] for n in common]), scale, allow_reflection
            )
    rng = np.random.default_rng(seed)
    ps, pt = sample_surface(src, samples, rng), sample_surface(tgt, samples, rng)
    max_distance = default_max_distance(pt.points) if max_distance is None else max_distance
    result = icp(
        ps.points,
        pt.points,
        init,
        method,
        scale,
        max_distance,
        robust,
        levels,
        source_normals=surface_normals(src, ps.face, ps.bary),
        target_normals=surface_normals(tgt, pt.face, pt.bary),
        target_mesh=tgt,
        source_mesh=src,
        scale_range=(low, high),
    )
    covered = coverage(ps.points, pt.points, result.source_to_target, max_distance)
    result.coverage = covered
    start = transform_scale(init)
    if scale and not low * (1 + 1e-6) < result.scale / start < high * (1 - 1e-6):
        console.warning(
            f"the scale stopped at the bound of --scale-range ({result.scale:.3g}, {result.scale / start:.3g}x "
            "where it started): the shapes overlap too little to fix a scale; give landmarks, or check the inputs"
        )
    if not result.fitness > 0 or not np.isfinite(result.rmse):
        console.warning(
            f"ICP found no pairs closer than --max-distance ({result.method}): the transform is the "
            "starting one; give landmarks, a larger --max-distance or the right --units"
        )
    write_artifact(output, result, console.provenance([source, target]))
    written = [output]
    if aligned is not None:
        rigid = result.source_to_target.copy()
        rigid[:3, :3] /= result.scale
        moved = src.transformed(rigid, scale=result.scale)
        written += (
            [write_artifact(aligned, moved, console.provenance([source]))]
            if aligned.suffix.lower() in HDF5_SUFFIXES
            else save_mesh(moved, aligned)
        )
    summary = {
        "written": [str(p) for p in written],
        "scale": result.scale,
        "rmse": result.rmse,
        "fitness": result.fitness,
        "coverage": covered,
        "iterations": result.iterations,
        "method": result.method,
        "source_to_target": result.source_to_target.tolist(),
    }
    if json:
        console.emit_json(summary)
    else:
        console.info(
            f"rmse {result.rmse:.4g} m, fitness {result.fitness:.3f}, coverage {covered:.3f}, scale {result.scale:.4f}",
            quiet,
        )


def _landmark_points(mesh, named: dict[str, int] | None, path) -> dict:
    """Landmark positions by name: vertex ids from a file (``path``), or the mesh's own
    /landmarks (the vertex where one is given, else the stored point; unplaced ones left out)."""
    import numpy as np

    from avatarkit.errors import InputError

    if named is not None:
        bad = {n: v for n, v in named.items() if not 0 <= v < len(mesh.vertices)}
        if bad:
            raise InputError(f"landmark vertex ids past the mesh's {len(mesh.vertices)} vertices: {bad}", path)
        return {n: mesh.vertices[v].astype(float) for n, v in named.items()}
    if mesh.landmarks is None:
        return {}
    out = {}
    for name, point, vertex in zip(mesh.landmarks.names, mesh.landmarks.points, mesh.landmarks.vertex_ids, strict=True):
        point = mesh.vertices[vertex] if 0 <= vertex < len(mesh.vertices) else point
        if np.all(np.isfinite(point)):
            out[name] = np.asarray(point, dtype=float)
    return out
