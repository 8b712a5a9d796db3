"""Phorhum as a trainable method: its networks and losses on the shared image-method layer.

Subjects, the held-out split, the run's camera, the keyed data and validation come from
:class:`~avatarkit.methods.image_method.ImageMethod`. An item is PIFu's (one view, a fresh draw
of points) with each point's true signed distance, normal and colour (``sample-sdf --preset
osa`` writes them: half the points on the surface) and ``patches`` square patches of the
view's pixels around its subject, each with its colour and mask, for the rendering loss.

The loss (each term's weight a config field, ``docs/phorhum.md``):

- geometry on points: ``w_surface`` |d| on surface points, ``w_sdf`` |d - s| on the others,
  ``w_label`` the sign classification BCE(sigmoid(-k d), inside), ``w_eikonal`` (|grad d| - 1)^2
  on every point, ``w_normal`` |grad d / |grad d| - n| on surface points;
- ``w_albedo`` |a - true colour| on surface points (L1, colours in [0, 1]);
- ``w_projection`` OSA's surface projection: a point moved by -d along the predicted unit
  normal should land where its true distance and normal move it, |d n^ - s n|;
- ``w_render`` and ``w_mask`` on the patches: each pixel's ray is sphere-traced through the
  predicted distance from ``trace_depth`` in front of the view's target; where it meets the
  surface inside the subject's mask, the shaded colour (albedo x shading from the normal and
  the image's illumination code) is compared with the pixel (L1); elsewhere the smallest
  distance along the ray is classified against the mask (IDR's mask loss). The traced point
  itself is not differentiated (IDR's implicit reparametrisation is left out): the colour
  trains albedo, shading and, through the normal, geometry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from avatarkit.errors import InputError
from avatarkit.methods import image_data as D
from avatarkit.methods.image_method import ImageMethod, iou
from avatarkit.methods.phorhum.config import PhorhumConfig

HIT_TOLERANCE = 0.005
"""Metres: a traced ray whose last distance is below this met the surface."""
FAR = 0.02
"""Metres: points farther than this from the surface are the ones ``far_share`` draws."""


class PhorhumDataset(D.ImagePointsDataset):
    """PIFu's items (points drawn as :meth:`_draw` says) plus, per point, ``sdf`` (P,) metres, ``normals`` (P, 3) and ``colors``
    (P, 3) in [0, 1] (zeros where the samples file has none), and per item ``patch_uv`` (R, 2)
    pixel centres of the network's input, ``patch_mask`` (R,) and ``patch_rgb`` (R, 3) in
    [0, 1], R = patches x patch_size^2."""

    pool_cache = 8  # a million points with distances, normals and colours: about 30 MB a file

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._extras: dict[Path, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}

    def __getstate__(self):
        return {**super().__getstate__(), "_extras": {}}

    def close(self) -> None:
        super().close()
        self._extras.clear()

    def _extra(self, path: Path):
        if path not in self._extras:
            import h5py

            if len(self._extras) >= self.pool_cache:
                self._extras.pop(next(iter(self._extras)))
            with h5py.File(path, "r") as f:
                normals = f["/normals"][()] if "/normals" in f else None
                colors = f["/colors"][()] if "/colors" in f else None
                self._extras[path] = (f["/sdf"][()], normals, colors)
        return self._extras[path]

    def _draw(self, path: Path, rng, seen=None) -> np.ndarray:
        """The file's own mix (PIFu's draw), except that ``far_share`` of the points come from
        those farther than :data:`FAR` from the surface (unbalanced draws only)."""
        c = self.config
        assert isinstance(c, PhorhumConfig)
        n_far = round(c.far_share * c.points)
        if c.balance or n_far == 0:
            return super()._draw(path, rng, seen)
        sdf = self._extra(path)[0]
        far = np.flatnonzero(np.abs(sdf) > FAR)
        if not len(far):
            return super()._draw(path, rng, seen)
        rest = c.points - n_far
        return np.concatenate(
            [rng.choice(far, n_far, replace=n_far > len(far)), rng.choice(len(sdf), rest, replace=rest > len(sdf))]
        )

    def _point_extras(self, path: Path, index: np.ndarray) -> dict[str, torch.Tensor]:
        sdf, normals, colors = self._extra(path)
        n = len(index)
        return {
            "sdf": torch.from_numpy(sdf[index].astype(np.float32)),
            "normals": torch.from_numpy(normals[index].astype(np.float32) if normals is not None else np.zeros((n, 3), np.float32)),
            "colors": torch.from_numpy(colors[index].astype(np.float32) / 255 if colors is not None else np.zeros((n, 3), np.float32)),
        }  # fmt: skip

    def __getitem__(self, key) -> dict:
        item = super().__getitem__(key)
        c = self.config
        assert isinstance(c, PhorhumConfig)
        rng = np.random.default_rng([int(key[1]), 31])
        uv, mask, rgb = patches(item["image"], item["mask"][0], c.patches, c.patch_size, rng)
        return {**item, "patch_uv": uv, "patch_mask": mask, "patch_rgb": rgb}


def patches(image, mask, count: int, side: int, rng: np.random.Generator):
    """``count`` patches of ``side`` x ``side`` pixels of ``image`` (3, S, S) in [-1, 1], each
    centred on a random pixel of ``mask`` (S, S) (anywhere when it is empty), inside the image:
    their pixel centres (R, 2) (u, v), mask (R,) and colour (R, 3) in [0, 1]."""
    s = image.shape[-1]
    if count == 0:
        return torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, 3)
    inside = np.flatnonzero(mask.numpy().reshape(-1) > 0.5)
    centres = rng.choice(inside, count) if len(inside) else rng.integers(0, s * s, count)
    rows, cols = centres // s, centres % s
    top = np.clip(rows - side // 2, 0, s - side)
    left = np.clip(cols - side // 2, 0, s - side)
    dy, dx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    v = (top[:, None, None] + dy).reshape(-1)
    u = (left[:, None, None] + dx).reshape(-1)
    rgb = image[:, v, u].T * 0.5 + 0.5  # with mask_input, pixels outside the mask are 0.5; they give no colour loss
    return torch.from_numpy(np.stack([u, v], -1).astype(np.float32)), mask[v, u].float(), rgb.float()


def patch_rays(uv, K, world_to_cam, orthographic, depth_center, depth: float):
    """World ray origins and unit directions (B, R, 3) through pixel centres ``uv`` (B, R, 2)
    and the ray parameters (B, R) where each ray is ``depth`` metres of camera depth in front of
    and behind the view's target."""
    K, w2c = K.float(), world_to_cam.float()
    x = (uv[..., 0] - K[:, None, 0, 2]) / K[:, None, 0, 0]
    y = (uv[..., 1] - K[:, None, 1, 2]) / K[:, None, 1, 1]
    ortho = orthographic.reshape(-1, 1, 1).to(torch.bool) if isinstance(orthographic, torch.Tensor) else torch.tensor(bool(orthographic)).reshape(1, 1, 1)  # fmt: skip
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    perspective_dir = F.normalize(torch.stack([x, y, one], -1), dim=-1)
    dirs = torch.where(ortho.to(x.device), torch.stack([zero, zero, one], -1), perspective_dir)
    origins = torch.where(ortho.to(x.device), torch.stack([x, y, zero], -1), torch.zeros_like(dirs))
    dz = dirs[..., 2]
    t0 = ((depth_center.float()[:, None] - depth) / dz).clamp(min=1e-3)
    t1 = (depth_center.float()[:, None] + depth) / dz
    rotation, translation = w2c[:, :3, :3], w2c[:, None, :3, 3]
    return (origins - translation) @ rotation, dirs @ rotation, t0, t1


