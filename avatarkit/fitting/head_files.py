"""The files of a head fit (``fit-head``): its outputs checked before any work, and the mesh,
the preview and the kept networks written together.

A mesh file is written in the scene's world units (mm for H3DS scenes); a ``.h5`` mesh in
metres, as every avatarkit mesh file. ``--keep-run`` holds ``fit.pt`` (the networks, the
sphere, the views, the config, the loss history) and
``history.jsonl``.
"""

from __future__ import annotations

from pathlib import Path

from avatarkit.errors import OptionError


def preview_path(output: Path) -> Path:
    """Where a fit's preview picture goes: ``OUTPUT.preview.png`` beside the mesh."""
    return output.with_name(f"{output.stem}.preview.png")


def check_fit_outputs(
    output: Path, preview: bool, keep_run: Path | None, scene: Path, prior: Path | None, overwrite: bool
) -> None:
    """Refuse, before any work, outputs that would lose something: an input, a file avatarkit
    did not write (without ``overwrite``), a run folder that is an output, the scene or holds
    other files, anything inside an IDR scene's ``image/`` or ``mask/``."""
    from avatarkit.io.outputs import check_outputs

    outputs = [output] + ([preview_path(output)] if preview else [])
    check_outputs(outputs, [scene, prior], "mesh", overwrite)
    if keep_run is not None:
        _check_run_folder(keep_run, overwrite, outputs, scene)
    _check_outside_scene(outputs + ([keep_run] if keep_run is not None else []), scene)


def _check_run_folder(folder: Path, overwrite: bool, outputs: list[Path], scene: Path) -> None:
    from avatarkit.io.outputs import check_writable

    for path in (*outputs, scene):
        if _same_place(folder, path):
            what = "the scene" if path == scene else "an output file"
            raise OptionError(f"--keep-run {folder} is {what} ({path}); give a folder of its own")
    if folder.is_file():
        raise OptionError(f"--keep-run {folder} is a file; give a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "fit.pt").is_file():
        raise OptionError(f"--keep-run {folder} holds other files; give an empty or new folder")
    if (folder / "fit.pt").is_file() and not overwrite:
        raise OptionError(f"--keep-run {folder} holds a fit: pass --overwrite to replace it")
    check_writable(folder / "fit.pt")


def _check_outside_scene(paths: list[Path], scene: Path) -> None:
    """Refuse outputs that would land among an IDR/H3DS scene's photos or masks (the folder
    is read by its image/ and mask/ listings: a preview there would become a view)."""
    if not (scene / "cameras.npz").is_file():
        return
    for path in paths:
        for sub in ("image", "mask"):
            inside = scene / sub
            if inside.is_dir() and any(_same_place(parent, inside) for parent in (path, *path.parents)):
                raise OptionError(f"{path} is inside the scene's {inside}/: write the outputs elsewhere")


def _same_place(a: Path, b: Path) -> bool:
    import os

    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def write_fit(
    result, head, mesh, output: Path, preview: bool, keep_run: Path | None, units: str, provenance=None
) -> list[Path]:
    """The mesh (metres in .h5, the scene's units in mesh files), the preview and the run, together."""
    import dataclasses
    import json as json_module

    import numpy as np
    import torch

    from avatarkit.fitting.head import HeadFitConfig
    from avatarkit.io.atomic import atomic_path, landing
    from avatarkit.io.convert import write_mesh
    from avatarkit.io.formats import is_hdf5
    from avatarkit.io.images import write_png
    from avatarkit.io.units import METRES_PER_UNIT
    from avatarkit.reconstruct.preview import side_by_side

    in_metres = dataclasses.replace(mesh, vertices=(mesh.vertices * METRES_PER_UNIT[units]).astype(np.float32))
    written: list[Path] = []
    with landing():
        written += write_mesh(in_metres if is_hdf5(output) else mesh, output, provenance)
        if preview:
            step = max(1, head.height // 256)
            normals, colour = result.picture(head, 0, step)
            write_png(preview_path(output), side_by_side([head.rgb[0].cpu().numpy() * 255, normals, colour], 256))
            written.append(preview_path(output))
        if keep_run is not None:
            keep_run.mkdir(parents=True, exist_ok=True)
            state = {
                "format": "avatarkit-head-fit",
                "config": dataclasses.asdict(result.config) if isinstance(result.config, HeadFitConfig) else {},
                "sdf": result.sdf.state_dict(),
                "color": result.color.state_dict(),
                "sphere": {"center": result.sphere.center.tolist(), "radius": result.sphere.radius},
                "views": head.ids,
                "history": result.result.history,
            }
            with atomic_path(keep_run / "fit.pt") as tmp:
                torch.save(state, tmp)
            with atomic_path(keep_run / "history.jsonl") as tmp:
                tmp.write_text("".join(json_module.dumps(h) + "\n" for h in result.result.history))
            written += [keep_run / "fit.pt", keep_run / "history.jsonl"]
    return written
