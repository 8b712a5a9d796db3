"""``avatarkit train METHOD``: one command per entry of the method registry.

Each command's options are the method's data inputs, the run options below, and every
field of the method's config dataclass (its docstring is the option's help). ``--config``
picks a named starting point; options given on the command line change it. The config is
saved in every checkpoint: ``--resume`` continues a run with it (options given again change
it, e.g. a larger ``--max-steps``).

Run with ``torchrun --nproc_per_node N -m avatarkit train ...`` for several processes (DDP);
``--device cuda`` then means each process's own GPU.

The options are built at run time from the registry rather than by a config library such as
tyro: tyro parses with argparse, so ``train`` would print help and errors unlike every other
verb (and exit 2 on a bad value where avatarkit's contract is one line and exit 1), for
features (nested and union configs) our flat configs do not use.
"""

from __future__ import annotations

import inspect
import time
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Quiet
from avatarkit.cli.progress import Progress
from avatarkit.methods.configs import field_docs, field_types, option_fields
from avatarkit.methods.registry import METHODS, MethodSpec, discover

app = typer.Typer(
    name="train",
    help="Train a method on views and samples; the run folder gets checkpoints, TensorBoard logs and metrics.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

Output = Annotated[Path, typer.Option("--output", "-o", help="Run folder (checkpoints, tensorboard/, metrics.jsonl).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in -o from its last checkpoint.")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Start again in a run folder that holds a run (deletes it).")
]
Workers = Annotated[int | None, typer.Option(help="Data-loading worker processes (default: 0 on the CPU, 4 on a GPU).")]


def _run_parameters(spec: MethodSpec) -> list[inspect.Parameter]:
    """The data options of ``spec``, then the options every run takes."""
    config = Annotated[
        str | None, typer.Option(help=f"Named starting config: {', '.join(spec.presets)} (default: default).")
    ]
    run = {
        "output": (Output, inspect.Parameter.empty),
        "config": (config, None),
        "resume": (Resume, False),
        "overwrite": (Overwrite, False),
        "device": (Device, "auto"),
        "workers": (Workers, None),
        "quiet": (Quiet, False),
        "json": (Json, False),
    }
    data = [
        inspect.Parameter(
            d.name,
            _KEYWORD,
            default=None,
            annotation=Annotated[list[Path] | None, typer.Option(f"--{d.name}", help=d.help)],
        )
        for d in spec.data
    ]
    return data + [
        inspect.Parameter(name, _KEYWORD, default=default, annotation=kind) for name, (kind, default) in run.items()
    ]


_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_RUN_OPTIONS = ("output", "config", "resume", "overwrite", "device", "workers", "quiet", "json")


def _config_parameters(spec: MethodSpec) -> list[inspect.Parameter]:
    """One option per field of the method's config (but the derived ones, which the method
    sets from its data): its docstring is the help, the presets' values are shown; tuples are
    given comma-separated, booleans as --x/--no-x."""
    docs, types_ = field_docs(spec.config), field_types(spec.config)
    params = []
    for field in option_fields(spec.config):
        kind = types_[field.name]
        defaults = ", ".join(f"{name} {_show(getattr(c, field.name))}" for name, c in spec.presets.items())
        help_text = f"{docs.get(field.name, '')} [{defaults}]"
        flag = "--" + field.name.replace("_", "-")
        if kind is bool:
            option_type, decl = bool | None, f"{flag}/--no-{flag[2:]}"
        elif typing.get_origin(kind) is tuple or type(None) in typing.get_args(kind):
            option_type, decl = str | None, flag  # coerced by the config (configs.coerce)
            help_text += " (comma-separated)" if typing.get_origin(kind) is tuple else ""
        else:
            option_type, decl = kind | None, flag
        option = typer.Option(decl, help=help_text, rich_help_panel="Config")
        params.append(inspect.Parameter(field.name, _KEYWORD, default=None, annotation=Annotated[option_type, option]))
    return params


def _show(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def add_method(spec: MethodSpec) -> None:
    """Give ``avatarkit train`` a command for ``spec`` (built from its data options, the run
    options and its config's fields)."""
    data_names = [d.name for d in spec.data]

    def command(**kwargs) -> None:
        data = {name: kwargs.pop(name) for name in data_names}
        run = {name: kwargs.pop(name) for name in _RUN_OPTIONS}
        overrides = {name: value for name, value in kwargs.items() if value is not None}
        _train(spec, data, overrides, **run)

    command.__signature__ = inspect.Signature(_run_parameters(spec) + _config_parameters(spec))
    command.__name__ = spec.name
    command.__doc__ = spec.help
    app.command(spec.name, help=spec.help)(command)


discover()  # methods that installed packages add
for _spec in METHODS.values():
    add_method(_spec)


def _train(
    spec: MethodSpec,
    data: dict[str, list[Path] | None],
    overrides: dict[str, Any],
    output: Path,
    config: str | None,
    resume: bool,
    overwrite: bool,
    device: str,
    workers: int | None,
    quiet: bool,
    json: bool,
) -> None:
    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.methods.registry import plan_run
    from avatarkit.methods.trainer import current_rank, train

    plan = plan_run(spec, output, data, overrides, config, resume, overwrite)
    resolved = resolve_device(device)
    if workers is None:
        workers = 4 if resolved.startswith("cuda") else 0
    if workers < 0:
        raise OptionError(f"--workers must be 0 or more, got {workers}")
    method, cfg = plan.method(), plan.config
    main = current_rank() == 0
    reporter = Progress(quiet or not main, cfg.log_every, cfg.max_time)
    started = time.perf_counter()
    result = train(
        method,
        plan.folder,
        resolved,
        resume=plan.resume,
        reporter=reporter,
        workers=workers,
        command=" ".join(console.COMMAND_LINE.get() or []),
        overwrite=overwrite,
    )
    if not main:
        raise typer.Exit(130 if result.interrupted else 0)
    summary = {
        "run": str(output),
        "method": spec.name,
        "steps": result.steps,
        "interrupted": result.interrupted,
        "last": str(result.last),
        "best": str(result.best) if result.best else None,
        "best_value": result.best_value,
        "metrics": result.metrics,
        "samples_per_s": round(result.samples_per_s, 3),
        "time_up": result.time_up,
        "seconds": round(time.perf_counter() - started, 1),
        **method.summary(),
    }
    if json:
        console.emit_json(summary)
    if result.interrupted:
        console.info(f"interrupted at step {result.steps}: saved {result.last}; continue with --resume", json and quiet)
        raise typer.Exit(130)
    budget = " (the --max-time budget)" if result.time_up else ""
    console.info(f"trained {result.steps} steps into {output} in {summary['seconds']} s{budget}", quiet or json)
