"""A trained PIFu asked about one view: occupancy of world points in the box the view sees."""

from __future__ import annotations

import numpy as np
import torch

from avatarkit.errors import InputError
from avatarkit.methods.image_data import fit_input, normalize
from avatarkit.reconstruct.field import ImplicitField
from avatarkit.reconstruct.inputs import ImageInput
from avatarkit.reconstruct.volume import view_field


class PifuPredictor:
    """A :class:`~avatarkit.methods.pifu.model.PifuNet` with its config on a device (a
    :class:`~avatarkit.methods.contract.Predictor`)."""

    def __init__(self, model: torch.nn.Module, config, device: str | torch.device = "cpu", batch: int = 1 << 17):
        self.model = model.eval()
        self.config = config
        self.device = torch.device(device)
        self.batch = batch

    def field(self, view: ImageInput) -> ImplicitField:
        """Occupancy (level 0.5, inside above) over the volume ``view``'s camera sees around its target."""
        return view_field(self.occupancy_function(view), view.camera, view.target)

    def occupancy_function(self, view: ImageInput):
        """``fn(points (P, 3) world) -> (P,)`` occupancy in [0, 1] for ``view``'s image seen by its
        camera; the image is encoded once."""
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
        rgb_t, mask_t, K = fit_input(rgb_t, mask_t, camera.K[0], self.config.image_size)
        image = normalize(rgb_t, mask_t, self.config.mask_input)[None].to(dev)
        one = camera.subset(0)
        one.target = np.asarray(view.target, dtype=np.float64)[None]
        w2c, depth_center = one.world_to_cam[0], float(one.target_depths()[0])
        K_t = torch.as_tensor(K, dtype=torch.float32, device=dev)[None]
        w2c_t = torch.as_tensor(w2c, dtype=torch.float32, device=dev)[None]
        center_t = torch.tensor([depth_center], dtype=torch.float32, device=dev)
        ortho = camera.projection == "orthographic"
        size = (self.config.image_size, self.config.image_size)
        with torch.no_grad():
            features = self.model.encode(image)[-1:]  # the last stack, as PIFu infers

        def fn(points: np.ndarray) -> np.ndarray:
            out = np.empty(len(points), np.float32)
            with torch.no_grad():
                for i in range(0, len(points), self.batch):
                    p = torch.as_tensor(points[i : i + self.batch], dtype=torch.float32, device=dev)[None]
                    occ = self.model.query(features, p, K_t, w2c_t, ortho, center_t, size)[-1]
                    out[i : i + len(p[0])] = occ[0].float().cpu().numpy()
            return out

        return fn
