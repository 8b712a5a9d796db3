"""DeepSDF as a trainable method: samples files alone, one latent code per training shape.

A step (``train_deep_sdf.py``): ``batch_size`` training shapes (ScenesPerBatch) and
``points_per_shape`` of each one's points (SamplesPerScene), half with sdf >= 0 and half < 0;
the loss is the mean L1 between prediction and target, both clamped to +- ``clamp``, plus
``code_reg`` times the mean norm of the batch's codes, ramped up over ``code_reg_warmup``
epochs. Points and distances are in each shape's unit sphere (:mod:`.data`); the unit spheres
of the training shapes are saved in the run's state (``normalization``) so that meshes come
back in world metres.

Validation: the training shapes' SDF error under their own codes (``val/train_sdf_l1``) and,
with meshes, up to ``val_meshes`` held-out shapes: a code fitted to each one's points
(:func:`~avatarkit.methods.deepsdf.infer.fit_latent`), its SDF error (``val/sdf_l1``) and its
mesh scored against the ground truth (``val/chamfer_cm``, the measure that picks ``best.pt``;
``val/p2s_cm``); the first training shape with a mesh is scored too (``val/train_chamfer_cm``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from avatarkit.errors import AvatarkitError, InputError
from avatarkit.methods import data as D
from avatarkit.methods.configs import replace
from avatarkit.methods.contract import BestMetric, RunState
from avatarkit.methods.deepsdf.config import DeepSDFConfig
from avatarkit.methods.deepsdf.data import (
    Normalization,
    ShapeSamples,
    check_points,
    half_and_half,
    read_normalization,
    to_unit,
)
from avatarkit.methods.split import split_subjects

TRAIN_SHAPES_SCORED = 16
"""Training shapes whose SDF error under their own codes each validation measures."""


class DeepSDFState(RunState, total=False):
    """DeepSDF's run state: the shared keys and ``normalization``, each training shape's unit
    sphere by stem (``{stem: {"center": [x, y, z], "radius": r}}``, metres). Code ``i`` is
    the shape ``split["train"][i]``."""

    normalization: dict[str, Normalization]


class DeepSDFMethod:
    """Built as ``DeepSDFMethod(config, restored=state, samples=..., meshes=...)``."""

    name = "deepsdf"
    best_metric = BestMetric("val/chamfer_cm", higher_is_better=False)
    """best.pt is the state whose held-out shapes' meshes (codes fitted to their points) are
    closest to the truth."""

    def __init__(self, config: DeepSDFConfig, restored: RunState | None = None, **data: list[Path] | None) -> None:
        self.config = config
        self.restored: RunState = restored or {}
        self.data = {name: [Path(p) for p in (data.get(name) or [])] for name in ("samples", "meshes")}
        self.device = torch.device("cpu")

    # ------------------------------------------------------------------ setup

    def setup(self, device: torch.device) -> None:
        self.device = device
        self.subjects = D.match_subjects({"samples": self.data["samples"]}, self.data["meshes"] or None)
        for s in self.subjects:
            D.check_samples(s.samples)
            check_points(s.samples)
        self.norms = [read_normalization(s.samples) for s in self.subjects]
        stems = [s.stem for s in self.subjects]
        self.train_index, self.val_index = split_subjects(
            stems, self.config.val_fraction, self.config.seed, self.restored.get("split")
        )
        if not self.train_index:
            raise InputError("no training shapes: give more samples files or a smaller --val-fraction")
        shapes = len(self.train_index)
        if self.config.shapes and self.config.shapes != shapes:
            raise InputError(f"the run's network holds {self.config.shapes} codes but its split trains {shapes} shapes")
        self.config = replace(self.config, shapes=shapes)
        self.steps_per_epoch = max(1, shapes // self.config.batch_size)  # DeepSDF's loader drops the last batch
        self.train_set = ShapeSamples(
            [self.subjects[i].samples for i in self.train_index],
            [self.norms[i] for i in self.train_index],
            self.config.points_per_shape,
        )

    def build_model(self) -> torch.nn.Module:
        from avatarkit.methods.deepsdf.model import DeepSDF

        return DeepSDF(self.config)

    def summary(self) -> dict[str, Any]:
        return {"shapes": len(self.subjects), **D.split_summary(self.subjects, self.train_index, self.val_index)}

    def state(self) -> DeepSDFState:
        return {
            **D.split_state(self.data, self.subjects, self.train_index, self.val_index),  # type: ignore[typeddict-item]
            "normalization": {self.subjects[i].stem: self.norms[i] for i in self.train_index},
        }

    def close(self) -> None:
        if hasattr(self, "train_set"):
            self.train_set.close()

    # ------------------------------------------------------------------ training

    def loader(self, start: int, stop: int, rank: int, world: int, workers: int):
        codes = range(len(self.train_index))  # the dataset is the training shapes, in code order
        sampler = D.StepBatches(codes, self.config.batch_size, self.config.seed, start, stop, rank, world)
        batches = torch.utils.data.DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=workers,
            worker_init_fn=D.worker_init if workers else None,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
        )
        return ({**batch, "step": torch.tensor(step)} for step, batch in zip(range(start, stop), batches, strict=False))

    def code_reg_weight(self, step: int) -> float:
        """``code_reg`` at (0-based) ``step``: DeepSDF's ``min(1, epoch / 100)``, epochs from 1."""
        c = self.config
        if not c.code_reg_warmup:
            return c.code_reg
        return c.code_reg * min(1.0, (step // self.steps_per_epoch + 1) / c.code_reg_warmup)

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        shapes = batch["shape"].to(self.device, non_blocking=True)
        points = batch["points"].to(self.device, non_blocking=True)
        target = batch["sdf"].to(self.device, non_blocking=True).clamp(-c.clamp, c.clamp)
        pred, codes = model(shapes, points)
        l1 = (pred.float().clamp(-c.clamp, c.clamp) - target).abs().mean()
        norms = codes.float().norm(dim=1).mean()  # DeepSDF: the sum of every point's code norm / points
        loss = l1 + self.code_reg_weight(int(batch["step"])) * norms
        return loss, {"sdf_l1": float(l1.detach()), "code_norm": float(norms.detach())}

    def batch_images(self, batch: dict) -> np.ndarray:
        """Each shape's points seen from the front (x right, y up, the unit sphere's square):
        red inside, blue outside, brighter nearer the surface."""
        size, tiles = 128, []
        for points, sdf in zip(batch["points"][:4].numpy(), batch["sdf"][:4].numpy(), strict=True):
            tile = np.zeros((size, size, 3), np.uint8)
            px = np.clip(((points[:, :2] * [1, -1] + 1) * 0.5 * (size - 1)).round().astype(int), 0, size - 1)
            near = (255 * np.clip(1 - np.abs(sdf) / max(self.config.clamp, 1e-6), 0.25, 1)).astype(np.uint8)
            channel = np.where(sdf < 0, 0, 2)
            tile[px[:, 1], px[:, 0], channel] = near
            tiles.append(tile)
        return np.concatenate(tiles, axis=1)

    # ------------------------------------------------------------------ validation

    def validate(self, model: torch.nn.Module, meshes: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        model_: Any = model
        scored = np.linspace(0, len(self.train_index) - 1, min(TRAIN_SHAPES_SCORED, len(self.train_index)))
        errors = []
        for code in np.unique(scored.round().astype(int)):
            points, sdf = self._fixed_draw(self.train_set.pool(int(code)), int(code))
            errors.append(self._sdf_error(model_.decoder, model_.codes.weight[int(code)], points, sdf))
        metrics = {"val/train_sdf_l1": float(np.mean(errors))}
        if meshes:
            metrics.update(self._meshes(model_))
        return metrics, {}

    def _fixed_draw(self, pool: tuple[np.ndarray, np.ndarray], salt: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed draw of ``fit_samples`` of a shape's points (the same at every validation)."""
        points, sdf = pool
        rng = np.random.default_rng([self.config.seed, 7919, salt])
        chosen = half_and_half(sdf, self.config.fit_samples, lambda p, k: p[rng.integers(len(p), size=k)])
        return torch.from_numpy(points[chosen]).to(self.device), torch.from_numpy(sdf[chosen]).to(self.device)

    def _sdf_error(self, decoder, latent: torch.Tensor, points: torch.Tensor, sdf: torch.Tensor) -> float:
        """Mean L1 of clamped prediction and target (the training loss's), unit-sphere units."""
        c = self.config
        pred = decoder(latent, points)[:, 0].float().clamp(-c.clamp, c.clamp)
        return float((pred - sdf.clamp(-c.clamp, c.clamp)).abs().mean())

    def _meshes(self, model: Any) -> dict[str, float]:
        """Held-out shapes meshed from codes fitted to their points, and the first training
        shape with a mesh from its own code, scored against their ground truth (cm)."""
        import h5py

        from avatarkit.methods.deepsdf.infer import fit_latent

        c = self.config
        held_out = [i for i in self.val_index if self.subjects[i].mesh is not None][: c.val_meshes]
        chamfer, p2s, sdf_errors = [], [], []
        for i in held_out:
            with h5py.File(self.subjects[i].samples, "r") as f:
                pool = to_unit(f["/points"][()], f["/sdf"][()], self.norms[i])
            points, sdf = torch.from_numpy(pool[0]), torch.from_numpy(pool[1])
            latent = fit_latent(
                model.decoder, points, sdf, c.fit_iterations, c.fit_lr, c.fit_samples, c.clamp, seed=c.seed
            )
            sdf_errors.append(self._sdf_error(model.decoder, latent, *self._fixed_draw(pool, 104729 + i)))
            score = self._score(model.decoder, latent, self.norms[i], self.subjects[i].mesh)
            if score is not None:
                chamfer.append(score[0])
                p2s.append(score[1])
        metrics: dict[str, float] = {}
        if sdf_errors:
            metrics["val/sdf_l1"] = float(np.mean(sdf_errors))
        if chamfer:
            metrics["val/chamfer_cm"] = float(np.mean(chamfer))
            metrics["val/p2s_cm"] = float(np.mean(p2s))
        for code, i in enumerate(self.train_index):
            if self.subjects[i].mesh is not None:
                score = self._score(model.decoder, model.codes.weight[code], self.norms[i], self.subjects[i].mesh)
                if score is not None:
                    metrics["val/train_chamfer_cm"] = score[0]
                break
        return metrics

    def _score(self, decoder, latent: torch.Tensor, norm: Normalization, truth: Path | None):
        """(chamfer, P2S) in cm of ``latent``'s mesh against the mesh at ``truth``, or None when
        there is no surface yet (early in training)."""
        from avatarkit.evaluate.chamfer import Protocol, evaluate_meshes
        from avatarkit.io.meshfile import load_mesh
        from avatarkit.methods.deepsdf.infer import sdf_field
        from avatarkit.reconstruct.field import reconstruct_field

        assert truth is not None
        try:
            result = reconstruct_field(sdf_field(decoder, latent, norm, self.config.clamp), self.config.val_resolution)
            gt = load_mesh(truth)
        except AvatarkitError:
            return None
        protocol = Protocol("validation", samples=20_000, units="cm", taus=(0.01,))
        values = evaluate_meshes(result.mesh, gt, protocol, seed=self.config.seed, device=str(self.device)).values
        return float(values["chamfer_l1"]), float(values["p2s"])


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Trainable contract
    from avatarkit.methods.contract import Trainable

    _: type[Trainable] = DeepSDFMethod
