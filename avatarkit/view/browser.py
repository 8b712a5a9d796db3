"""Headless Chromium for ``avatarkit view --screenshot`` (and the viewer's browser test).

The browser is Debian's ``chromium`` package (``apt-get install chromium``), started as a plain
process on the viewer's page: WebGL through SwiftShader (the CPU), so it needs no GPU and no
display. It is not driven by a remote-control protocol: the viewer itself asks the page for a
frame over its websocket (:mod:`avatarkit.view.server`), so no timing guess (a virtual-time
budget, a sleep) decides when the scene is drawn.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from avatarkit.errors import ResourceError

CHROMIUM_ENV = "AVATARKIT_CHROMIUM"
"""Environment variable naming a Chromium (or Chrome) executable to use instead of the one found."""
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> Path:
    """The Chromium executable: ``$AVATARKIT_CHROMIUM``, else the first of ``chromium``,
    ``chromium-browser``, ``google-chrome`` on the ``PATH``; :class:`ResourceError` when none."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        if not Path(named).is_file():
            raise ResourceError(f"${CHROMIUM_ENV} names {named}, which does not exist")
        return Path(named)
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ResourceError(
        "--screenshot needs Chromium and none was found (Debian/Ubuntu: apt-get install chromium; "
        f"or set ${CHROMIUM_ENV} to a Chrome or Chromium executable)"
    )


def chromium_arguments(url: str, width: int, height: int, profile: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """Command-line flags of a headless Chromium showing ``url`` in a ``width`` x ``height``
    window: software WebGL (SwiftShader), a throw-away profile, no sandbox when run as root
    (Chromium refuses to start as root with one); ``extra`` flags after these (the last of a
    repeated flag wins)."""
    args = [
        "--headless=new",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--ignore-gpu-blocklist",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-dev-shm-usage",
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        "--mute-audio",
        "--hide-scrollbars",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    return [*args, *extra, url]


@contextlib.contextmanager
def headless_chromium(url: str, width: int, height: int, extra: tuple[str, ...] = ()) -> Iterator[subprocess.Popen]:
    """A headless Chromium on ``url`` for the duration of the block; stopped (terminate, then
    kill after 5 s) and its profile removed afterwards, however the block ends."""
    executable = find_chromium()
    with tempfile.TemporaryDirectory(prefix="avatarkit-chromium-") as profile:
        command = [str(executable), *chromium_arguments(url, width, height, Path(profile), extra)]
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except OSError as exc:
            raise ResourceError(f"cannot start {executable}: {exc.strerror or exc}") from None
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
