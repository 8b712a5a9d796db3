"""Checkpoints and run folders.

A run folder (``-o`` of ``avatarkit train``) holds::

    config.json            the method and its config, readable without torch
    checkpoints/last.pt    the latest state: resume from it
    checkpoints/best.pt    the state with the best validation score
    metrics.jsonl          one line per validation
    tensorboard/           scalars and image grids

A checkpoint is an ordinary PyTorch file, a dict carrying its method name and full config,
so a run can be resumed and used without the flags that made it. Checkpoints are written
atomically: an interrupted save leaves the previous one in place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from avatarkit.errors import InputError

FORMAT = "avatarkit-checkpoint"
WHICH = ("best", "last")
"""The checkpoints of a run folder ``reconstruct`` can use."""
VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def validation(self) -> Path:
        """The latest validation mesh of each held-out subject a method reconstructs
        (``STEM.h5``, a ``mesh`` file whose provenance input is the subject's true mesh);
        ``avatarkit view RUN`` shows them."""
        return self.root / "validation"

    def files(self) -> tuple[Path, ...]:
        """Everything a run writes into its folder (the rest of the folder is the user's)."""
        return (self.checkpoints, self.tensorboard, self.metrics, self.config, self.validation)

    def has_run(self) -> bool:
        """Whether a run wrote here (a checkpoint, or its logs from a run that died before one)."""
        return any(p.exists() for p in self.files())


def save(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically."""
    import torch

    from avatarkit import __version__
    from avatarkit.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, "avatarkit_version": __version__, **state}, tmp)


def load(path: Path, device: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; clear errors for anything else."""
    import warnings

    import torch

    if not path.is_file():
        raise InputError("no such checkpoint", path)
    try:
        with warnings.catch_warnings():  # torch's notes on odd pickles are not the user's business
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for junk input
        raise InputError(_unreadable(path, exc), path) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError("not an avatarkit checkpoint", path)
    if int(state.get("version", 0)) > VERSION:
        raise InputError(f"checkpoint version {state['version']} is newer than this avatarkit reads", path)
    return state


def _unreadable(path: Path, exc: Exception) -> str:
    """Why torch could not load ``path``, in our words: torch's own message for a weights-only
    refusal advises loading with ``weights_only=False``, which avatarkit never does."""
    import zipfile

    with open(path, "rb") as f:
        head = f.read(2)
    if not zipfile.is_zipfile(path) and not (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return "not a checkpoint (not a PyTorch file: neither a zip archive nor a pickle)"
    text = str(exc)
    if "weights_only" in text or "Weights only" in text:
        return (
            "not an avatarkit checkpoint (a PyTorch file holding Python objects beyond tensors and plain values, "
            "which avatarkit does not load)"
        )
    first = text.splitlines()[0] if text.strip() else type(exc).__name__
    return f"not a readable checkpoint, damaged or truncated? ({first})"


def find(run: Path, which: str = "best") -> Path:
    """The checkpoint of a run folder (``best``, falling back to ``last``), or ``run`` itself
    when it is a checkpoint file."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.exists():
        raise InputError("no such run folder or checkpoint", run)
    folder = RunFolder(run)
    order = [folder.best, folder.last] if which == "best" else [folder.last]
    for path in order:
        if path.is_file():
            return path
    raise InputError("no checkpoint in this run folder (expected checkpoints/best.pt or last.pt)", run)
