"""Checks on a verb's outputs before any work: nothing a user had is lost.

:func:`check_outputs` refuses, in one line naming the file, an output that is one of the
verb's inputs, a file there that avatarkit did not write (unless ``--overwrite``), a folder
where a file should go, a file where a folder should go, and a place that cannot be written.
Together with atomic writes (:mod:`avatarkit.io.atomic`) this means a run either lands all
its outputs or changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from avatarkit.errors import OptionError, ResourceError
from avatarkit.io.formats import is_hdf5


def check_outputs(
    outputs: Iterable[Path],
    inputs: Iterable[Path | None] = (),
    kind: str | None = None,
    overwrite: bool = False,
) -> None:
    """Raise :class:`OptionError` or :class:`ResourceError` unless every path in ``outputs`` can
    be written without loss (see the module docstring). ``kind``: the avatarkit HDF5 kind the
    ``.h5`` outputs are; an existing ``.h5`` of another kind, or not avatarkit's, is only
    replaced with ``overwrite``; other existing files (mesh files, images) are replaced only
    with ``overwrite`` too."""
    given = [Path(p) for p in inputs if p is not None]
    for output in map(Path, outputs):
        for source in given:
            if _same(output, source):
                raise OptionError(f"{output} would write over the input {source}: choose another -o")
        if output.is_dir():
            raise OptionError(f"{output} is a folder; give a file name (or a folder for many inputs)")
        if output.exists() and not overwrite and not _ours(output, kind):
            what = f"an avatarkit {kind} file" if kind and is_hdf5(output) else "a file avatarkit wrote in this run"
            raise OptionError(f"{output} exists and is not {what}: remove it, or pass --overwrite to replace it")
        check_writable(output)


def check_writable(path: Path) -> None:
    """Raise :class:`ResourceError` unless a file can be created at ``path`` (its folder may not
    exist yet): the nearest existing folder above it must be a folder we can write in."""
    parent = Path(path).parent
    while not parent.exists() and parent.parent != parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ResourceError(f"cannot make a folder inside {parent}: it is a file", path)
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ResourceError(f"cannot write in {parent} ({exc.strerror or exc})", path) from None


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _ours(path: Path, kind: str | None) -> bool:
    if not is_hdf5(path) or kind is None:
        return False
    from avatarkit.io.hdf5 import is_complete

    return is_complete(path, kind)
