"""Atomic outputs: a verb's outputs appear complete or not at all.

Every writer in avatarkit writes to a temporary file in the destination folder and renames
it into place (``os.replace`` is atomic within one file system). A crash, Ctrl-C, SIGTERM
(the command line turns it into an exception) or a bad input therefore never leaves a
half-written file, and an existing output is only replaced by a complete new one.

Outputs that belong together (a transform and the moved mesh, a views file and its
exported images, metrics and their heat map) land together: inside :func:`landing`, every
:func:`atomic_path` keeps its finished temporary file and the renames all happen when the
block ends without an error; on an error none happens, every temporary file is removed,
and so is every folder the block created. Files the new outputs make stale
(:func:`remove_stale`) are removed only when the outputs land.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from avatarkit.errors import ResourceError

_LANDING: contextvars.ContextVar[_Landing | None] = contextvars.ContextVar("avatarkit_landing", default=None)


class _Landing:
    def __init__(self) -> None:
        self.ready: list[tuple[Path, Path]] = []
        self.created: list[Path] = []
        self.stale: list[Path] = []


@contextlib.contextmanager
def landing() -> Iterator[None]:
    """Land every file written in the block together (see the module docstring)."""
    if _LANDING.get() is not None:  # already inside one: it lands them
        yield
        return
    state = _Landing()
    token = _LANDING.set(state)
    try:
        yield
    except BaseException:
        for tmp, _ in state.ready:
            tmp.unlink(missing_ok=True)
        _remove_created(state.created)
        raise
    finally:
        _LANDING.reset(token)
    for i, (tmp, path) in enumerate(state.ready):
        try:
            os.replace(tmp, path)
        except OSError as exc:  # e.g. a folder where the file goes: no temporary file is left behind
            for left, _ in state.ready[i:]:
                left.unlink(missing_ok=True)
            _remove_created(state.created)
            raise ResourceError(f"cannot put the file in place ({exc.strerror or exc})", path) from None
    for path in state.stale:
        path.unlink(missing_ok=True)


def remove_stale(path: str | Path) -> None:
    """Remove ``path``, a file an earlier run wrote that the outputs being written replace
    (an export's surplus views): at the end of the :func:`landing` block, only when it lands,
    or at once outside one."""
    state = _LANDING.get()
    if state is None:
        Path(path).unlink(missing_ok=True)
    else:
        state.stale.append(Path(path))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file keeps the destination's suffix (writers that dispatch on the
    extension, like trimesh's exporters, see the right one). On any exception,
    KeyboardInterrupt included, the temporary file is removed, ``path`` is untouched and the
    folders made for it are removed again. Inside :func:`landing`, the rename waits for the
    end of the landing block.

    Raises:
        ResourceError: the folder cannot be made or written (naming it and why).
    """
    path = Path(path)
    state = _LANDING.get()
    created = _make_parent(path)
    if state is not None:
        state.created.extend(created)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        if state is None:
            _remove_created(created)
        raise ResourceError(f"cannot write here ({exc.strerror or exc})", path.parent) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        if state is None:
            os.replace(tmp, path)
        else:
            state.ready.append((tmp, path))
    except BaseException:
        tmp.unlink(missing_ok=True)
        if state is None:
            _remove_created(created)
        raise


@contextlib.contextmanager
def atomic_paths(paths: list[Path]) -> Iterator[list[Path]]:
    """Like :func:`atomic_path` for outputs that belong together (an OBJ, its MTL and PNG):
    all are renamed into place only when the body succeeded."""
    with landing(), contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(p)) for p in paths]


def _make_parent(path: Path) -> list[Path]:
    """Make ``path``'s missing folders; returns those made (outermost first)."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        if parent.parent == parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ResourceError(f"cannot make a folder inside {parent}: it is a file", path.parent)
    made: list[Path] = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
            made.append(folder)
        except FileExistsError:
            pass
        except OSError as exc:
            _remove_created(made)
            raise ResourceError(f"cannot make the folder ({exc.strerror or exc})", folder) from None
    return made


def _remove_created(folders: list[Path]) -> None:
    for folder in reversed(folders):  # innermost first; only if nothing else landed in them
        with contextlib.suppress(OSError):
            folder.rmdir()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
