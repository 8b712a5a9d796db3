"""Per-scene fits: the loop recovers known parameters, stops when it stops improving, and stops
cleanly on Ctrl-C with the step in progress finished."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatarkit.errors import OptionError
from avatarkit.fitting.loop import FitConfig, fit
from avatarkit.fitting.progress import Reporter


def _rotation(w: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, differentiable."""
    angle = w.norm().clamp(min=1e-12)
    k = w / angle
    kx = torch.zeros(3, 3, dtype=w.dtype)
    kx[0, 1], kx[0, 2], kx[1, 2] = -k[2], k[1], -k[0]
    kx = kx - kx.T
    return torch.eye(3, dtype=w.dtype) + torch.sin(angle) * kx + (1 - torch.cos(angle)) * kx @ kx


def _problem():
    rng = np.random.default_rng(0)
    source = torch.tensor(rng.normal(size=(200, 3)))
    truth = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    target = 1.3 * source @ torch.tensor(truth).T + torch.tensor([0.1, 0.2, -0.3])
    params = {"w": torch.full((3,), 1e-3, dtype=torch.float64, requires_grad=True),
              "t": torch.zeros(3, dtype=torch.float64, requires_grad=True),
              "log_s": torch.zeros(1, dtype=torch.float64, requires_grad=True)}  # fmt: skip

    def objective(step):
        moved = torch.exp(params["log_s"]) * source @ _rotation(params["w"]).T + params["t"]
        return ((moved - target) ** 2).sum(1).mean(), {"scale": float(torch.exp(params["log_s"].detach()))}

    return params, objective, truth


def test_a_fit_recovers_a_similarity_and_reports_every_step():
    params, objective, truth = _problem()
    seen = []

    class Record(Reporter):
        def update(self, step, logs):
            seen.append((step, logs["loss"]))

    result = fit([params["w"], params["t"], {"params": [params["log_s"]], "lr_scale": 0.5}], objective,
                 FitConfig(steps=600, lr=0.02, lr_decay_at=(0.8,)), Record())  # fmt: skip
    assert result.stopped == "done" and result.steps == 600 and len(seen) == 600
    assert result.loss < 1e-8 < seen[0][1]
    assert np.allclose(Rotation.from_rotvec(params["w"].detach().numpy()).as_matrix(), truth, atol=1e-4)
    assert float(torch.exp(params["log_s"].detach())) == pytest.approx(1.3, abs=1e-4)
    assert result.history[0]["step"] == 1 and result.history[-1]["step"] == 600


def test_a_fit_stops_when_the_loss_stops_improving():
    params, objective, _ = _problem()
    result = fit(list(params.values()), objective, FitConfig(steps=5000, lr=0.02, patience=20, tolerance=1e-3))
    assert result.stopped == "converged" and result.steps < 5000
    assert result.best_loss <= result.loss


def test_ctrl_c_ends_the_step_in_progress_and_says_so():
    params, objective, _ = _problem()

    def interrupted(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # handled: the loop finishes this step, then stops
        return objective(step)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, even in a background run
    try:
        result = fit(list(params.values()), interrupted, FitConfig(steps=100, lr=0.01))
        assert result.stopped == "interrupted" and result.interrupted and result.steps == 5
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    finally:
        signal.signal(signal.SIGINT, before)


def test_bad_configs_and_non_finite_losses_are_one_line_errors():
    params, objective, _ = _problem()
    with pytest.raises(OptionError, match="--steps"):
        fit(list(params.values()), objective, FitConfig(steps=0))
    with pytest.raises(OptionError, match="--optimizer"):
        fit(list(params.values()), objective, FitConfig(optimizer="sgd"))
    with pytest.raises(OptionError, match="not finite at step 1"):
        fit(list(params.values()), lambda step: (params["t"].sum() * float("nan"), {}), FitConfig(steps=3))
