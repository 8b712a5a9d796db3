"""``avatarkit render``: images and G-buffers of meshes, without OpenGL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import batch, console
from avatarkit.cli.options import Device, Jobs, Json, Overwrite, Quiet, Seed, Units, Up

Color = tuple[int, int, int]


def render(
    inputs: Annotated[list[Path], typer.Argument(help="Meshes: mesh .h5, .obj, .ply, .glb, .gltf, .off.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A .h5 file (one input) or a folder.")],
    views: Annotated[
        int | None, typer.Option(help="Cameras evenly spaced in yaw, per --pitch (default 8; 360 with --preset pifu).")
    ] = None,
    pitch: Annotated[
        list[float] | None, typer.Option(help="Camera elevation in degrees; repeat for several rings.")
    ] = None,
    size: Annotated[int | None, typer.Option(help="Image width and height in pixels (default 512).")] = None,
    projection: Annotated[Literal["perspective", "orthographic"], typer.Option()] = "perspective",
    fov: Annotated[float, typer.Option(help="Vertical field of view in degrees (perspective).")] = 40.0,
    rig: Annotated[
        Literal["orbit", "random"], typer.Option(help="orbit: even yaws; random: random yaw, pitch and fov.")
    ] = "orbit",
    preset: Annotated[
        Literal["pifu"] | None,
        typer.Option(help="pifu: orthographic, 512 x 512, 360 yaw steps (or --views), subject scaled as PIFu does."),
    ] = None,
    cameras: Annotated[
        Path | None, typer.Option(help="Cameras from a file: IDR/H3DS cameras.npz, NeRF transforms.json, views .h5.")
    ] = None,
    lighting: Annotated[
        Literal["none", "sh", "prt", "directional"],
        typer.Option(
            help="none: the albedo exactly; sh: spherical harmonics; prt: SH with self-shadowing; directional."
        ),
    ] = "none",
    hdri: Annotated[Path | None, typer.Option(help="Equirectangular .hdr environment for sh/prt lighting.")] = None,
    albedo: Annotated[Literal["auto", "texture", "vertex", "flat"], typer.Option()] = "auto",
    texture: Annotated[
        Path | None, typer.Option(help="A texture .h5 (unwrap-uv) to use instead of the mesh's.")
    ] = None,
    background: Annotated[Color, typer.Option(help="Background colour R G B, 0-255.")] = (0, 0, 0),
    background_dir: Annotated[
        Path | None, typer.Option(help="Folder of images to crop random backgrounds from.")
    ] = None,
    ssaa: Annotated[int, typer.Option(help="Supersampling per side for anti-aliased colour.")] = 1,
    export: Annotated[
        Literal["idr", "png"] | None,
        typer.Option(help="idr: image/, mask/, cameras.npz (IDR/H3DS layout); png: PNGs and a contact sheet."),
    ] = None,
    seed: Seed = 0,
    device: Device = "auto",
    jobs: Jobs = 1,
    units: Units = None,
    up: Up = "y",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Render meshes into views files: rgb, mask, depth, world normals, mesh UV and body-part label per pixel.

    Ray casting (warp) and torch shading: no display, no OpenGL, the same code on the CPU
    and on a GPU. Cameras are OpenCV (docs/conventions.md); K and world_to_cam are stored
    with the images. With --export, each input gets a folder (-o itself for one input)
    holding views.h5 and the exported files.
    """
    import functools

    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.render.render import RenderConfig

    if size is not None and size < 1:
        raise OptionError(f"--size must be positive, got {size}")
    if views is not None and views < 1:
        raise OptionError(f"--views must be positive, got {views}")
    if export == "idr" and cameras is None and (projection == "orthographic" or preset == "pifu"):
        raise OptionError("--export idr holds perspective cameras only (IDR's cameras.npz); use --export png")
    config = RenderConfig(
        lighting=lighting,
        albedo=albedo,
        background=tuple(background),
        background_dir=background_dir,
        hdri=hdri,
        ssaa=ssaa,
    )
    config.check()
    rig_options = dict(
        views=views,
        pitches=tuple(pitch or (0.0,)),
        size=size,
        projection=projection,
        fov=fov,
        rig=rig,
        preset=preset,
        cameras=cameras,
    )
    if export is None:
        pairs = batch.plan_outputs(inputs, output)
    elif output.suffix.lower() in batch.H5_SUFFIXES:
        raise OptionError("with --export, -o names a folder")
    elif len(inputs) == 1:
        pairs = [(inputs[0], output / "views.h5")]
    else:
        pairs = [(src, dst.with_suffix("") / "views.h5") for src, dst in batch.plan_outputs(inputs, output)]
    job = functools.partial(
        _render_one,
        rig_options=rig_options,
        config=config,
        texture=texture,
        export=export,
        seed=seed,
        device=resolve_device(device),
        units=units,
        up=up,
        provenance=console.provenance(),
    )
    outcomes = batch.run(job, pairs, "views", overwrite, jobs, quiet, "render")
    batch.finish(outcomes, json, quiet, "views files")


