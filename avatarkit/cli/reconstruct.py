"""``avatarkit reconstruct``: meshes with a trained run, from what its method observes (its
``MethodSpec.observes``): images for image-based methods (pifu), samples files or a training
shape's latent code for deepsdf."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import batch, console
from avatarkit.cli.options import Device, Json, Overwrite, Quiet, Shard
from avatarkit.methods.checkpoint import WHICH


def reconstruct(
    run: Annotated[Path, typer.Argument(help="A run folder from `avatarkit train`, or a checkpoint .pt file.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="A mesh file (.h5, .obj, .ply, .glb, .off) for one input, or a folder."),
    ],
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Images (.png, .jpg, ...) or views .h5 files (with --view); samples .h5 files for deepsdf.",
            show_default=False,
        ),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(help="The subject's mask: a file (one image) or a folder of masks named like the images."),
    ] = None,
    mask_threshold: Annotated[
        float | None,
        typer.Option(
            help="No mask: take the subject as what differs from the plain background by more than this (0-255)."
        ),
    ] = None,
    camera: Annotated[
        Path | None,
        typer.Option(
            help="Camera of the images: cameras.npz, transforms.json or views .h5 (default: the run's camera)."
        ),
    ] = None,
    camera_index: Annotated[int, typer.Option(help="Which camera of --camera.")] = 0,
    target: Annotated[
        tuple[float, float, float] | None,
        typer.Option(help="World point the camera aims at (the subject's centre), when --camera does not say."),
    ] = None,
    view: Annotated[int, typer.Option(help="Which view of a views file to reconstruct from.")] = 0,
    latent: Annotated[
        int | None,
        typer.Option(
            help="Mesh training shape I from its learned code, instead of inputs (methods with one code per "
            "shape: deepsdf; I counts the run's split['train'] from 0)."
        ),
    ] = None,
    resolution: Annotated[int, typer.Option(help="Marching-cubes grid per side (a power of two).")] = 256,
    tolerance: Annotated[
        float,
        typer.Option(
            help="Octree: cells whose corners differ by less than this are filled unqueried (PIFu's 0.01; "
            "0 queries every lattice point; larger is faster and may miss thin parts)."
        ),
    ] = 0.01,
    keep_all: Annotated[
        bool, typer.Option("--keep-all", help="Keep every connected part, not only the largest.")
    ] = False,
    checkpoint: Annotated[
        Literal[WHICH], typer.Option(help="Which checkpoint of a run folder: best by validation, or last.")
    ] = "best",
    shaded: Annotated[
        bool,
        typer.Option(
            "--shaded",
            help="Colour the vertices with the shaded colour (albedo x the shading the image's light gives), not "
            "the albedo (methods with a shading network: phorhum).",
        ),
    ] = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Also write OUTPUT.png: the input, the ground truth's normals (views files) and the prediction.",
        ),
    ] = False,
    device: Device = "auto",
    overwrite: Overwrite = False,
    shard: Shard = None,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Reconstruct a mesh from each input, in world metres (with vertex colours for methods that learn them).

    Image-based methods (pifu) see each image through its camera: the run's training camera by
    default (the image must then be framed as the training views were, and be their size), a
    camera file, or the view's own camera for views files; the volume in front of the camera is
    meshed. deepsdf meshes a training shape's code (--latent I) or a code fitted to a samples
    file's points, in that shape's unit sphere. The volume is evaluated coarse to fine (PIFu's
    octree: most of it is never queried) and meshed by marching cubes; the largest connected
    part is kept unless --keep-all.
    """
    import functools

    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES, is_hdf5, is_image
    from avatarkit.methods.registry import load_trained
    from avatarkit.reconstruct.extract import check_lattice_memory
    from avatarkit.reconstruct.inputs import LatentInput, choose_camera

    inputs = inputs or []
    if resolution < 8 or resolution & (resolution - 1):
        raise OptionError(f"--resolution must be a power of two of at least 8, got {resolution}")
    check_lattice_memory(resolution)
    if tolerance < 0:
        raise OptionError(f"--tolerance must be 0 or more, got {tolerance}")
    if mask is not None and mask_threshold is not None:
        raise OptionError("--mask and --mask-threshold both give the mask; pass one")
    if latent is not None and inputs:
        raise OptionError("--latent meshes a training shape: give it or input files, not both")
    if latent is None and not inputs:
        raise OptionError("no input files given (nor --latent I, for a method with a code per training shape)")
    suffixes = (*MESH_SUFFIXES, *HDF5_SUFFIXES)
    if latent is None:
        pairs: list[tuple[Path | LatentInput, Path]] = list(batch.plan_outputs(inputs, output, suffixes))
    else:
        pairs = [(LatentInput(latent), batch.plan_outputs([Path(f"latent_{latent}")], output, suffixes)[0][1])]
    if mask is not None and mask.is_file() and len(inputs) > 1:
        raise OptionError("one --mask file for several images: give a folder of masks named like the images")
    device = resolve_device(device)
    trained = load_trained(run, device, checkpoint)
    observes, name = trained.spec.observes, trained.spec.name
    if latent is not None and "latent" not in observes:
        raise OptionError(f"--latent: {name} learns no code per shape; it reconstructs from {_observed(observes)}")
    if "image" not in observes:
        others = [p for p in inputs if not is_hdf5(p)]
        if others:
            p = others[0]
            what = "images" if is_image(p) else "a folder" if p.is_dir() else f"a {p.suffix or 'suffix-less'} file"
            raise OptionError(f"{p}: {name} reconstructs from {_observed(observes)}, not {what}")
        if preview:
            raise OptionError(f"--preview shows the input image; {name} has none")
    predictor = trained.predictor(device)
    if shaded:
        if not hasattr(predictor, "shaded"):
            raise OptionError(f"--shaded: {name} learns no shading (phorhum does)")
        predictor.shaded = True
    photo_camera = None
    if "image" in observes and not all(is_hdf5(p) for p in inputs):
        photo_camera = choose_camera(trained.camera(), camera, camera_index, target, trained.path)
    job = functools.partial(
        _reconstruct_one,
        observes=observes,
        run=trained.path,
        predictor=predictor,
        camera=photo_camera,
        masks=mask,
        mask_threshold=mask_threshold,
        view=view,
        resolution=resolution,
        tolerance=tolerance,
        keep_all=keep_all,
        preview=preview,
        device=device,
        provenance=console.provenance(),
    )
    side = [mask, camera, trained.path]
    previews = functools.partial(_previews, preview=preview)
    outcomes = batch.run(job, pairs, "mesh", overwrite, 1, quiet, "reconstruct", shard, side, previews)
    batch.finish(outcomes, json, quiet, "meshes")


