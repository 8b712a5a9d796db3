"""``avatarkit view``: a local web viewer (viser) for meshes, point clouds, views and runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Overwrite, Quiet


def view(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Mesh files (.obj .ply .glb .gltf .off), avatarkit HDF5 files (mesh, face, samples, views, "
            "voxels, texture), training run folders (their validation meshes), folders of these.",
            show_default=False,
        ),
    ],
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="A ground-truth mesh: every other mesh is shown beside it with its error heatmap. Without it, "
            "the second of exactly two meshes is the truth of the first.",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 lets other machines in.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    screenshot: Annotated[
        Path | None,
        typer.Option("--screenshot", help="Render the scene in headless Chromium to this PNG and exit."),
    ] = None,
    size: Annotated[tuple[int, int], typer.Option("--size", help="Screenshot width and height, pixels.")] = (960, 720),
    max_points: Annotated[
        int, typer.Option("--max-points", min=1, help="Most points drawn per point file (a seeded random subset).")
    ] = 2_000_000,
    point_size: Annotated[float, typer.Option("--point-size", min=1e-5, help="Point size, metres.")] = 0.004,
    layout: Annotated[
        str, typer.Option("--layout", help="world: files where their coordinates put them; row: side by side.")
    ] = "world",
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds --screenshot waits for the browser to draw.")
    ] = 120.0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Show files in the browser: meshes with their colours or textures, samples coloured by
    SDF, colour or normal, views as camera frusta with their images, a reconstruction beside
    its truth with an error heatmap.

    Opens on http://localhost:PORT (printed); Ctrl-C stops it. A file that cannot be shown is
    listed with its problem and the others are shown. `--screenshot out.png` renders headless
    (Chromium) and exits, for scripts and CI. Details: docs/view.md.
    """
    from avatarkit.errors import OptionError
    from avatarkit.view.scene import LAYOUTS, build_scene
    from avatarkit.view.server import check_port

    if layout not in LAYOUTS:
        raise OptionError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if screenshot is not None:
        from avatarkit.io.outputs import check_outputs

        if screenshot.suffix.lower() != ".png":
            raise OptionError(f"--screenshot must end in .png, got {screenshot.name}")
        if min(size) < 16:
            raise OptionError(f"--size must be at least 16 x 16, got {size[0]} x {size[1]}")
        check_outputs([screenshot], [*files, truth], None, overwrite)
    else:
        check_port(host, port)  # before reading anything: a busy port is one line, now
    from avatarkit.device import resolve_device

    scene = build_scene(files, truth, max_points, point_size, layout, resolve_device(device, "warp"))
    for path, why in scene.problems.items():
        console.warning(f"{path}: {why}; not shown")
    summary = {
        "shown": {str(p): what for p, what in scene.shown.items()},
        "not_shown": {str(p): why for p, why in scene.problems.items()},
        "points": scene.point_count,
    }
    if screenshot is not None:
        from avatarkit.io.images import write_png
        from avatarkit.view.server import render_screenshot

        write_png(screenshot, render_screenshot(scene, *size, timeout=timeout))
        if json:
            console.emit_json({**summary, "screenshot": str(screenshot)})
        else:
            console.info(f"wrote {screenshot}", quiet)
        return
    import threading

    from avatarkit.view.server import serving

    with serving(scene, host, port) as viewer:
        try:  # from the line saying where it is: a Ctrl-C the moment after is a clean stop too
            if json:
                console.emit_json({**summary, "url": viewer.url})
            console.info(f"viewer at {viewer.url} ({len(scene.shown)} files; Ctrl-C to stop)", quiet)
            threading.Event().wait()
        except KeyboardInterrupt as exc:  # Ctrl-C ends the viewer cleanly, exit 0
            # the app's SIGTERM (a KeyboardInterrupt subclass): exit 143 as every verb; nothing was being written
            if type(exc) is not KeyboardInterrupt:
                console.error("terminated: viewer stopped")
                raise typer.Exit(143) from None
            console.info("viewer stopped", quiet)
