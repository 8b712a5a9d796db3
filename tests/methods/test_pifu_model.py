"""PIFu's networks: shapes per stack, the paper's sizes, and that they can learn."""

from __future__ import annotations

import numpy as np
import torch

from avatarkit.methods.configs import replace
from avatarkit.methods.pifu.config import PRESETS
from avatarkit.methods.pifu.model import PifuNet
from avatarkit.render.rigs import orbit

SMALL = replace(PRESETS["small"], stacks=2, channels=32, hourglass_depth=2, stem_channels=16, mlp=(64, 32))


def _camera(projection):
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [30.0], [10.0], (64, 48), projection)
    return torch.tensor(cams.K, dtype=torch.float32), torch.tensor(cams.world_to_cam, dtype=torch.float32), cams


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
