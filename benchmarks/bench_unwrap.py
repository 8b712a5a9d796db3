"""unwrap-uv round trip on an Anny human (rest pose, clothes texture, 1024 x 1024).

Unlit renders from 8 views (yaw every 45 degrees) are unwrapped back into the mesh's UV
layout; the recovered texture is compared with the original on well-seen texels
(visibility above 0.5), then re-rendered and compared with the original renders. Done
with views of 1024 (about the texture's density on the subject) and of 512 pixels.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from common import machine


def _psnr(a, b) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def run() -> dict:
    from avatarkit.render.render import RenderConfig, render
    from avatarkit.render.rigs import orbit
    from avatarkit.synth.generate import HumanGenerator, SynthConfig
    from avatarkit.texture.unwrap import unwrap

    mesh = HumanGenerator(SynthConfig(pose="rest", texture="clothes")).subject(0)
    v = mesh.vertices.astype(np.float64)
    center = 0.5 * (v.min(0) + v.max(0))
    radius = float(np.linalg.norm(v - center, axis=1).max())
    result = {**machine(), "texture": list(mesh.texture.shape[:2]), "views": 8}
    for size in (1024, 512):
        cameras = orbit(center, radius, np.arange(8) * 45.0, [0.0], (size, size))
        views = render(mesh, cameras, RenderConfig())
        t = time.perf_counter()
        texture = unwrap(mesh, views, size=1024, symmetric=True)
        unwrap_s = time.perf_counter() - t
        good = texture.visibility > 0.5
        rerender = render(dataclasses.replace(mesh, texture=texture.texture), cameras, RenderConfig())
        m = views.mask > 0
        result[f"views_{size}"] = {
            "unwrap_s": round(unwrap_s, 2),
            "well_seen_texel_fraction": round(float(good[texture.normal_map.any(-1)].mean()), 3),
            "psnr_texture_well_seen_db": round(_psnr(texture.texture[good], mesh.texture[good]), 2),
            "psnr_rerender_db": round(_psnr(rerender.rgb[m], views.rgb[m]), 2),
            "mirrored_fraction": round(texture.attrs["mirrored_fraction"], 4),
        }
    return result