def _observed(observes: tuple[str, ...]) -> str:
    names = {"image": "images or views files", "samples": "samples files", "latent": "--latent I"}
    return " or ".join(names[o] for o in observes)


def _reconstruct_one(
    src, dst: Path, *, observes, run, predictor, camera, masks, mask_threshold, view, resolution, tolerance, keep_all,
    preview, device, provenance,
) -> dict:  # fmt: skip
    import time

    import numpy as np

    from avatarkit.io.convert import write_mesh
    from avatarkit.io.images import write_png
    from avatarkit.reconstruct.field import reconstruct_field
    from avatarkit.reconstruct.inputs import LatentInput, read_image_input, read_samples_input
    from avatarkit.reconstruct.preview import preview as preview_image

    started = time.perf_counter()
    if isinstance(src, LatentInput):
        observation, source = src, run
    elif "image" in observes:
        observation, source = read_image_input(src, view, camera, masks, mask_threshold), src
    else:
        observation, source = read_samples_input(src), src
    result = reconstruct_field(predictor.field(observation), resolution, keep_all=keep_all, tolerance=tolerance)
    write_mesh(result.mesh, dst, batch.for_input(provenance, source))
    if preview:
        write_png(_preview_path(dst), preview_image(observation, result.mesh, device))
    return {
        "vertices": len(result.mesh.vertices),
        "faces": len(result.mesh.faces),
        "queries": int(result.queries),
        "lattice_points": int(result.lattice_points),
        "seconds": round(time.perf_counter() - started, 3),
        "height_m": float(np.ptp(result.mesh.vertices[:, 1])),
    }


def _previews(output: Path, preview: bool) -> list[Path]:
    return [_preview_path(output)] if preview else []


def _preview_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.preview.png")
