"""A trained PIFu asked about one view: occupancy of world points in the box the view sees."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from avatarkit.methods.image_method import PixelAlignedPredictor


class PifuPredictor(PixelAlignedPredictor):
    """A :class:`~avatarkit.methods.pifu.model.PifuNet` with its config on a device: occupancy
    (level 0.5, inside above) from the last stack, as PIFu infers."""

    def encode(self, image: torch.Tensor) -> Any:
        return self.model.encode(image)[-1:]  # the last stack

    def query(self, features: Any, points: torch.Tensor, *camera: Any) -> torch.Tensor:
        return self.model.query(features, points, *camera)[-1]


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Predictor contract
    from avatarkit.methods.contract import Predictor
    from avatarkit.reconstruct.inputs import ImageInput

    _: type[Predictor[ImageInput]] = PifuPredictor
