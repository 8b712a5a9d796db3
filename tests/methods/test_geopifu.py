"""Geo-PIFu's networks and volume geometry: shapes from the config, gradients into both
branches, the view volume lined up with the world voxels, and the losses as Geo-PIFu's code
computes them (checked against plain re-implementations)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from avatarkit.errors import OptionError
from avatarkit.methods.configs import replace
from avatarkit.methods.geopifu import volume as V
from avatarkit.methods.geopifu.config import PRESETS, GeoPifuConfig
from avatarkit.methods.geopifu.model import GeoPifuNet

TINY = dict(
    grid=(16, 32, 16), stacks=2, channels=16, stem_channels=8, mlp=(32, 16), image_size=64, coarse_stacks=2,
    coarse_channels=16, coarse_stem_channels=8, volume_channels=2, coarse_upsample=4,
)  # fmt: skip


def _config(**changes) -> GeoPifuConfig:
    config = replace(PRESETS["small"], **{**TINY, **changes})
    config.check()
    return config


def _cameras(batch: int, size: int = 64, ortho: bool = True):
    """Cameras 2 m in front of the origin looking down -Z (world +Z towards the camera), the
    image 1 m high (orthographic) at the target."""
    f = size / 1.0 if ortho else size * 2.0
    K = torch.tensor([[f, 0, size / 2 - 0.5], [0, f, size / 2 - 0.5], [0, 0, 1]]).expand(batch, 3, 3).clone()
    w2c = torch.eye(4).expand(batch, 4, 4).clone()
    w2c[:, 0, 0] = 1
    w2c[:, 1, 1] = -1  # world +Y up -> camera +Y down
    w2c[:, 2, 2] = -1  # world +Z towards the camera -> camera +Z forward
    w2c[:, 2, 3] = 2.0
    return K, w2c, torch.full((batch,), 2.0)


def test_the_volumes_have_the_configs_grid():
    config = _config()
    net = GeoPifuNet(config)
    image = torch.randn(2, 3, 64, 64)
    latents = net.coarse(image)
    assert len(latents) == config.coarse_stacks
    assert latents[-1].shape == (2, config.volume_channels, *config.latent_shape) == (2, 2, 4, 8, 4)
    x, y, z = config.grid
    assert net.coarse.occupancy(latents[-1]).shape == (2, z, y, x)
    occupancy = net(image, None, None, None, None, None, stage="coarse")
    assert len(occupancy) == 2 and occupancy[-1].shape == (2, z, y, x)
    assert float(occupancy[-1].detach().min()) >= 0 and float(occupancy[-1].detach().max()) <= 1
    # Geo-PIFu's own numbers: 128 x 192 x 128 voxels, a 8 x 32 x 48 x 32 latent, 7 x 8 + 256 + 1 MLP inputs
    default = GeoPifuConfig()
    assert default.latent_shape == (32, 48, 32) and default.output_grid == default.grid
    assert PRESETS["small"].output_grid == (64, 96, 64)  # the CPU's: half the grid, the same box
    half = GeoPifuNet(_config(coarse_upsample=2))
    assert half.coarse.occupancy(half.coarse(image)[-1]).shape == (2, z // 2, y // 2, x // 2)
    assert (default.volume_channels * 7 + default.channels + 1, *default.mlp) == (313, 1024, 512, 256, 128)


def test_gradients_reach_both_branches():
    torch.manual_seed(0)
    net = GeoPifuNet(_config())
    image, points = torch.randn(2, 3, 64, 64), torch.rand(2, 50, 3) - 0.5
    K, w2c, center = _cameras(2)
    # stage 1: the volume network alone
    sum(o.mean() for o in net(image, None, None, None, None, None, stage="coarse")).backward()
    assert all(p.grad is not None for p in net.coarse.parameters())
    assert all(p.grad is None for p in net.encoder.parameters())
    net.zero_grad(set_to_none=True)
    # stage 2: the 2D encoder and the MLP's inputs from both branches; the volume network is fixed
    out = net(image, points, K, w2c, True, center)
    sum(o.mean() for o in out).backward()
    assert all(p.grad is not None for p in net.encoder.parameters())
    first = net.mlp.layers[0].weight.grad[:, :, 0]  # (out, 3D features + 2D features + depth)
    n3d = 2 * 7
    assert first[:, :n3d].abs().sum() > 0 and first[:, n3d:-1].abs().sum() > 0 and first[:, -1].abs().sum() > 0
    assert all(p.grad is None for p in net.coarse.parameters())
    net.zero_grad(set_to_none=True)
    # --finetune-coarse: the query loss trains the volume network too
    sum(o.mean() for o in net(image, points, K, w2c, True, center, train_coarse=True)).backward()
    assert sum(float(p.grad.abs().sum()) for p in net.coarse.parameters() if p.grad is not None) > 0


@pytest.mark.parametrize("ortho", [True, False])
def test_volume_points_and_volume_coords_are_inverse(ortho):
    K, w2c, center = _cameras(2, ortho=ortho)
    grid = (16, 32, 16)
    world = V.volume_points(K, w2c, ortho, center, 64, grid)  # (B, Z, Y, X, 3)
    assert world.shape == (2, 16, 32, 16, 3)
    coords = V.volume_coords(world.reshape(2, -1, 3), K, w2c, ortho, center, 64, grid)
    axes = [(torch.arange(n) + 0.5) / n * 2 - 1 for n in (16, 32, 16)]
    cz, cy, cx = torch.meshgrid(*axes, indexing="ij")
    expected = torch.stack([cx, cy, cz], -1).reshape(1, -1, 3).expand(2, -1, -1)
    assert torch.allclose(coords, expected, atol=1e-4)
    if ortho:  # the volume is 1 m high (the image), 0.5 m wide and deep, centred on the target (the origin)
        flat = world.reshape(-1, 3)
        assert torch.allclose(flat.min(0).values, torch.tensor([-0.25, -0.5, -0.25]) + 1 / 64, atol=1e-4)
        assert torch.allclose(flat.max(0).values, torch.tensor([0.25, 0.5, 0.25]) - 1 / 64, atol=1e-4)
        # image row 0 is the top (+Y), volume depth index 0 the nearest slice (+Z, towards the camera)
        assert world[0, 0, 0, 0, 1] > 0 and world[0, 0, 0, 0, 2] > 0


def test_view_occupancy_reads_the_world_voxels_where_the_view_volume_lies():
    """A world grid holding a box; the view's volume sees the box where its world position is,
    by a slow reference (each voxel centre looked up by hand)."""
    rng = np.random.default_rng(0)
    occ = np.zeros((20, 30, 10), np.uint8)
    occ[5:12, 8:25, 2:7] = 1
    occ[rng.random(occ.shape) < 0.05] = 1
    origin, pitch = np.array([-0.4, -0.6, -0.2]), 0.04
    K, w2c, center = _cameras(1)
    grid = (16, 32, 16)
    got = V.view_occupancy(
        torch.from_numpy(occ)[None], torch.tensor(origin, dtype=torch.float32)[None], torch.tensor([pitch]),
        K, w2c, True, center, 64, grid,
    )[0].numpy()  # fmt: skip
    world = V.volume_points(K, w2c, True, center, 64, grid)[0].numpy().reshape(-1, 3)
    index = np.floor((world - origin) / pitch).astype(int)
    inside = ((index >= 0) & (index < occ.shape)).all(1)
    expected = np.zeros(len(world))
    expected[inside] = occ[tuple(index[inside].T)]
    assert got.shape == (16, 32, 16)
    assert (got.reshape(-1) == expected).mean() > 0.995  # ties at voxel faces may round either way
    assert expected.sum() > 100


def test_sample_volume_takes_geopifus_seven_points():
    volume = torch.randn(2, 3, 4, 8, 4)
    coords = torch.rand(2, 10, 3) * 1.6 - 0.8
    got = V.sample_volume(volume, coords, 0.1)
    assert got.shape == (2, 21, 10)
    offsets = [(0, 0, 0), (-0.1, 0, 0), (0.1, 0, 0), (0, -0.1, 0), (0, 0.1, 0), (0, 0, -0.1), (0, 0, 0.1)]
    for n, d in enumerate(offsets):
        where = (coords + torch.tensor(d))[:, None, None]
        one = F.grid_sample(volume, where, align_corners=False)[:, :, 0, 0]
        assert torch.allclose(got[:, n * 3 : (n + 1) * 3], one, atol=1e-6)
    assert V.sample_volume(volume, coords).shape == (2, 3, 10)


def test_the_coarse_loss_is_geopifus_weighted_cross_entropy():
    from avatarkit.methods.geopifu.train import GeoPifuMethod

    config = _config(coarse_stacks=1)
    method = GeoPifuMethod(config)
    target = (torch.rand(1, 16, 32, 16) > 0.7).float()
    method.target_volume = lambda b: target  # type: ignore[method-assign]
    torch.manual_seed(0)
    net = GeoPifuNet(config)
    image = torch.randn(1, 3, 64, 64)
    loss, logs = method.coarse_loss(net, {"image": image})
    p = net(image, None, None, None, None, None, stage="coarse")[0].double()
    t = target.double()
    # VrnNet.get_error, term by term
    expected = 1000.0 * (-0.7 * (t * (p + 1e-8).log()).mean() - 0.3 * ((1 - t) * (1 - p + 1e-8).log()).mean())
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert 0 <= logs["volume_iou"] <= 1


def test_stages_split_the_steps_and_the_config_checks():
    assert _config(stage="both", max_steps=100, coarse_share=0.45).coarse_steps() == 45
    assert _config(stage="coarse", max_steps=10).coarse_steps() == 10
    assert _config(stage="query", max_steps=10).coarse_steps() == 0
    for bad in [dict(stage="fine"), dict(grid=(20, 32, 16)), dict(grid=(48, 32, 16)), dict(coarse_share=1.0)]:
        with pytest.raises(OptionError):
            _config(**bad)


def test_the_target_volume_lines_up_with_the_views_silhouette(pifu_data, geopifu_data):
    """The voxels a view's volume should predict, seen along its depth, cover the person's mask in
    that view (views of the rig, through the training data's own path). The tiny files' 6-7 cm
    voxels (Geo-PIFu's box, centred on the vertex mean and sized by the farther side from it) lose
    thin arms (voxel centres outside them) and grow the rest by up to half a voxel: the bars leave
    room for that, not for a volume off by a few voxels."""
    from avatarkit.methods.geopifu.train import GeoPifuMethod

    config = _config(grid=(32, 64, 32), flip=False, scale_jitter=0.0, shift_jitter=0.0)
    method = GeoPifuMethod(config, views=[pifu_data / "views"], voxels=[geopifu_data], samples=[pifu_data / "samples"])
    method.config = replace(config, grid=(16, 32, 16))  # the files' grid, for setup's check
    method.setup(torch.device("cpu"))
    method.config = config  # a finer view volume than the files: the lookup is by world position
    try:
        for view in (0, 2, 5):
            item = method.train_set[(0, 1, view)]
            b = {k: v[None] for k, v in item.items()}
            target = method.target_volume(b)[0]  # (Z, Y, X)
            seen = target.amax(0) > 0.5  # (Y, X): along the depth
            mask = item["mask"][0]  # (S, S), the volume's front face is its central X / Y columns
            s = mask.shape[-1]
            crop = mask[:, s // 4 : s - s // 4]
            coarse = F.adaptive_avg_pool2d(crop[None, None], seen.shape)[0, 0] > 0.5
            precision = float((seen & coarse).sum() / seen.sum())
            iou = float((seen & coarse).sum() / (seen | coarse).sum())
            assert precision > 0.8 and iou > 0.6, (view, precision, iou)
    finally:
        method.close()


def test_each_stage_has_its_own_learning_rate_schedule():
    from avatarkit.methods.geopifu.train import StageSchedule

    config = _config(max_steps=100, coarse_share=0.4, lr=1.0, lr_decay=0.1)
    config = replace(config, coarse_lr_decay_at=(0.5,), lr_decay_at=(0.5,))
    schedule = StageSchedule(config)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    rates = {step: schedule.apply(optimizer, step) for step in (0, 19, 20, 39, 40, 69, 70, 99)}
    assert rates == pytest.approx({0: 1, 19: 1, 20: 0.1, 39: 0.1, 40: 1, 69: 1, 70: 0.1, 99: 0.1})
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_geopifu_renders_and_voxels_give_the_voxels_back_exactly(pifu_data):
    """``render --preset geopifu`` views are the front faces of the ``voxelize --preset geopifu``
    box (as in Geo-PIFu): each view's target volume is then the voxels file itself, turned to
    face that view, voxel for voxel (here on a 16 x 32 x 16 grid)."""
    from unittest import mock

    from avatarkit.geometry import voxelize as vox
    from avatarkit.io.meshfile import load_mesh
    from avatarkit.methods.image_data import fit_input
    from avatarkit.render.rigs import geopifu_rig

    mesh = load_mesh(pifu_data / "meshes" / "human_0001.h5")
    with mock.patch.object(vox, "GEOPIFU_SHAPE", (16, 32, 16)):
        voxels = vox.voxelize(mesh, vox.plan_grid(mesh, preset="geopifu"))
        rig = geopifu_rig(mesh, height=96, yaws=(0.0, 90.0, 180.0, 270.0))
    occ = torch.from_numpy(voxels.occupancy.astype(np.uint8))
    size, grid = 48, (16, 32, 16)  # 48 x 96 views (the grid's 1:2) fit 48 x 48 inputs exactly (24 columns)
    assert (rig.width, rig.height) == (48, 96)
    for view in range(4):
        _, _, K = fit_input(torch.zeros(3, 96, 48), torch.zeros(1, 96, 48), rig.K[view], size)
        depth = torch.tensor([float(rig.subset(view).target_depths()[0])])
        target = V.view_occupancy(
            occ[None], torch.tensor(voxels.origin, dtype=torch.float32)[None], torch.tensor([voxels.pitch]),
            torch.as_tensor(K, dtype=torch.float32)[None], torch.as_tensor(rig.world_to_cam[view], dtype=torch.float32)[None],
            True, depth, size, grid,
        )[0]  # fmt: skip
        assert target.sum() == occ.sum()  # every voxel, once
        if view == 0:  # from the front (+Z): volume x is world +x, y is -y, depth is -z
            assert torch.equal(target, occ.flip(1, 2).permute(2, 1, 0).float())


def test_a_time_budget_starts_the_query_stage_at_its_share_of_the_time():
    """Under --max-time, stage 2 begins once coarse_share of the time is spent even if the
    coarse stage's steps are not done (else a time-bound run never trains the query network),
    and the query stage's own schedule counts from the step it began at."""
    from avatarkit.methods.geopifu.train import StageSchedule

    config = _config(max_steps=1000, coarse_share=0.4, lr=1.0, lr_decay=0.1, max_time=100.0)
    config = replace(config, coarse_lr_decay_at=(0.5,), lr_decay_at=(0.5,))
    schedule = StageSchedule(config)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert schedule.apply(optimizer, 0, 0.0) == 1 and schedule.coarse(0)
    assert schedule.apply(optimizer, 5, 0.25) == pytest.approx(0.1)  # half the coarse share of time: decayed
    assert schedule.coarse(5) and schedule.query_from is None
    assert schedule.apply(optimizer, 9, 0.41) == 1  # time's share spent at step 9 of 400: stage 2, fresh rate
    assert schedule.query_from == 9 and not schedule.coarse(9) and schedule.coarse(8)
    assert schedule.apply(optimizer, 10, 0.5) == 1
    assert schedule.apply(optimizer, 11, 0.71) == pytest.approx(0.1)  # half of the query's share of time
    # a resumed run keeps the step its stage 2 began at
    resumed = StageSchedule(config, query_from=9)
    assert not resumed.coarse(12) and resumed.apply(optimizer, 12, 0.0) == 1
    # without a budget the steps decide, as before
    steps_only = StageSchedule(replace(config, max_time=0.0))
    assert steps_only.apply(optimizer, 399) == pytest.approx(0.1) and steps_only.coarse(399)
    steps_only.apply(optimizer, 400)
    assert steps_only.query_from == 400
