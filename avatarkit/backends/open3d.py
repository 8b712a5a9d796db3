"""Import open3d on machines without the system libusb.

open3d's Linux wheel links ``libusb-1.0.so.0``, which a fresh machine often lacks
(``ImportError: libusb-1.0.so.0: cannot open shared object file``). The PyPI package
``libusb-package`` ships that library; loading it with ``RTLD_GLOBAL`` before open3d
lets the dynamic loader resolve open3d's dependency by its soname, with no system
package and no ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import ctypes
import functools
import sys

from avatarkit.errors import ResourceError


@functools.cache
def preload_libusb() -> str | None:
    """Load the bundled libusb globally (Linux only); returns its path, or None if not needed."""
    if not sys.platform.startswith("linux"):
        return None
    import libusb_package

    path = libusb_package.get_library_path()
    if path is None:
        return None
    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    return str(path)


def import_open3d():
    """Return the ``open3d`` module, loading the bundled libusb first."""
    if "open3d" in sys.modules:
        return sys.modules["open3d"]
    preload_libusb()
    try:
        import open3d
    except ImportError as exc:
        raise ResourceError(f"open3d cannot be imported: {exc}") from exc
    return open3d
