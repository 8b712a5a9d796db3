"""PIFu's networks: shapes, pixel alignment with our cameras, and that they can learn."""

from __future__ import annotations

import numpy as np
import torch

from avatarkit.methods.configs import replace
from avatarkit.methods.pifu.config import PRESETS
from avatarkit.methods.pifu.model import PifuNet, project
from avatarkit.render.cameras import orbit

SMALL = replace(PRESETS["small"], stacks=2, channels=32, hourglass_depth=2, stem_channels=16, mlp=(64, 32))


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


def test_shapes_per_stack_and_learning_one_image():
    torch.manual_seed(0)
    net = PifuNet(SMALL)
    k, w2c, _ = _camera("orthographic")
    image = torch.rand(1, 3, 48, 64) * 2 - 1
    points = torch.randn(1, 500, 3) * 0.3 + torch.tensor([0.0, 1.0, 0.0])
    inside = (points - torch.tensor([0.0, 1.0, 0.0])).norm(dim=-1) < 0.25
    center = torch.tensor([float(w2c[0, 2] @ torch.tensor([0.0, 1.0, 0.0, 1.0]))])
    out = net(image, points, k, w2c, True, center)
    assert len(out) == 2 and out[0].shape == (1, 500)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    first = None
    for _ in range(60):
        loss = sum(torch.nn.functional.mse_loss(o, inside.float()) for o in net(image, points, k, w2c, True, center))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.5 * first  # the depth feature alone lets it fit a ball
    paper = PifuNet(PRESETS["default"])
    sizes = [layer.in_channels for layer in paper.mlp.layers]
    assert sizes == [257, 1024 + 257, 512 + 257, 256 + 257, 128 + 257]  # 257-1024-512-256-128-1, input fed to all
    assert len(paper.encoder.hourglasses) == 4 and paper.mlp.layers[-1].out_channels == 1


def test_projection_stays_float32_under_autocast():
    """Mixed precision must not round camera coordinates (bfloat16 would move points by
    centimetres and pixels); the CPU's autocast lowers matmul as CUDA's does."""
    k, w2c, _ = _camera("perspective")
    points = torch.tensor(np.random.default_rng(1).normal([0, 1, 0], 0.2, (1, 300, 3)), dtype=torch.float32)
    exact, z_exact = project(points, k, w2c, False, 64, 48)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grid, z = project(points, k, w2c, False, 64, 48)
        net = PifuNet(SMALL)
        center = torch.tensor([float(z_exact.mean())])
        out = net(torch.zeros(1, 3, 48, 64), points, k, w2c, False, center)
    assert grid.dtype == torch.float32 and torch.equal(grid, exact) and torch.equal(z, z_exact)
    assert out[0].shape == (1, 300) and torch.isfinite(out[0].float()).all()
