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
    from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES, is_hdf5
    from avatarkit.methods.registry import load_trained
    from avatarkit.reconstruct.inputs import LatentInput, check_observed, check_request, choose_camera, read_input

    inputs = inputs or []
    check_request(
        inputs, resolution=resolution, tolerance=tolerance, mask=mask, mask_threshold=mask_threshold, latent=latent
    )
    suffixes = (*MESH_SUFFIXES, *HDF5_SUFFIXES)
    if latent is None:
        pairs: list[tuple[Path | LatentInput, Path]] = list(batch.plan_outputs(inputs, output, suffixes))
    else:
        pairs = [(LatentInput(latent), batch.plan_outputs([Path(f"latent_{latent}")], output, suffixes)[0][1])]
    device = resolve_device(device)
    trained = load_trained(run, device, checkpoint)
    observes, name = trained.spec.observes, trained.spec.name
    check_observed(observes, name, inputs, latent, preview)
    predictor = trained.predictor(device, shaded)
    photo_camera = None
    if "image" in observes and not all(is_hdf5(p) for p in inputs):
        photo_camera = choose_camera(trained.camera(), camera, camera_index, target, trained.path)
    job = functools.partial(
        _reconstruct_one,
        read=functools.partial(
            read_input, observes=observes, view=view, camera=photo_camera, masks=mask, mask_threshold=mask_threshold
        ),
        run=trained.path,
        predictor=predictor,
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


def _reconstruct_one(
    src, dst: Path, *, read, run, predictor, resolution, tolerance, keep_all, preview, device, provenance
) -> dict:
    import time

    from avatarkit.io.convert import write_mesh
    from avatarkit.io.images import write_png
    from avatarkit.reconstruct.field import reconstruct_field
    from avatarkit.reconstruct.inputs import LatentInput
    from avatarkit.reconstruct.preview import preview as preview_image

    started = time.perf_counter()
    observation = read(src)
    source = run if isinstance(src, LatentInput) else src
    result = reconstruct_field(predictor.field(observation), resolution, keep_all=keep_all, tolerance=tolerance)
    write_mesh(result.mesh, dst, batch.for_input(provenance, source))
    if preview:
        write_png(_preview_path(dst), preview_image(observation, result.mesh, device))
    return {**result.summary(), "seconds": round(time.perf_counter() - started, 3)}


def _previews(output: Path, preview: bool) -> list[Path]:
    return [_preview_path(output)] if preview else []


def _preview_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.preview.png")
