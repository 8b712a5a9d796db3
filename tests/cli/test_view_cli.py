"""``avatarkit view``: bad input, a busy port, and the server answering a browser's request."""

from __future__ import annotations

import functools
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import write_artifact
from avatarkit.structures import Mesh


def _ball(tmp_path):
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    return write_artifact(tmp_path / "ball.h5", Mesh(s.vertices + np.array([0.0, 1.0, 0.0]), s.faces))


def test_nothing_showable_is_one_line_exit_1(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("x")
    transform = tmp_path / "missing.ply"
    result = invoke("view", text, transform, "--screenshot", tmp_path / "out.png")
    assert_clean_failure(result, "nothing to show", "notes.txt", "missing.ply: no such file")
    assert not (tmp_path / "out.png").exists()


def test_an_unreadable_truth_is_one_line_exit_1(tmp_path):
    ball = _ball(tmp_path)
    junk = tmp_path / "gt.ply"
    junk.write_bytes(b"ply\nnonsense")
    result = invoke("view", ball, "--truth", junk, "--screenshot", tmp_path / "out.png")
    assert_clean_failure(result, "gt.ply")
    assert not (tmp_path / "out.png").exists()


def test_port_in_use_is_one_line_exit_1(tmp_path):
    ball = _ball(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("view", ball, "--port", port)
    assert_clean_failure(result, f"port {port}", "in use", "--port")


def test_screenshot_options_are_checked_before_reading(tmp_path):
    ball = _ball(tmp_path)
    assert_clean_failure(invoke("view", ball, "--screenshot", tmp_path / "out.jpg"), "--screenshot must end in .png")
    assert_clean_failure(invoke("view", ball, "--screenshot", tmp_path / "o.png", "--size", 8, 600), "--size")
    assert_clean_failure(invoke("view", ball, "--screenshot", ball.with_suffix(".png"), "--layout", "x"), "--layout")
    existing = tmp_path / "mine.png"
    existing.write_bytes(b"keep me")
    assert_clean_failure(invoke("view", ball, "--screenshot", existing), "exists", "--overwrite")
    assert existing.read_bytes() == b"keep me"


@pytest.mark.parametrize(("stop", "code", "said"), [(signal.SIGINT, 0, "viewer stopped"), (signal.SIGTERM, 143, "terminated: viewer stopped")])  # fmt: skip
def test_viewer_serves_its_page_and_stops_on_ctrl_c_or_sigterm(tmp_path, stop, code, said):
    """The installed entry point: prints where it listens, answers HTTP there, lists a bad file
    without stopping, and ends cleanly on Ctrl-C (exit 0) or SIGTERM (exit 143, saying the viewer
    stopped: it was writing nothing). Every wait has a deadline."""
    ball = _ball(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_text("x")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "avatarkit", "view", str(ball), str(bad), "--port", str(port)]
    # Ctrl-C reaches it even when the tests themselves run in the background (SIGINT ignored there)
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, preexec_fn=restore
    )
    found = _stderr_lines(process)
    try:
        lines = _lines_until(found, "viewer at", deadline=time.monotonic() + 120)
        assert any("bad.txt" in line and "not shown" in line for line in lines), lines
        assert f"http://localhost:{port}/" in lines[-1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200
            assert b"<html" in page.read().lower()
        process.send_signal(stop)
        assert process.wait(timeout=90) == code
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == code
    rest = _lines_until(found, None, deadline=time.monotonic() + 30)  # to the end of its stderr
    assert rest[-1].endswith(said) and ("terminated" in rest[-1]) == (stop == signal.SIGTERM), rest
    assert not any("discarded" in line for line in rest), rest


def _stderr_lines(process: subprocess.Popen) -> queue.Queue[str | None]:
    """The stderr lines of ``process``, then None at its end, read by a thread into a queue (so
    every wait has a deadline)."""
    stream = process.stderr
    assert stream is not None
    found: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in iter(stream.readline, ""):
            found.put(line)
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    return found


def _lines_until(found: queue.Queue[str | None], needle: str | None, deadline: float) -> list[str]:
    """Lines from ``found`` up to the first containing ``needle`` (None: up to the end of the
    stream); fails at ``deadline``, or at the end of the stream before ``needle``."""
    lines: list[str] = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} line in time: {lines}"
        try:
            line = found.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            assert needle is None, f"the stream ended without a {needle!r} line: {lines}"
            return lines
        lines.append(line.strip())
        if needle is not None and needle in line:
            return lines


def test_screenshot_without_chromium_is_one_line_exit_1(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARKIT_CHROMIUM", str(tmp_path / "no-such-browser"))
    result = invoke("view", _ball(tmp_path), "--screenshot", tmp_path / "out.png")
    assert_clean_failure(result, "AVATARKIT_CHROMIUM", "does not exist")
    assert not (tmp_path / "out.png").exists()
