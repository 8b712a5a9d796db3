"""Lighting for diffuse rendering: second-order spherical harmonics (SH), environments,
precomputed radiance transfer (PRT) and equirectangular HDR maps.

SH basis: the nine real functions of Ramamoorthi and Hanrahan (2001), in the order
(0,0), (1,-1), (1,0), (1,1), (2,-2), (2,-1), (2,0), (2,1), (2,2), evaluated on world
directions. A lighting environment is its radiance projected on that basis, (9, 3) RGB.
Diffuse shading of albedo a at normal n is a * E(n) / pi, with irradiance
E(n) = sum_l A_l sum_m L_lm Y_lm(n), A = (pi, 2 pi / 3, pi / 4).
"""

from __future__ import annotations

import numpy as np

BAND = np.array(
    [np.pi, 2 * np.pi / 3, 2 * np.pi / 3, 2 * np.pi / 3, np.pi / 4, np.pi / 4, np.pi / 4, np.pi / 4, np.pi / 4]
)


def sh_basis(d):
    """(..., 9) real SH basis at unit directions ``d`` (..., 3): a numpy array or a torch tensor."""
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    if isinstance(d, np.ndarray):
        stack = np.stack
    else:
        import torch

        stack = torch.stack
    return stack(
        [
            0.282095 * (x * 0 + 1),
            0.488603 * y,
            0.488603 * z,
            0.488603 * x,
            1.092548 * x * y,
            1.092548 * y * z,
            0.315392 * (3 * z * z - 1),
            1.092548 * x * z,
            0.546274 * (x * x - y * y),
        ],
        -1,
    )


def sphere_directions(count: int) -> np.ndarray:
    """``count`` unit directions spread evenly over the sphere (Fibonacci lattice)."""
    i = np.arange(count) + 0.5
    y = 1 - 2 * i / count
    r = np.sqrt(np.maximum(0.0, 1 - y * y))
    phi = np.pi * (3 - np.sqrt(5)) * i
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def project(radiance: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """SH coefficients (9, C) of radiance samples (K, C) taken at evenly spread ``directions``."""
    return (4 * np.pi / len(directions)) * sh_basis(directions).T @ radiance


def irradiance(coeffs: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """E(n) (..., C) for SH radiance ``coeffs`` (9, C) at unit ``normals`` (..., 3)."""
    return sh_basis(normals) @ (BAND[:, None] * coeffs)


def random_environment(
    rng: np.random.Generator, directions: np.ndarray | None = None, toward: np.ndarray | None = None
) -> np.ndarray:
    """A plausible studio-like environment as SH (9, 3): a tinted ambient sky plus a soft
    key light from a random direction above the horizon (within 60 degrees of azimuth of
    ``toward``, a direction from the subject, when given: the side a photographer lights),
    scaled so a surface facing the key light gets an irradiance near pi (shading factor
    near 1)."""
    directions = sphere_directions(2048) if directions is None else directions
    azimuth = rng.uniform(0, 2 * np.pi)
    if toward is not None:
        azimuth = np.arctan2(toward[0], toward[2]) + (azimuth / np.pi - 1) * np.radians(60)
    elevation = rng.uniform(np.radians(10), np.radians(60))
    key = np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation), np.cos(azimuth) * np.cos(elevation)])
    tint = 1.0 + rng.uniform(-0.1, 0.1, 3)
    ambient = rng.uniform(0.25, 0.5)
    lobe = np.maximum(directions @ key, 0.0) ** 8
    radiance = ambient * tint[None] * (0.6 + 0.4 * np.maximum(directions[:, 1], 0))[:, None] + 6.0 * lobe[:, None]
    coeffs = project(radiance, directions)
    peak = irradiance(coeffs, key[None])[0].mean()
    return coeffs * (np.pi / peak) * rng.uniform(0.8, 1.1)


def rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rotate(coeffs: np.ndarray, rotation: np.ndarray, directions: np.ndarray | None = None) -> np.ndarray:
    """SH coefficients of the environment turned by ``rotation`` (3x3), by re-projection."""
    directions = sphere_directions(2048) if directions is None else directions
    # radiance arriving from d after the turn is what came from R^T d before it
    before = sh_basis(directions @ rotation) @ coeffs
    return project(before, directions)


