"""Optimisers and learning-rate schedules, by name (shared by the trainer and per-scene fits).

Cheap to import (torch is imported when an optimiser is made): configs read :data:`OPTIMIZERS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from avatarkit.errors import OptionError

if TYPE_CHECKING:
    import torch

OPTIMIZERS = ("adam", "rmsprop")


def make_optimizer(name: str, parameters: Iterable, lr: float) -> torch.optim.Optimizer:
    """``adam`` or ``rmsprop`` (PIFu's: no momentum, no weight decay) over ``parameters`` (tensors
    or param-group dicts, which may carry their own ``lr``)."""
    import torch

    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, momentum=0, weight_decay=0)
    raise OptionError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


class StepSchedule:
    """The learning rate multiplied by ``decay`` at each fraction ``at`` of ``total`` steps
    (PIFu's schedule). :meth:`apply` sets it on an optimiser's groups; a group with an
    ``lr_scale`` entry gets that multiple of it (parameters that need a smaller step)."""

    def __init__(self, lr: float, total: int, at: Iterable[float] = (), decay: float = 0.1) -> None:
        self.lr, self.decay = float(lr), float(decay)
        steps = {max(1, round(f * total)): f for f in sorted(at)}  # one milestone per step
        self.milestones, self.fractions = list(steps), list(steps.values())

    def factor(self, done: int, time_fraction: float = 0.0) -> float:
        """The multiplier after ``done`` steps; with a time budget, a milestone also passes once
        ``time_fraction`` (of the budget) reaches its fraction."""
        passed = sum(done >= m or time_fraction >= f for m, f in zip(self.milestones, self.fractions, strict=True))
        return self.decay**passed

    def apply(self, optimizer: torch.optim.Optimizer, done: int, time_fraction: float = 0.0) -> float:
        """Set each group's learning rate for the step after ``done``; returns the base one."""
        lr = self.lr * self.factor(done, time_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr
