"""``avatarkit synth``: synthetic people from the Anny body model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import batch, console
from avatarkit.cli.options import Device, Json, OutputDir, Overwrite, Quiet, Seed, Shard
from avatarkit.synth.generate import GENDERS, PARTS, POSES, TEXTURES


def synth(
    output: OutputDir,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many people.")] = 1,
    seed: Seed = 0,
    pose: Annotated[Literal[POSES], typer.Option(help="random: natural joint angles; rest: Anny's A-pose.")] = "random",
    expressions: Annotated[bool, typer.Option(help="Random facial expressions (52 facial actions).")] = False,
    face_variation: Annotated[
        bool,
        typer.Option(
            help="Random face shapes (nose, eyes, lips, jaw, ears, ...: Anny's 139 local changes of the face "
            "and head, from the Anny face model's prior). Off: the face of the phenotype alone, as synth made "
            "them before this option.",
        ),
    ] = True,
    age_range: Annotated[tuple[float, float], typer.Option(help="Age range in years, MIN MAX.")] = (18.0, 80.0),
    gender: Annotated[Literal[GENDERS], typer.Option()] = "any",
    texture: Annotated[
        Literal[TEXTURES],
        typer.Option(
            help="skin: one tone per person; clothes: patterned top and bottoms; checker: UV debug.",
        ),
    ] = "skin",
    texture_size: Annotated[int, typer.Option(help="Texture width and height in texels.")] = 1024,
    part: Annotated[
        Literal[PARTS], typer.Option(help="head: head and neck only, their outer surface (as a scan).")
    ] = "body",
    device: Device = "auto",
    overwrite: Overwrite = False,
    shard: Shard = None,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Synthetic people from the Anny body model, one mesh HDF5 each (human_0000.h5, ...).

    Each file holds the mesh in metres (+Y up, facing +Z, feet on y = 0), its UVs and
    texture, a body-part label per vertex, landmarks (the six H3DS face landmarks and
    major joints), H3DS's face regions (/regions/face_sphere: within 95 mm of the nose tip;
    /regions/face: its forward-facing skin) and the Anny parameters. Faces vary in shape as
    well as by body (--face-variation). The same seed gives the same people.
    """
    import functools

    from avatarkit.device import resolve_device
    from avatarkit.parametric.anny import anny_cache_dir, anny_cache_is_warm
    from avatarkit.synth.generate import SynthConfig

    config = SynthConfig(
        seed=seed,
        pose=pose,
        expressions=expressions,
        face_variation=face_variation,
        age_range=tuple(age_range),
        gender=gender,
        texture=texture,
        texture_size=texture_size,
        part=part,
    )
    config.check()
    stem = "head" if part == "head" else "human"
    pairs = [(_Subject(i), Path(output) / f"{stem}_{i:04d}.h5") for i in range(count)]
    device = resolve_device(device)
    if not anny_cache_is_warm():
        console.info(
            f"Building the Anny body model cache in {anny_cache_dir()} (first run only, 1-2 minutes; "
            "set ANNY_CACHE_DIR to move it).",
            quiet,
        )
    job = functools.partial(_synth_one, generator=_Generator(config, device), provenance=console.provenance())
    outcomes = batch.run(job, pairs, "mesh", overwrite, 1, quiet, "synth", shard)
    batch.finish(outcomes, json, quiet, "people")


class _Subject(int):
    """A subject index that names itself in messages."""

    def __str__(self) -> str:
        return f"subject {int(self)}"


class _Generator:
    """Anny, loaded on the first subject that is not already complete."""

    def __init__(self, config, device: str) -> None:
        self.config, self.device, self.generator = config, device, None

    def subject(self, index: int):
        from avatarkit.synth.generate import HumanGenerator

        if self.generator is None:
            self.generator = HumanGenerator(self.config, self.device)
        return self.generator.subject(index)


def _synth_one(index: _Subject, dst: Path, *, generator: _Generator, provenance) -> dict:
    from avatarkit.io.hdf5 import write_artifact

    mesh = generator.subject(int(index))
    write_artifact(dst, mesh, provenance)
    return {"vertices": len(mesh.vertices), "height_m": float(mesh.extent()[1])}
