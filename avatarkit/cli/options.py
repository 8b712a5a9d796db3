"""Options shared by the verbs, declared once (see ``docs/conventions.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
Json = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")]
Device = Annotated[
    str, typer.Option("--device", help="auto, cpu, cuda or cuda:N; auto takes the GPU when there is one.")
]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Makes every random choice reproducible (0 or more).")]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Redo outputs that already exist and are complete; replace files there that avatarkit did not write.",
    ),
]
Units = Annotated[
    str | None,
    typer.Option("--units", help="Units of input mesh files: m, cm or mm (default m, with a warning if implausible)."),
]
Up = Annotated[str, typer.Option("--up", help="Up axis of input mesh files: y or z (Z-up meshes face -Y).")]
OutputDir = Annotated[Path, typer.Option("--output", "-o", help="Output folder, one file per input.")]
MaxMemory = Annotated[
    float | None,
    typer.Option("--max-memory", help="Refuse jobs estimated to need more than this many GiB (default: half the RAM)."),
]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Worker processes; the CPU threads are shared among them.")]
Bounds = tuple[float, float, float, float, float, float]
"""A box, MINX MINY MINZ MAXX MAXY MAXZ in metres."""
Shard = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="K/N",
        help="Do only shard K of N (by output name): N jobs with K = 1..N do the whole run (docs/cluster.md).",
    ),
]
