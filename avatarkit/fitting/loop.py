"""Per-scene fitting: an optimiser loop over one scene's parameters (a head's SDF and colour
networks fitted to a few photos, a face model's identity and expression fitted to a video).

This is not a dataset trainer (``avatarkit.methods.trainer``): there is no held-out split, no
data loader, no checkpoint per epoch. A fit owns a set of parameter groups and an objective
that, asked for a step, returns a loss and the scalars to log. :func:`fit` runs Adam (or
RMSprop) with a step schedule, per-group learning rates, early stopping when the loss stops
improving, and a clean stop on Ctrl-C or SIGTERM (the step in progress finishes; the result
says it was interrupted), reporting through a :class:`~avatarkit.fitting.progress.Reporter`.
The parameters are updated in place; the result carries the best loss seen and its step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from avatarkit.errors import OptionError
from avatarkit.fitting.optim import OPTIMIZERS, StepSchedule, make_optimizer
from avatarkit.fitting.progress import Reporter, StopRequest

if TYPE_CHECKING:
    import torch

Objective = Callable[[int], "tuple[torch.Tensor, dict[str, float]]"]
"""``objective(step) -> (loss, logs)``: the loss to minimise at ``step`` (a scalar tensor built
from the parameters being fitted) and scalars to report."""


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """How a per-scene fit optimises (a fit's own config dataclass holds one or extends it)."""

    steps: int = 1000
    """Optimisation steps at most."""
    lr: float = 1e-3
    """Learning rate (a parameter group's ``lr_scale`` multiplies it)."""
    optimizer: str = "adam"
    """adam or rmsprop."""
    lr_decay_at: tuple[float, ...] = ()
    """Fractions of ``steps`` at which the learning rate is multiplied by ``lr_decay``."""
    lr_decay: float = 0.1
    """Factor applied at each ``lr_decay_at``."""
    patience: int = 0
    """Stop when the loss has not improved by ``tolerance`` (relative) for this many steps (0: never)."""
    tolerance: float = 1e-4
    """Relative improvement of the best loss that counts as progress, for ``patience``."""
    log_every: int = 10
    """Steps between reports (the reporter sees every step; this paces logged history)."""

    def check(self) -> None:
        if self.steps < 1:
            raise OptionError(f"--steps must be at least 1, got {self.steps}")
        if not self.lr > 0:
            raise OptionError(f"--lr must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise OptionError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.patience < 0 or self.tolerance < 0 or self.log_every < 1:
            raise OptionError("--patience and --tolerance must be 0 or more, --log-every at least 1")


@dataclasses.dataclass
class FitResult:
    """How a fit ended.

    Attributes:
        steps: steps taken.
        loss: the last step's loss.
        best_loss, best_step: the lowest loss seen and its step.
        stopped: ``done`` (all steps), ``converged`` (no progress for ``patience`` steps) or
            ``interrupted`` (Ctrl-C or SIGTERM).
        history: one dict of logs per ``log_every`` steps (with ``step`` and ``loss``).
    """

    steps: int
    loss: float
    best_loss: float
    best_step: int
    stopped: str
    history: list[dict[str, float]]

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"


def fit(
    parameters: list,
    objective: Objective,
    config: FitConfig = FitConfig(),
    reporter: Reporter | None = None,
) -> FitResult:
    """Minimise ``objective`` over ``parameters`` (tensors with ``requires_grad``, or
    param-group dicts ``{"params": [...], "lr_scale": 0.1}``); see the module docstring.

    Raises:
        OptionError: a bad config, or a non-finite loss (naming the step and the logs).
    """
    config.check()
    reporter = reporter or Reporter()
    groups = [p for p in parameters if isinstance(p, dict)]
    plain = [p for p in parameters if not isinstance(p, dict)]
    optimizer = make_optimizer(config.optimizer, ([{"params": plain}] if plain else []) + groups, config.lr)
    schedule = StepSchedule(config.lr, config.steps, config.lr_decay_at, config.lr_decay)
    history: list[dict[str, float]] = []
    best, best_step, last, stale, step, stopped = math.inf, 0, math.inf, 0, 0, "done"
    reporter.start(config.steps, 0)
    try:
        with StopRequest() as stop:
            for step in range(1, config.steps + 1):
                lr = schedule.apply(optimizer, step - 1)
                optimizer.zero_grad(set_to_none=True)
                loss, logs = objective(step)
                last = float(loss.detach())
                logs = {"loss": last, "lr": lr, **logs}
                if not math.isfinite(last):
                    raise OptionError(f"the loss is not finite at step {step} ({_show(logs)}): lower --lr?")
                loss.backward()
                optimizer.step()
                reporter.update(step, logs)
                if step % config.log_every == 0 or step == 1:
                    history.append({"step": float(step), **logs})
                if last < best * (1 - config.tolerance) or best == math.inf:
                    stale = 0
                else:
                    stale += 1
                if last < best:
                    best, best_step = last, step
                if config.patience and stale >= config.patience:
                    stopped = "converged"
                    break
                if stop.requested:
                    stopped = "interrupted"
                    break
    finally:
        reporter.close()
    if not history or history[-1]["step"] != step:
        history.append({"step": float(step), "loss": last})
    return FitResult(step, last, best, best_step, stopped, history)


def _show(logs: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in logs.items())
