"""``avatarkit render``: images and G-buffers of meshes, without OpenGL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import batch, console
from avatarkit.cli.options import Device, Jobs, Json, MaxMemory, Overwrite, Quiet, Seed, Shard, Units, Up
from avatarkit.io.view_folders import EXPORTS
from avatarkit.render.render import ALBEDOS, LIGHTINGS
from avatarkit.render.rigs import RIG_PRESETS, RIGS
from avatarkit.structures.cameras import PROJECTIONS

Color = tuple[int, int, int]


def render(
    inputs: Annotated[list[Path], typer.Argument(help="Meshes: mesh .h5, .obj, .ply, .glb, .gltf, .off.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A .h5 file (one input) or a folder.")],
    views: Annotated[
        int | None,
        typer.Option(
            help="Cameras evenly spaced in yaw, per --pitch (default 8; 360 with --preset pifu, 4 with geopifu, "
            "70 with h3ds, 7 with texture; "
            "photos with portrait, default 8)."
        ),
    ] = None,
    pitch: Annotated[
        list[float] | None, typer.Option(help="Camera elevation in degrees; repeat for several rings (default 0).")
    ] = None,
    yaws: Annotated[
        tuple[float, float] | None,
        typer.Option(
            help="Yaw range of the cameras in degrees, MIN MAX (0: the subject's front, 90: its left; "
            "default 0 360, -90 90 with --preset h3ds or texture; with portrait the head's yaw, default -45 45).",
            metavar="MIN MAX",
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            help="Image width and height in pixels (default 512); with --preset h3ds or portrait the height (3:4), "
            "with geopifu the height (2:3, default 1536)."
        ),
    ] = None,
    projection: Annotated[Literal[PROJECTIONS], typer.Option()] = "perspective",
    fov: Annotated[
        float | None, typer.Option(help="Vertical field of view in degrees (perspective; default 40).")
    ] = None,
    rig: Annotated[Literal[RIGS], typer.Option(help="orbit: even yaws; random: random yaw, pitch and fov.")] = "orbit",
    preset: Annotated[
        Literal[RIG_PRESETS] | None,
        typer.Option(
            help="pifu: orthographic, 512 x 512, 360 yaw steps (or --views), subject scaled as PIFu does; "
            "geopifu: orthographic, yaws 0/90/180/270, 1024 x 1536 (--size: the height), the image the front face "
            "of the mesh's voxelize --preset geopifu box; "
            "h3ds: 70 hand-held-style portrait views of the head over yaw -90..90, with H3DS's 3/4/8/16/32-view "
            "subsets; portrait: photos of the face at random head poses, focal lengths and places, random SH "
            "light per view; texture: one view per yaw from -90 to 90, both included (default 7), for "
            "unwrap-uv --per-view (docs/render.md)."
        ),
    ] = None,
    cameras: Annotated[
        Path | None, typer.Option(help="Cameras from a file: IDR/H3DS cameras.npz, NeRF transforms.json, views .h5.")
    ] = None,
    lighting: Annotated[
        Literal[LIGHTINGS] | None,
        typer.Option(
            help="none: the albedo exactly; sh: spherical harmonics; prt: SH with self-shadowing; directional "
            "(default none; sh with --preset portrait, a random environment per view)."
        ),
    ] = None,
    hdri: Annotated[
        Path | None,
        typer.Option(
            help="Environment for sh/prt lighting: an equirectangular .hdr or .exr map, a folder of them (a map "
            "drawn per view), or sky (a built-in procedural sky per view: no download)."
        ),
    ] = None,
    albedo: Annotated[Literal[ALBEDOS], typer.Option()] = "auto",
    texture: Annotated[
        Path | None, typer.Option(help="A texture .h5 (unwrap-uv) to use instead of the mesh's.")
    ] = None,
    background: Annotated[Color, typer.Option(help="Background colour R G B, 0-255.")] = (0, 0, 0),
    background_dir: Annotated[
        Path | None, typer.Option(help="Folder of images to crop random backgrounds from.")
    ] = None,
    ssaa: Annotated[int, typer.Option(help="Supersampling per side for anti-aliased colour.")] = 1,
    export: Annotated[
        Literal[EXPORTS] | None,
        typer.Option(
            help="idr: image/, mask/, cameras.npz (IDR/H3DS layout; subsets.json with --preset h3ds); "
            "png: PNGs and a contact sheet."
        ),
    ] = None,
    max_memory: MaxMemory = None,
    seed: Seed = 0,
    device: Device = "auto",
    jobs: Jobs = 1,
    units: Units = None,
    up: Up = "y",
    overwrite: Overwrite = False,
    shard: Shard = None,
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

    from avatarkit.device import memory_limit, resolve_device
    from avatarkit.io.view_folders import check_export, export_names
    from avatarkit.render.render import RenderConfig, preset_lighting
    from avatarkit.render.rigs import RigSpec

    lighting, environments = preset_lighting(preset, lighting)
    config = RenderConfig(
        lighting=lighting, environments=environments, albedo=albedo, background=tuple(background),
        background_dir=background_dir, hdri=hdri, ssaa=ssaa,
    )  # fmt: skip
    config.check()
    rig_spec = RigSpec(
        views, tuple(pitch) if pitch else None, tuple(yaws) if yaws else None, size, projection, fov, rig, preset,
        cameras,
    )  # fmt: skip
    rig_spec.check()
    check_export(export, rig_spec.orthographic)
    limit = memory_limit(max_memory)
    pairs = (
        batch.plan_outputs(inputs, output) if export is None else batch.plan_output_folders(inputs, output, "views.h5")
    )
    job = functools.partial(
        _render_one, rig=rig_spec, config=config, texture=texture, export=export, limit=limit, seed=seed,
        device=resolve_device(device), units=units, up=up, provenance=console.provenance(),
    )  # fmt: skip

    def exported(dst: Path) -> list[Path]:  # beside each views file, checked before any work
        return export_names(dst.parent, export)

    side = [texture, cameras, hdri]
    outcomes = batch.run(job, pairs, "views", overwrite, jobs, quiet, "render", shard, side, exported)
    batch.finish(outcomes, json, quiet, "views files")


def _render_one(src, dst, *, rig, config, texture, export, limit, seed, device, units, up, provenance):
    from avatarkit.io.hdf5 import read_artifact, write_artifact
    from avatarkit.io.meshfile import load_mesh
    from avatarkit.io.view_folders import export_views
    from avatarkit.render.render import render_rig

    mesh = load_mesh(src, units, up)
    if texture is not None:
        mesh = mesh.with_texture(read_artifact(texture, "texture").texture, src)
    views = render_rig(mesh, rig, config, seed, device, export, max_bytes=limit)
    if export is not None:
        export_views(dst.parent, views, export, mesh)
    write_artifact(dst, views, batch.for_input(provenance, src))  # last: its presence means complete
    empty = [i for i in range(len(views)) if not views.mask[i].any()]
    info = {"views": len(views), "size": [views.width, views.height], "empty_views": empty}
    if views.subsets:
        info["subsets"] = list(views.subsets)
    return info
