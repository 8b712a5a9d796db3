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


def part_weights(
    run: Path, method: str, config: Any, *, option: str, part: str, fields: tuple[str, ...], what: str, stages: str
) -> dict[str, Any]:
    """The trained weights of one part of a network from an earlier run of ``method`` (its last
    checkpoint), for a later stage to start from (Geo-PIFu's volume network, Sample&Refine's
    SamplerNet): the state-dict entries under ``part.``, without the prefix.

    Checked: the run is of ``method``, its config agrees with ``config`` on ``fields`` (the
    part's shape), and its buffer ``{part}_trained`` says the part has trained. ``option`` (the
    flag that named the run), ``what`` (the part, in words) and ``stages`` (the stages that
    train it) word the errors.
    """
    from avatarkit.errors import OptionError
    from avatarkit.methods.configs import from_dict

    state = load(find(run, "last"))
    if state.get("method") != method:
        raise InputError(f"{option} takes a {method} run; this is a {state.get('method')} run", run)
    theirs = from_dict(type(config), state["config"])
    differ = [f for f in fields if getattr(theirs, f) != getattr(config, f)]
    if differ:
        shown = ", ".join(f"--{f.replace('_', '-')} {getattr(theirs, f)}" for f in differ)
        raise OptionError(f"{option} {run} has another {what} ({shown}); give the same")
    weights = state["model"]
    if not bool(weights.get(f"{part}_trained", False)):
        raise InputError(f"{option}: this run has not trained its {what} ({stages})", run)
    return {k.removeprefix(f"{part}."): v for k, v in weights.items() if k.startswith(f"{part}.")}
