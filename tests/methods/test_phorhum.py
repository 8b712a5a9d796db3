"""Phorhum's networks and losses: gradients reach G, f and s; patch rays go through their
pixels; the point losses vanish for the true distances; presets pass their checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avatarkit.errors import OptionError
from avatarkit.methods.configs import replace
from avatarkit.methods.phorhum import train as T
from avatarkit.methods.phorhum.config import PRESETS
from avatarkit.methods.phorhum.model import PhorhumNet
from avatarkit.render.projection import project


def _config(**changes):
    config = replace(PRESETS["small"], **{"image_size": 64, "channels": 16, "stem_channels": 8, "mlp": (32, 32),
                                          "points": 64, "patch_size": 4, "trace_steps": 4, **changes})  # fmt: skip
    config.check()
    return config


def _batch(config, batch=2, seed=0):
    """Cameras 2 m in front of the origin looking down -Z, one orthographic and one perspective."""
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[64.0, 0, 31.5], [0, 64.0, 31.5], [0, 0, 1]]).expand(batch, 3, 3).clone()
    w2c = torch.eye(4).expand(batch, 4, 4).clone()
    w2c[:, 1, 1], w2c[:, 2, 2], w2c[:, 2, 3] = -1, -1, 2.0
    image = torch.rand(batch, 3, 64, 64, generator=g) * 2 - 1
    mask = torch.zeros(batch, 1, 64, 64)
    mask[:, :, 16:48, 24:40] = 1
    rng = np.random.default_rng(seed)
    uv, pm, rgb = zip(
        *[T.patches(image[i], mask[i, 0], config.patches, config.patch_size, rng) for i in range(batch)], strict=True
    )
    sdf = torch.randn(batch, config.points, generator=g) * 0.05
    sdf[:, : config.points // 2] = 0
    normals = torch.nn.functional.normalize(torch.randn(batch, config.points, 3, generator=g), dim=-1)
    return {
        "image": image, "mask": mask, "K": K, "world_to_cam": w2c, "depth_center": torch.full((batch,), 2.0),
        "orthographic": torch.tensor([True, False][:batch]), "points": torch.rand(batch, config.points, 3) - 0.5,
        "labels": (sdf < 0).float(), "sdf": sdf, "normals": normals, "colors": torch.rand(batch, config.points, 3),
        "patch_uv": torch.stack(uv), "patch_mask": torch.stack(pm), "patch_rgb": torch.stack(rgb),
    }  # fmt: skip


def test_every_loss_term_trains_its_networks():
    torch.manual_seed(0)
    config = _config()
    net = PhorhumNet(config)
    batch = _batch(config)
    loss, logs = T.PhorhumMethod(config).loss(net, batch)
    assert not batch["points"].requires_grad  # the batch is left as it was (the trainer draws it after)
    expected = {"surface", "sdf", "label", "eikonal", "normal", "albedo", "projection", "render", "mask", "iou"}
    assert set(logs) == expected and all(np.isfinite(v) for v in logs.values())
    loss.backward()
    for name in ("encoder", "light", "f", "s"):  # G, the illumination code, the SDF/albedo MLP, shading
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(net, name).parameters()), name
    net.zero_grad(set_to_none=True)
    # without the rendering loss, nothing reaches the shading network
    loss, logs = T.PhorhumMethod(_config(patches=0)).loss(net, _batch(config))
    loss.backward()
    assert "render" not in logs and all(p.grad is None for p in net.s.parameters())


def test_patch_rays_pass_through_their_pixels():
    config = _config()
    b = _batch(config)
    origins, dirs, t0, t1 = T.patch_rays(b["patch_uv"], b["K"], b["world_to_cam"], b["orthographic"],
                                         b["depth_center"], 0.8)  # fmt: skip
    for t in (t0, 0.5 * (t0 + t1), t1):
        uv, z = project(origins + t[..., None] * dirs, b["K"], b["world_to_cam"], b["orthographic"])
        torch.testing.assert_close(uv, b["patch_uv"], atol=1e-3, rtol=0)
    torch.testing.assert_close(z, torch.full_like(z, 2.8), atol=1e-4, rtol=0)  # t1: 0.8 m behind the target
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(1))


def test_point_losses_vanish_for_the_true_field():
    config = _config()
    b = _batch(config)
    grad = b["normals"]  # a field whose gradient is the true normal and values the true distances
    terms = T.point_terms(b["sdf"].clone(), b["colors"].clone(), grad, b, config)
    for name in ("surface", "sdf", "eikonal", "normal", "albedo", "projection"):
        assert float(terms[name]) == pytest.approx(0.0, abs=1e-6), name
    wrong = T.point_terms(b["sdf"] + 0.01, 1 - b["colors"], -grad, b, config)
    assert all(float(wrong[n]) > 0.005 for n in ("surface", "sdf", "normal", "albedo", "projection"))


def test_presets_check_and_bad_options_are_refused():
    for preset in PRESETS.values():
        preset.check()
    assert PRESETS["default"].mask_input is False  # no matting at input
    with pytest.raises(OptionError, match="--patch-size"):
        _config(patch_size=128)
    with pytest.raises(OptionError, match="--w-render"):
        _config(w_render=-1.0)


def test_a_share_of_each_draw_is_far_from_the_surface(tmp_path):
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.structures import Samples

    rng = np.random.default_rng(0)
    sdf = np.where(rng.random(10_000) < 0.03, 0.1, 0.001).astype(np.float32)  # 3% far, as osa files
    path = write_artifact(tmp_path / "s.h5", Samples(rng.random((10_000, 3)), sdf, (sdf < 0).astype(np.uint8)))
    for share in (0.0, 0.25):
        data = T.PhorhumDataset([], [], _config(points=1000, far_share=share), augment=False)
        far = np.abs(sdf[data._draw(path, np.random.default_rng(1))]) > T.FAR
        assert far.mean() == pytest.approx(share + (1 - share) * 0.03, abs=0.02)


def test_the_output_layer_steps_at_its_own_rate():
    from avatarkit.methods.trainer import parameter_groups

    config = _config(head_lr_scale=10.0)
    net = PhorhumNet(config)
    groups = parameter_groups(net)
    assert [g["lr_scale"] for g in groups] == [1.0, 10.0]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in net.f.layers[-1].parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


def test_the_distance_starts_as_a_sphere_about_the_target():
    torch.manual_seed(0)
    b = _batch(_config(), batch=1)
    points = torch.randn(1, 2000, 3) * 0.5  # about the target (the origin, 2 m in front of the camera)
    camera = (b["K"], b["world_to_cam"], b["orthographic"], b["depth_center"], (64, 64))
    radius = points.norm(dim=-1)
    far, near = radius > 0.6, radius < 0.15
    with torch.no_grad():
        for sphere in (0.3, 0.6):
            net = PhorhumNet(_config(sphere_init=sphere))
            d, albedo = net.surface(net.encode(b["image"]), points, *camera)
            assert float(torch.corrcoef(torch.stack([d[0], radius[0]]))[0, 1]) > 0.8  # grows with the radius
            assert float((d[radius > 2 * sphere] > 0).float().mean()) > 0.99  # space away from it starts outside
            assert float((d[radius < 0.1] < 0).float().mean()) > 0.95
            assert 0.2 < float(albedo.mean()) < 0.8  # the albedo rows keep their own start
        net = PhorhumNet(_config(sphere_init=0.0))  # PyTorch's start: no sphere
        d, _ = net.surface(net.encode(b["image"]), points, *camera)
    assert not (bool((d[far] > 0).all()) and bool((d[near] < 0).all()))


def test_the_albedo_starts_as_the_colour_seen_at_the_pixel():
    torch.manual_seed(0)
    b = _batch(_config(), batch=1)
    points = torch.rand(1, 500, 3) - 0.5
    camera = (b["K"], b["world_to_cam"], b["orthographic"], b["depth_center"], (64, 64))
    uv, _ = project(points, b["K"], b["world_to_cam"], b["orthographic"])
    col, row = uv[0].round().long().clamp(0, 63).T
    seen = (b["image"][0, :, row, col].T * 0.5 + 0.5).clamp(0.02, 0.98)
    with torch.no_grad():
        for prior, most in ((True, 0.15), (False, None)):
            net = PhorhumNet(_config(albedo_prior=prior))
            _, albedo = net.surface(net.encode(b["image"]), points, *camera)
            error = float((albedo[0] - seen).abs().median())
            if most is not None:
                assert error < most  # the photo's colour, give or take f's start and bilinear sampling
            else:
                assert error > 0.15  # f alone starts near grey


def test_a_run_stored_before_the_starts_existed_keeps_what_it_was_trained_with():
    from avatarkit.methods.configs import from_dict, to_dict

    stored = to_dict(PRESETS["small"])
    old = {k: v for k, v in stored.items() if k not in ("albedo_prior", "sphere_init")}
    config = from_dict(type(PRESETS["small"]), old)
    assert config.albedo_prior is False and config.sphere_init == 0.0
    assert from_dict(type(PRESETS["small"]), stored) == PRESETS["small"]  # a new run's values are its own
