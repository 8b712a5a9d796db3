"""DeepSDF's networks: the paper's sizes, the public interface (decoder, features, codes,
fit_latent, mean_latent), and that a code can be fitted to a shape's points."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from avatarkit.errors import OptionError
from avatarkit.methods.configs import option_fields, replace
from avatarkit.methods.deepsdf.config import PRESETS, DeepSDFConfig
from avatarkit.methods.deepsdf.infer import fit_latent, mean_latent
from avatarkit.methods.deepsdf.model import DeepSDF


def test_the_default_is_deepsdfs_network():
    paper = PRESETS["default"]
    assert (paper.layers, paper.hidden, paper.latent_size, paper.latent_in) == (8, 512, 256, (4,))
    assert (paper.dropout, paper.clamp, paper.code_reg, paper.code_reg_warmup, paper.code_bound) == (
        0.2,
        0.1,
        1e-4,
        100,
        1,
    )
    assert (paper.batch_size, paper.points_per_shape, paper.lr, paper.lr * paper.code_lr_scale) == (
        64,
        16384,
        5e-4,
        1e-3,
    )
    assert (paper.fit_iterations, paper.fit_samples, paper.fit_lr) == (800, 8000, 5e-3)
    model = DeepSDF(replace(paper, shapes=3))
    widths = [(layer.in_features, layer.out_features) for layer in model.decoder.hidden]
    # specs.json dims 8 x 512, latent_in [4]: layer 3 leaves room for code and point fed again
    assert widths == [(259, 512), (512, 512), (512, 512), (512, 253), (512, 512), (512, 512), (512, 512), (512, 512)]
    assert model.decoder.output.in_features == 512 and model.codes.weight.shape == (3, 256)
    assert all(hasattr(layer, "parametrizations") for layer in model.decoder.hidden)  # weight norm
    assert not hasattr(model.decoder.output, "parametrizations")
    # codes start from N(0, CodeInitStdDev / sqrt(CodeLength)), bounded by CodeBound when used
    big = DeepSDF(replace(paper, shapes=400))
    assert float(big.codes.weight.detach().std()) == pytest.approx(1 / 16, rel=0.05)
    big.codes.weight.data[0] *= 100
    before = big.codes.weight.detach().clone()
    big(torch.tensor([1]), torch.zeros(1, 2, 3))
    after, short = big.codes.weight.detach(), before.norm(dim=1) <= 1
    assert torch.allclose(after.norm(dim=1)[~short], torch.tensor(1.0))  # CodeBound: every code, DDP ranks alike
    assert torch.equal(after[short], before[short]) and short.any() and not short[0]
    for config in PRESETS.values():
        config.check()
    assert "shapes" not in {f.name for f in option_fields(DeepSDFConfig)}  # set from the data, not an option


def test_the_public_interface_shapes_and_modes():
    config = replace(PRESETS["small"], shapes=2)
    torch.manual_seed(0)
    model = DeepSDF(config)
    latent, points = torch.randn(10, config.latent_size), torch.rand(10, 3) * 2 - 1
    model.eval().requires_grad_(False)
    sdf = model.decoder(latent, points)
    assert sdf.shape == (10, 1) and float(sdf.abs().max()) < 1  # tanh
    again, features = model.decoder.features(latent, points)
    assert torch.equal(again, sdf) and features.shape == (10, config.hidden)
    one = model.decoder(latent[0], points)  # one code (L,) for every point
    assert torch.allclose(one, model.decoder(latent[:1].expand(10, -1), points))
    # the output layer reads the features
    assert torch.allclose(torch.tanh(model.decoder.output(features)), sdf)
    model.train().requires_grad_(True)  # dropout only while training
    assert not torch.equal(model.decoder(latent, points), model.decoder(latent, points))
    pred, codes = model(torch.tensor([1, 0]), points[:8].reshape(2, 4, 3))
    assert pred.shape == (2, 4) and torch.equal(codes[0], model.codes.weight[1])
    assert mean_latent(model).shape == (config.latent_size,)
    assert torch.allclose(mean_latent(model), model.codes.weight.mean(0))
    groups = model.parameter_groups()
    assert [g["lr_scale"] for g in groups] == [1.0, config.code_lr_scale]


def test_fit_latent_finds_the_code_that_made_a_shape_and_leaves_the_decoder_alone():
    config = dataclasses.replace(PRESETS["small"], dropout=0.2, shapes=1)
    torch.manual_seed(1)
    decoder = DeepSDF(config).decoder
    truth = torch.randn(config.latent_size) * 0.5
    points = torch.rand(4000, 3) * 2 - 1
    with torch.no_grad():
        decoder.eval()
        sdf = decoder(truth, points)[:, 0]
    decoder.train()
    before = {k: v.clone() for k, v in decoder.state_dict().items()}

    def error(latent):
        with torch.no_grad():
            decoder.eval()
            return float((decoder(latent, points)[:, 0] - sdf).abs().mean())

    start = error(torch.zeros(config.latent_size))
    with torch.no_grad():  # as in validation: the fit still has gradients
        latent = fit_latent(decoder, points, sdf, iterations=150, samples=1000, l2reg=0.0, seed=3)
    assert latent.shape == (config.latent_size,) and not latent.requires_grad
    assert error(latent) < 0.2 * start
    assert all(torch.equal(before[k], v) for k, v in decoder.state_dict().items())
    assert all(p.requires_grad for p in decoder.parameters())
    decoder.train()
    assert torch.equal(
        fit_latent(decoder, points, sdf, iterations=5, seed=3), fit_latent(decoder, points, sdf, 5, seed=3)
    )
    assert decoder.training  # left in the mode it was in
    with pytest.raises(OptionError, match="iterations"):
        fit_latent(decoder, points, sdf, iterations=0)


def test_configs_that_cannot_build_a_network_are_one_line():
    small = PRESETS["small"]
    with pytest.raises(OptionError, match="--latent-in takes hidden layers 1 to 3"):
        replace(small, latent_in=(4,)).check()
    with pytest.raises(OptionError, match="--hidden"):
        replace(small, hidden=60).check()
    with pytest.raises(OptionError, match="--dropout"):
        replace(small, dropout=1.0).check()
