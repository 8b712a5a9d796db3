"""The same kernels on a CUDA GPU give the CPU's results (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from avatarkit.geometry.sample_sdf import preset_config, sample_sdf
from avatarkit.geometry.voxelize import plan_grid, voxelize
from avatarkit.structures import Mesh

pytestmark = pytest.mark.gpu


def _torus() -> Mesh:
    t = trimesh.creation.torus(major_radius=0.3, minor_radius=0.1, major_sections=64, minor_sections=32)
    return Mesh(t.vertices, t.faces)


def test_sample_sdf_on_cuda_matches_cpu():
    mesh, config = _torus(), preset_config("osa", points=20000)
    cpu, gpu = (sample_sdf(mesh, config, seed=0, device=d) for d in ("cpu", "cuda"))
    assert np.array_equal(cpu.points, gpu.points)
    assert np.abs(cpu.sdf - gpu.sdf).max() < 1e-6
    assert np.array_equal(cpu.occupancy, gpu.occupancy)


def test_voxelize_on_cuda_matches_cpu():
    mesh = _torus()
    grid = plan_grid(mesh, resolution=96)
    for sign in ("winding", "parity"):
        cpu, gpu = (voxelize(mesh, grid, sign, surface=True, device=d).occupancy for d in ("cpu", "cuda"))
        assert np.array_equal(cpu, gpu)


def test_render_and_unwrap_on_cuda_match_cpu(textured_sphere):
    from avatarkit.render.render import RenderConfig, render
    from avatarkit.render.rigs import orbit
    from avatarkit.texture.unwrap import unwrap

    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [0.0, 120.0, 240.0], [15.0], (96, 96))
    for lighting in ("none", "sh", "prt", "directional"):
        cpu, gpu = (render(textured_sphere, cams, RenderConfig(lighting=lighting), device=d) for d in ("cpu", "cuda"))
        assert np.array_equal(cpu.mask, gpu.mask)
        assert np.abs(cpu.depth - gpu.depth).max() < 1e-4
        assert np.mean(np.abs(cpu.rgb.astype(int) - gpu.rgb.astype(int)) <= 1) > 0.99
    views = render(textured_sphere, cams, RenderConfig())
    a, b = (unwrap(textured_sphere, views, size=64, device=d) for d in ("cpu", "cuda"))
    assert np.mean(np.abs(a.texture.astype(int) - b.texture.astype(int)) <= 1) > 0.99