class PhorhumMethod(ImageMethod):
    name = "phorhum"
    config: PhorhumConfig

    def build_model(self) -> torch.nn.Module:
        from avatarkit.methods.phorhum.model import PhorhumNet

        return PhorhumNet(self.config)

    def setup(self, device: torch.device) -> None:
        super().setup(device)
        for s in self.subjects:
            check_point_fields(s.samples, self.config)

    def dataset(self, augment: bool) -> D.ImagePointsDataset:
        return PhorhumDataset(self.subjects, self.view_sets, self.config, augment)

    def _camera(self, b: dict) -> tuple:
        size = (self.config.image_size, self.config.image_size)
        return b["K"], b["world_to_cam"], b["orthographic"], b["depth_center"], size

    def predict(self, model, batch) -> torch.Tensor:
        """Inside probability sigmoid(-k d) of the batch's points."""
        features = model.encode(batch["image"])
        d = model.query(features, batch["points"], *self._camera(batch)).float()
        return torch.sigmoid(-self.config.label_sharpness * d)

    def loss(self, model, batch) -> tuple[torch.Tensor, dict[str, float]]:
        from avatarkit.methods.phorhum.model import sdf_gradient

        c = self.config
        b = self.to_device(batch)
        features = model.encode(b["image"])
        camera = self._camera(b)
        points = b["points"].detach().float().clone().requires_grad_(True)  # not the batch's own tensor
        d, albedo = model.surface(features, points, *camera)
        d = d.float()
        grad = sdf_gradient(d, points)
        terms = point_terms(d, albedo.float(), grad, b, c)
        if c.patches and (c.w_render > 0 or c.w_mask > 0):
            terms.update(render_terms(model, features, camera, b, c))
        total = sum(getattr(c, f"w_{name}") * value for name, value in terms.items())
        assert isinstance(total, torch.Tensor)
        logs = {name: float(value.detach()) for name, value in terms.items()}
        with torch.no_grad():
            logs["iou"] = iou(d < 0, b["labels"] > 0.5)
        return total, logs

    def validate(self, model: torch.nn.Module, meshes: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """The shared validation plus ``val/albedo_l1``: the mean |albedo - true colour| (0-1)
        at the held-out subjects' surface points."""
        metrics, images = super().validate(model, meshes)
        if not self.val_index or not self.config.needs_colors:
            return metrics, images
        keys = D.validation_keys(self.view_sets, self.val_index, 2, self.config.seed)
        net: Any = model  # a PhorhumNet
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(keys), self.config.batch_size):
                batch = torch.utils.data.default_collate(
                    [self.val_set[k] for k in keys[i : i + self.config.batch_size]]
                )
                b = self.to_device(batch)
                features = net.encode(b["image"])
                _, albedo = net.surface(features, b["points"], *self._camera(b))
                on = b["sdf"] == 0
                total += float(((albedo.float() - b["colors"]).abs().mean(-1) * on).sum())
                count += int(on.sum())
        self.val_set.close()
        if count:
            metrics["val/albedo_l1"] = total / count
        return metrics, images

    def predictor(self, model):
        from avatarkit.methods.phorhum.infer import PhorhumPredictor

        return PhorhumPredictor(model, self.config, self.device)


