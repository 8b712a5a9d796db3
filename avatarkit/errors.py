"""The one exception family of avatarkit.

The core raises these and never prints or exits. The command line turns any
:class:`AvatarkitError` into one red line on stderr and exit code 1 (see
``avatarkit.cli.app``); every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class AvatarkitError(Exception):
    """Base class: a problem the user can fix, told in one line.

    Args:
        message: what is wrong, without the file name.
        path: the file or folder the problem is about, if any; it is put first in
            the message so that a user running a verb over many files sees which one.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.message = message
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class InputError(AvatarkitError):
    """An input file is missing, unreadable or not what it should be."""


class KindError(InputError):
    """An HDF5 file is not of the kind (or schema) a verb expects."""


class MeshError(InputError):
    """A mesh is empty, has non-finite vertices, or faces out of range."""


class OptionError(AvatarkitError):
    """Options that cannot work together or values out of range."""


class ResourceError(AvatarkitError):
    """A job would not fit in memory, or a device is not available."""


class AvatarkitWarning(UserWarning):
    """Something is likely wrong but work can go on (e.g. implausible units).

    The core emits these with :func:`warnings.warn`; the command line prints them
    as one yellow line each.
    """
