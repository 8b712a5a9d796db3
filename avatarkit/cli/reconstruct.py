"""``avatarkit reconstruct``: meshes from images with a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import batch, console
from avatarkit.cli.options import Device, Json, Overwrite, Quiet


def reconstruct(
    run: Annotated[Path, typer.Argument(help="A run folder from `avatarkit train`, or a checkpoint .pt file.")],
    inputs: Annotated[list[Path], typer.Argument(help="Images (.png, .jpg, ...) or views .h5 files (with --view).")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="A mesh file (.h5, .obj, .ply, .glb, .off) for one input, or a folder."),
    ],
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
        Literal["best", "last"], typer.Option(help="Which checkpoint of a run folder: best by validation, or last.")
    ] = "best",
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Also write OUTPUT.png: the input, the ground truth's normals (views files) and the prediction.",
        ),
    ] = False,
    device: Device = "auto",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Reconstruct a mesh from each image, in world metres (the frame of the camera used).

    The network sees the image through its camera: the run's training camera by default (the
    image must then be framed as the training views were, and be their size), a camera file,
    or the view's own camera for views files. The volume in front of the camera is evaluated
    coarse to fine (PIFu's octree: most of it is never queried) and meshed by marching cubes;
    the largest connected part is kept unless --keep-all.
    """
    import functools

    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.io.meshfile import HDF5_SUFFIXES, MESH_SUFFIXES
    from avatarkit.methods.registry import load_trained

    if resolution < 8 or resolution & (resolution - 1):
        raise OptionError(f"--resolution must be a power of two of at least 8, got {resolution}")
    if tolerance < 0:
        raise OptionError(f"--tolerance must be 0 or more, got {tolerance}")
    if mask is not None and mask_threshold is not None:
        raise OptionError("--mask and --mask-threshold both give the mask; pass one")
    pairs = batch.plan_outputs(inputs, output, MESH_SUFFIXES | HDF5_SUFFIXES)
    given = {p.resolve() for p in [*inputs, *([mask] if mask is not None and mask.is_file() else [])]}
    clash = [_preview_path(dst) for _, dst in pairs if preview and _preview_path(dst).resolve() in given]
    if clash:
        raise OptionError(f"--preview would write over the input {clash[0]}; choose another -o")
    if mask is not None and mask.is_file() and len(inputs) > 1:
        raise OptionError("one --mask file for several images: give a folder of masks named like the images")
    device = resolve_device(device)
    trained = load_trained(run, device, checkpoint)
    job = functools.partial(
        _reconstruct_one,
        trained=trained,
        masks=mask,
        mask_threshold=mask_threshold,
        camera_file=camera,
        camera_index=camera_index,
        target=target,
        view=view,
        resolution=resolution,
        tolerance=tolerance,
        keep_all=keep_all,
        preview=preview,
        device=device,
        provenance=console.provenance(),
    )
    outcomes = batch.run(job, pairs, "mesh", overwrite, 1, quiet, "reconstruct")
    batch.finish(outcomes, json, quiet, "meshes")


def _reconstruct_one(
    src: Path,
    dst: Path,
    *,
    trained,
    masks,
    mask_threshold,
    camera_file,
    camera_index,
    target,
    view,
    resolution,
    tolerance,
    keep_all,
    preview,
    device,
    provenance,
) -> dict:
    import time

    import numpy as np

    from avatarkit.io.convert import write_mesh

    started = time.perf_counter()
    if src.suffix.lower() in (".h5", ".hdf5"):
        rgb, mask, cameras, normal = _from_views(src, view)
    else:
        rgb, mask = _image_and_mask(src, masks, mask_threshold)
        cameras, normal = _camera(trained, camera_file, camera_index, target), None
    aim = cameras.target[0]
    result = trained.predictor(device).reconstruct(rgb, mask, cameras, aim, resolution, keep_all, tolerance)
    write_mesh(result.mesh, dst, batch.for_input(provenance, src))
    if preview:
        _write_preview(_preview_path(dst), rgb, mask, normal, result.mesh, cameras, aim, device)
    return {
        "vertices": len(result.mesh.vertices),
        "faces": len(result.mesh.faces),
        "queries": int(result.queries),
        "lattice_points": int(result.lattice_points),
        "seconds": round(time.perf_counter() - started, 3),
        "height_m": float(np.ptp(result.mesh.vertices[:, 1])),
    }


