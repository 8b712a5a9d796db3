"""The training loop every method shares (the core of ``avatarkit train``).

A method (a :class:`~avatarkit.methods.contract.Trainable`) supplies its network, its data,
its loss and its validation; :func:`train` supplies the rest: the optimiser and its schedule, mixed
precision on CUDA, several processes with ``torchrun`` (DDP: NCCL on GPUs, gloo on the
CPU), checkpoints (last, best by validation, resumable), TensorBoard scalars and image
grids, ``metrics.jsonl``, and a clean stop on Ctrl-C or SIGTERM: the step in progress
ends, a checkpoint is saved, and :class:`TrainResult` says it was interrupted.

The core never prints: progress goes to a :class:`~avatarkit.fitting.progress.Reporter` the
command line supplies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from avatarkit.device import flush_denormals
from avatarkit.errors import AvatarkitError, OptionError
from avatarkit.fitting.optim import StepSchedule, make_optimizer
from avatarkit.fitting.progress import Reporter, StopRequest
from avatarkit.methods import checkpoint as ckpt
from avatarkit.methods.configs import to_dict
from avatarkit.methods.contract import ParameterGroups, Trainable


@dataclasses.dataclass
class TrainResult:
    """How a run ended: ``steps`` done, whether it was ``interrupted``, its checkpoints and
    its last validation ``metrics``."""

    steps: int
    interrupted: bool
    last: Path
    best: Path | None
    metrics: dict[str, float]
    best_value: float | None
    samples_per_s: float
    time_up: bool = False
    """The run ended at its time budget (``max_time``) before ``max_steps``."""


@dataclasses.dataclass
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int
    world: int
    device: torch.device

    @classmethod
    def setup(cls, device: str) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        dev = torch.device(device)
        if world > 1:
            import datetime

            import torch.distributed as dist

            if dev.type == "cuda":
                dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(dev)
            if not dist.is_initialized():
                backend = "nccl" if dev.type == "cuda" else "gloo"
                dist.init_process_group(backend, timeout=datetime.timedelta(minutes=60))
        return cls(rank, world, dev)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any."""
        if self.world == 1:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def most(self, value: float) -> float:
        """The largest of ``value`` over the ranks (the time spent, so every rank decides alike)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self, together: bool = True) -> None:
        """Destroy the process group; ``together``: every rank gets here (a run that ended
        normally), so they wait for each other first. With gloo, a rank that destroyed the
        group while another still used it aborted at exit in 1 to 3 of 20 runs."""
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                if together:
                    dist.barrier()
                dist.destroy_process_group()


def current_rank() -> int:
    """This process's rank under torchrun (0 otherwise), without starting anything."""
    return int(os.environ.get("RANK", "0"))


