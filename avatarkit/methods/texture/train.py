"""``train texture``: Sample&Refine's SamplerNet and RefinerNet on UV-space pairs.

Each step draws ``batch_size`` (subject, view) items from the training subjects (the shared
keyed sampler: the same items on any number of processes and after a resume), each with its
colours permuted and scaled alike in input and target (``color_augment``). Losses, on the
texels of the UV layout:

- SamplerNet: L1 and 1 - SSIM of the sampled texture against the full one, L1 of the same
  offsets applied to both textures box-blurred over ``sampler_blurs`` texels (so that a
  texel deep in a hole gets a gradient towards the colours it should fetch; the seed's
  curriculum is not reproduced), plus the total variation of its offsets (``smooth_weight``);
- RefinerNet: L1 and 1 - SSIM of the refined texture, and a least-squares adversarial term
  against a patch discriminator trained alongside (``adv_weight``). One optimiser steps all
  three networks: the generator's adversarial term reads the discriminator through detached
  weights (its gradient reaches RefinerNet only), the discriminator's loss reads detached
  textures (its gradient reaches the discriminator only). No pretrained network (VGG,
  LPIPS) is used: none can be downloaded on our machines.

``--stage sampler`` trains SamplerNet alone, ``refiner`` RefinerNet on a frozen SamplerNet
from ``--sampler-run``, ``both`` the two at once (RefinerNet on SamplerNet's current output,
detached). Validation completes ``val_items`` held-out partial textures as ``unwrap-uv
--complete`` does (observed texels kept, blended over ``feather`` texels) and scores PSNR on
the texels the view did not see (``val/psnr_unseen``: picks ``best.pt``) and on all texels,
SSIM on all, beside the mirror-filled partial texture's own scores (``val/mirror_*``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from avatarkit.errors import InputError, OptionError
from avatarkit.methods import data as D
from avatarkit.methods.configs import replace
from avatarkit.methods.contract import BestMetric, RunState
from avatarkit.methods.texture import data as T
from avatarkit.methods.texture.config import TextureConfig
from avatarkit.methods.texture.model import TextureNet, identity_grid, ssim


class TextureState(RunState, total=False):
    """The shared keys and ``sampler_trained``: whether the run's SamplerNet was trained (by it,
    or by the ``--sampler-run`` it started from)."""

    sampler_trained: bool


class TextureMethod:
    """Built as ``TextureMethod(config, restored=state, partial=[...], meshes=[...])``."""

    name = "texture"
    config: TextureConfig
    best_metric = BestMetric("val/psnr_unseen", higher_is_better=True)
    """best.pt: the highest PSNR on the held-out views' unseen texels."""
    unused_parameters = True
    """--stage sampler trains SamplerNet only (DDP is told some parameters get no gradient)."""

    def __init__(self, config: TextureConfig, restored: RunState | None = None, **data: list[Path] | None) -> None:
        self.config = config
        self.restored: RunState = restored or {}
        self.partial = [Path(p) for p in data.get("partial") or []]
        self.meshes = [Path(p) for p in data.get("meshes") or []] or None
        if not self.partial:
            raise OptionError("--partial is required")
        self.device = torch.device("cpu")
        self._sampler_weights: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ setup

    def setup(self, device: torch.device) -> None:
        from avatarkit.methods.split import split_subjects

        self.device = device
        c = self.config
        self._sampler_start()
        self.pairs = T.read_pairs(self.partial, self.meshes)
        h, w = self.pairs[0].size
        if h != w:
            raise InputError(f"{w} x {h} texels: the networks take square textures", self.pairs[0].source)
        layout = T.run_layout(self.pairs)
        if c.texture_size and (c.texture_size, c.uv_layout) != (h, layout):
            raise InputError(
                f"the run was trained on {c.texture_size}-texel textures of layout {c.uv_layout or 'unrecorded'}; "
                f"these are {h} texels, layout {layout or 'unrecorded'}",
                self.partial[0],
            )
        self.config = replace(c, texture_size=h, uv_layout=layout)
        self.config.check()
        stems = [p.stem for p in self.pairs]
        if len(set(stems)) != len(stems):
            raise InputError("two subjects share a name across the --partial inputs", self.partial[0])
        self.train_index, self.val_index = split_subjects(stems, c.val_fraction, c.seed, self.restored.get("split"))
        if not self.train_index:
            raise InputError("no subject left to train on", self.partial[0])
        self._val = self._validation_set()

    def _sampler_start(self) -> None:
        c = self.config
        if self.restored:
            if c.stage == "refiner" and not self.restored.get("sampler_trained"):
                raise OptionError(_NO_SAMPLER)
            return
        if c.sampler_run is None:
            if c.stage == "refiner":
                raise OptionError(_NO_SAMPLER)
            return
        if c.stage != "refiner":
            raise OptionError("--sampler-run starts a refiner stage: give --stage refiner")
        self._sampler_weights = sampler_weights(Path(c.sampler_run), c)

    def build_model(self) -> torch.nn.Module:
        model = TextureNet(self.config)
        if self._sampler_weights is not None:
            model.sampler.load_state_dict(self._sampler_weights)
            model.mark_trained("sampler")
        return model

    def state(self) -> TextureState:
        split = {}
        if hasattr(self, "pairs"):
            names = [p.stem for p in self.pairs]
            split = {"train": [names[i] for i in self.train_index], "val": [names[i] for i in self.val_index]}
        data = {"partial": [str(p.resolve()) for p in self.partial]}
        if self.meshes:
            data["meshes"] = [str(p.resolve()) for p in self.meshes]
        trained = self.config.stage != "refiner" or self.config.sampler_run is not None
        return {
            "data": data,
            "split": split,  # type: ignore[typeddict-item]
            "sampler_trained": trained or bool(self.restored.get("sampler_trained")),
        }

    def summary(self) -> dict[str, Any]:
        pairs = getattr(self, "pairs", [])
        return {
            "subjects": len(pairs),
            "train": len(getattr(self, "train_index", [])),
            "val": len(getattr(self, "val_index", [])),
            "partial_textures": int(sum(len(p.partial) for p in pairs)),
            "texture_size": self.config.texture_size,
            "uv_layout": self.config.uv_layout or "unrecorded",
        }

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ training

    def loader(self, start: int, stop: int, rank: int, world: int, workers: int):
        sampler = D.StepBatches(self.train_index, self.config.batch_size, self.config.seed, start, stop, rank, world)
        return torch.utils.data.DataLoader(
            PairItems(self.pairs, self.config),
            batch_sampler=sampler,
            num_workers=workers,
            worker_init_fn=D.worker_init if workers else None,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=2 if workers else None,
        )

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        net: Any = getattr(model, "module", model)
        c = self.config
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        cover = b["coverage"]
        logs: dict[str, float] = {}
        total = torch.zeros((), device=self.device)
        if c.stage == "refiner":
            with torch.no_grad():
                sampled, _ = net.sampler(b["partial"], b["mask"], b["normal"], b["source"])
        else:
            sampled, offsets = net.sampler(b["partial"], b["mask"], b["normal"], b["source"])
            sampler_loss = self._colour_loss(sampled, b["truth"], cover, logs, "sampler")
            n, _, h, w = sampled.shape
            grid = identity_grid(n, h, w, sampled.device) + offsets.permute(0, 2, 3, 1)
            for width in c.sampler_blurs:  # the same offsets over blurred textures: gradients from afar
                blurred = F.grid_sample(box_blur(b["source"], width), grid, padding_mode="border", align_corners=False)
                count = cover.sum().clamp(min=1)
                sampler_loss = sampler_loss + c.l1_weight * (
                    (blurred - box_blur(b["truth"], width)).abs() * cover
                ).sum() / (3 * count)
            smooth = (offsets[..., 1:, :] - offsets[..., :-1, :]).abs().mean()
            smooth = smooth + (offsets[..., 1:] - offsets[..., :-1]).abs().mean()
            total = total + sampler_loss + c.smooth_weight * smooth
            net.mark_trained("sampler")
        if c.stage != "sampler":
            refined = net.refiner(sampled.detach(), b["partial"], b["mask"], b["normal"])
            total = total + self._colour_loss(refined, b["truth"], cover, logs, "refiner")
            if c.adv_weight > 0:
                generator, discriminator = self._adversarial(net, refined, b["truth"], cover, logs)
                total = total + c.adv_weight * generator + discriminator
            net.mark_trained("refiner")
        return total, logs

    def _colour_loss(self, pred, truth, cover, logs: dict[str, float], name: str) -> torch.Tensor:
        c = self.config
        count = cover.sum().clamp(min=1)
        l1 = ((pred.float() - truth).abs() * cover).sum() / (3 * count)
        logs[f"{name}_l1"] = float(l1.detach())
        if not c.ssim_weight:
            return c.l1_weight * l1
        structure = ((1 - ssim(pred.float().clamp(0, 1), truth)) * cover).sum() / count
        logs[f"{name}_ssim"] = float(1 - structure.detach())
        return c.l1_weight * l1 + c.ssim_weight * structure

    def _adversarial(self, net, refined, truth, cover, logs: dict[str, float]) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's LSGAN term through detached discriminator weights, plus the
        discriminator's own LSGAN loss on detached textures."""
        disc = net.discriminator
        frozen = {name: p.detach() for name, p in disc.named_parameters()}
        fake_score = torch.func.functional_call(disc, frozen, (refined.float(), cover))
        generator = ((fake_score - 1) ** 2).mean()
        real = disc(truth, cover)
        fake = disc(refined.detach().float(), cover)
        discriminator = 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())
        logs["adv_generator"] = float(generator.detach())
        logs["adv_discriminator"] = float(discriminator.detach())
        return generator, discriminator

    def batch_images(self, batch: dict) -> np.ndarray:
        rows = []
        for i in range(min(4, len(batch["truth"]))):
            tiles = [batch["partial"][i], batch["source"][i], batch["truth"][i]]
            rows.append(np.concatenate([_rgb(t) for t in tiles], axis=1))
        return np.concatenate(rows, axis=0)

    # ------------------------------------------------------------------ validation

    def _validation_set(self) -> dict[str, torch.Tensor] | None:
        c = self.config
        if not self.val_index:
            return None
        items = []
        for k in range(c.val_items):
            pairs = self.pairs[self.val_index[k % len(self.val_index)]]
            order = pairs.views_front_first()
            view = order[(k // len(self.val_index)) % len(order)]
            items.append(T.item(pairs, view, c.feather))
        return {key: torch.from_numpy(np.stack([it[key] for it in items])) for key in items[0]}

    def validate(self, model: torch.nn.Module, meshes: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        net: Any = getattr(model, "module", model)
        if self._val is None:
            return {}, {}
        outs = []
        for start in range(0, len(self._val["truth"]), 8):
            b = {k: v[start : start + 8].to(self.device) for k, v in self._val.items()}
            outs.append(blend(net.complete(b["partial"], b["mask"], b["normal"], b["source"]), b).cpu())
        completed = torch.cat(outs)
        v = self._val
        unseen = v["coverage"] * (1 - v["seen"])
        mirror = v["source"]
        metrics = {
            "val/psnr_unseen": psnr(completed, v["truth"], unseen),
            "val/psnr_all": psnr(completed, v["truth"], v["coverage"]),
            "val/ssim_all": masked_ssim(completed, v["truth"], v["coverage"]),
            "val/mirror_psnr_unseen": psnr(mirror, v["truth"], unseen),
            "val/mirror_psnr_all": psnr(mirror, v["truth"], v["coverage"]),
        }
        strip = [np.concatenate([_rgb(v["source"][i]), _rgb(completed[i]), _rgb(v["truth"][i])], axis=1)
                 for i in range(min(4, len(completed)))]  # fmt: skip
        return metrics, {"val/completed": np.concatenate(strip, axis=0)}


class PairItems(torch.utils.data.Dataset):
    """Item (subject index, item seed, -1) -> one (subject, view) training item, its view and
    colour augmentation drawn from the item seed."""

    def __init__(self, pairs: list[T.TexturePairs], config: TextureConfig) -> None:
        self.pairs, self.config = pairs, config

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        subject, seed, _ = key
        rng = np.random.default_rng(seed)
        pairs = self.pairs[subject]
        arrays = T.item(pairs, int(rng.integers(len(pairs.partial))), self.config.feather)
        if self.config.color_augment:
            arrays = T.augment_colors(arrays, rng)
        return {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in arrays.items()}


def box_blur(t: torch.Tensor, width: int) -> torch.Tensor:
    """(B, C, H, W) ``t`` averaged over ``width`` x ``width`` texels (same size, borders replicated)."""
    left, right = (width - 1) // 2, width // 2
    return F.avg_pool2d(F.pad(t.float(), (left, right, left, right), mode="replicate"), width, stride=1)


def blend(generated: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
    """The completed texture (B, 3, H, W) in [0, 1]: the observed texture where ``alpha`` is 1,
    the network's ``generated`` one where it is 0, mixed across the feathered boundary."""
    alpha = b["alpha"]
    return (alpha * b["source"] + (1 - alpha) * generated.float().clamp(0, 1)).clamp(0, 1)


def psnr(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB, peak 1) over the texels of ``mask`` (B, 1, H, W), all items pooled."""
    count = float(mask.sum()) * 3
    if count == 0:
        return float("nan")
    mse = float((((pred.float() - truth) ** 2) * mask).sum()) / count
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def masked_ssim(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> float:
    """The SSIM map's mean over the texels of ``mask``."""
    count = float(mask.sum())
    return float((ssim(pred, truth) * mask).sum()) / count if count else float("nan")


def _rgb(t: torch.Tensor) -> np.ndarray:
    return (t.detach().float().clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)


_NO_SAMPLER = "--stage refiner needs a trained SamplerNet: give --sampler-run RUN (a texture run's sampler stage)"


def sampler_weights(run: Path, config: TextureConfig) -> dict[str, torch.Tensor]:
    """The trained SamplerNet of a texture run (its last checkpoint), checked against ``config``."""
    from avatarkit.methods.checkpoint import part_weights

    return part_weights(
        run, "texture", config, option="--sampler-run", part="sampler", fields=("width", "depth"),
        what="SamplerNet", stages="--stage sampler or both",
    )  # fmt: skip


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Trainable contract
    from avatarkit.methods.contract import Trainable

    _: type[Trainable] = TextureMethod
