"""``avatarkit unwrap-uv``: textures in a mesh's UV layout, from views."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import batch, console
from avatarkit.cli.options import Device, Jobs, Json, Overwrite, Quiet, Shard, Units, Up
from avatarkit.io.atomic import landing
from avatarkit.io.formats import is_hdf5

TEXTURE_EXPORTS = ("png",)


def unwrap_uv(
    meshes: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Meshes (.h5, .obj, ...) whose UV layouts receive the textures; several with a folder of views."
        ),
    ] = None,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Output .h5 (texture; a mesh with --atlas), or a folder for several meshes."
        ),
    ] = ...,
    views: Annotated[
        Path | None,
        typer.Option(
            help="A views .h5 (render); a folder of views .h5 files matched to the meshes by stem; an IDR/H3DS "
            "folder: image/, mask/, cameras.npz; or, without a mesh, photos and DensePose IUV images: image/, iuv/."
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            help="Texture width and height in texels (default 1024); with IUV images, each part's tile (200)."
        ),
    ] = None,
    symmetric: Annotated[
        bool, typer.Option("--symmetric", help="Fill texels never seen from their left-right mirror texel.")
    ] = False,
    atlas: Annotated[
        bool, typer.Option("--atlas", help="Make a UV atlas (xatlas) first; writes a mesh with its texture.")
    ] = False,
    per_view: Annotated[
        bool,
        typer.Option(
            "--per-view",
            help="Also keep each view's own partial texture (/per_view/...: what one photo gives, mirror-filled "
            "with --symmetric), the training pairs of train texture.",
        ),
    ] = False,
    complete: Annotated[
        Path | None,
        typer.Option(
            help="A train texture run: complete the texture with it (Sample&Refine; implies --symmetric, the "
            "run's --size); texels the views saw are kept, blended at the visibility boundary. A texture .h5 "
            "(unwrap-uv --symmetric) given instead of a mesh, without --views, is completed as it is.",
            metavar="RUN",
        ),
    ] = None,
    export: Annotated[
        Literal[TEXTURE_EXPORTS] | None, typer.Option(help="Also write STEM.png and STEM_visibility.png.")
    ] = None,
    device: Device = "auto",
    jobs: Jobs = 1,
    units: Units = None,
    up: Up = "y",
    overwrite: Overwrite = False,
    shard: Shard = None,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Project views onto a mesh's UV layout: a partial texture, per-texel visibility and a normal map.

    Visibility is the cosine of the viewing angle where a texel was seen (occlusion tested
    against the mesh's depth), 0 where it never was; colours are blended over the views
    with that weight. Without a mesh, the views' per-pixel UV images are splatted instead.
    With --atlas, meshes without UVs get an atlas and their vertex colours baked into it.
    Photos with DensePose IUV images fill DensePose's 24-part texture atlas instead.
    Several meshes take a folder of views files (one per mesh, by stem) and write one
    texture each into the -o folder. --per-view keeps each view's own partial texture too
    (train texture's pairs); --complete RUN fills the unseen texels with a train texture run.
    """
    import functools

    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.io.formats import HDF5_SUFFIXES
    from avatarkit.io.outputs import check_outputs
    from avatarkit.io.stems import files_by_stem
    from avatarkit.io.view_folders import is_views_folder
    from avatarkit.methods.texture.complete import load_texture_run

    meshes = meshes or []
    if complete is not None:
        if atlas or not meshes:
            raise OptionError("--complete fills a texture in a mesh's own UV layout: give the mesh (no --atlas)")
        load_texture_run(complete, "cpu")  # a run of another method is refused before any work
    job = functools.partial(
        _unwrap_one, size=size, symmetric=symmetric, atlas=atlas, export=export, device=resolve_device(device, "warp"),
        units=units, up=up, provenance=console.provenance(), per_view=per_view, complete=complete,
    )  # fmt: skip
    kind = "mesh" if atlas else "texture"
    if views is not None and is_views_folder(views):  # one texture per mesh, views by stem
        if not meshes:
            raise OptionError("a folder of views files needs the meshes whose stems they share")
        by_stem = files_by_stem([views], HDF5_SUFFIXES, "views")
        pairs = batch.plan_outputs(meshes, output)
        missing = [src for src, _ in pairs if src.stem not in by_stem]
        if missing:
            raise OptionError(f"no views file in {views} for {', '.join(str(m) for m in missing[:3])}")
        job = functools.partial(job, views_by_stem=by_stem)
        outcomes = batch.run(job, pairs, kind, overwrite, jobs, quiet, "unwrap-uv", shard, [views],
                             functools.partial(_export_files, export=export))  # fmt: skip
        batch.finish(outcomes, json, quiet, "textures")
        return
    if len(meshes) > 1:
        raise OptionError(f"{len(meshes)} meshes need --views to be a folder of views files (one per mesh, by stem)")
    mesh = meshes[0] if meshes else None
    if not is_hdf5(output):
        raise OptionError(f"-o must name a .h5 file, got {output}")
    check_outputs([output, *_export_files(output, export)], [mesh, views], kind, overwrite)
    with landing():  # the texture and its PNGs land together
        result = job(mesh, output, views=views)
    if json:
        console.emit_json(result)
    else:
        console.info(f"wrote {', '.join(result['written'])}", quiet)


def _export_files(output: Path, export: str | None) -> list[Path]:
    return [output.with_suffix(".png"), output.with_name(output.stem + "_visibility.png")] if export else []


def _unwrap_one(mesh, output: Path, *, views=None, views_by_stem=None, size, symmetric, atlas, export, device, units,
                up, provenance, per_view=False, complete=None) -> dict:  # fmt: skip
    """Read one mesh (or none) and its views, unwrap (and complete), write the texture (and its PNGs)."""
    from avatarkit.errors import InputError, MeshError, OptionError
    from avatarkit.io.hdf5 import read_if_kind, write_artifact
    from avatarkit.io.images import write_png
    from avatarkit.io.meshfile import load_mesh
    from avatarkit.io.view_folders import read_views
    from avatarkit.methods.texture.complete import make_texture
    from avatarkit.texture.unwrap import check_unwrap, coverage, export_images

    if views_by_stem is not None:
        views = views_by_stem[mesh.stem]
    partial = read_if_kind(mesh, "texture") if complete is not None and views is None else None
    view_data = read_views(views) if views is not None else None
    if partial is None:
        check_unwrap(mesh is not None, view_data, size, symmetric or complete is not None, atlas, per_view)
    elif per_view or size is not None:
        raise OptionError("a texture file is completed as it is: --per-view and --size apply to views")
    surface = load_mesh(mesh, units, up) if mesh is not None and partial is None else None
    try:
        result = make_texture(surface, view_data, partial, complete, size=size, symmetric=symmetric, atlas=atlas,
                              device=device, per_view=per_view)  # fmt: skip
    except InputError as exc:  # the core does not know the file names
        if exc.path is not None:
            raise
        raise type(exc)(exc.message, mesh if isinstance(exc, MeshError) or views is None else views) from None
    inputs = [p for p in (mesh, views) if p is not None]
    written = [write_artifact(output, result, dataclasses.replace(provenance, inputs=tuple(map(str, inputs))))]
    pngs = zip(_export_files(output, export), export_images(result), strict=False)  # no visibility: no second PNG
    written += [write_png(path, image) for path, image in pngs]
    return {"written": [str(p) for p in written], **coverage(result)}
