"""Geo-PIFu as a trainable method: PIFu's method (:class:`~avatarkit.methods.pifu.train.PifuMethod`,
on the shared image-method layer) with a third data input, the voxels, and two stages.

- Data: PIFu's items (a view, a balanced draw of points) plus the subject's voxels file (its
  world grid; the occupancy is cached per process). The volume a view's network should predict
  is sampled from it at the view volume's voxels (:func:`~.volume.view_occupancy`), on the
  device, after augmentation: the volume follows the image.
- Stage 1, coarse: the volume network's occupancy from every stack against that target,
  Geo-PIFu's weighted cross-entropy (``VrnNet.get_error``)::

      coarse_weight * (-w mean(t log(p + 1e-8)) - (1 - w) mean((1 - t) log(1 - p + 1e-8))), w = inside_weight

  averaged over the stacks.
- Stage 2, query: PIFu's loss (mean squared error of every stack's occupancy, Geo-PIFu's
  ``occupancy_loss_type`` mse) with the latent volume of the (fixed, unless
  ``finetune_coarse``) volume network.
- ``--stage both`` runs stage 1 for ``coarse_share`` of the steps, then stage 2; under a
  ``--max-time`` budget stage 2 also starts once ``coarse_share`` of the time is spent, whichever
  comes first (:class:`StageSchedule`), so a time-bound run trains both networks. The step stage
  2 began at is saved with the run (``query_from``), so a resumed run picks the stage up where
  it was.

Validation scores the query network once it has trained; before that, the volume's occupancy
at the held-out points (and its mesh as ``val/coarse_chamfer_cm``, which does not pick
``best.pt``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from avatarkit.errors import InputError, OptionError
from avatarkit.fitting.optim import StepSchedule
from avatarkit.methods import image_data as D
from avatarkit.methods.contract import RunState
from avatarkit.methods.geopifu import volume as V
from avatarkit.methods.geopifu.config import COARSE_FIELDS, GeoPifuConfig
from avatarkit.methods.image_method import iou
from avatarkit.methods.pifu.train import PifuMethod

VOXELS_CACHE = 16
"""Voxels files whose occupancy a process keeps in memory (3 MB each at 128 x 192 x 128)."""


class VoxelsDataset(D.ImagePointsDataset):
    """PIFu's items plus the subject's world voxels: ``voxels`` (X, Y, Z) uint8,
    ``voxel_origin`` (3,) metres, ``voxel_pitch`` () metres."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._voxels: dict[Path, tuple[np.ndarray, np.ndarray, float]] = {}

    def __getstate__(self):
        return {**super().__getstate__(), "_voxels": {}}

    def close(self) -> None:
        super().close()
        self._voxels.clear()

    def __getitem__(self, key) -> dict:
        item = super().__getitem__(key)
        occupancy, origin, pitch = self._grid(self.subjects[key[0]].files["voxels"])
        item["voxels"] = torch.from_numpy(occupancy)
        item["voxel_origin"] = torch.from_numpy(origin)
        item["voxel_pitch"] = torch.tensor(pitch, dtype=torch.float32)
        return item

    def _grid(self, path: Path) -> tuple[np.ndarray, np.ndarray, float]:
        if path not in self._voxels:
            import h5py

            if len(self._voxels) >= VOXELS_CACHE:
                self._voxels.pop(next(iter(self._voxels)))
            with h5py.File(path, "r") as f:
                occupancy = np.asarray(f["/occupancy"][()], dtype=np.uint8)
                origin = np.asarray(f.attrs["origin"], dtype=np.float32)
                self._voxels[path] = (occupancy, origin, float(f.attrs["pitch"]))
        return self._voxels[path]


