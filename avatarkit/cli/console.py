"""Terminal output for the commands: errors, warnings, progress, JSON.

Human-facing text goes to stderr, so that stdout carries only what ``--json`` asks
for and verbs compose in shell pipelines.
"""

from __future__ import annotations

import json
import math
import sys
from contextvars import ContextVar
from typing import Any

from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, soft_wrap=True, highlight=False, emoji=False)  # messages are text: "scan:x:v2.ply" stays


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")


def warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}")


def info(message: str, quiet: bool = False) -> None:
    if not quiet:
        err.print(escape(message))


def emit_json(payload: Any) -> None:
    """Write ``payload`` as strict JSON on stdout: numpy scalars and arrays and paths made plain,
    and non-finite numbers (a failed reconstruction's infinite distances) as null, since
    strict parsers reject ``Infinity`` and ``NaN``; the payload says why elsewhere (``error``)."""
    sys.stdout.write(json.dumps(_strict(payload), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _strict(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _strict(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


COMMAND_LINE: ContextVar[list[str] | None] = ContextVar("avatarkit_command_line", default=None)
"""Set by the app when it parses a command line (``sys.argv`` is not it under test runners)."""


def provenance(inputs=()):
    """Provenance for files a verb writes: the avatarkit command line as typed, and its inputs."""
    import shlex

    from avatarkit.io.hdf5 import Provenance

    argv = COMMAND_LINE.get()
    if argv is None:
        return Provenance.from_argv(inputs)
    return Provenance(shlex.join(argv), tuple(str(p) for p in inputs))


def progress(quiet: bool):
    """A Rich progress bar on a terminal; silent with ``--quiet`` or when piped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=False,
    )