def check_point_fields(path: Path, config: PhorhumConfig) -> None:
    """Refuse, naming the file, a samples file without the colours or normals a loss needs."""
    import h5py

    with h5py.File(path, "r") as f:
        if config.needs_colors and "/colors" not in f:
            raise InputError(
                "has no colours for the albedo loss (make it with `avatarkit sample-sdf --preset osa` from a textured "
                "mesh, or train with --w-albedo 0)",
                path,
            )
        if config.needs_normals and "/normals" not in f:
            raise InputError(
                "has no normals for the normal and surface-projection losses (make it with `avatarkit sample-sdf "
                "--preset osa`, or train with --w-normal 0 --w-projection 0)",
                path,
            )


def point_terms(d, albedo, grad, b: dict, c: PhorhumConfig) -> dict[str, torch.Tensor]:
    """The loss terms on the batch's points (unweighted): signed distances ``d`` (B, P), albedo
    (B, P, 3), ``grad`` (B, P, 3) the gradient of d."""
    surface = b["sdf"] == 0
    off = ~surface

    def mean(values, where):
        return (values * where).sum() / where.sum().clamp(min=1)

    terms = {
        "surface": mean(d.abs(), surface),
        "sdf": mean((d - b["sdf"]).abs(), off),
        "label": mean(F.binary_cross_entropy_with_logits(-c.label_sharpness * d, b["labels"], reduction="none"), off),
        "eikonal": ((grad.norm(dim=-1) - 1) ** 2).mean(),
    }
    if c.needs_normals:
        unit = F.normalize(grad, dim=-1)
        terms["normal"] = mean((unit - b["normals"]).norm(dim=-1), surface)
        terms["projection"] = mean((d[..., None] * unit - b["sdf"][..., None] * b["normals"]).norm(dim=-1), off)
    if c.needs_colors:
        terms["albedo"] = mean((albedo - b["colors"]).abs().mean(-1), surface)
    return {name: value for name, value in terms.items() if getattr(c, f"w_{name}") > 0}


def render_terms(model, features, camera: tuple, b: dict, c: PhorhumConfig) -> dict[str, torch.Tensor]:
    """The rendering and mask terms on the batch's patches (unweighted; see the module docstring)."""
    from avatarkit.methods.phorhum.model import sdf_gradient

    K, w2c, ortho, center, _ = camera
    origins, dirs, t0, t1 = patch_rays(b["patch_uv"], K, w2c, ortho, center, c.trace_depth)
    with torch.no_grad():
        t = t0.clone()
        best_d, best_t = torch.full_like(t, float("inf")), t0.clone()
        for _ in range(c.trace_steps):
            d = model.query(features, origins + t[..., None] * dirs, *camera).float()
            better = d < best_d
            best_d, best_t = torch.where(better, d, best_d), torch.where(better, t, best_t)
            t = torch.minimum(torch.maximum(t + d, t0), t1)
        d = model.query(features, origins + t[..., None] * dirs, *camera).float()
        hit = (d.abs() < HIT_TOLERANCE) & (t < t1)
    mask = b["patch_mask"] > 0.5
    on = hit & mask
    x = torch.cat([origins + t[..., None] * dirs, origins + best_t[..., None] * dirs], 1).detach().requires_grad_(True)
    d, albedo = model.surface(features, x, *camera)
    d = d.float()
    rays = t.shape[1]
    normals = F.normalize(sdf_gradient(d, x)[:, :rays], dim=-1)
    color = model.shade(albedo[:, :rays], normals, w2c, features.light)
    off = ~on
    bce = F.binary_cross_entropy_with_logits(-c.label_sharpness * d[:, rays:], mask.float(), reduction="none")
    terms = {
        "render": ((color - b["patch_rgb"]).abs().mean(-1) * on).sum() / on.sum().clamp(min=1),
        "mask": (bce * off).sum() / off.sum().clamp(min=1),
    }
    return {name: value for name, value in terms.items() if getattr(c, f"w_{name}") > 0}


if TYPE_CHECKING:  # nox -s lint: mypy holds the class to the Trainable contract
    from avatarkit.methods.contract import Trainable

    _: type[Trainable] = PhorhumMethod