def make_cameras(mesh, views, pitches, size, projection, fov, rig, preset, cameras, seed):
    """The cameras one render uses, from the rig options (see ``render``)."""
    import numpy as np

    from avatarkit.errors import OptionError
    from avatarkit.render import cameras as C

    if cameras is not None:
        from avatarkit.io.cameras import read_cameras

        if preset is not None:
            raise OptionError("--cameras and --preset both set the cameras; give one")
        cams = read_cameras(cameras, None if size is None else (size, size))
        centre = np.array([cams.width - 1, cams.height - 1]) / 2
        principal = np.stack([cams.K[:, 0, 2], cams.K[:, 1, 2]], -1)
        if size is not None and (np.abs(principal - centre) > centre / 2).any():
            import warnings

            from avatarkit.errors import AvatarkitWarning

            native = np.rint(2 * principal[0] + 1).astype(int)
            warnings.warn(
                f"{cameras}: the cameras' principal point is far from the centre of a {size} x {size} image; "
                f"they look made for about {native[0]} x {native[1]} (--size crops, it does not scale)",
                AvatarkitWarning,
                stacklevel=2,
            )
        return cams
    if preset == "pifu":
        return C.pifu_rig(mesh.vertices, size or 512, np.arange(views or 360) * 360.0 / (views or 360), pitches)
    size, views = size or 512, views or 8
    v = mesh.vertices.astype(np.float64)
    center = 0.5 * (v.min(0) + v.max(0))
    radius = float(np.linalg.norm(v - center, axis=1).max())
    if rig == "random":
        rng = np.random.default_rng([seed, 1])
        return C.random_rig(rng, views, center, radius, (size, size), projection)
    yaws = np.arange(views) * 360.0 / views
    return C.orbit(center, radius, yaws, np.asarray(pitches), (size, size), projection, fov)


def _render_one(src, dst, *, rig_options, config, texture, export, seed, device, units, up, provenance):
    import warnings

    import numpy as np

    from avatarkit.errors import AvatarkitWarning
    from avatarkit.io.hdf5 import read_artifact, write_artifact
    from avatarkit.io.meshfile import load_mesh
    from avatarkit.render.render import render as render_views

    mesh = load_mesh(src, units, up)
    if texture is not None:
        if not mesh.has_uvs:
            from avatarkit.errors import MeshError

            raise MeshError("--texture needs a mesh with UVs", src)
        mesh.texture = read_artifact(texture, "texture").texture
    cams = make_cameras(mesh, seed=seed, **rig_options)
    if export == "idr" and cams.projection != "perspective":
        from avatarkit.errors import OptionError

        raise OptionError(
            f"--export idr holds perspective cameras only (IDR's cameras.npz), and {rig_options['cameras']} "
            "has orthographic ones; use --export png"
        )
    views = render_views(mesh, cams, config, seed=seed, device=device)
    empty = [i for i in range(len(views)) if not views.mask[i].any()]
    if empty:
        warnings.warn(
            f"{src}: camera{'s' if len(empty) > 1 else ''} {', '.join(map(str, empty))} "
            f"see{'' if len(empty) > 1 else 's'} nothing of the mesh",
            AvatarkitWarning,
            stacklevel=2,
        )
    if export is not None:
        from avatarkit.io.cameras import idr_scale_mat
        from avatarkit.io.view_folders import write_idr_folder, write_png_folder

        folder = dst.parent
        if export == "idr":
            v = mesh.vertices.astype(np.float64)
            center = 0.5 * (v.min(0) + v.max(0))
            write_idr_folder(folder, views, idr_scale_mat(center, 1.1 * np.linalg.norm(v - center, axis=1).max()))
        else:
            write_png_folder(folder, views)
    write_artifact(dst, views, batch.for_input(provenance, src))  # last: its presence means complete
    return {"views": len(views), "size": [views.width, views.height], "empty_views": empty}
