"""PIFu as a trainable method: its data, loss and validation for the shared trainer.

- Subjects are matched by stem between views and samples; a seeded share of them
  (``val_fraction``) is held out and recorded in every checkpoint.
- A step: per subject, a random view and a fresh balanced draw of points; the loss is the
  mean squared error of the occupancy from every stack (intermediate supervision), averaged
  over the stacks, as PIFu's ``HGPIFuNet.get_error``.
- Validation: IoU, precision and recall at 0.5 and the MSE on the held-out subjects' points
  (two views each, fixed draws); with meshes, the first held-out subject reconstructed from
  its first view and scored against its ground-truth mesh (chamfer and P2S, centimetres).
- The run's camera: where ``reconstruct`` puts a photo given without one. The training
  views' median intrinsics, in front of the subject (yaw 0) at the median distance, aimed at
  the median target.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avatarkit.errors import AvatarkitError, AvatarkitWarning, InputError
from avatarkit.methods.pifu import data as D
from avatarkit.methods.pifu.config import PifuConfig
from avatarkit.render.cameras import look_at


class PifuMethod:
    name = "pifu"
    best_metric = "val/iou"

    def __init__(
        self,
        config: PifuConfig,
        views: list[Path],
        samples: list[Path],
        meshes: list[Path] | None = None,
        restored: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.views, self.samples, self.meshes = list(views), list(samples), list(meshes or [])
        self.restored = restored or {}
        self.device = torch.device("cpu")

    # ------------------------------------------------------------------ setup

    def setup(self, device: torch.device) -> None:
        self.device = device
        subjects = D.match_subjects(self.views, self.samples, self.meshes or None)
        self.view_sets = [D.read_view_set(s.views) for s in subjects]
        for s in subjects:
            D.check_samples(s.samples)
        self.subjects = subjects
        self.train_index, self.val_index = self._split()
        self.camera = self.restored.get("camera") or _run_camera([self.view_sets[i] for i in self.train_index])
        self.train_set = D.PifuDataset(subjects, self.view_sets, self.config, augment=True)
        self.val_set = D.PifuDataset(subjects, self.view_sets, self.config, augment=False)

    def _split(self) -> tuple[list[int], list[int]]:
        stems = [s.stem for s in self.subjects]
        split = self.restored.get("split")
        if split:
            index = {s: i for i, s in enumerate(stems)}
            lost = [s for s in split["train"] + split["val"] if s not in index]
            if lost:
                raise InputError(f"the run was trained with subjects that are missing now: {', '.join(lost[:4])}")
            new = sorted(set(stems) - set(split["train"]) - set(split["val"]))
            if new:
                warnings.warn(
                    f"{len(new)} subject(s) not in the run's split are left out ({', '.join(new[:4])}): a resumed run "
                    "keeps its subjects; start a new run to train on more",
                    AvatarkitWarning,
                    stacklevel=2,
                )
            return [index[s] for s in split["train"]], [index[s] for s in split["val"]]
        n = len(stems)
        n_val = round(self.config.val_fraction * n)
        n_val = min(max(n_val, 1), n - 1) if self.config.val_fraction > 0 and n >= 2 else 0
        order = np.random.default_rng([self.config.seed, 104729]).permutation(n)
        return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())

    def summary(self) -> dict[str, Any]:
        with_mesh = sum(self.subjects[i].mesh is not None for i in self.val_index)
        return {
            "subjects": len(self.subjects),
            "train": len(self.train_index),
            "val": len(self.val_index),
            "val_with_meshes": with_mesh,
        }

    def state(self) -> dict[str, Any]:
        return {
            "data": {
                "views": [str(p.resolve()) for p in self.views],
                "samples": [str(p.resolve()) for p in self.samples],
                "meshes": [str(p.resolve()) for p in self.meshes],
            },
            "split": {
                "train": [self.subjects[i].stem for i in self.train_index],
                "val": [self.subjects[i].stem for i in self.val_index],
            },
            "camera": self.camera,
        }

    def close(self) -> None:
        for name in ("train_set", "val_set"):
            if hasattr(self, name):
                getattr(self, name).close()

    # ------------------------------------------------------------------ training

    def build_model(self) -> torch.nn.Module:
        from avatarkit.methods.pifu.model import PifuNet

        return PifuNet(self.config)

    def loader(self, start: int, stop: int, rank: int, world: int, workers: int):
        sampler = D.StepBatches(self.train_index, self.config.batch_size, self.config.seed, start, stop, rank, world)
        return torch.utils.data.DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=workers,
            worker_init_fn=D.worker_init if workers else None,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
        )

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def loss(self, model, batch) -> tuple[torch.Tensor, dict[str, float]]:
        b = self._to_device(batch)
        preds = model(b["image"], b["points"], b["K"], b["world_to_cam"], b["orthographic"], b["depth_center"])
        labels = b["labels"]
        loss = sum(torch.nn.functional.mse_loss(p.float(), labels) for p in preds) / len(preds)
        with torch.no_grad():
            iou = _iou(preds[-1].float() > 0.5, labels > 0.5)
        return loss, {"iou": iou}

    # ------------------------------------------------------------------ validation

    def validate(self, model, meshes: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        if not self.val_index:
            return {}, {}
        keys = D.validation_keys(self.view_sets, self.val_index, 2, self.config.seed)
        tp = fp = fn = 0
        squared, count = 0.0, 0
        for i in range(0, len(keys), self.config.batch_size):
            batch = torch.utils.data.default_collate([self.val_set[k] for k in keys[i : i + self.config.batch_size]])
            b = self._to_device(batch)
            pred = model(b["image"], b["points"], b["K"], b["world_to_cam"], b["orthographic"], b["depth_center"])[-1]
            pred = pred.float()
            inside, truth = pred > 0.5, b["labels"] > 0.5
            tp += int((inside & truth).sum())
            fp += int((inside & ~truth).sum())
            fn += int((~inside & truth).sum())
            squared += float(((pred - b["labels"]) ** 2).sum())
            count += pred.numel()
        self.val_set.close()
        metrics = {
            "val/iou": tp / max(tp + fp + fn, 1),
            "val/precision": tp / max(tp + fp, 1),
            "val/recall": tp / max(tp + fn, 1),
            "val/mse": squared / max(count, 1),
        }
        images: dict[str, np.ndarray] = {}
        if meshes:
            scored = self._validation_mesh(model)
            if scored is not None:
                mesh_metrics, images["val/reconstruction"] = scored
                metrics.update(mesh_metrics)
        return metrics, images

    def _validation_mesh(self, model):
        """Chamfer and P2S (cm) of the first held-out subject with a ground-truth mesh,
        reconstructed from its first view, and a picture of input, truth and prediction."""
        from avatarkit.evaluate.chamfer import Protocol, evaluate_meshes
        from avatarkit.io.hdf5 import read_view
        from avatarkit.io.meshfile import load_mesh
        from avatarkit.methods.pifu.infer import PifuPredictor
        from avatarkit.reconstruct.preview import normal_colors, render_normals, side_by_side

        candidates = [i for i in self.val_index if self.subjects[i].mesh is not None]
        if not candidates:
            return None
        subject, views = self.subjects[candidates[0]], self.view_sets[candidates[0]]
        view = read_view(subject.views, 0)
        rgb, mask = view.rgb[0], view.mask[0] > 127
        normal = None if view.normal is None else view.normal[0]
        camera = views.cameras.subset(0)  # with its target, even where the file has none
        predictor = PifuPredictor(model, self.config, self.device)
        try:
            result = predictor.reconstruct(rgb, mask, camera, camera.target[0], self.config.val_resolution)
            gt = load_mesh(subject.mesh)
        except AvatarkitError:  # early on, nothing may cross 0.5 yet
            return None
        protocol = Protocol("validation", samples=20_000, units="cm", taus=(0.01,))
        values = evaluate_meshes(result.mesh, gt, protocol, seed=self.config.seed, device=str(self.device)).values
        panels = [rgb]
        if normal is not None:
            panels.append(normal_colors(normal, camera.world_to_cam[0], mask))
        panels.append(render_normals(result.mesh, camera))
        metrics = {"val/chamfer_cm": values["chamfer_l1"], "val/p2s_cm": values["p2s"]}
        return metrics, side_by_side(panels, 256)

    def batch_images(self, batch) -> np.ndarray:
        """The batch's network inputs, with the inside points drawn green at their pixels (a
        check that points and images line up)."""
        from avatarkit.methods.pifu.model import project

        images = ((batch["image"] * 0.5 + 0.5).clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy().copy()
        size = images.shape[1]
        grid, _ = project(batch["points"], batch["K"], batch["world_to_cam"], batch["orthographic"], size, size)
        pixels = np.rint((grid.numpy() + 1) / 2 * size - 0.5).astype(int)
        for image, px, labels in zip(images, pixels, batch["labels"].numpy(), strict=True):
            keep = (labels > 0.5) & (px >= 0).all(1) & (px < size).all(1)
            image[px[keep, 1], px[keep, 0]] = (0, 255, 0)
        return np.concatenate(list(images), axis=1)


def _iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    union = (pred | truth).sum()
    return float((pred & truth).sum() / union) if union > 0 else 1.0


def _run_camera(view_sets: list[D.ViewSet]) -> dict[str, Any]:
    """The camera a photo is reconstructed with when none is given (see the module docstring)."""
    cams = [v.cameras for v in view_sets]
    projections = [c.projection for c in cams]
    projection = max(set(projections), key=projections.count)
    cams = [c for c in cams if c.projection == projection]
    sizes = [(c.width, c.height) for c in cams]
    width, height = max(set(sizes), key=sizes.count)
    cams = [c for c in cams if (c.width, c.height) == (width, height)]
    K = np.median(np.concatenate([c.K for c in cams]), axis=0)
    targets = np.concatenate([c.targets() for c in cams])
    distances = np.linalg.norm(np.concatenate([c.centers() for c in cams]) - targets, axis=1)
    target = np.median(targets, axis=0)
    world_to_cam = look_at(target + np.array([0.0, 0.0, float(np.median(distances))]), target)
    return {
        "K": K.tolist(),
        "world_to_cam": world_to_cam.tolist(),
        "target": target.tolist(),
        "projection": projection,
        "width": int(width),
        "height": int(height),
    }
