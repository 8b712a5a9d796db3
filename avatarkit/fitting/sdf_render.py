"""Differentiable renderers of a signed distance field: the two ways a neural surface is fitted
to photos, side by side (``fit-head --renderer``).

Both work in the scene's unit sphere (rays start at the camera centre and are cut to the
sphere) and return per-ray colour, a soft silhouette term and the SDF gradients an eikonal
term needs:

- :func:`render_surface` (IDR, Yariv et al. 2020, ``code/model/ray_tracing.py`` and
  ``implicit_differentiable_renderer.py``): each ray is sphere traced to its first surface
  point (no gradient); rays that do not converge are sampled densely and refined by the secant
  method at the first sign change; the hit point is then made differentiable in the network's
  parameters by IDR's implicit rule ``x = x0 - v (f(x0) - f0) / (grad f(x0) . v)``. Colour
  comes from the colour network at that point. Rays that miss get the minimum SDF along them,
  which IDR's mask loss pushes through ``sigmoid(-alpha sdf)``.
- :func:`render_volume` (NeuS, Wang et al. 2021): samples along each ray (uniform, then
  importance samples where the SDF crosses zero), opacities from the SDF through a logistic
  CDF of learned sharpness, colours alpha-composited; the accumulated opacity is the silhouette.
"""

from __future__ import annotations

import dataclasses

import torch

from avatarkit.fitting.neural import sdf_and_gradient


@dataclasses.dataclass
class RayBatch:
    """Rays in the unit sphere: ``origins`` (N, 3), unit ``dirs`` (N, 3), and for training
    their pixels' ``rgb`` (N, 3) in [0, 1] and ``mask`` (N,) in {0, 1}."""

    origins: torch.Tensor
    dirs: torch.Tensor
    rgb: torch.Tensor | None = None
    mask: torch.Tensor | None = None


@dataclasses.dataclass
class Rendered:
    """What a renderer gives per ray: ``rgb`` (N, 3); ``opacity`` (N,) in [0, 1] (volume) or
    ``silhouette_logit`` (N,) (surface, ``-alpha * min sdf``); ``hit`` (N,) bool, the rays whose
    colour is valid; ``gradients`` (M, 3) SDF gradients at points along the rays (eikonal);
    ``normals`` (N, 3) unit normals at the surface (zero where nothing was hit)."""

    rgb: torch.Tensor
    hit: torch.Tensor
    gradients: torch.Tensor
    normals: torch.Tensor
    opacity: torch.Tensor | None = None
    silhouette_logit: torch.Tensor | None = None
    sdf_min: torch.Tensor | None = None
    alpha: float | None = None


def sphere_bounds(origins: torch.Tensor, dirs: torch.Tensor, radius: float = 1.0):
    """(near (N,), far (N,), hit (N,) bool) where rays enter and leave the sphere of ``radius``
    at the origin (near clamped at 0 for rays starting inside)."""
    b = (origins * dirs).sum(-1)
    c = (origins * origins).sum(-1) - radius**2
    disc = b * b - c
    hit = disc > 0
    root = torch.sqrt(disc.clamp_min(0))
    near = (-b - root).clamp_min(0)
    far = (-b + root).clamp_min(0)
    return near, far, hit & (far > near)


# ----------------------------------------------------------------------------------- surface


