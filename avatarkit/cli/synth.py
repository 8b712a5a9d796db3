"""``avatarkit synth``: synthetic people from the Anny body model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, OutputDir, Overwrite, Quiet, Seed


def synth(
    output: OutputDir,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many people.")] = 1,
    seed: Seed = 0,
    pose: Annotated[
        Literal["random", "rest"], typer.Option(help="random: natural joint angles; rest: Anny's A-pose.")
    ] = "random",
    expressions: Annotated[bool, typer.Option(help="Random facial expressions (52 facial actions).")] = False,
    age_range: Annotated[tuple[float, float], typer.Option(help="Age range in years, MIN MAX.")] = (18.0, 80.0),
    gender: Annotated[Literal["any", "female", "male"], typer.Option()] = "any",
    texture: Annotated[
        Literal["skin", "clothes", "checker", "none"],
        typer.Option(
            help="skin: one tone per person; clothes: patterned top and bottoms; checker: UV debug.",
        ),
    ] = "skin",
    texture_size: Annotated[int, typer.Option(help="Texture width and height in texels.")] = 1024,
    part: Annotated[Literal["body", "head"], typer.Option(help="head: head and neck only.")] = "body",
    device: Device = "auto",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Synthetic people from the Anny body model, one mesh HDF5 each (human_0000.h5, ...).

    Each file holds the mesh in metres (+Y up, facing +Z, feet on y = 0), its UVs and
    texture, a body-part label per vertex, landmarks (the six H3DS face landmarks and
    major joints) and the Anny parameters. The same seed gives the same people.
    """
    from avatarkit.device import resolve_device
    from avatarkit.io.hdf5 import is_complete, write_artifact
    from avatarkit.synth.anny_body import anny_cache_dir, anny_cache_is_warm
    from avatarkit.synth.generate import SynthConfig, synthesize

    config = SynthConfig(
        seed=seed,
        pose=pose,
        expressions=expressions,
        age_range=tuple(age_range),
        gender=gender,
        texture=texture,
        texture_size=texture_size,
        part=part,
    )
    config.check()
    stem = "head" if part == "head" else "human"
    paths = {i: Path(output) / f"{stem}_{i:04d}.h5" for i in range(count)}
    todo = [i for i, p in paths.items() if overwrite or not is_complete(p, "mesh")]
    skipped = [str(paths[i]) for i in paths if i not in todo]
    written = []
    if todo:
        device = resolve_device(device)
        if not anny_cache_is_warm():
            console.info(
                f"Building the Anny body model cache in {anny_cache_dir()} (first run only, 1-2 minutes; "
                "set ANNY_CACHE_DIR to move it).",
                quiet,
            )
        provenance = console.provenance()
        with console.progress(quiet) as bar:
            task = bar.add_task("synth", total=len(todo))
            for index, mesh in synthesize(config, todo, device):
                write_artifact(paths[index], mesh, provenance)
                written.append(str(paths[index]))
                bar.advance(task)
    if json:
        console.emit_json({"written": written, "skipped": skipped, "output": str(output)})
    else:
        note = f" ({len(skipped)} already complete, skipped; --overwrite to redo)" if skipped else ""
        console.info(f"wrote {len(written)} people to {output}{note}", quiet)
