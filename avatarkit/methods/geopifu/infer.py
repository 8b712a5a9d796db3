"""A trained Geo-PIFu asked about one view: occupancy of world points in the box the view sees."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from avatarkit.methods.image_method import PixelAlignedPredictor


class GeoPifuPredictor(PixelAlignedPredictor):
    """A :class:`~avatarkit.methods.geopifu.model.GeoPifuNet` with its config on a device:
    occupancy (level 0.5, inside above) from the last 2D stack and the last latent volume, as
    Geo-PIFu infers; a run whose query network has not trained yet (``--stage coarse``)
    answers with its coarse volume's occupancy."""

    def encode(self, image: torch.Tensor) -> Any:
        features = self.model.encode(image, occupancy=not bool(self.model.query_trained))
        return features._replace(maps=features.maps[-1:])  # the last stack

    def query(self, features: Any, points: torch.Tensor, *camera: Any) -> torch.Tensor:
        if features.occupancy is not None:
            return self.model.volume_query(features.occupancy, points, *camera)
        return self.model.query(features, points, *camera)[-1]


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Predictor contract
    from avatarkit.methods.contract import Predictor
    from avatarkit.reconstruct.inputs import ImageInput

    _: type[Predictor[ImageInput]] = GeoPifuPredictor
