"""``avatarkit unwrap-uv``: textures in a mesh's UV layout, from views."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Quiet, Units, Up
from avatarkit.io.formats import is_hdf5

TEXTURE_EXPORTS = ("png",)


def unwrap_uv(
    mesh: Annotated[
        Path | None, typer.Argument(help="Mesh (.h5, .obj, ...) whose UV layout receives the texture.")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .h5 (texture; a mesh with --atlas).")] = ...,
    views: Annotated[
        Path | None,
        typer.Option(
            help="A views .h5 (render); an IDR/H3DS folder: image/, mask/, cameras.npz; or, without a mesh, "
            "a folder of photos and DensePose IUV images: image/, iuv/."
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
    export: Annotated[
        Literal[TEXTURE_EXPORTS] | None, typer.Option(help="Also write STEM.png and STEM_visibility.png.")
    ] = None,
    device: Device = "auto",
    units: Units = None,
    up: Up = "y",
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Project views onto a mesh's UV layout: a partial texture, per-texel visibility and a normal map.

    Visibility is the cosine of the viewing angle where a texel was seen (occlusion tested
    against the mesh's depth), 0 where it never was; colours are blended over the views
    with that weight. Without a mesh, the views' per-pixel UV images are splatted instead.
    With --atlas, meshes without UVs get an atlas and their vertex colours baked into it.
    Photos with DensePose IUV images fill DensePose's 24-part texture atlas instead.
    """
    import numpy as np

    from avatarkit.device import resolve_device
    from avatarkit.errors import InputError, MeshError, OptionError
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.images import write_png
    from avatarkit.io.meshfile import load_mesh
    from avatarkit.io.view_folders import read_views
    from avatarkit.texture.unwrap import check_unwrap
    from avatarkit.texture.unwrap import unwrap_uv as unwrap

    if not is_hdf5(output):
        raise OptionError(f"-o must name a .h5 file, got {output}")
    device = resolve_device(device)
    view_data = read_views(views) if views is not None else None
    check_unwrap(mesh is not None, view_data, size, symmetric, atlas)
    surface = load_mesh(mesh, units, up) if mesh is not None else None
    try:
        result = unwrap(surface, view_data, size, symmetric, atlas, device)
    except InputError as exc:  # the core does not know the file names
        if exc.path is not None:
            raise
        raise type(exc)(exc.message, mesh if isinstance(exc, MeshError) or views is None else views) from None
    written = [write_artifact(output, result, console.provenance([p for p in (mesh, views) if p is not None]))]
    if export == "png":
        written.append(write_png(output.with_suffix(".png"), result.texture))
        if hasattr(result, "visibility"):
            visibility = (np.clip(result.visibility, 0, 1) * 255).astype(np.uint8)
            written.append(write_png(output.with_name(output.stem + "_visibility.png"), visibility))
    summary = {"written": [str(p) for p in written]}
    if hasattr(result, "visibility"):
        summary.update({k: result.attrs[k] for k in ("seen_fraction", "mirrored_fraction") if k in result.attrs})
    if json:
        console.emit_json(summary)
    else:
        console.info(f"wrote {', '.join(summary['written'])}", quiet)