class GeoPifuMethod(PifuMethod):
    name = "geopifu"
    config: GeoPifuConfig
    inputs = ("views", "voxels", "samples")
    unused_parameters = True
    """Each step trains one of the two networks (DDP is told some parameters get no gradient)."""

    def __init__(self, config: GeoPifuConfig, restored: RunState | None = None, **data: list[Path] | None) -> None:
        super().__init__(config, restored, **data)
        self._step = 0
        self._coarse_weights: dict[str, torch.Tensor] | None = None
        self.schedule = StageSchedule(config, self.restored.get("query_from"))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ setup

    def setup(self, device: torch.device) -> None:
        self._coarse_start()
        super().setup(device)
        for s in self.subjects:
            check_voxels(s.files["voxels"], self.config.grid)

    def _coarse_start(self) -> None:
        """The trained volume network a query stage starts from (``--coarse-run``, or the
        resumed run's own); refuses a query stage without one."""
        c = self.config
        if self.restored:  # a resumed run: the checkpoint holds the weights
            if c.stage == "query" and not self.restored.get("coarse_trained"):
                raise OptionError(_NO_VOLUME)
            return
        if c.coarse_run is None:
            if c.stage == "query":
                raise OptionError(_NO_VOLUME)
            return
        if c.stage == "coarse":
            raise OptionError("--coarse-run starts a query stage; --stage coarse trains the volume network anew")
        self._coarse_weights = coarse_weights(Path(c.coarse_run), c)

    def dataset(self, augment: bool) -> D.ImagePointsDataset:
        return VoxelsDataset(self.subjects, self.view_sets, self.config, augment)

    def state(self) -> RunState:
        trained = self.config.stage != "query" or self.config.coarse_run is not None
        return {
            **super().state(),
            "coarse_trained": trained or bool(self.restored.get("coarse_trained")),
            "query_from": self.schedule.query_from,
        }  # type: ignore[typeddict-unknown-key]

    # ------------------------------------------------------------------ training

    def build_model(self) -> torch.nn.Module:
        from avatarkit.methods.geopifu.model import GeoPifuNet

        model = GeoPifuNet(self.config)
        if self._coarse_weights is not None:
            model.coarse.load_state_dict(self._coarse_weights)
            model.mark_trained("coarse")
        return model

    def lr_schedule(self) -> StageSchedule:
        """Each stage's own learning-rate schedule, which also says when stage 2 begins (the
        trainer asks for it, after :meth:`setup`, and applies it before each step's loss)."""
        self.schedule = StageSchedule(self.config, self.schedule.query_from)
        return self.schedule

    def loader(self, start: int, stop: int, rank: int, world: int, workers: int):
        self._step = start
        return super().loader(start, stop, rank, world, workers)

    def loss(self, model, batch) -> tuple[torch.Tensor, dict[str, float]]:
        net = getattr(model, "module", model)  # DDP wraps it
        step, self._step = self._step, self._step + 1
        if self.schedule.coarse(step):
            net.mark_trained("coarse")
            return self.coarse_loss(model, self.to_device(batch))
        net.mark_trained("query")
        return super().loss(model, batch)

    def coarse_loss(self, model, b: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Geo-PIFu's weighted cross-entropy of every stack's volume (see the module docstring)."""
        c = self.config
        target = self.target_volume(b)
        preds = model(b["image"], None, None, None, None, None, stage="coarse")
        w, total = c.inside_weight, torch.zeros((), device=target.device)
        for p in preds:
            p = p.float()
            total = total + c.coarse_weight * (
                -w * torch.mean(target * torch.log(p + 1e-8))
                - (1 - w) * torch.mean((1 - target) * torch.log(1 - p + 1e-8))
            )
        loss = total / len(preds)
        with torch.no_grad():
            score = iou(preds[-1].float() > 0.5, target > 0.5)
        return loss, {"volume_iou": score}  # type: ignore[return-value]

    def target_volume(self, b: dict) -> torch.Tensor:
        """(B, Z, Y, X) occupancy each view's volume should predict, from the world voxels (at
        the predicted volume's resolution, :attr:`GeoPifuConfig.output_grid`)."""
        size = b["image"].shape[-1]
        return V.view_occupancy(
            b["voxels"], b["voxel_origin"], b["voxel_pitch"], b["K"], b["world_to_cam"], b["orthographic"],
            b["depth_center"], size, self.config.output_grid,
        )  # fmt: skip

    def _forward(self, model, b: dict) -> list[torch.Tensor]:
        return model(
            b["image"], b["points"], b["K"], b["world_to_cam"], b["orthographic"], b["depth_center"],
            stage="query", train_coarse=self.config.finetune_coarse,
        )  # fmt: skip

    # ------------------------------------------------------------------ validation

    def predict(self, model, batch) -> torch.Tensor:
        if bool(model.query_trained):
            return self._forward(model, batch)[-1]
        b = batch
        features = model.encode(b["image"], occupancy=True)
        size = b["image"].shape[-1]
        camera = (b["K"], b["world_to_cam"], b["orthographic"], b["depth_center"], (size, size))
        return model.volume_query(features.occupancy, b["points"], *camera)

    def validate(self, model, meshes: bool):
        metrics, images = super().validate(model, meshes)
        if not bool(model.query_trained):  # the volume's mesh: shown, but best.pt is the query network's
            for name in ("chamfer_cm", "p2s_cm"):
                if f"val/{name}" in metrics:
                    metrics[f"val/coarse_{name}"] = metrics.pop(f"val/{name}")
        return metrics, images

    def predictor(self, model):
        from avatarkit.methods.geopifu.infer import GeoPifuPredictor

        return GeoPifuPredictor(model, self.config, self.device)


class StageSchedule:
    """When stage 2 begins, and each stage's learning rate, for a run of ``config.stage``.

    Stage 2 (query) begins at step ``coarse_steps()`` or, under a time budget, once
    ``coarse_share`` of ``max_time`` is spent, whichever comes first; the step it began at is
    kept (``query_from``) and saved with the run. The coarse stage's rate decays at
    ``coarse_lr_decay_at`` of its steps (or of its share of the time), the query stage's at
    ``lr_decay_at`` of its own, counted from its first step (Geo-PIFu trains the stages as
    separate runs)."""

    def __init__(self, config: GeoPifuConfig, query_from: int | None = None) -> None:
        self.split = config.coarse_steps()
        self.share = self.split / config.max_steps
        self.query_from = query_from
        query = config.max_steps - self.split
        self.coarse_lr = StepSchedule(config.lr, max(self.split, 1), config.coarse_lr_decay_at, config.lr_decay)
        self.query_lr = StepSchedule(config.lr, max(query, 1), config.lr_decay_at, config.lr_decay)

    def coarse(self, done: int) -> bool:
        """Whether the step after ``done`` is a coarse-stage step."""
        return self.query_from is None or done < self.query_from

    def apply(self, optimizer: torch.optim.Optimizer, done: int, time_fraction: float = 0.0) -> float:
        """Start stage 2 when its step or share of the time has come; set the rate for the step
        after ``done`` (``time_fraction``: of the budget spent, the same on every rank)."""
        if self.query_from is None and (done >= self.split or (self.share < 1 and time_fraction >= self.share > 0)):
            self.query_from = done
        if self.coarse(done):
            return self.coarse_lr.apply(optimizer, done, time_fraction / self.share if time_fraction else 0.0)
        later = (time_fraction - self.share) / (1 - self.share) if time_fraction and self.share < 1 else 0.0
        return self.query_lr.apply(optimizer, done - (self.query_from or 0), max(later, 0.0))


_NO_VOLUME = (
    "--stage query needs a trained volume network: give --coarse-run RUN (a geopifu run trained with "
    "--stage coarse or both), or --resume a run that trained one"
)


def check_voxels(path: Path, grid: tuple[int, ...]) -> None:
    """Refuse a voxels file whose grid is not the config's."""
    from avatarkit.io.hdf5 import check_kind, open_h5

    with open_h5(path) as f:
        check_kind(f, path, "voxels")
        shape = tuple(int(n) for n in f["/occupancy"].shape)
    if shape != tuple(grid):
        raise InputError(
            f"the voxels are {' x '.join(map(str, shape))} but the config's grid is {' x '.join(map(str, grid))} "
            "(voxelize --preset geopifu makes 128 x 192 x 128; or give --grid to match the files)",
            path,
        )


def coarse_weights(run: Path, config: GeoPifuConfig) -> dict[str, torch.Tensor]:
    """The trained volume network of a geopifu run (its last checkpoint), checked against ``config``."""
    from avatarkit.methods.checkpoint import part_weights

    return part_weights(
        run, "geopifu", config, option="--coarse-run", part="coarse", fields=COARSE_FIELDS,
        what="volume network", stages="--stage coarse or both",
    )  # fmt: skip


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Trainable contract
    from avatarkit.methods.contract import Trainable

    _: type[Trainable] = GeoPifuMethod
