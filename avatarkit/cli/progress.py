"""The progress line of long loops (``train``, ``fit-head``): a :class:`Reporter` that draws."""

from __future__ import annotations

import time

from avatarkit.cli import console
from avatarkit.fitting.progress import Reporter


class Progress(Reporter):
    """A Rich progress line (step, loss, it/s, time left) on a terminal; a plain line every
    ``every`` steps otherwise; validation notes as lines. With a time ``budget`` (seconds),
    the time left is the budget's when it ends first."""

    def __init__(self, quiet: bool, every: int, budget: float = 0.0, label: str = "train") -> None:
        self.quiet, self.every, self.budget, self.label = quiet, every, budget, label
        self.bar = None
        self.total = 0
        self.times: list[tuple[float, int]] = []
        self.started = time.perf_counter()

    def start(self, total: int, done: int) -> None:
        self.total = total
        if self.quiet:
            return
        if console.err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TextColumn("{task.fields[rate]:.2f} it/s"),
                TextColumn("left {task.fields[left]}"),
                console=console.err,
            )
            self.bar.start()
            self.task = self.bar.add_task(
                self.label, total=total, completed=done, loss=float("nan"), rate=0.0, left="-"
            )
        elif done:
            console.info(f"resuming at step {done} of {total}")

    def update(self, step: int, logs: dict[str, float]) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        self.times = [*self.times[-20:], (now, step)]
        (t0, s0), (t1, s1) = self.times[0], self.times[-1]
        rate = (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0
        left = (self.total - step) / rate if rate > 0 else float("nan")
        if self.budget:
            left = min(left, max(0.0, self.budget - (now - self.started))) if left == left else left
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=logs["loss"], rate=rate, left=_clock(left))
        elif step % self.every == 0 or step == self.total:
            console.info(f"step {step}/{self.total}  loss {logs['loss']:.4f}  {rate:.2f} it/s  left {_clock(left)}")

    def note(self, message: str) -> None:
        if not self.quiet:
            (self.bar.console if self.bar else console.err).print(message, highlight=False, markup=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _clock(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}"
