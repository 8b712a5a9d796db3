"""Which subjects a run trains on and which it holds out for validation."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.errors import AvatarkitWarning, InputError

if TYPE_CHECKING:
    from avatarkit.methods.contract import Split


def split_subjects(
    stems: list[str], val_fraction: float, seed: int, saved: Split | None = None
) -> tuple[list[int], list[int]]:
    """Indices into ``stems`` of the training and the held-out subjects.

    A new run holds out ``round(val_fraction * n)`` subjects (at least one when there are two or
    more and ``val_fraction`` > 0; never all), drawn by ``seed``. A resumed run keeps the split it
    ``saved`` (``{"train": stems, "val": stems}``): subjects it names that are missing now are an
    :class:`InputError`, new ones are left out with a warning.
    """
    if saved:
        index = {s: i for i, s in enumerate(stems)}
        lost = [s for s in saved["train"] + saved["val"] if s not in index]
        if lost:
            raise InputError(f"the run was trained with subjects that are missing now: {', '.join(lost[:4])}")
        new = sorted(set(stems) - set(saved["train"]) - set(saved["val"]))
        if new:
            warnings.warn(
                f"{len(new)} subject(s) not in the run's split are left out ({', '.join(new[:4])}): a resumed run "
                "keeps its subjects; start a new run to train on more",
                AvatarkitWarning,
                stacklevel=2,
            )
        return [index[s] for s in saved["train"]], [index[s] for s in saved["val"]]
    n = len(stems)
    n_val = round(val_fraction * n)
    n_val = min(max(n_val, 1), n - 1) if val_fraction > 0 and n >= 2 else 0
    order = np.random.default_rng([seed, 104729]).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
