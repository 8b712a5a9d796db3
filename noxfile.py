"""Sessions: tests (the CI command), lint, demo (the main job on built-in data), bench.

Every session installs torch 2.13.0 first (a CPU wheel on our machines; a plain
``torch`` requirement would pull a multi-GB CUDA build), then avatarkit.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH = "torch==2.13.0"


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install(TORCH)
    session.install(f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite; slow tests are left out unless you pass pytest arguments (-m slow)."""
    _install(session)
    _chromium(session)
    args = session.posargs or ["-m", "not slow"]
    session.run("pytest", *args)


def _chromium(session: nox.Session) -> None:
    """Debian's Chromium for the viewer's browser test (``avatarkit view --screenshot``), installed
    only when /usr/bin/chromium is absent and apt-get can run (as root, or through sudo without a
    password); otherwise that test is skipped with its reason."""
    if os.path.exists("/usr/bin/chromium") or shutil.which("apt-get") is None:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        return
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    session.log("installing chromium (apt-get) for the viewer's browser test")
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:  # stale or empty package lists
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True)
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            session.warn("could not install chromium; the viewer's browser test will be skipped")


@nox.session
def lint(session: nox.Session) -> None:
    """The rules CI holds the code to: ruff (style, no print or sys.exit in the core), the import
    contracts (layers; only the CLI touches the terminal), mypy (every method meets the contract)."""
    session.install(TORCH, "numpy>=1.24", "ruff>=0.6", "import-linter>=2.1", "mypy>=1.10")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on built-in data, into demo_out/ (synthetic people, validated)."""
    _install(session)
    session.run("bash", "examples/demo.sh", "demo_out", external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks in benchmarks/, peers side by side; writes benchmarks/results.json."""
    _install(session)
    session.run("python", "benchmarks/run.py", *session.posargs)
