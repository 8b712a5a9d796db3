"""The ``avatarkit`` command: one Typer app, one module per verb.

This module and the verb modules import only the standard library, Typer and Rich at
module level; torch, open3d, anny and warp are imported inside the verbs, so
``avatarkit --help`` stays fast.

Errors are handled in one place (:class:`_Group.invoke`): an
:class:`~avatarkit.errors.AvatarkitError` becomes one red line on stderr and exit code
1; an :class:`~avatarkit.errors.AvatarkitWarning` becomes one yellow line; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import warnings

import typer
from typer.core import TyperGroup

from avatarkit import __version__
from avatarkit.cli import console
from avatarkit.errors import AvatarkitError, AvatarkitWarning


class _Group(TyperGroup):
    def make_context(self, info_name, args, parent=None, **extra):
        ctx = super().make_context(info_name, list(args), parent=parent, **extra)
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
                return super().invoke(ctx)
            except AvatarkitError as exc:
                console.error(str(exc))
                raise typer.Exit(1) from None

    def list_commands(self, ctx):  # keep the order verbs are registered in
        return list(self.commands)


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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avatarkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Composable tools for 3D avatar reconstruction."""


def _register() -> None:
    from avatarkit.cli import (
        convert,
        evaluate_chamfer,
        icp_align,
        inspect,
        reconstruct,
        render,
        sample_sdf,
        synth,
        train,
        unwrap_uv,
        voxelize,
    )

    app.command("synth")(synth.synth)
    app.command("render")(render.render)
    app.command("sample-sdf")(sample_sdf.sample_sdf)
    app.command("voxelize")(voxelize.voxelize)
    app.command("unwrap-uv")(unwrap_uv.unwrap_uv)
    app.add_typer(train.app, name="train")
    app.command("reconstruct")(reconstruct.reconstruct)
    app.command("evaluate-chamfer")(evaluate_chamfer.evaluate_chamfer)
    app.command("icp-align")(icp_align.icp_align)
    app.command("inspect")(inspect.inspect)
    app.command("convert")(convert.convert)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