def equirect_to_sh(image: np.ndarray, directions: np.ndarray | None = None) -> np.ndarray:
    """SH (9, 3) of an equirectangular environment map (H, W, 3), linear radiance.

    Row 0 looks straight up (+Y); the column centre looks along +Z, longitude
    increasing toward +X (the subject's left).
    """
    directions = sphere_directions(8192) if directions is None else directions
    h, w = image.shape[:2]
    lon = np.arctan2(directions[:, 0], directions[:, 2])
    lat = np.arccos(np.clip(directions[:, 1], -1, 1))
    col = ((0.5 + lon / (2 * np.pi)) * w - 0.5) % w
    row = np.clip(lat / np.pi * h - 0.5, 0, h - 1)
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    fc, fr = (col - c0)[:, None], (row - r0)[:, None]
    c1, r1 = (c0 + 1) % w, np.minimum(r0 + 1, h - 1)
    img = image.astype(np.float64)
    samples = (img[r0, c0] * (1 - fc) + img[r0, c1] * fc) * (1 - fr) + (img[r1, c0] * (1 - fc) + img[r1, c1] * fc) * fr
    return project(samples, directions)


def prt_transfer(vertices, normals, occluded, samples: int = 256) -> np.ndarray:
    """Per-vertex diffuse transfer with self-shadowing (PIFu's PRT), (V, 9).

    T_j(v) = 4 pi / K * sum_k vis(v, w_k) max(0, n_v . w_k) Y_j(w_k) over K directions, so
    that shading = albedo * (T . L) / pi for SH radiance L. ``occluded(origins, dirs)``
    answers shadow rays.
    """
    directions = sphere_directions(samples)
    cos = normals @ directions.T  # (V, K)
    facing = cos > 0
    v_idx, k_idx = np.nonzero(facing)
    scale = float(np.linalg.norm(vertices.max(0) - vertices.min(0)))
    origins = vertices[v_idx] + 1e-4 * scale * normals[v_idx]
    blocked = occluded(origins, directions[k_idx])
    weight = np.zeros_like(cos)
    weight[v_idx, k_idx] = np.where(blocked, 0.0, cos[v_idx, k_idx])
    return (4 * np.pi / samples) * weight @ sh_basis(directions)


def procedural_sky(rng: np.random.Generator, height: int = 64, width: int = 128) -> np.ndarray:
    """A built-in outdoor environment map (for ``render --hdri sky``, so that no map needs
    downloading): (H, W, 3) float32 equirectangular linear radiance, laid out as
    :func:`equirect_to_sh` reads (row 0 straight up, the column centre along +Z).

    A clear sky brighter and whiter towards the horizon, a sun (a 3-degree disc and its glow)
    at a random azimuth and 10-70 degrees of elevation, and below the horizon a ground of
    random grey-brown albedo lit by sun and sky; the sky's tint, the sun's strength and the
    haze are drawn too."""
    rows = (np.arange(height) + 0.5) / height * np.pi  # polar angle from +Y
    cols = ((np.arange(width) + 0.5) / width - 0.5) * 2 * np.pi  # longitude from +Z toward +X
    lat, lon = np.meshgrid(rows, cols, indexing="ij")
    d = np.stack([np.sin(lat) * np.sin(lon), np.cos(lat), np.sin(lat) * np.cos(lon)], -1)
    azimuth, elevation = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(10, 70))
    sun = np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation), np.cos(azimuth) * np.cos(elevation)])
    zenith = np.array([0.25, 0.45, 1.0]) * rng.uniform(0.8, 1.2, 3)
    horizon = np.array([0.85, 0.9, 1.0]) * rng.uniform(0.9, 1.1, 3)
    haze = rng.uniform(0.3, 0.8)
    up = np.clip(d[..., 1], 0, 1)[..., None]
    sky = horizon + (zenith - horizon) * up**haze
    cos_sun = d @ sun
    glow = np.exp((cos_sun - 1) * 40.0)[..., None] * np.array([1.0, 0.95, 0.85]) * 2.0
    disc = (cos_sun > np.cos(np.radians(3.0)))[..., None] * np.array([1.0, 0.97, 0.9]) * rng.uniform(200, 400)
    radiance = sky + glow + disc
    ground_albedo = np.array([0.35, 0.3, 0.25]) * rng.uniform(0.5, 1.2)
    # the sun's irradiance on the flat ground plus about the sky's
    pixel_solid_angle = (np.pi / height) * (2 * np.pi / width) * np.sin(lat)
    sun_power = ((disc + glow)[..., :] * pixel_solid_angle[..., None]).sum((0, 1))
    ground = ground_albedo * (sun_power * max(sun[1], 0.0) + np.pi * horizon) / np.pi
    below = (d[..., 1] < 0)[..., None]
    return np.where(below, ground, radiance).astype(np.float32)
