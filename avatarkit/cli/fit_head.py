"""``avatarkit fit-head``: a head's surface and colour fitted to a few posed photos (H3D-Net / IDR)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Overwrite, Quiet, Seed


def fit_head(
    scene: Annotated[
        Path,
        typer.Argument(
            help="A views .h5, an IDR/H3DS scene folder (image/, mask/, cameras.npz) or a NeRF folder "
            "(transforms.json, masks in mask/ or alpha)."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The head mesh: .h5 (metres), or .obj/.ply/.glb/.off (scene units).")
    ],
    prior: Annotated[
        Path | None, typer.Option(help="A `train deepsdf` run: the shape prior (H3D-Net).", show_default=False)
    ] = None,
    no_prior: Annotated[
        bool, typer.Option("--no-prior", help="Fit without a prior, from a sphere (plain IDR).")
    ] = False,
    views: Annotated[
        int | None,
        typer.Option(
            "--views",
            help="How many views (3, 4, 8, 16, 32 as H3DS): the scene's own subset of that size, else views "
            "spread over the capture (default: every view).",
        ),
    ] = None,
    view_ids: Annotated[
        str | None, typer.Option(help="The views to use, as indices: '0,12,31'.", show_default=False)
    ] = None,
    config: Annotated[
        Literal["default", "small"], typer.Option("--config", help="default (IDR's sizes) or small (a CPU).")
    ] = "default",
    renderer: Annotated[
        Literal["volume", "surface"] | None,
        typer.Option(help="volume (NeuS) or surface (IDR's sphere tracing); docs/fit_head.md compares them."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimisation steps in all (default: the config's).")] = None,
    prior_steps: Annotated[
        int | None, typer.Option(help="Steps with the prior frozen (its latent code only) before fine-tuning.")
    ] = None,
    rays: Annotated[int | None, typer.Option(help="Rays per step (default: the config's).")] = None,
    resolution: Annotated[int, typer.Option(help="Marching-cubes grid per side (a power of two).")] = 256,
    units: Annotated[Literal["m", "cm", "mm"], typer.Option(help="The scene's world units (mm for H3DS).")] = "m",
    keep_run: Annotated[
        Path | None, typer.Option(help="Also keep the fitted networks in this folder.", show_default=False)
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview/--no-preview", help="Write OUTPUT.preview.png: input | normals | colour.")
    ] = True,
    seed: Seed = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Fit a head's signed distance and colour networks to posed photos with masks, and mesh it.

    With --prior, the surface starts as a learned head (a `train deepsdf` run): its latent code
    is fitted first with the prior frozen, then everything is fine-tuned (H3D-Net). With
    --no-prior it starts as a sphere (IDR). The mesh lands in the scene's world frame and units,
    so `evaluate-chamfer --protocol h3ds` scores it with no further alignment. Ctrl-C stops
    the fit and keeps the best surface so far.
    """
    import dataclasses

    from avatarkit.cli.progress import Progress
    from avatarkit.device import resolve_device
    from avatarkit.errors import InputError, OptionError
    from avatarkit.fitting.head import PRESETS, fit_scene
    from avatarkit.fitting.head_files import check_fit_outputs, write_fit
    from avatarkit.fitting.scenes import choose_views, read_scene
    from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES
    from avatarkit.reconstruct.extract import check_lattice_memory

    if (prior is None) == (not no_prior):
        raise OptionError("give --prior RUN (a `train deepsdf` run) or --no-prior")
    if output.suffix.lower() not in (*HDF5_SUFFIXES, *MESH_SUFFIXES):
        raise OptionError(f"-o must name a mesh file (.h5, .obj, .ply, .glb, .off), got {output}")
    if resolution < 8 or resolution & (resolution - 1):
        raise OptionError(f"--resolution must be a power of two of at least 8, got {resolution}")
    ids = _parse_ids(view_ids)
    changes = {"renderer": renderer, "steps": steps, "prior_steps": prior_steps, "rays": rays, "seed": seed}
    cfg = dataclasses.replace(PRESETS[config], **{k: v for k, v in changes.items() if v is not None})
    cfg.check()
    check_lattice_memory(resolution)
    check_fit_outputs(output, preview, keep_run, scene, prior, overwrite)
    scene_data = read_scene(scene)
    chosen, how = choose_views(scene_data, views, ids)
    device = resolve_device(device)
    prior_net = None
    if prior is not None:
        from avatarkit.methods.deepsdf.prior import load_prior

        prior_net = load_prior(prior, device)
    started = time.perf_counter()
    reporter = Progress(quiet or json, cfg.log_every, label="fit")
    result, head = fit_scene(scene_data, chosen, cfg, prior_net, device, reporter)
    fit_seconds = time.perf_counter() - started
    try:
        mesh = result.mesh(resolution, device)
    except InputError as exc:  # the fit of this scene could not be meshed
        raise (exc if exc.path is not None else InputError(exc.message, scene)) from None
    written = write_fit(result, head, mesh, output, preview, keep_run, units, console.provenance([scene]))
    summary = {
        "written": [str(p) for p in written],
        "views": chosen,
        "views_chosen": how,
        "prior": str(prior) if prior is not None else None,
        "renderer": cfg.renderer,
        "steps": result.result.steps,
        "stopped": result.result.stopped,
        "interrupted": result.result.interrupted,
        "loss": result.result.loss,
        "fit_seconds": round(fit_seconds, 1),
        "vertices": len(mesh.vertices),
        "faces": len(mesh.faces),
        "sphere_center": result.sphere.center.tolist(),
        "sphere_radius": result.sphere.radius,
    }
    if json:
        console.emit_json(summary)
    else:
        stop = " (interrupted: the best surface so far)" if result.result.interrupted else ""
        console.info(
            f"fitted {len(chosen)} views in {fit_seconds:.0f} s ({result.result.steps} steps{stop}); "
            f"wrote {', '.join(summary['written'])}",
            quiet,
        )
    if result.result.interrupted:  # the best surface so far is written; the exit code says it was cut short
        raise typer.Exit(130)


def _parse_ids(text: str | None) -> list[int] | None:
    from avatarkit.errors import OptionError

    if text is None:
        return None
    try:
        ids = [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise OptionError(f"--view-ids takes view indices like '0,12,31', got {text!r}") from None
    if not ids:
        raise OptionError("--view-ids is empty")
    return ids
