"""The part of a :class:`~avatarkit.methods.contract.Trainable` every image-based method
shares: it learns occupancy (or a signed distance) of world points from one view of a subject.

:class:`ImageMethod` matches the subjects of its data options by stem, holds a seeded share
out (:func:`~avatarkit.methods.split.split_subjects`), derives the run's camera, builds the
keyed datasets and the step sampler, and validates: point metrics on the held-out subjects
(IoU, precision, recall, MSE of :meth:`ImageMethod.predict`) and, less often, a held-out
subject reconstructed through the method's own :class:`~avatarkit.methods.contract.Predictor`
and scored against its ground-truth mesh (chamfer and P2S, cm) with a preview picture.

A subclass gives ``name``, its network (:meth:`build_model`), its loss (:meth:`loss`), the
occupancy in [0, 1] its network predicts for a batch (:meth:`predict`), and its predictor
(:meth:`predictor`). PIFu is one (``avatarkit/methods/pifu/train.py``); so is the worked
example in ``docs/adding_a_method.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from avatarkit.errors import AvatarkitError
from avatarkit.methods import image_data as D
from avatarkit.methods.configs import ImageDataConfig
from avatarkit.methods.contract import BestMetric, Predictor, RunState
from avatarkit.methods.data import split_state, split_summary
from avatarkit.methods.split import split_subjects

if TYPE_CHECKING:
    from avatarkit.reconstruct.field import ImplicitField
    from avatarkit.reconstruct.inputs import ImageInput
    from avatarkit.structures import Mesh


class ImageMethod:
    """Base of image-based methods: built as ``Class(config, restored=state, views=..., samples=...,
    meshes=...)``; ``views`` and ``samples`` are required, ``meshes`` (ground truth by stem, for
    validation meshes) optional."""

    name = "image"
    best_metric = BestMetric("val/chamfer_cm", higher_is_better=False)
    """best.pt is the run's state with the lowest chamfer of its held-out mesh (the measure users
    score by: a higher point IoU picked worse meshes than the last state did). Runs with no
    held-out mesh write no best.pt, and reconstruct takes last.pt."""
    inputs: tuple[str, ...] = ("views", "samples")
    """The data options matched by stem into subjects (each subject needs a file in every one)."""

    def __init__(self, config: ImageDataConfig, restored: RunState | None = None, **data: list[Path] | None) -> None:
        self.config = config
        self.restored: RunState = restored or {}
        self.data = {name: [Path(p) for p in (data.get(name) or [])] for name in (*self.inputs, "meshes")}
        self.device = torch.device("cpu")
        self.validation_meshes: dict[str, tuple[Mesh, Path | None]] = {}
        """The latest validation mesh per subject stem, with its true mesh's path."""

    # ------------------------------------------------------------------ to give

    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def predict(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        """Occupancy in [0, 1], (B, P), of ``batch["points"]`` (on the device)."""
        raise NotImplementedError

    def predictor(self, model: torch.nn.Module) -> Predictor[ImageInput]:
        raise NotImplementedError

    # ------------------------------------------------------------------ setup

    def setup(self, device: torch.device) -> None:
        self.device = device
        inputs = {name: self.data[name] for name in self.inputs}
        self.subjects = D.match_subjects(inputs, self.data["meshes"] or None)
        self.view_sets = [D.read_view_set(s.views) for s in self.subjects]
        for s in self.subjects:
            D.check_samples(s.samples)
        stems = [s.stem for s in self.subjects]
        self.train_index, self.val_index = split_subjects(
            stems, self.config.val_fraction, self.config.seed, self.restored.get("split")
        )
        self.camera = self.restored.get("camera") or D.run_camera([self.view_sets[i] for i in self.train_index])
        self.train_set = self.dataset(augment=True)
        self.val_set = self.dataset(augment=False)

    def dataset(self, augment: bool) -> D.ImagePointsDataset:
        """The keyed dataset over every subject (a method with more per-item inputs overrides it)."""
        return D.ImagePointsDataset(self.subjects, self.view_sets, self.config, augment)

    def summary(self) -> dict[str, Any]:
        return {"subjects": len(self.subjects), **split_summary(self.subjects, self.train_index, self.val_index)}

    def state(self) -> RunState:
        return {
            **split_state(self.data, self.subjects, self.train_index, self.val_index),  # type: ignore[typeddict-item]
            "camera": self.camera,
        }

    def close(self) -> None:
        for name in ("train_set", "val_set"):
            if hasattr(self, name):
                getattr(self, name).close()

    # ------------------------------------------------------------------ training

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

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    # ------------------------------------------------------------------ validation

    def validate(self, model: torch.nn.Module, meshes: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        if not self.val_index:
            return {}, {}
        keys = D.validation_keys(self.view_sets, self.val_index, 2, self.config.seed)
        tp = fp = fn = 0
        squared, count = 0.0, 0
        for i in range(0, len(keys), self.config.batch_size):
            batch = torch.utils.data.default_collate([self.val_set[k] for k in keys[i : i + self.config.batch_size]])
            b = self.to_device(batch)
            pred = self.predict(model, b).float()
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

    def _validation_mesh(self, model: torch.nn.Module):
        """Chamfer and P2S (cm) of the first held-out subject with a ground-truth mesh,
        reconstructed from its first view, and a preview of input, truth and prediction; the
        mesh and its truth's path are kept in ``validation_meshes`` (the trainer writes them)."""
        from avatarkit.evaluate.chamfer import Protocol, evaluate_meshes
        from avatarkit.io.meshfile import load_mesh
        from avatarkit.reconstruct.field import reconstruct_field
        from avatarkit.reconstruct.inputs import read_view_input
        from avatarkit.reconstruct.preview import preview

        self.validation_meshes = {}
        candidates = [i for i in self.val_index if self.subjects[i].mesh is not None]
        if not candidates:
            return None
        subject, views = self.subjects[candidates[0]], self.view_sets[candidates[0]]
        truth = subject.mesh
        assert truth is not None
        try:
            view = read_view_input(subject.views, 0)
            view.camera = views.cameras.subset(0)  # with its target, even where the file has none
            result = reconstruct_field(self.predictor(model).field(view), self.config.val_resolution)
            gt = load_mesh(truth)
        except AvatarkitError:  # early on, nothing may cross the surface level yet
            return None
        protocol = Protocol("validation", samples=20_000, units="cm", taus=(0.01,))
        values = evaluate_meshes(result.mesh, gt, protocol, seed=self.config.seed, device=str(self.device)).values
        metrics = {"val/chamfer_cm": values["chamfer_l1"], "val/p2s_cm": values["p2s"]}
        self.validation_meshes = {subject.stem: (result.mesh, truth)}
        return metrics, preview(view, result.mesh, str(self.device), 256)

    def batch_images(self, batch: dict) -> np.ndarray:
        """The batch's network inputs, with the inside points drawn green at their pixels (a
        check that points and images line up)."""
        from avatarkit.render.projection import project

        images = ((batch["image"] * 0.5 + 0.5).clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy().copy()
        size = images.shape[1]
        uv, _ = project(batch["points"], batch["K"], batch["world_to_cam"], batch["orthographic"])
        pixels = np.rint(uv.numpy()).astype(int)
        for image, px, labels in zip(images, pixels, batch["labels"].numpy(), strict=True):
            keep = (labels > 0.5) & (px >= 0).all(1) & (px < size).all(1)
            image[px[keep, 1], px[keep, 0]] = (0, 255, 0)
        return np.concatenate(list(images), axis=1)


def iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Intersection over union of two boolean tensors (1 when both are empty)."""
    union = (pred | truth).sum()
    return float((pred & truth).sum() / union) if union > 0 else 1.0


class PixelAlignedPredictor:
    """A trained pixel-aligned network asked about one view (a
    :class:`~avatarkit.methods.contract.Predictor`): the view's image is fitted to the network's
    input as the training views were (:func:`~avatarkit.methods.image_data.fit_input`), encoded
    once, and world points are queried through the view's camera, depth measured from its
    target. Built as ``Class(model, config, device, state)`` (the run's state, which an image
    predictor does not need).

    The network gives ``encode(image (1, 3, S, S)) -> features`` and ``query(features, points
    (1, P, 3), K (1, 3, 3), world_to_cam (1, 4, 4), orthographic, depth_center (1,), (S, S)) ->
    (1, P)``; a subclass overrides :meth:`encode` and :meth:`query` where its network differs
    (PIFu answers per stack and infers with the last), and :attr:`level` and :attr:`inside` for
    a signed distance.
    """

    level = 0.5
    inside = "above"

    def __init__(
        self,
        model: torch.nn.Module,
        config: ImageDataConfig,
        device: str | torch.device = "cpu",
        state: RunState | None = None,
        batch: int = 1 << 17,
    ) -> None:
        self.model: Any = model.eval()  # a network with encode and query (see the class docstring)
        self.config = config
        self.device = torch.device(device)
        self.batch = batch

    def encode(self, image: torch.Tensor) -> Any:
        return self.model.encode(image)

    def query(self, features: Any, points: torch.Tensor, *camera: Any) -> torch.Tensor:
        return self.model.query(features, points, *camera)

    def field(self, view: ImageInput) -> ImplicitField:
        """The network's field over the volume ``view``'s camera sees around its target."""
        from avatarkit.reconstruct.volume import view_field

        return view_field(self.values(view), view.camera, view.target, self.level, self.inside)

    def values(self, view: ImageInput):
        """``fn(points (P, 3) world) -> (P,)`` for ``view``'s image seen by its camera; the image
        is encoded once."""
        features, camera_args = self.prepare(view)
        return self.batched(lambda p: self.query(features, p, *camera_args))

    def batched(self, query: Any, channels: int = 0):
        """``fn(points (P, 3) world) -> (P,)`` (or (P, ``channels``)) as numpy, asking ``query``
        (world points (1, p, 3) on the device -> (1, p[, channels])) at most ``batch`` points at
        a time, without gradients."""
        dev = self.device

        def fn(points: np.ndarray) -> np.ndarray:
            out = np.empty((len(points), channels) if channels else len(points), np.float32)
            with torch.no_grad():
                for i in range(0, len(points), self.batch):
                    p = torch.as_tensor(points[i : i + self.batch], dtype=torch.float32, device=dev)[None]
                    out[i : i + len(p[0])] = query(p)[0].float().cpu().numpy()
            return out

        return fn

    def prepare(self, view: ImageInput) -> tuple[Any, tuple]:
        """``view``'s image encoded once (:meth:`encode`) and the camera arguments of
        :meth:`query` after the image: ``K``, ``world_to_cam``, ``orthographic``, ``depth_center``,
        ``size``, as tensors on the device."""
        from avatarkit.errors import InputError

        rgb, mask, camera = view.rgb, view.mask, view.camera
        if rgb.shape[:2] != (camera.height, camera.width):
            raise InputError(
                f"the image is {rgb.shape[1]} x {rgb.shape[0]} pixels but the camera expects "
                f"{camera.width} x {camera.height} (crop and scale it as the training views, or give --camera)"
            )
        if not mask.any():
            raise InputError("the mask is empty")
        dev = self.device
        rgb_t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255
        mask_t = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None]
        rgb_t, mask_t, K = D.fit_input(rgb_t, mask_t, camera.K[0], self.config.image_size)
        image = D.normalize(rgb_t, mask_t, self.config.mask_input)[None].to(dev)
        one = camera.subset(0)
        one.target = np.asarray(view.target, dtype=np.float64)[None]
        w2c, depth_center = one.world_to_cam[0], float(one.target_depths()[0])
        K_t = torch.as_tensor(K, dtype=torch.float32, device=dev)[None]
        w2c_t = torch.as_tensor(w2c, dtype=torch.float32, device=dev)[None]
        center_t = torch.tensor([depth_center], dtype=torch.float32, device=dev)
        ortho = camera.projection == "orthographic"
        size = (self.config.image_size, self.config.image_size)
        with torch.no_grad():
            features = self.encode(image)
        return features, (K_t, w2c_t, ortho, center_t, size)
