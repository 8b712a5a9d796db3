"""PIFu as a trainable method: its network and loss on the shared image-method layer.

Subjects, the held-out split, the run's camera, the keyed data and validation come from
:class:`~avatarkit.methods.image_method.ImageMethod`. A step: per subject, a random view and a
fresh balanced draw of points; the loss is the mean squared error of the occupancy from every
stack (intermediate supervision), averaged over the stacks, as PIFu's ``HGPIFuNet.get_error``.
Validation and reconstruction use the last stack, as PIFu infers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from avatarkit.methods.image_method import ImageMethod, iou
from avatarkit.methods.pifu.config import PifuConfig


class PifuMethod(ImageMethod):
    name = "pifu"
    config: PifuConfig

    def build_model(self) -> torch.nn.Module:
        from avatarkit.methods.pifu.model import PifuNet

        return PifuNet(self.config)

    def _forward(self, model, b: dict) -> list[torch.Tensor]:
        return model(b["image"], b["points"], b["K"], b["world_to_cam"], b["orthographic"], b["depth_center"])

    def loss(self, model, batch) -> tuple[torch.Tensor, dict[str, float]]:
        b = self.to_device(batch)
        preds = self._forward(model, b)
        labels = b["labels"]
        loss = cast(torch.Tensor, sum(torch.nn.functional.mse_loss(p.float(), labels) for p in preds)) / len(preds)
        with torch.no_grad():
            score = iou(preds[-1].float() > 0.5, labels > 0.5)
        return loss, {"iou": score}

    def predict(self, model, batch) -> torch.Tensor:
        return self._forward(model, batch)[-1]

    def predictor(self, model):
        from avatarkit.methods.pifu.infer import PifuPredictor

        return PifuPredictor(model, self.config, self.device)


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Trainable contract
    from avatarkit.methods.contract import Trainable

    _: type[Trainable] = PifuMethod