def _sdf_only(sdf_net, points: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    return (
        torch.cat([sdf_net(points[i : i + chunk])[0][:, 0] for i in range(0, len(points), chunk)])
        if len(points)
        else points.new_zeros(0)
    )


@torch.no_grad()
def trace(
    sdf_net, origins, dirs, near, far, iterations: int = 16, samples: int = 64, secant: int = 8, eps: float = 5e-5
):
    """IDR's ray sampler: (depth (N,), converged (N,) bool, min_depth (N,)): sphere tracing from
    ``near``; rays that do not converge by then are sampled at ``samples`` depths and refined by
    the secant method at the first outside-to-inside change; ``min_depth`` is where the
    sampled SDF is smallest (for rays that miss, the mask loss's point)."""
    n = len(origins)
    t = near.clone()
    active = far > near
    converged = torch.zeros(n, dtype=torch.bool, device=origins.device)
    for _ in range(iterations):
        if not active.any():
            break
        idx = active.nonzero()[:, 0]
        s = _sdf_only(sdf_net, origins[idx] + t[idx, None] * dirs[idx])
        done = s.abs() < eps
        converged[idx[done]] = True
        t[idx] = t[idx] + torch.where(done, torch.zeros_like(s), s)
        active[idx] = ~done & (t[idx] < far[idx]) & (s > -eps)  # inside: sphere tracing overshot
    # dense samples for every ray: IDR's fallback, and the mask loss's minimum
    steps = torch.linspace(0, 1, samples, device=origins.device)
    depths = near[:, None] + (far - near)[:, None] * steps  # (N, S)
    pts = origins[:, None] + depths[..., None] * dirs[:, None]
    sdf = _sdf_only(sdf_net, pts.reshape(-1, 3)).reshape(n, samples)
    min_depth = depths.gather(1, sdf.argmin(1, keepdim=True))[:, 0]
    redo = ~converged
    if redo.any():
        inside = sdf[redo] < 0
        has = inside.any(1)
        first = torch.where(has, inside.float().argmax(1), torch.zeros_like(has, dtype=torch.long))
        lo_i = (first - 1).clamp_min(0)
        d = depths[redo]
        t_lo, t_hi = d.gather(1, lo_i[:, None])[:, 0], d.gather(1, first[:, None])[:, 0]
        s_lo, s_hi = sdf[redo].gather(1, lo_i[:, None])[:, 0], sdf[redo].gather(1, first[:, None])[:, 0]
        o, v = origins[redo], dirs[redo]
        for _ in range(secant):
            t_mid = t_lo - s_lo * (t_hi - t_lo) / (s_hi - s_lo).where(
                (s_hi - s_lo).abs() > 1e-12, torch.ones_like(s_lo)
            )
            s_mid = _sdf_only(sdf_net, o + t_mid[:, None] * v)
            outside = s_mid > 0
            t_lo, s_lo = torch.where(outside, t_mid, t_lo), torch.where(outside, s_mid, s_lo)
            t_hi, s_hi = torch.where(outside, t_hi, t_mid), torch.where(outside, s_hi, s_mid)
        ok = has & (first > 0)
        t_redo = t[redo]
        t_redo[ok] = t_lo[ok]
        t[redo] = t_redo
        conv = converged[redo]
        conv[ok] = True
        converged[redo] = conv
    return t, converged & (far > near), min_depth


def render_surface(sdf_net, color_net, rays: RayBatch, alpha: float, eikonal_points: int = 0) -> Rendered:
    """IDR's rendering of ``rays`` (see the module docstring); ``alpha`` the mask loss's
    sharpness; ``eikonal_points`` extra random points in the sphere for the eikonal term."""
    o, d = rays.origins, rays.dirs
    near, far, in_sphere = sphere_bounds(o, d)
    near, far = torch.where(in_sphere, near, 0), torch.where(in_sphere, far, 0)
    was = sdf_net.training
    sdf_net.eval()
    depth, hit, min_depth = trace(sdf_net, o, d, near, far)
    sdf_net.train(was)
    n = len(o)
    rgb = o.new_zeros(n, 3)
    normals = o.new_zeros(n, 3)
    grads = []
    if hit.any():
        x0 = (o[hit] + depth[hit, None] * d[hit]).detach()
        sdf, _feature, grad = sdf_and_gradient(sdf_net, x0)
        v = d[hit]
        dot = (grad * v).sum(-1, keepdim=True).detach()
        dot = torch.where(dot.abs() < 1e-4, torch.full_like(dot, -1e-4), dot)
        x = x0 - v * (sdf - sdf.detach()) / dot  # IDR's differentiable surface point
        _sdf_x, feature_x, grad_x = sdf_and_gradient(sdf_net, x)
        n_x = torch.nn.functional.normalize(grad_x, dim=-1)
        rgb[hit] = color_net(x, n_x, v, feature_x)
        normals[hit] = n_x
        grads.append(grad_x)
    # the minimum SDF along every ray (IDR's mask loss uses it where the mask or the hit is off)
    x_min = (o + min_depth[:, None] * d).detach()
    sdf_min = sdf_net(x_min)[0][:, 0]
    if eikonal_points:
        p = torch.empty(eikonal_points, 3, device=o.device).uniform_(-1, 1)
        grads.append(sdf_and_gradient(sdf_net, p)[2])
    gradients = torch.cat(grads) if grads else o.new_zeros(0, 3)
    return Rendered(rgb, hit, gradients, normals, silhouette_logit=-alpha * sdf_min, sdf_min=sdf_min, alpha=alpha)


# ----------------------------------------------------------------------------------- volume


def _neus_alpha(
    sdf: torch.Tensor, grad_dot: torch.Tensor, dists: torch.Tensor, inv_s: torch.Tensor, anneal: float = 1.0
) -> torch.Tensor:
    """NeuS's discrete opacity between a section's ends, estimated from its midpoint SDF and
    the directional derivative; ``anneal`` (0 to 1, NeuS's ``cos_anneal_ratio``) moves the
    cosine from a softened one to the true one clamped to the side facing the ray."""
    iter_cos = -(torch.relu(-grad_dot * 0.5 + 0.5) * (1.0 - anneal) + torch.relu(-grad_dot) * anneal)
    nxt = sdf + iter_cos * dists * 0.5
    prev = sdf - iter_cos * dists * 0.5
    prev_cdf, next_cdf = torch.sigmoid(prev * inv_s), torch.sigmoid(nxt * inv_s)
    return ((prev_cdf - next_cdf + 1e-5) / (prev_cdf + 1e-5)).clamp(0.0, 1.0)


@torch.no_grad()
def _importance(sdf_net, o, d, z: torch.Tensor, count: int, inv_s: float) -> torch.Tensor:
    """NeuS's up-sampling: ``count`` more depths per ray where the coarse samples ``z`` (N, S)
    cross the surface (weights from a fixed sharpness ``inv_s``), by inverse transform."""
    n, s = z.shape
    pts = o[:, None] + z[..., None] * d[:, None]
    sdf = _sdf_only(sdf_net, pts.reshape(-1, 3)).reshape(n, s)
    mid = 0.5 * (sdf[:, :-1] + sdf[:, 1:])
    cos = ((sdf[:, 1:] - sdf[:, :-1]) / (z[:, 1:] - z[:, :-1] + 1e-5)).clamp(-1e3, 0.0)
    dist = z[:, 1:] - z[:, :-1]
    prev_cdf = torch.sigmoid((mid - cos * dist * 0.5) * inv_s)
    next_cdf = torch.sigmoid((mid + cos * dist * 0.5) * inv_s)
    alpha = ((prev_cdf - next_cdf + 1e-5) / (prev_cdf + 1e-5)).clamp(0, 1)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-7], 1), 1)[:, :-1]
    weights = alpha * trans + 1e-5
    pdf = weights / weights.sum(1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, 1)], 1)  # (N, S)
    u = (torch.arange(count, device=z.device, dtype=z.dtype) + 0.5) / count
    u = u.expand(n, count).contiguous()
    idx = torch.searchsorted(cdf, u, right=True).clamp(1, s - 1)
    c0, c1 = cdf.gather(1, idx - 1), cdf.gather(1, idx)
    z0, z1 = z.gather(1, idx - 1), z.gather(1, idx)
    frac = (u - c0) / torch.where(c1 - c0 < 1e-5, torch.ones_like(c0), c1 - c0)
    return z0 + frac * (z1 - z0)


