"""A head's surface and colour fitted to a few posed photos (the core of ``avatarkit fit-head``):
IDR's neural surface, initialised from a learned shape prior as H3D-Net does, or from a sphere.

The scene is worked in its *unit sphere* (IDR's ``scale_mat`` frame): ``x_unit = (x_world -
center) / radius``, so one set of settings serves scenes in metres (ours) and millimetres
(H3DS). A fit has two stages (H3D-Net, section 3.3): first the prior's network is frozen and
only its latent code and the colour network move (the code finds the head in the prior's
space); then everything is fine-tuned. Without a prior (plain IDR) there is one stage from
IDR's sphere initialisation. Losses: photometric L1 on the pixels of the mask, a silhouette
term (IDR's ``sigmoid(-alpha sdf_min)`` or NeuS's accumulated opacity) and the eikonal term.
The schedule counts steps, not epochs (3 views x IDR's 2000 epochs is only about 6k steps).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import torch

from avatarkit.errors import InputError, OptionError
from avatarkit.fitting.loop import FitConfig, FitResult, fit
from avatarkit.fitting.neural import ColorNetwork, SdfNetwork
from avatarkit.fitting.progress import Reporter
from avatarkit.fitting.sdf_render import RayBatch, Rendered, render_surface, render_volume
from avatarkit.structures import Cameras, Mesh, Views

RENDERERS = ("volume", "surface")


@dataclasses.dataclass(frozen=True)
class HeadFitConfig:
    """How ``fit-head`` fits (defaults: IDR's and H3D-Net's values where they say)."""

    renderer: str = "surface"
    """``surface`` (IDR's sphere tracing) or ``volume`` (NeuS): docs/fit_head.md compares them."""
    steps: int = 6000
    """Optimisation steps in all (both stages)."""
    prior_steps: int = 500
    """Stage 1 with a prior: steps with the prior's network frozen (latent and colour only)."""
    rays: int = 1024
    """Rays per step (IDR: 2048 pixels per batch)."""
    lr: float = 5e-4
    """Learning rate of the networks (NeuS 5e-4; IDR 1e-4)."""
    latent_lr_scale: float = 10.0
    """The latent code's learning rate, as a multiple of ``lr`` (DeepSDF fits codes at 5e-3)."""
    prior_lr_scale: float = 0.2
    """Stage 2: the prior network's learning rate, as a multiple of ``lr`` (fine-tuning)."""
    rgb_weight: float = 1.0
    mask_weight: float | None = None
    """The silhouette term's weight (default by renderer: IDR's 100 for ``surface``, with its
    ``1 / alpha`` normalisation; NeuS's 0.1 for ``volume``)."""
    eikonal_weight: float = 0.1
    alpha: float = 50.0
    """IDR's mask sharpness at the start, doubled five times over the fit."""
    width: int = 256
    """SDF network width without a prior (IDR 256) and colour network width."""
    layers: int = 8
    multires: int = 6
    feature_size: int = 256
    color_layers: int = 4
    samples: int = 64
    """Volume renderer: uniform samples per ray (NeuS 64)."""
    importance: int = 32
    """Volume renderer: importance samples per ray (NeuS 64 in 4 rounds; one round here)."""
    inside_share: float = 0.5
    """The share of each step's rays drawn from the mask (the rest anywhere in the images)."""
    seed: int = 0
    log_every: int = 50

    @property
    def silhouette_weight(self) -> float:
        if self.mask_weight is not None:
            return self.mask_weight
        return 100.0 if self.renderer == "surface" else 0.1

    def check(self) -> None:
        if self.renderer not in RENDERERS:
            raise OptionError(f"--renderer must be one of {', '.join(RENDERERS)}, got {self.renderer!r}")
        if self.steps < 1 or self.rays < 1 or self.prior_steps < 0:
            raise OptionError("--steps and --rays must be at least 1, --prior-steps 0 or more")
        if not 0 <= self.inside_share <= 1:
            raise OptionError(f"inside_share must be in [0, 1], got {self.inside_share}")


PRESETS = {
    "default": HeadFitConfig(),
    "small": HeadFitConfig(
        steps=600,
        prior_steps=150,
        rays=256,
        lr=1e-3,
        width=128,
        layers=4,
        multires=4,
        feature_size=64,
        color_layers=2,
        samples=32,
        importance=16,
    ),
}
"""``small`` fits a head in minutes on a 2-core CPU (the tests and the demo use it)."""


@dataclasses.dataclass
class UnitSphere:
    """The scene's unit sphere in its world units: ``x_unit = (x_world - center) / radius``."""

    center: np.ndarray
    radius: float

    def matrix(self) -> np.ndarray:
        """IDR's ``scale_mat``: unit sphere to world."""
        m = np.eye(4)
        m[:3, :3] *= self.radius
        m[:3, 3] = self.center
        return m


def sphere_from_masks(
    cameras: Cameras, masks: np.ndarray, margin: float = 1.1, ids: list[int] | None = None
) -> UnitSphere:
    """A sphere holding the subject, for views with no ``scale_mat``: centred where the cameras
    aim (their targets, or the point nearest every optical axis), its radius the largest
    distance from the centre, in the plane through it, of a pixel of any mask, times ``margin``.
    Raises :class:`InputError` when a camera does not see its mask around that centre
    (``ids`` name the views in messages)."""
    targets = cameras.targets()
    if targets is None:
        raise InputError("the views say nowhere where their cameras aim, so the subject's sphere is unknown")
    center = targets.mean(0)
    radius = 0.0
    for i in range(len(cameras)):
        ys, xs = np.nonzero(masks[i])
        if not len(xs):
            continue
        one = cameras.subset(i)
        one.target = center[None]
        depth = float(one.target_depths()[0])
        k = cameras.K[i]
        corners = np.array([[xs.min(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()], [xs.max(), ys.min()]])
        at = np.stack([(corners[:, 0] - k[0, 2]) / k[0, 0] * depth, (corners[:, 1] - k[1, 2]) / k[1, 1] * depth], 1)
        center_cam = cameras.world_to_cam[i, :3, :3] @ center + cameras.world_to_cam[i, :3, 3]
        u, v = k[0, 0] * center_cam[0] / center_cam[2] + k[0, 2], k[1, 1] * center_cam[1] / center_cam[2] + k[1, 2]
        pad = 0.25 * max(xs.max() - xs.min(), ys.max() - ys.min())
        if not (center_cam[2] > 0 and xs.min() - pad <= u <= xs.max() + pad and ys.min() - pad <= v <= ys.max() + pad):
            raise InputError(
                f"camera of view {ids[i] if ids else i} does not see its mask around the subject's centre "
                "(cameras and images mismatched?)"
            )
        radius = max(radius, float(np.linalg.norm(at - center_cam[:2], axis=1).max()))
    if not radius > 0:
        raise InputError("every mask is empty")
    return UnitSphere(center, radius * margin)


@dataclasses.dataclass
class HeadScene:
    """The photos a head is fitted to, on a device, with rays in its unit sphere.

    ``rgb`` (V, H, W, 3) float in [0, 1]; ``mask`` (V, H, W) bool; ``cameras`` in world units;
    ``sphere`` the unit sphere; ``ids`` the views' indices in the file they came from.
    """

    rgb: torch.Tensor
    mask: torch.Tensor
    cameras: Cameras
    sphere: UnitSphere
    ids: list[int]

    @classmethod
    def from_views(
        cls, views: Views, ids: list[int], sphere: UnitSphere, device: str | torch.device = "cpu"
    ) -> HeadScene:
        """The views ``ids`` of ``views``; raises :class:`InputError` for an empty mask or a
        camera that does not see its mask inside the unit sphere."""
        ids = [int(i) for i in ids]
        cameras = views.cameras().subset(ids)
        mask = views.mask[ids] > 127
        for j, i in enumerate(ids):
            if not mask[j].any():
                raise InputError(f"the mask of view {i} is empty")
        scene = cls(
            torch.as_tensor(views.rgb[ids], device=device).float() / 255,
            torch.as_tensor(mask, device=device),
            cameras,
            sphere,
            ids,
        )
        scene._prepare(device)
        for j, i in enumerate(ids):
            inside = scene.mask[j].nonzero()
            sel = inside[torch.linspace(0, len(inside) - 1, min(len(inside), 256), device=device).long()]
            o, d = scene._rays(torch.full((len(sel),), j, device=device), sel[:, 0], sel[:, 1])
            b = (o * d).sum(-1)
            c = (o * o).sum(-1) - 1.0
            if not bool((b * b - c > 0).float().mean() > 0.5):
                raise InputError(
                    f"camera of view {i} does not see its mask inside the subject's sphere (cameras and images mismatched?)"
                )
        return scene

    def _prepare(self, device) -> None:
        c = self.cameras
        r = torch.as_tensor(c.world_to_cam[:, :3, :3], dtype=torch.float32, device=device)
        centers = torch.as_tensor((c.centers() - self.sphere.center) / self.sphere.radius, dtype=torch.float32)
        self._cam_to_world = r.transpose(1, 2)
        self._centers = centers.to(device)
        self._K = torch.as_tensor(c.K, dtype=torch.float32, device=device)
        flat = self.mask.reshape(len(self.ids), -1)
        self._inside = [m.nonzero()[:, 0] for m in flat]

    @property
    def height(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[2])

    def _rays(self, view: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self._K[view]
        local = torch.stack(
            [(col - k[:, 0, 2]) / k[:, 0, 0], (row - k[:, 1, 2]) / k[:, 1, 1], torch.ones_like(k[:, 0, 0])], -1
        )
        dirs = torch.nn.functional.normalize((self._cam_to_world[view] @ local[..., None])[..., 0], dim=-1)
        return self._centers[view], dirs

    def sample(self, count: int, inside_share: float, generator: torch.Generator) -> RayBatch:
        """``count`` random pixels of random views, ``inside_share`` of them in the masks."""
        dev = self.rgb.device
        v, h, w = self.mask.shape
        n_in = round(count * inside_share)
        view = torch.randint(0, v, (count,), generator=generator, device=dev)
        pixel = torch.randint(0, h * w, (count,), generator=generator, device=dev)
        for j in range(v):
            pick = (view[:n_in] == j).nonzero()[:, 0]
            if len(pick):
                inside = self._inside[j]
                pixel[pick] = inside[torch.randint(0, len(inside), (len(pick),), generator=generator, device=dev)]
        row, col = pixel // w, pixel % w
        o, d = self._rays(view, row.float(), col.float())
        return RayBatch(o, d, self.rgb[view, row, col], self.mask[view, row, col].float())

    def view_rays(self, j: int, step: int = 1) -> tuple[RayBatch, tuple[int, int]]:
        """Every ``step``-th pixel's ray of view ``j`` (row-major), and the picture's shape."""
        dev = self.rgb.device
        rows = torch.arange(0, self.height, step, device=dev)
        cols = torch.arange(0, self.width, step, device=dev)
        rr, cc = torch.meshgrid(rows, cols, indexing="ij")
        o, d = self._rays(torch.full((rr.numel(),), j, device=dev), rr.reshape(-1).float(), cc.reshape(-1).float())
        return RayBatch(o, d), (len(rows), len(cols))


class SphereSdf(torch.nn.Module):
    """Plain IDR's SDF network (no prior), started as a sphere: the ``--no-prior`` surface."""

    def __init__(self, config: HeadFitConfig) -> None:
        super().__init__()
        self.net = SdfNetwork(config.width, config.layers, (config.layers // 2,), config.multires, config.feature_size)
        self.feature_size = config.feature_size

    def forward(self, points: torch.Tensor):
        return self.net(points)


@dataclasses.dataclass
class HeadFit:
    """A fitted head: its networks (unit-sphere frame), the scene's sphere, and how the fit went."""

    sdf: torch.nn.Module
    color: torch.nn.Module
    sphere: UnitSphere
    result: FitResult
    config: HeadFitConfig
    stage_ends: list[int]

    def mesh(self, resolution: int = 256, device: str | torch.device = "cpu") -> Mesh:
        """The surface meshed by marching cubes in the unit sphere's cube, in world units, with
        vertex colours from the colour network seen head-on (view direction = -normal)."""
        from avatarkit.reconstruct.field import ImplicitField, reconstruct_field

        c, r = self.sphere.center, self.sphere.radius
        sdf, color = self.sdf.eval(), self.color.eval()

        def values(points: np.ndarray) -> np.ndarray:
            # outside the unit sphere nothing was fitted: it is outside (as the renderers cut rays there)
            unit = (points - c) / r
            out = np.linalg.norm(unit, axis=1).astype(np.float32) - 1.0
            with torch.no_grad():
                for i in range(0, len(points), 1 << 16):
                    p = torch.as_tensor(unit[i : i + (1 << 16)], dtype=torch.float32, device=device)
                    out[i : i + len(p)] = np.maximum(out[i : i + len(p)], sdf(p)[0][:, 0].cpu().numpy())
            return out

        def colors(points: np.ndarray) -> np.ndarray:
            return shade(sdf, color, torch.as_tensor((points - c) / r, dtype=torch.float32, device=device))

        box = np.stack([c - r, c + r])
        try:
            return reconstruct_field(
                ImplicitField(values, box, level=0.0, inside="below", colors=colors), resolution
            ).mesh
        except OptionError as exc:
            raise InputError(f"the fitted surface could not be meshed ({exc})") from None

    def picture(self, scene: HeadScene, j: int = 0, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(normals, colour) (h, w, 3) uint8 of view ``j`` rendered from the fitted surface by
        sphere tracing: normals drawn as papers draw them, white background."""
        from avatarkit.fitting.sdf_render import sphere_bounds, trace

        rays, shape = scene.view_rays(j, step)
        sdf, color = self.sdf.eval(), self.color.eval()
        normals = np.full((rays.origins.shape[0], 3), 255, np.uint8)
        rgb = np.full_like(normals, 255)
        for i in range(0, len(rays.origins), 8192):
            o, d = rays.origins[i : i + 8192], rays.dirs[i : i + 8192]
            near, far, inside = sphere_bounds(o, d)
            depth, hit, _ = trace(sdf, o, d, torch.where(inside, near, 0), torch.where(inside, far, 0))
            if not hit.any():
                continue
            x = o[hit] + depth[hit, None] * d[hit]
            from avatarkit.fitting.neural import sdf_and_gradient

            _, feature, grad = sdf_and_gradient(sdf, x, create_graph=False)
            n = torch.nn.functional.normalize(grad, dim=-1)
            with torch.no_grad():
                c = color(x, n, d[hit], feature.detach())
            w2c = torch.as_tensor(scene.cameras.world_to_cam[j, :3, :3], dtype=torch.float32, device=n.device)
            n_cam = (n @ w2c.T) * torch.tensor([1.0, -1.0, -1.0], device=n.device)
            idx = hit.nonzero()[:, 0].cpu().numpy() + i
            normals[idx] = np.rint((n_cam.cpu().numpy() * 0.5 + 0.5).clip(0, 1) * 255)
            rgb[idx] = np.rint(c.cpu().numpy().clip(0, 1) * 255)
        return normals.reshape(*shape, 3), rgb.reshape(*shape, 3)


def shade(sdf: torch.nn.Module, color: torch.nn.Module, points_unit: torch.Tensor) -> np.ndarray:
    """(P, 3) float colours in [0, 1] of surface points seen head-on (view direction -normal)."""
    from avatarkit.fitting.neural import sdf_and_gradient

    out = []
    for i in range(0, len(points_unit), 1 << 15):
        p = points_unit[i : i + (1 << 15)]
        _, feature, grad = sdf_and_gradient(sdf, p, create_graph=False)
        n = torch.nn.functional.normalize(grad, dim=-1)
        with torch.no_grad():
            out.append(color(p, n, -n, feature.detach()).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3), np.float32)


def fit_head(
    scene: HeadScene,
    sdf: Any,
    config: HeadFitConfig,
    latent: list[torch.Tensor] | None = None,
    prior: list[torch.nn.Parameter] | None = None,
    reporter: Reporter | None = None,
) -> HeadFit:
    """Fit ``sdf`` (unit-sphere frame; ``forward(points) -> (sdf, feature)``, ``feature_size``)
    and a new colour network to ``scene``.

    With a prior, ``latent`` are its code's tensors and ``prior`` its network's parameters:
    stage 1 (``config.prior_steps``) moves the code and the colour network only, stage 2 all
    of them (the prior's network at ``prior_lr_scale``). Without (``latent`` and ``prior``
    None), every parameter of ``sdf`` moves from the start.

    The networks hold their best state (lowest smoothed loss) when this returns, also after a
    Ctrl-C (the result says ``interrupted``).
    """
    config.check()
    device = scene.rgb.device
    torch.manual_seed(config.seed)
    color = ColorNetwork(sdf.feature_size, config.width, config.color_layers).to(device)
    sdf.to(device).train()
    color.train()
    with_prior = prior is not None
    stage_one = config.prior_steps if with_prior else 0
    stage_one = min(stage_one, config.steps)
    own = [p for p in sdf.parameters() if not any(p is q for q in (*(prior or []), *(latent or [])))]
    groups: list[Any] = [{"params": list(color.parameters())}]
    if own:
        groups.append({"params": own})
    if latent:
        groups.append({"params": latent, "lr_scale": config.latent_lr_scale})
    if prior:
        groups.append({"params": prior, "lr_scale": config.prior_lr_scale})
        for p in prior:
            p.requires_grad_(False)
    log_inv_s = torch.nn.Parameter(torch.tensor(math.log(20.0), device=device))  # NeuS's variance, 0.3 x 10
    if config.renderer == "volume":
        groups.append({"params": [log_inv_s]})
    generator = torch.Generator(device=device).manual_seed(config.seed)
    best: dict[str, Any] = {"loss": math.inf, "state": None}
    smoothed = [math.inf]

    def objective(step: int):
        if with_prior and step == stage_one + 1:
            for p in prior or []:
                p.requires_grad_(True)
        rays = scene.sample(config.rays, config.inside_share, generator)
        if config.renderer == "volume":
            out = render_volume(
                sdf,
                color,
                rays,
                log_inv_s.exp(),
                config.samples,
                config.importance,
                eikonal_points=config.rays // 4,
                anneal=min(1.0, step / max(1.0, 0.2 * config.steps)),
            )
        else:
            doublings = min(5, int(6 * (step - 1) / config.steps))
            out = render_surface(sdf, color, rays, config.alpha * 2**doublings, eikonal_points=config.rays // 2)
        # a learned prior is not held to |grad| = 1 (DeepSDF's clamped training leaves it flat away
        # from the surface; pulling it there bent fitted heads: 13.4 against 7.9 mm, docs/fit_head.md)
        loss, logs = head_loss(out, rays, config, eikonal=not with_prior)
        value = float(loss.detach())
        smoothed[0] = value if smoothed[0] == math.inf else 0.9 * smoothed[0] + 0.1 * value
        if step % config.log_every == 0 and step > stage_one and smoothed[0] < best["loss"]:
            best.update(loss=smoothed[0], state=(copy.deepcopy(sdf.state_dict()), copy.deepcopy(color.state_dict())))
        logs["stage"] = 1.0 if step <= stage_one else 2.0
        return loss, logs

    fit_config = FitConfig(
        steps=config.steps, lr=config.lr, lr_decay_at=(0.5, 0.75), lr_decay=0.5, log_every=config.log_every
    )
    result = fit(groups, objective, fit_config, reporter)
    if best["state"] is not None and best["loss"] < smoothed[0]:
        sdf.load_state_dict(best["state"][0])
        color.load_state_dict(best["state"][1])
    sdf.eval()
    color.eval()
    return HeadFit(sdf, color, scene.sphere, result, config, [stage_one, result.steps])


def head_loss(
    out: Rendered, rays: RayBatch, config: HeadFitConfig, eikonal: bool = True
) -> tuple[torch.Tensor, dict[str, float]]:
    """Photometric L1 on the mask's pixels (IDR: on those the surface also hits), the
    silhouette term, and the eikonal term; returns the loss and its parts."""
    assert rays.rgb is not None and rays.mask is not None
    mask = rays.mask > 0.5
    if out.opacity is not None:  # NeuS
        rgb_loss = (out.rgb - rays.rgb).abs().sum(-1)[mask].mean() if mask.any() else out.rgb.sum() * 0
        opacity = out.opacity.clamp(1e-3, 1 - 1e-3)
        mask_loss = torch.nn.functional.binary_cross_entropy(opacity, rays.mask)
    else:  # IDR
        good = mask & out.hit
        rgb_loss = (out.rgb - rays.rgb).abs().sum(-1)[good].sum() / max(len(mask), 1)
        off = ~good
        assert out.silhouette_logit is not None and out.alpha is not None
        mask_loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(
                out.silhouette_logit[off], rays.mask[off], reduction="sum"
            )
            / (out.alpha * max(len(mask), 1))
            if off.any()
            else out.rgb.sum() * 0
        )
    eik = ((out.gradients.norm(dim=-1) - 1) ** 2).mean() if len(out.gradients) else out.rgb.sum() * 0
    weight = config.eikonal_weight if eikonal else 0.0
    loss = config.rgb_weight * rgb_loss + config.silhouette_weight * mask_loss + weight * eik
    return loss, {
        "rgb": float(rgb_loss.detach()),
        "mask": float(mask_loss.detach()),
        "eikonal": float(eik.detach()),
    }


def fit_scene(
    scene: Any,
    ids: list[int],
    config: HeadFitConfig,
    prior: Any = None,
    device: str | torch.device = "cpu",
    reporter: Reporter | None = None,
) -> tuple[HeadFit, HeadScene]:
    """Fit a head to the views ``ids`` of ``scene`` (a :class:`~avatarkit.fitting.scenes.Scene`):
    its unit sphere from its ``scale_mat`` when it has one, else from its masks; the SDF from
    ``prior`` (a module with ``code_parameters()`` and ``prior_parameters()``, e.g. a DeepSDF run's
    :class:`~avatarkit.methods.deepsdf.prior.PriorSdf`) or, without, IDR's sphere."""
    config.check()
    views = scene.views
    if not len(ids):
        raise OptionError("no views chosen")
    try:  # the scene's problems name the scene
        if scene.center is not None and scene.radius is not None:
            sphere = UnitSphere(np.asarray(scene.center, dtype=np.float64), float(scene.radius))
        else:
            sphere = sphere_from_masks(views.cameras().subset(ids), views.mask[ids] > 127, ids=ids)
        torch.manual_seed(config.seed)  # the networks start alike on every run of one seed
        head = HeadScene.from_views(views, ids, sphere, device)
    except InputError as exc:
        if exc.path is not None or getattr(scene, "source", None) is None:
            raise
        raise InputError(exc.message, scene.source) from None
    if prior is None:
        result = fit_head(head, SphereSdf(config), config, reporter=reporter)
    else:
        result = fit_head(
            head, prior, config, latent=prior.code_parameters(), prior=prior.prior_parameters(), reporter=reporter
        )
    return result, head
