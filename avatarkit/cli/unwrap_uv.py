"""``avatarkit unwrap-uv``: textures in a mesh's UV layout, from views."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Quiet, Units, Up


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
    export: Annotated[Literal["png"] | None, typer.Option(help="Also write STEM.png and STEM_visibility.png.")] = None,
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
    from avatarkit.device import resolve_device
    from avatarkit.errors import InputError, OptionError
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.view_folders import read_iuv_folder

    if mesh is None and views is None:
        raise OptionError("give a mesh, --views, or both")
    if views is None and not atlas:
        raise OptionError("nothing to project: give --views, or --atlas to make an atlas for the mesh")
    if size is not None and size < 1:
        raise OptionError(f"--size must be positive, got {size}")
    if output.suffix.lower() not in (".h5", ".hdf5"):
        raise OptionError(f"-o must name a .h5 file, got {output}")
    device = resolve_device(device)
    if views is not None and views.is_dir() and (views / "iuv").is_dir():
        if mesh is not None or atlas or symmetric:
            raise OptionError("DensePose IUV images fill DensePose's own atlas: give no mesh, --atlas or --symmetric")
        view_data = read_iuv_folder(views)
    else:
        view_data = _read_views(views) if views is not None else None
    inputs = [p for p in (mesh, views) if p is not None]
    provenance = console.provenance(inputs)
    try:
        result = _project(mesh, view_data, size, symmetric, atlas, device, units, up)
    except InputError as exc:  # the core does not know the file names
        if exc.path is not None:
            raise
        raise InputError(exc.message, views if views is not None else mesh) from None
    written = [write_artifact(output, result, provenance)]
    if export == "png":
        written += _export_png(output, result)
    summary = {"written": [str(p) for p in written]}
    if hasattr(result, "visibility"):
        summary.update({k: result.attrs[k] for k in ("seen_fraction", "mirrored_fraction") if k in result.attrs})
    if json:
        console.emit_json(summary)
    else:
        console.info(f"wrote {', '.join(summary['written'])}", quiet)


def _project(mesh, view_data, size, symmetric, atlas, device, units, up):
    from avatarkit.errors import OptionError
    from avatarkit.io.meshfile import load_mesh
    from avatarkit.texture.unwrap import make_atlas, splat_iuv_images, splat_uv_images, unwrap

    if isinstance(view_data, tuple):  # photos and DensePose IUV images
        rgb, iuv, names = view_data
        return splat_iuv_images(rgb, iuv, size or 200, names)
    size = size or 1024
    if mesh is None:
        result = splat_uv_images(view_data, size)
    else:
        surface = load_mesh(mesh, units, up)
        if atlas:
            surface = make_atlas(surface, size)
        elif not surface.has_uvs:
            raise OptionError(f"{mesh}: the mesh has no UVs; pass --atlas to make an atlas")
        if view_data is None:
            result = surface  # the atlas with its baked colours
        else:
            result = unwrap(surface, view_data, size, symmetric, device)
            if atlas:
                surface.texture = result.texture
                result = surface
    return result


def _read_views(path: Path):
    from avatarkit.errors import InputError
    from avatarkit.io.hdf5 import read_artifact
    from avatarkit.io.view_folders import read_idr_folder

    if path.is_dir():
        return read_idr_folder(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    return read_artifact(path, "views")


def _export_png(output: Path, result) -> list[Path]:
    import numpy as np
    from PIL import Image

    from avatarkit.io.atomic import atomic_path

    images = {output.with_suffix(".png"): result.texture}
    if hasattr(result, "visibility"):
        images[output.with_name(output.stem + "_visibility.png")] = (np.clip(result.visibility, 0, 1) * 255).astype(
            np.uint8
        )
    for path, image in images.items():
        with atomic_path(path) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
    return list(images)
