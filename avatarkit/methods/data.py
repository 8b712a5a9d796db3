"""What every method's training data shares: subjects matched by stem across its data
options, a ground-truth mesh per subject for validation meshes, checks of samples files, and
the step sampler that keys every item (the same items on any rank, any number of workers and
after a resume). Image-based methods add views in :mod:`avatarkit.methods.image_data`; DeepSDF
reads samples files alone (:mod:`avatarkit.methods.deepsdf.data`).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch

from avatarkit.errors import AvatarkitWarning, InputError


@dataclasses.dataclass(frozen=True)
class Subject:
    """One subject's files by data option (``views``, ``samples``, ...) and, when known, its
    ground-truth ``mesh`` (for validation meshes)."""

    stem: str
    files: dict[str, Path]
    mesh: Path | None = None

    @property
    def views(self) -> Path:
        return self.files["views"]

    @property
    def samples(self) -> Path:
        return self.files["samples"]


def match_subjects(data: dict[str, list[Path]], meshes: list[Path] | None = None) -> list[Subject]:
    """Subjects with a file in every data option of ``data`` (``{"views": [...], "samples":
    [...]}``, files or folders of ``.h5``), by stem; others are left out with a warning.

    A subject's ground-truth mesh comes from ``meshes`` when given, else from its samples
    file's provenance (the mesh it was sampled from) if that file still exists.
    """
    from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES
    from avatarkit.io.stems import files_by_stem, match_stems

    found = {name: files_by_stem(paths, HDF5_SUFFIXES, name) for name, paths in data.items()}
    stems = match_stems(found)
    by_mesh = files_by_stem(meshes, (*HDF5_SUFFIXES, *MESH_SUFFIXES), "mesh") if meshes else {}
    subjects = []
    for s in stems:
        files = {name: found[name][s] for name in data}
        mesh = by_mesh.get(s) or (_source_mesh(files["samples"]) if "samples" in files else None)
        subjects.append(Subject(s, files, mesh))
    return subjects


def split_state(data: dict[str, list[Path]], subjects: list[Subject], train: list[int], val: list[int]) -> dict:
    """The part of a run's state every method over subjects shares: each data option's paths
    (absolute, so ``--resume`` needs none) and the split of subjects by stem."""
    return {
        "data": {name: [str(p.resolve()) for p in paths] for name, paths in data.items()},
        "split": {"train": [subjects[i].stem for i in train], "val": [subjects[i].stem for i in val]},
    }


def split_summary(subjects: list[Subject], train: list[int], val: list[int]) -> dict[str, int]:
    """How many subjects a run trains on and holds out, and how many held out have a mesh."""
    return {"train": len(train), "val": len(val), "val_with_meshes": sum(subjects[i].mesh is not None for i in val)}


def _source_mesh(samples: Path) -> Path | None:
    import h5py

    from avatarkit.io.formats import is_hdf5, is_mesh_file

    try:
        with h5py.File(samples, "r") as f:
            inputs = [i.decode() if isinstance(i, bytes) else str(i) for i in f.attrs.get("inputs", [])]
    except OSError:
        return None
    for name in inputs:
        path = Path(name)
        if (is_hdf5(path) or is_mesh_file(path)) and path.is_file():
            return path
    return None


def check_samples(path: Path) -> int:
    """Check a samples file; returns its point count."""
    from avatarkit.io.hdf5 import check_kind, open_h5

    with open_h5(path) as f:
        check_kind(f, path, "samples")
        occupancy = f["/occupancy"][()]
    if len(occupancy) == 0:
        raise InputError("the samples file holds no points", path)
    inside = int(occupancy.sum())
    if inside == 0 or inside == len(occupancy):
        warnings.warn(
            f"{path}: every point is {'outside' if inside == 0 else 'inside'}", AvatarkitWarning, stacklevel=2
        )
    return len(occupancy)


class StepBatches(torch.utils.data.Sampler):
    """Keys for steps ``start`` to ``stop`` on one rank of ``world``, over the subjects at
    ``indices``.

    Step s fills ``batch_size * world`` slots; slot g (counted over the whole run) takes
    subject ``perm_e[g mod n]`` of epoch ``e = g div n`` (a permutation seeded by the run's
    seed and e), with a random view and an item seed from (seed, s, slot). Rank r takes slots
    ``r * batch_size`` to ``(r + 1) * batch_size``, so a run on k processes sees the same
    items as one process with k times the batch, and a resumed run the same as an unbroken one.
    """

    def __init__(self, indices, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        self.indices = list(indices)
        self.batch_size, self.seed = batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        n, per_step = len(self.indices), self.batch_size * self.world
        for step in range(self.start, self.stop):
            batch = []
            for slot in range(self.rank * self.batch_size, (self.rank + 1) * self.batch_size):
                g = step * per_step + slot
                subject = self.indices[int(self._permutation(g // n)[g % n])]
                item_seed = int(np.random.SeedSequence([self.seed, step, slot]).generate_state(1)[0])
                batch.append((subject, item_seed, -1))
            yield batch

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.indices))
        return self._order


def worker_init(_: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process (which saves a checkpoint first)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
