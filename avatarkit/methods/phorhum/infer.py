"""A trained Phorhum asked about one view: signed distances of world points in the box the
view sees, and the albedo (or, ``shaded``, the shaded colour) at the mesh's vertices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from avatarkit.methods.image_method import PixelAlignedPredictor

if TYPE_CHECKING:
    from avatarkit.reconstruct.field import ImplicitField
    from avatarkit.reconstruct.inputs import ImageInput


class PhorhumPredictor(PixelAlignedPredictor):
    """A :class:`~avatarkit.methods.phorhum.model.PhorhumNet` with its config on a device: a
    signed distance (level 0, inside below) and vertex colours: the albedo, or with
    :attr:`shaded` the albedo times the shading network's factor at the surface normal, lit as
    the image's illumination code says (``reconstruct --shaded``)."""

    level = 0.0
    inside = "below"
    shaded = False

    def field(self, view: ImageInput) -> ImplicitField:
        from avatarkit.reconstruct.volume import view_field

        features, camera = self.prepare(view)
        values = self.batched(lambda p: self.model.query(features, p, *camera))
        colors = self.batched(lambda p: self.colors(features, p, camera), channels=3)
        return view_field(values, view.camera, view.target, self.level, self.inside, colors)

    def colors(self, features: Any, points: torch.Tensor, camera: tuple) -> torch.Tensor:
        """(1, P, 3) colours in [0, 1] of world ``points`` (1, P, 3) on the surface."""
        from avatarkit.methods.phorhum.model import sdf_gradient

        if not self.shaded:
            return self.model.surface(features, points, *camera)[1]
        with torch.enable_grad():
            x = points.detach().requires_grad_(True)
            d, albedo = self.model.surface(features, x, *camera)
            normals = F.normalize(sdf_gradient(d.float(), x, create_graph=False), dim=-1)
        return self.model.shade(albedo.detach(), normals, camera[1], features.light)


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Predictor contract
    from avatarkit.methods.contract import Predictor

    _: type[Predictor[ImageInput]] = PhorhumPredictor