def render_volume(
    sdf_net, color_net, rays: RayBatch, inv_s: torch.Tensor, samples: int = 48, importance: int = 16,
    perturb: bool = True, eikonal_points: int = 0, anneal: float = 1.0,
) -> Rendered:  # fmt: skip
    """NeuS's rendering of ``rays`` with sharpness ``inv_s`` (a positive scalar tensor, learned)
    and cosine ``anneal`` ratio (see :func:`_neus_alpha`)."""
    o, d = rays.origins, rays.dirs
    near, far, in_sphere = sphere_bounds(o, d)
    near = torch.where(in_sphere, near, 0)
    far = torch.where(in_sphere, far, 1e-3)
    n = len(o)
    steps = torch.linspace(0, 1, samples + 1, device=o.device)[:-1]
    width = (far - near)[:, None] / samples
    z = near[:, None] + (far - near)[:, None] * steps
    z = z + torch.rand_like(z) * width if perturb else z + 0.5 * width
    if importance:
        extra = _importance(sdf_net, o, d, z, importance, 64.0)
        z, _ = torch.sort(torch.cat([z, extra], 1), 1)
    dists = torch.cat([z[:, 1:] - z[:, :-1], width], 1)
    pts = o[:, None] + z[..., None] * d[:, None]  # (N, S, 3)
    s = z.shape[1]
    flat = pts.reshape(-1, 3)
    sdf, feature, grad = sdf_and_gradient(sdf_net, flat)
    dirs = d[:, None].expand(n, s, 3).reshape(-1, 3)
    normals = torch.nn.functional.normalize(grad, dim=-1)
    colors = color_net(flat, normals, dirs, feature).reshape(n, s, 3)
    alpha = _neus_alpha(sdf[:, 0], (grad * dirs).sum(-1), dists.reshape(-1), inv_s, anneal).reshape(n, s)
    alpha = alpha * in_sphere[:, None]
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-7], 1), 1)[:, :-1]
    weights = alpha * trans
    opacity = weights.sum(1)
    rgb = (weights[..., None] * colors).sum(1)
    normal = (weights[..., None] * normals.reshape(n, s, 3)).sum(1)
    grads = [grad]
    if eikonal_points:
        p = torch.empty(eikonal_points, 3, device=o.device).uniform_(-1, 1)
        grads.append(sdf_and_gradient(sdf_net, p)[2])
    return Rendered(rgb, opacity > 0.5, torch.cat(grads), normal, opacity=opacity)
