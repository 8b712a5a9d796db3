"""``train landmarks``: the face detector's two networks trained on synthetic faces it renders.

Data: :mod:`.faces` renders ``faces`` training subjects and ``val_faces`` held-out ones (drawn
apart: another split of the seed) into pools under ``--data`` (default ``RUN/data``), once; a
resumed or repeated run with the same seed and sizes reuses them. Every step draws, from its
own generator ``[seed, step, rank]`` (:mod:`.scenes`):

- ``batch_size`` letterboxed photos for :class:`~.model.BoxNet` (none, one or up to three
  faces, from a tenth of the photo to filling it; ``empty_scenes`` of them without a face):
  CenterNet's loss, a focal loss on the centre heatmap (Gaussians of a sixth of the face's
  width) plus L1 on the log size and the sub-cell offset at each centre;
- ``batch_size`` crops for :class:`~.model.PointNet` (``negatives`` of them background only):
  L1 on the soft-argmax points (in crop sides; points outside the crop left out), the
  heatmaps' cross-entropy against a one-cell Gaussian (``heatmap_weight``), and the presence
  logit's binary cross-entropy (``presence_weight``).

Validation, on fixed draws from the held-out subjects: ``val/nme`` (the mean point error over
the inter-ocular distance, outer eye corners, as 300-W reports it, in %: the measure that picks
``best.pt``), ``val/presence_accuracy`` (faces and backgrounds), ``val/found`` and
``val/false_positive`` (the box network's best centre above ``box_threshold``, within half a
face size of a true centre; on photos without a face).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from avatarkit.errors import OptionError
from avatarkit.methods.contract import BestMetric, RunState
from avatarkit.methods.landmarks import scenes as S
from avatarkit.methods.landmarks.config import LandmarksConfig
from avatarkit.methods.landmarks.faces import FacePool, PoolSpec, load_pool, make_pool
from avatarkit.methods.landmarks.model import STRIDE, soft_argmax

JAW_SPAN = 2.76
"""A face's width (its 68 points' box) in face sizes (RMS radii), the median of the pool."""


class LandmarksState(RunState, total=False):
    """The shared keys and ``pools``: the rendered pools' folders (train, val)."""

    pools: dict[str, str]


def pool_specs(config: LandmarksConfig) -> dict[str, PoolSpec]:
    """The training and validation pools of a config."""
    common = {"views": config.views, "size": config.render_size, "crop": config.pool_crop}
    return {
        "train": PoolSpec(config.seed, 0, config.faces, **common),
        "val": PoolSpec(config.seed, 1, config.val_faces, **common),
    }