def _preview_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.preview.png")


def _from_views(path: Path, index: int):
    from avatarkit.errors import InputError, OptionError
    from avatarkit.io.cameras import read_cameras
    from avatarkit.io.hdf5 import read_view

    views = read_view(path, index)
    try:  # where the rig aims: the file's targets, or (older files) the rig's focus
        cameras = read_cameras(path).aimed().subset(index)
    except OptionError as exc:
        raise InputError(str(exc), path) from None
    mask = views.mask[0] > 127
    if not mask.any():
        raise InputError(f"view {index} has an empty mask", path)
    return views.rgb[0], mask, cameras, None if views.normal is None else views.normal[0]


def _image_and_mask(path: Path, masks: Path | None, threshold: float | None):
    """An image and its mask: --mask (file or folder), STEM_mask.png beside the image (PIFu's
    layout), the image's alpha, or --mask-threshold on a plain background."""
    from avatarkit.errors import InputError
    from avatarkit.io.images import IMAGE_SUFFIXES, mask_from_background, read_mask, read_rgba

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"not an image or views file ({', '.join(IMAGE_SUFFIXES)}, .h5)", path)
    rgb, alpha = read_rgba(path)
    mask_path = None
    if masks is not None:
        mask_path = masks if masks.is_file() else _mask_in(masks, path)
        if mask_path is None:
            raise InputError(f"no mask for {path.name} in this folder (STEM.png or STEM_mask.png)", masks)
    elif threshold is None:
        mask_path = _mask_in(path.parent, path, own=False)
    if mask_path is not None:
        mask = read_mask(mask_path)
        where = mask_path
    elif alpha is not None:
        mask, where = alpha, path
    elif threshold is not None:
        mask, where = mask_from_background(rgb, threshold), path
    else:
        raise InputError(
            "no mask: give --mask, put STEM_mask.png beside the image, use an image with alpha, "
            "or --mask-threshold for a plain background",
            path,
        )
    if mask.shape != rgb.shape[:2]:
        raise InputError(
            f"the mask is {mask.shape[1]} x {mask.shape[0]}, its image {rgb.shape[1]} x {rgb.shape[0]}", where
        )
    if not mask.any():
        raise InputError("the mask is empty", where)
    return rgb, mask


def _mask_in(folder: Path, image: Path, own: bool = True) -> Path | None:
    from avatarkit.io.images import IMAGE_SUFFIXES

    names = [f"{image.stem}_mask"] + ([image.stem] if own else [])
    for name in names:
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file() and candidate != image:
                return candidate
    return None


def _camera(trained, camera_file: Path | None, index: int, target):
    import numpy as np

    from avatarkit.errors import InputError

    if camera_file is None:
        cameras = trained.camera()
        if cameras is None:
            raise InputError("the run has no camera of its own: give --camera", trained.path)
    else:
        from avatarkit.io.cameras import read_cameras

        rig = read_cameras(camera_file)
        if not -len(rig) <= index < len(rig):
            raise InputError(f"has {len(rig)} cameras; there is no camera {index}", camera_file)
        aims = rig.targets()
        cameras = rig.subset(index)
        cameras.target = None if aims is None else aims[index][None]
    if target is not None:
        cameras.target = np.asarray(target, dtype=np.float64)[None]
    if cameras.target is None:
        raise InputError("the camera file does not say where the camera aims; give --target X Y Z", camera_file)
    return cameras


def _write_preview(path, rgb, mask, normal, mesh, cameras, aim, device) -> None:
    from avatarkit.io.images import write_png
    from avatarkit.reconstruct.preview import normal_colors, render_normals, side_by_side, side_camera

    panels = [rgb]
    if normal is not None:
        panels.append(normal_colors(normal, cameras.world_to_cam[0], mask))
    panels.append(render_normals(mesh, cameras, device))
    panels.append(render_normals(mesh, side_camera(cameras, aim), device))
    write_png(path, side_by_side(panels))
