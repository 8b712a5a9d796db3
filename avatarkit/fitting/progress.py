"""What every optimisation loop shares with the command line: a progress sink and a clean stop.

The core never prints: a loop reports to a :class:`Reporter` (the command line supplies one
that draws a progress line), and :class:`StopRequest` turns the first Ctrl-C or SIGTERM into a
request the loop honours after the step in progress, so a run can save its state and end
cleanly; a second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class Reporter:
    """Progress sink; this one is silent (subclass it, or pass any object with these methods)."""

    def start(self, total: int, done: int) -> None:
        """The loop runs ``total`` steps, ``done`` of them already (a resumed run)."""

    def update(self, step: int, logs: dict[str, float]) -> None:
        """Step ``step`` ended with these scalars (``loss`` among them)."""

    def note(self, message: str) -> None:
        """A line worth showing (a validation's results)."""

    def close(self) -> None:
        """The loop ended, however it ended."""


class StopRequest:
    """Context manager: while active (on the main thread), the first SIGINT or SIGTERM sets
    :attr:`requested` instead of interrupting; a second SIGINT raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