class LandmarksMethod:
    """Built as ``LandmarksMethod(config, restored=state, data=[folder])``."""

    name = "landmarks"
    best_metric = BestMetric("val/nme", higher_is_better=False)
    """best.pt: the lowest point error on held-out faces."""

    def __init__(self, config: LandmarksConfig, restored: RunState | None = None, **data: list[Path] | None) -> None:
        self.config = config
        self.restored: RunState = restored or {}
        folders = data.get("data") or []
        if len(folders) != 1:
            raise OptionError(f"--data takes one folder (where the rendered faces are kept), got {len(folders)}")
        self.root = Path(folders[0]).absolute()
        self.device = torch.device("cpu")

    def setup(self, device: torch.device) -> None:
        self.device = device
        specs = pool_specs(self.config)
        for spec in specs.values():
            make_pool(spec, self.root)
        self.pools: dict[str, FacePool] = {name: load_pool(spec, self.root) for name, spec in specs.items()}
        self._val = self._validation_set()

    def build_model(self) -> torch.nn.Module:
        from avatarkit.methods.landmarks.model import LandmarkNet

        return LandmarkNet(self.config)

    def state(self) -> LandmarksState:
        specs = pool_specs(self.config)
        return {
            "data": {"data": [str(self.root)]},
            "pools": {name: str(spec.folder(self.root)) for name, spec in specs.items()},
        }

    def summary(self) -> dict[str, Any]:
        pools = getattr(self, "pools", {})
        return {name: {"photos": len(pool), "subjects": int(pool.subject.max()) + 1} for name, pool in pools.items()}

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ training

    def loader(self, start: int, stop: int, rank: int, world: int, workers: int):
        steps = StepDraws(self.pools["train"], self.config, rank)
        return torch.utils.data.DataLoader(
            steps,
            sampler=range(start, stop),
            batch_size=None,
            num_workers=workers,
            worker_init_fn=worker_init if workers else None,
            prefetch_factor=2 if workers else None,
            persistent_workers=False,
        )

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        net: Any = model.module if hasattr(model, "module") else model
        c = self.config
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        out = net.box(b["scene"].float() / 255)
        box = centernet_loss(out, b["heat"], b["regress"], b["regress_mask"])
        logits, presence = net.points(b["crop"].float() / 255)
        points = point_losses(logits, presence, b["points"], b["weight"], b["present"], c.crop_size)
        total = c.box_weight * box + points["l1"] + c.heatmap_weight * points["heatmap"]
        total = total + c.presence_weight * points["presence"]
        return total, {"box": float(box.detach()), **{k: float(v.detach()) for k, v in points.items()}}

    def batch_images(self, batch: dict) -> np.ndarray:
        crops = batch["crop"][:4].permute(0, 2, 3, 1).numpy()
        scenes = batch["scene"][:4].permute(0, 2, 3, 1).numpy()
        tiles = []
        for crop, points, present in zip(crops, batch["points"][:4].numpy(), batch["present"][:4].numpy(), strict=True):
            tiles.append(draw_points(crop, points) if present else crop)
        side = crops.shape[1]
        scenes = [_fit(s, side) for s in scenes]
        return np.concatenate([np.concatenate(tiles, axis=1), np.concatenate(scenes, axis=1)], axis=0)

    # ------------------------------------------------------------------ validation

    def _validation_set(self) -> dict[str, torch.Tensor]:
        c, pool = self.config, self.pools["val"]
        rng = np.random.default_rng([c.seed, 7919])
        crops, points = [], []
        for _ in range(c.val_crops):
            image, p = S.face_crop(rng, pool, int(rng.integers(len(pool))), c.crop_size, c.rotation)
            crops.append(image)
            points.append(p)
        backgrounds = [S.photometric(rng, S.background(rng, c.crop_size, c.crop_size)) for _ in range(c.val_crops // 4)]
        scenes, centres = [], []
        for i in range(c.val_crops // 2):
            image, boxes = S.scene(rng, pool, c.scene_size, 1 if i % 4 else 0)
            scenes.append(image)
            centres.append(boxes[0] if len(boxes) else np.full(3, np.nan))
        return {
            "crop": _images(crops),
            "points": torch.as_tensor(np.stack(points), dtype=torch.float32),
            "background": _images(backgrounds),
            "scene": _images(scenes),
            "centre": torch.as_tensor(np.stack(centres), dtype=torch.float32),
        }

    def validate(self, model: torch.nn.Module, meshes: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        net: Any = model.module if hasattr(model, "module") else model
        c, v = self.config, self._val
        predicted, present = [], []
        for chunk in torch.split(v["crop"], 64):
            logits, presence = net.points(chunk.to(self.device).float() / 255)
            predicted.append(soft_argmax(logits)[0].cpu())
            present.append(torch.sigmoid(presence).cpu())
        absent = [
            torch.sigmoid(net.points(ch.to(self.device).float() / 255)[1]).cpu()
            for ch in torch.split(v["background"], 64)
        ]
        pred = torch.cat(predicted)
        inside = ((v["points"] >= 0) & (v["points"] <= c.crop_size - 1)).all(-1)
        errors = nme(pred.numpy(), v["points"].numpy(), inside.numpy())
        found, false_positive = box_rates(net, v["scene"], v["centre"], c.box_threshold, self.device)
        metrics = {
            "val/nme": float(np.nanmean(errors)),
            "val/nme_median": float(np.nanmedian(errors)),
            "val/presence_accuracy": float(
                torch.cat([torch.cat(present) > 0.5, torch.cat(absent) <= 0.5]).float().mean()
            ),
            "val/found": found,
            "val/false_positive": false_positive,
        }
        tiles = [draw_points(v["crop"][i].permute(1, 2, 0).numpy(), pred[i].numpy()) for i in range(4)]
        return metrics, {"val/points": np.concatenate(tiles, axis=1)}


class StepDraws(torch.utils.data.Dataset):
    """Step ``i``'s batch, drawn from its own generator ``[seed, i, rank]``."""

    def __init__(self, pool: FacePool, config: LandmarksConfig, rank: int) -> None:
        self.pool, self.config, self.rank = pool, config, rank

    def __len__(self) -> int:
        return self.config.max_steps

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        c, pool = self.config, self.pool
        rng = np.random.default_rng([c.seed, int(step), self.rank])
        crops, points, present = [], [], []
        for _ in range(c.batch_size):
            if rng.random() < c.negatives:
                crops.append(S.photometric(rng, S.background(rng, c.crop_size, c.crop_size, pool)))
                points.append(np.zeros((68, 2)))
                present.append(0.0)
            else:
                image, p = S.face_crop(rng, pool, int(rng.integers(len(pool))), c.crop_size, c.rotation)
                crops.append(image)
                points.append(p)
                present.append(1.0)
        scenes, heat, regress, mask = [], [], [], []
        for _ in range(c.batch_size):
            faces = 0 if rng.random() < c.empty_scenes else int(rng.choice([1, 1, 1, 1, 2, 3]))
            image, boxes = S.scene(rng, pool, c.scene_size, faces)
            h, r, m = centre_targets(boxes, c.scene_size)
            scenes.append(image)
            heat.append(h)
            regress.append(r)
            mask.append(m)
        pts = np.stack(points).astype(np.float32)
        weight = ((pts >= 0) & (pts <= c.crop_size - 1)).all(-1) & (np.asarray(present)[:, None] > 0)
        return {
            "crop": _images(crops),
            "points": torch.from_numpy(pts),
            "weight": torch.from_numpy(weight.astype(np.float32)),
            "present": torch.tensor(present, dtype=torch.float32),
            "scene": _images(scenes),
            "heat": torch.from_numpy(np.stack(heat)),
            "regress": torch.from_numpy(np.stack(regress)),
            "regress_mask": torch.from_numpy(np.stack(mask)),
        }


def worker_init(_: int) -> None:
    """Data workers leave Ctrl-C to the main process and use one thread."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def _images(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    import cv2

    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def draw_points(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A copy of (H, W, 3) uint8 ``image`` with ``points`` (68, 2) drawn as green dots."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    for x, y in points:
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(out, (round(float(x)), round(float(y))), 1, (0, 255, 0), -1)
    return out


def centre_targets(boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet's targets of faces ``boxes`` (F, 3: centre x, y, size in pixels) on a ``size``
    photo: heatmap (1, g, g) (g = size / STRIDE), regression (3, g, g) (log of the face's size
    over ``size``, offset x, y of the centre from its cell, cells) and its mask (1, g, g)."""
    g = size // STRIDE
    heat = np.zeros((1, g, g), np.float32)
    regress = np.zeros((3, g, g), np.float32)
    mask = np.zeros((1, g, g), np.float32)
    ys, xs = np.mgrid[0:g, 0:g].astype(np.float32)
    for cx, cy, face in boxes:
        u, v = (cx - (STRIDE - 1) / 2) / STRIDE, (cy - (STRIDE - 1) / 2) / STRIDE
        ix, iy = round(u), round(v)
        if not (0 <= ix < g and 0 <= iy < g):
            continue
        sigma = max(0.7, JAW_SPAN * face / STRIDE / 6)
        heat[0] = np.maximum(heat[0], np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma**2)))
        heat[0, iy, ix] = 1.0
        regress[:, iy, ix] = [np.log(face / size), u - ix, v - iy]
        mask[0, iy, ix] = 1.0
    return heat, regress, mask


def centernet_loss(out: torch.Tensor, heat: torch.Tensor, regress: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CenterNet's focal loss (alpha 2, beta 4) on the centre logits plus L1 on size and offset."""
    logit = out[:, :1].float()
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    positive = (heat >= 1).float()
    log_p = torch.nn.functional.logsigmoid(logit)
    log_q = torch.nn.functional.logsigmoid(-logit)
    pos = -(log_p * (1 - p) ** 2 * positive).sum()
    neg = -(log_q * p**2 * (1 - heat) ** 4 * (1 - positive)).sum()
    count = positive.sum().clamp(min=1)
    l1 = ((out[:, 1:].float() - regress).abs() * mask).sum() / count
    return (pos + neg) / count + l1


def point_losses(
    logits: torch.Tensor,
    presence: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    present: torch.Tensor,
    size: int,
) -> dict[str, torch.Tensor]:
    """L1 of the soft-argmax points (crop sides), the heatmaps' cross-entropy against a
    one-cell Gaussian at each true point, and the presence's binary cross-entropy."""
    points, prob, _ = soft_argmax(logits)
    count = weight.sum().clamp(min=1)
    l1 = ((points - target).abs().sum(-1) * weight).sum() / count / size
    b, k, h, w = logits.shape
    ys = torch.arange(h, device=logits.device, dtype=torch.float32)
    xs = torch.arange(w, device=logits.device, dtype=torch.float32)
    cells = (target - (STRIDE - 1) / 2) / STRIDE
    gx = torch.exp(-((xs[None, None] - cells[..., :1]) ** 2) / 2)  # (B, K, w)
    gy = torch.exp(-((ys[None, None] - cells[..., 1:]) ** 2) / 2)  # (B, K, h)
    gauss = (gy[..., :, None] * gx[..., None, :]).reshape(b, k, h * w)
    gauss = gauss / gauss.sum(-1, keepdim=True).clamp(min=1e-8)
    ce = -(gauss * torch.log(prob.clamp(min=1e-8))).sum(-1)
    heatmap = (ce * weight).sum() / count
    bce = torch.nn.functional.binary_cross_entropy_with_logits(presence.float(), present)
    return {"l1": l1, "heatmap": heatmap, "presence": bce}


def nme(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(N,) mean point error over the inter-ocular distance (outer eye corners 36 and 45), in %,
    of (N, 68, 2) points (``valid`` (N, 68): the points that count)."""
    error = np.linalg.norm(pred - truth, axis=-1)
    ocular = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=-1)
    if valid is None:
        valid = np.ones(error.shape, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * (error * valid).sum(-1) / valid.sum(-1) / ocular


def box_rates(net, scenes: torch.Tensor, centres: torch.Tensor, threshold: float, device) -> tuple[float, float]:
    """Share of photos with a face whose best centre is above ``threshold`` and within half a
    face size of the truth; share of photos without one whose best centre is above it."""
    found, false = [], []
    for chunk, truth in zip(torch.split(scenes, 64), torch.split(centres, 64), strict=True):
        out = net.box(chunk.to(device).float() / 255).cpu()
        heat = torch.sigmoid(out[:, 0])
        g = heat.shape[-1]
        score, flat = heat.reshape(len(heat), -1).max(-1)
        iy, ix = flat // g, flat % g
        rows = torch.arange(len(heat))
        x = (ix + out[rows, 2, iy, ix]) * STRIDE + (STRIDE - 1) / 2
        y = (iy + out[rows, 3, iy, ix]) * STRIDE + (STRIDE - 1) / 2
        for s, px, py, t in zip(score, x, y, truth, strict=True):
            if torch.isnan(t[0]):
                false.append(bool(s > threshold))
            else:
                found.append(bool(s > threshold) and float(torch.hypot(px - t[0], py - t[1])) < 0.5 * float(t[2]))
    return float(np.mean(found)) if found else float("nan"), float(np.mean(false)) if false else float("nan")


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Trainable contract
    from avatarkit.methods.contract import Trainable

    _: type[Trainable] = LandmarksMethod
