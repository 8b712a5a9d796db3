"""The smallest image-based method: a two-layer CNN and a pixel-aligned occupancy MLP.

The worked example of docs/adding_a_method.md (the tests train it and reconstruct with it).
Everything else a method needs comes from avatarkit: subjects matched by stem, the held-out
split, keyed and augmented data, validation, the trainer, checkpoints, ``reconstruct``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from avatarkit.methods.configs import ImageDataConfig, at_least_one
from avatarkit.methods.image_method import ImageMethod, PixelAlignedPredictor, iou
from avatarkit.methods.registry import IMAGE_DATA, MethodSpec
from avatarkit.render.projection import project_to_grid


@dataclasses.dataclass(frozen=True)
class TinyConfig(ImageDataConfig):
    """A two-layer CNN and a pixel-aligned occupancy MLP."""

    channels: int = 16
    """Feature channels of the image encoder."""
    hidden: int = 32
    """Width of the occupancy MLP's hidden layer."""
    depth_scale: float = 0.25
    """Metres of camera depth, from the view's target, that map to 1 in the depth feature."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "channels", "hidden")


class TinyNet(nn.Module):
    """Image (B, 3, S, S) -> features; world points -> occupancy through each view's camera."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        c = config.channels
        self.encoder = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))
        self.mlp = nn.Sequential(nn.Linear(c + 1, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1))
        self.depth_scale = config.depth_scale

    def encode(self, image):
        return self.encoder(image)

    def query(self, features, points, K, world_to_cam, orthographic, depth_center, size):
        """Occupancy (B, P) in [0, 1] of world ``points`` (B, P, 3), metres."""
        grid, z = project_to_grid(points, K, world_to_cam, orthographic, *size)
        sampled = F.grid_sample(features, grid[:, :, None], align_corners=False)[..., 0].transpose(1, 2)
        depth = ((z - depth_center[:, None]) / self.depth_scale)[..., None]
        return torch.sigmoid(self.mlp(torch.cat([sampled, depth], -1))[..., 0])

    def forward(self, image, points, K, world_to_cam, orthographic, depth_center):
        size = (image.shape[-1], image.shape[-2])
        return self.query(self.encode(image), points, K, world_to_cam, orthographic, depth_center, size)


class TinyMethod(ImageMethod):
    """The network, its loss and its prediction; :class:`ImageMethod` does the rest."""

    name = "tiny"
    config: TinyConfig

    def build_model(self) -> nn.Module:
        return TinyNet(self.config)

    def predict(self, model, batch) -> torch.Tensor:
        return model(batch["image"], batch["points"], batch["K"], batch["world_to_cam"], batch["orthographic"],
                     batch["depth_center"])  # fmt: skip

    def loss(self, model, batch) -> tuple[torch.Tensor, dict[str, float]]:
        b = self.to_device(batch)
        occupancy = self.predict(model, b).float()
        loss = F.binary_cross_entropy(occupancy, b["labels"])
        return loss, {"iou": iou(occupancy > 0.5, b["labels"] > 0.5)}

    def predictor(self, model) -> PixelAlignedPredictor:
        return PixelAlignedPredictor(model, self.config, self.device)


SPEC = MethodSpec(
    name="tiny",
    help="The smallest image-based method (docs/adding_a_method.md): a two-layer CNN and a pixel-aligned MLP.",
    config=TinyConfig,
    presets={"default": TinyConfig(image_size=64, points=512, batch_size=2, optimizer="adam", max_steps=300)},
    data=IMAGE_DATA,
    trainer=TinyMethod,
    model=TinyNet,
    predictor=PixelAlignedPredictor,
)

if TYPE_CHECKING:  # nox -s lint: mypy holds the classes to the contract (avatarkit/methods/contract.py)
    from avatarkit.methods.contract import Predictor, Trainable

    _trainable: type[Trainable] = TinyMethod
    _predictor: type[Predictor] = PixelAlignedPredictor
