"""The ``avatarkit`` command: one Typer app, one module per verb.

This module and the verb modules import only the standard library, Typer and Rich at
module level; torch, open3d, anny and warp are imported inside the verbs, so
``avatarkit --help`` stays fast.

Errors are handled in one place (:class:`_Group.invoke`): an
:class:`~avatarkit.errors.AvatarkitError`, or a usage error (an unknown option, a value out
of range), becomes one red line on stderr and exit code 1; an
:class:`~avatarkit.errors.AvatarkitWarning` becomes one yellow line; Ctrl-C and SIGTERM end
the verb through its clean-up (no temporary file survives) with exit codes 130 and 143; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings

import typer
from typer.core import TyperGroup

from avatarkit import __version__
from avatarkit.cli import console
from avatarkit.errors import AvatarkitError, AvatarkitWarning

try:  # typer 0.20 and later carry their own Click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer uses Click itself
    from click.exceptions import NoArgsIsHelpError, UsageError


class _Group(TyperGroup):
    def make_context(self, info_name, args, parent=None, **extra):
        try:
            ctx = super().make_context(info_name, list(args), parent=parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:  # `avatarkit --nope`
            console.error(exc.format_message())
            raise typer.Exit(1) from None
        console.COMMAND_LINE.set(["avatarkit", *args])  # the command as typed, for provenance
        return ctx

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.simplefilter("always", AvatarkitWarning)
            previous = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):
                if issubclass(category, AvatarkitWarning):
                    console.warning(str(message))
                else:
                    previous(message, category, filename, lineno, file, line)

            warnings.showwarning = show
            try:
                with _terminate_cleanly():
                    return super().invoke(ctx)
            except AvatarkitError as exc:
                console.error(str(exc))
                raise typer.Exit(1) from None
            except NoArgsIsHelpError:
                raise  # `avatarkit train` alone: Click shows the help
            except UsageError as exc:  # one line, as our own errors, not Click's usage box
                console.error(exc.format_message())
                raise typer.Exit(1) from None
            except _Terminated:
                console.error("terminated: outputs in progress were discarded")
                raise typer.Exit(143) from None
            except KeyboardInterrupt:
                console.error("interrupted: outputs in progress were discarded")
                raise typer.Exit(130) from None

    def list_commands(self, ctx):  # keep the order verbs are registered in
        return list(self.commands)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the verb is so that its clean-up runs (as for Ctrl-C)."""


@contextlib.contextmanager
def _terminate_cleanly():
    """While a verb runs (on the main thread), SIGTERM raises :class:`_Terminated`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


VERBS = {
    "synth": "synth:synth",
    "render": "render:render",
    "sample-sdf": "sample_sdf:sample_sdf",
    "voxelize": "voxelize:voxelize",
    "unwrap-uv": "unwrap_uv:unwrap_uv",
    "train": "train:app",
    "reconstruct": "reconstruct:reconstruct",
    "fit-head": "fit_head:fit_head",
    "track-face": "track_face:track_face",
    "evaluate-chamfer": "evaluate_chamfer:evaluate_chamfer",
    "icp-align": "icp_align:icp_align",
    "inspect": "inspect:inspect",
    "convert": "convert:convert",
    "view": "view:view",
}
"""Each verb and its ``module:function`` in ``avatarkit.cli`` (``train`` is a group of commands)."""


def build(verbs: list[str] | None = None) -> typer.Typer:
    """The ``avatarkit`` app with ``verbs`` (default all): a command line that runs one verb
    imports that verb's module only, so its start-up pays for nothing else."""
    import importlib

    app = typer.Typer(
        cls=_Group,
        name="avatarkit",
        help="Composable tools for 3D avatar reconstruction. Files are HDF5 (docs/hdf5.md); "
        "lengths in metres, +Y up, subjects facing +Z (docs/conventions.md).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",  # docstring paragraphs reflow to the terminal width
    )
    app.callback()(_root)
    for name in verbs or VERBS:
        module, _, attribute = VERBS[name].partition(":")
        target = getattr(importlib.import_module(f"avatarkit.cli.{module}"), attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avatarkit {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Composable tools for 3D avatar reconstruction."""


def __getattr__(name: str):
    if name == "app":  # every verb (tests, and tools that import the app)
        global app
        app = build()
        return app
    raise AttributeError(name)


def main() -> None:
    import sys

    verb = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    build([verb] if verb in VERBS and "--help" not in sys.argv[1:2] else None)()