def train(
    method: Trainable,
    folder: ckpt.RunFolder,
    device: str,
    resume: dict[str, Any] | None = None,
    reporter: Reporter | None = None,
    workers: int = 0,
    command: str = "",
    overwrite: bool = False,
) -> TrainResult:
    """Train ``method`` into the run ``folder``, continuing from the checkpoint dict ``resume``.

    ``overwrite`` replaces the run the folder holds: its files are set aside when training
    starts, deleted once the new run has saved a checkpoint, and put back if it fails first.
    The learning rate follows the config's schedule at every step (a resumed run with a new
    ``lr`` or ``max_steps`` follows the new one); the optimiser itself cannot change.
    """
    reporter = reporter or Reporter()
    config = method.config
    config.check()
    dist = Distributed.setup(device)
    flush_denormals(dist.device)
    writer: Any = None  # TensorBoard's SummaryWriter, on the main process
    aside, saved, trained, finished = None, False, None, False
    fresh = resume is None and not folder.root.exists()
    try:
        method.setup(dist.device)
        config = method.config  # with the fields setup derives from the data (configs.derived)
        config.check()
        if overwrite and dist.main:
            aside = _set_aside(folder)
        dist.barrier()
        torch.manual_seed(config.seed)
        model = method.build_model().to(dist.device)
        optimizer = make_optimizer(config.optimizer, parameter_groups(model), config.lr)
        # a method with stages of its own (Geo-PIFu) may give its schedule: .apply(optimizer, step, time_fraction)
        schedule = (
            method.lr_schedule()  # type: ignore[attr-defined]
            if hasattr(method, "lr_schedule")
            else StepSchedule(config.lr, config.max_steps, config.lr_decay_at, config.lr_decay)
        )

        use_amp = config.amp and dist.device.type == "cuda"
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler(dist.device.type, enabled=use_amp and amp_dtype == torch.float16)
        step, trained_before, started = 0, 0.0, time.perf_counter()
        best: dict[str, Any] = {"metric": method.best_metric.name, "value": None, "step": None}
        metrics: dict[str, float] = {}
        if resume is not None:
            step, best, metrics = _restore(resume, config, model, optimizer, scaler)
            trained_before = float(resume.get("train_seconds", 0.0))
        trained = model
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            trained = DistributedDataParallel(
                model,
                device_ids=[dist.device.index] if dist.device.type == "cuda" else None,
                # a method whose steps train parts of its network (Geo-PIFu's stages) says so
                find_unused_parameters=bool(getattr(method, "unused_parameters", False)),
            )

        def state() -> dict[str, Any]:
            return {
                "method": method.name,
                "config": to_dict(config),
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "best": best,
                "metrics": metrics,
                "train_seconds": trained_before + time.perf_counter() - started,
                "method_state": method.state(),
                "command": command,
            }

        if dist.main:
            folder.root.mkdir(parents=True, exist_ok=True)
            _write_json(folder.config, {"method": method.name, "config": to_dict(config), **method.state()})
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(folder.tensorboard))

        def validate(at: int, final: bool = False) -> None:
            nonlocal metrics
            if dist.main:
                meshes = final or at == config.max_steps or (config.mesh_every > 0 and at % config.mesh_every == 0)
                model.eval()
                with torch.no_grad():
                    metrics, images = method.validate(model, meshes)
                model.train()
                if meshes:
                    _write_validation_meshes(folder, getattr(method, "validation_meshes", {}))
                for name, value in metrics.items():
                    writer.add_scalar(name, value, at)
                for name, image in images.items():
                    writer.add_image(name, image, at, dataformats="HWC")
                with open(folder.metrics, "a") as f:
                    f.write(json.dumps({"step": at, "time": time.time(), **metrics}) + "\n")
                score = metrics.get(method.best_metric.name)
                if score is not None and method.best_metric.improves(score, best["value"]):
                    best.update(value=float(score), step=at)
                    ckpt.save(folder.best, state())
                reporter.note(_describe(at, metrics))
            dist.barrier()

        def save_last() -> None:
            nonlocal aside, saved
            saved = True
            if dist.main:
                ckpt.save(folder.last, state())
                if aside is not None:  # the new run has a checkpoint: the old one can go
                    shutil.rmtree(aside)
                    aside = None
            dist.barrier()

        model.train()
        interrupted = time_up = False
        rate_window: list[float] = []
        samples_per_s = 0.0
        reporter.start(config.max_steps, step)
        validated_at = step if resume is not None else -1
        with StopRequest() as stop, _worker_errors():
            t_last = time.perf_counter()
            for batch in method.loader(step, config.max_steps, dist.rank, dist.world, workers):
                # the share of the time budget spent, the same on every rank (a schedule may start a stage by it)
                fraction = (
                    dist.most(trained_before + time.perf_counter() - started) / config.max_time
                    if config.max_time
                    else 0.0
                )
                lr = schedule.apply(optimizer, step, fraction)
                with torch.autocast(dist.device.type, dtype=amp_dtype, enabled=use_amp):
                    loss, logs = method.loss(trained, batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                now = time.perf_counter()
                rate_window = [*rate_window[-49:], now - t_last]
                samples_per_s = config.batch_size * dist.world * len(rate_window) / sum(rate_window)
                logs = {"loss": float(loss.detach()), "lr": lr, **logs}
                reporter.update(step, logs)
                if dist.main and step % config.log_every == 0:
                    for name, value in logs.items():
                        writer.add_scalar(f"train/{name}", value, step)
                    writer.add_scalar("perf/samples_per_s", samples_per_s, step)
                    writer.add_scalar("perf/it_per_s", samples_per_s / (config.batch_size * dist.world), step)
                if dist.main and step % config.image_every == 0:
                    writer.add_image("train/inputs", method.batch_images(batch), step, dataformats="HWC")
                spent = trained_before + time.perf_counter() - started
                time_up = dist.any(bool(config.max_time) and spent >= config.max_time)
                last = step == config.max_steps or time_up
                if step % config.val_every == 0 or last:
                    validate(step, final=last)
                    validated_at = step
                if step % config.checkpoint_every == 0 or last:
                    save_last()
                if time_up:
                    break
                if dist.any(stop.requested):
                    interrupted = True
                    break
                t_last = time.perf_counter()  # the rate counts training steps, not validations
        if interrupted or validated_at != step:
            if not interrupted and step > 0:
                validate(step, final=True)
            save_last()
        finished = True
        return TrainResult(
            steps=step,
            interrupted=interrupted,
            last=folder.last,
            best=folder.best if folder.best.is_file() else None,
            metrics=metrics,
            best_value=best["value"],
            samples_per_s=samples_per_s,
            time_up=time_up and step < config.max_steps,
        )
    except BaseException:
        if writer is not None:
            writer.close()
        if dist.main and resume is None and not saved:  # a new run that failed before any checkpoint
            _discard(folder, fresh)
        raise
    finally:
        reporter.close()
        method.close()
        if writer is not None:
            writer.close()
        if aside is not None:  # failed before its first checkpoint: the old run comes back
            _put_back(folder, aside)
        del trained  # DDP's reducer goes before its process group
        dist.close(together=finished)


def parameter_groups(model: torch.nn.Module) -> list[dict[str, Any]]:
    """What the optimiser steps: the groups a network offers through ``parameter_groups()``
    (:class:`~avatarkit.methods.contract.ParameterGroups`: each group's ``lr_scale`` times the
    schedule's rate, as DeepSDF steps its decoder and its latent codes at different rates),
    else all its parameters at the one rate."""
    if isinstance(model, ParameterGroups):
        groups = [dict(group) for group in model.parameter_groups()]
        for group in groups:
            group["params"] = list(group["params"])
        return groups
    return [{"params": list(model.parameters())}]


def _restore(resume: dict[str, Any], config, model, optimizer, scaler) -> tuple[int, dict, dict]:
    """Load a checkpoint's weights and optimiser state; returns (step, best, metrics)."""
    saved = resume.get("config", {}).get("optimizer")
    if saved != config.optimizer:
        raise OptionError(f"the run was trained with --optimizer {saved}; a resumed run cannot change it")
    try:
        model.load_state_dict(resume["model"])
    except RuntimeError as exc:
        raise OptionError(
            f"the checkpoint's network does not fit this config ({str(exc).splitlines()[0]}); "
            "the network's shape cannot change when resuming"
        ) from None
    optimizer.load_state_dict(resume["optimizer"])
    if resume.get("scaler"):
        scaler.load_state_dict(resume["scaler"])
    return int(resume["step"]), dict(resume["best"]), dict(resume.get("metrics", {}))


def _write_validation_meshes(folder: ckpt.RunFolder, meshes: dict[str, tuple[Any, Path | None]]) -> None:
    """A method's latest validation meshes (stem -> (mesh, its true mesh's path or None)) as
    ``validation/STEM.h5``, each naming its truth as its provenance input."""
    from avatarkit.io.hdf5 import Provenance, write_artifact

    for stem, (mesh, truth) in meshes.items():
        inputs = (str(truth),) if truth is not None else ()
        write_artifact(folder.validation / f"{stem}.h5", mesh, Provenance("avatarkit train (validation)", inputs))


def _set_aside(folder: ckpt.RunFolder) -> Path | None:
    """Move the run a folder holds into ``.replaced/`` (None when there is none)."""
    present = [path for path in folder.files() if path.exists()]
    if not present:
        return None
    aside = folder.root / ".replaced"
    if aside.exists():
        shutil.rmtree(aside)
    aside.mkdir()
    for path in present:
        path.rename(aside / path.name)
    return aside


def _put_back(folder: ckpt.RunFolder, aside: Path) -> None:
    """Undo :func:`_set_aside`: the old run's files return."""
    _discard(folder, created=False)
    for path in aside.iterdir():
        path.rename(folder.root / path.name)
    shutil.rmtree(aside, ignore_errors=True)


def _discard(folder: ckpt.RunFolder, created: bool) -> None:
    """Delete what a run that never saved a checkpoint wrote (and its folder, if it made it)."""
    for path in folder.files():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    if created and folder.root.is_dir() and not any(folder.root.iterdir()):
        folder.root.rmdir()


@contextlib.contextmanager
def _worker_errors():
    """A data worker's error arrives as its type with the worker's traceback in the message;
    keep the one line the user needs (its last)."""
    try:
        yield
    except AvatarkitError as exc:
        text = str(exc).strip()
        if "Traceback" not in text:
            raise
        last = text.splitlines()[-1]
        raise type(exc)(last.partition(": ")[2] or last) from None


def _describe(step: int, metrics: dict[str, float]) -> str:
    parts = ", ".join(f"{k.removeprefix('val/')} {v:.4g}" for k, v in metrics.items())
    return f"step {step}: {parts}"


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    from avatarkit.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
