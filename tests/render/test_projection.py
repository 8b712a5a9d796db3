"""Cameras in torch: projection agrees with the numpy cameras and stays float32 under autocast."""

from __future__ import annotations

import numpy as np
import torch

from avatarkit.render.projection import project_to_grid as project
from avatarkit.render.rigs import orbit


def _camera(projection):
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [30.0], [10.0], (64, 48), projection)
    return torch.tensor(cams.K, dtype=torch.float32), torch.tensor(cams.world_to_cam, dtype=torch.float32), cams


def test_projection_agrees_with_the_camera_convention():
    for projection in ("perspective", "orthographic"):
        k, w2c, cams = _camera(projection)
        points = np.random.default_rng(0).normal([0, 1, 0], 0.2, (50, 3))
        grid, z = project(torch.tensor(points[None], dtype=torch.float32), k, w2c, projection == "orthographic", 64, 48)
        pix, depth = cams.project(points)
        # grid_sample coordinates back to pixels: u = (g + 1) / 2 * W - 0.5
        u = (grid[0, :, 0].numpy() + 1) / 2 * 64 - 0.5
        v = (grid[0, :, 1].numpy() + 1) / 2 * 48 - 0.5
        assert np.allclose(np.stack([u, v], -1), pix[0], atol=1e-3)
        assert np.allclose(z[0].numpy(), depth[0], atol=1e-5)


def test_projection_stays_float32_under_autocast():
    """Mixed precision must not round camera coordinates (bfloat16 would move points by
    centimetres and pixels); the CPU's autocast lowers matmul as CUDA's does."""
    k, w2c, _ = _camera("perspective")
    points = torch.tensor(np.random.default_rng(1).normal([0, 1, 0], 0.2, (1, 300, 3)), dtype=torch.float32)
    exact, z_exact = project(points, k, w2c, False, 64, 48)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grid, z = project(points, k, w2c, False, 64, 48)
    assert grid.dtype == torch.float32 and torch.equal(grid, exact) and torch.equal(z, z_exact)
