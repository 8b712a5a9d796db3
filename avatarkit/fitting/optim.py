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
        self.milestones = sorted({max(1, round(f * total)) for f in at})

    def factor(self, done: int) -> float:
        """The multiplier after ``done`` steps."""
        return self.decay ** sum(done >= m for m in self.milestones)

    def apply(self, optimizer: torch.optim.Optimizer, done: int) -> float:
        """Set each group's learning rate for the step after ``done``; returns the base one."""
        lr = self.lr * self.factor(done)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr
