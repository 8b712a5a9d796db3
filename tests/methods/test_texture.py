"""train texture (Sample&Refine) and unwrap-uv --per-view / --complete."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.methods.texture.config import PRESETS, TextureConfig
from avatarkit.methods.texture.model import SamplerNet, TextureNet, identity_grid, ssim

TINY = ("--config", "tiny", "--val-fraction", "0.34", "--max-steps", "4", "--val-every", "4")


@pytest.fixture(scope="module")
def people(tmp_path_factory, make_generator):
    """Three synthetic people in clothes (64-texel textures), their texture-preset views (3
    yaws) and per-view partial textures, and a tiny texture run trained on them."""
    root = tmp_path_factory.mktemp("texture")
    gen = make_generator(texture="clothes", texture_size=64, seed=0)
    meshes = root / "meshes"
    meshes.mkdir()
    for i in range(3):
        write_artifact(meshes / f"human_{i:04d}.h5", gen.subject(i))
    r = invoke("render", *sorted(meshes.glob("*.h5")), "-o", root / "views", "--preset", "texture", "--views", 3,
               "--size", 64, "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = invoke("unwrap-uv", *sorted(meshes.glob("*.h5")), "--views", root / "views", "-o", root / "partial",
               "--symmetric", "--per-view", "--size", 64, "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = invoke("train", "texture", "--partial", root / "partial", "--meshes", meshes, "-o", root / "run", *TINY,
               "--json", "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    return root, json.loads(r.stdout)


def test_a_new_sampler_samples_every_texel_where_it_is():
    config = PRESETS["tiny"]
    net = SamplerNet(config)
    source = torch.rand(2, 3, 16, 16)
    mask = (torch.rand(2, 1, 16, 16) > 0.5).float()
    sampled, offsets = net(source * mask, mask, torch.zeros(2, 3, 16, 16), source)
    assert offsets.abs().max() < 1e-6
    assert torch.allclose(sampled, source, atol=1e-5)
    grid = identity_grid(1, 4, 8, "cpu")
    assert torch.allclose(grid[0, 0, 0], torch.tensor([-7 / 8, -3 / 4]))


def test_ssim_is_one_for_equal_images_and_lower_for_noise():
    a = torch.rand(1, 3, 32, 32)
    assert torch.allclose(ssim(a, a), torch.ones(1, 1, 32, 32), atol=1e-5)
    assert ssim(a, (a + 0.3 * torch.randn_like(a)).clamp(0, 1)).mean() < 0.9


@pytest.mark.parametrize("blurs", [(), (4, 16)])
def test_the_sampler_learns_to_fetch_a_hidden_half_from_its_mirror_only_with_blurred_losses(blurs):
    """The left half seen, the right half hidden (a mirrored ramp; what SamplerNet samples there
    is the nearest seen colour, flat): the sampled texture's own gradient is zero in a flat hole,
    so only the blurred losses (``sampler_blurs``) teach SamplerNet to fetch each hidden texel
    from its mirror."""
    from avatarkit.methods.texture.train import TextureMethod

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32 x 32 toy: one thread is faster than two on a busy machine
    config = TextureConfig(width=8, depth=3, batch_size=1, stage="sampler", smooth_weight=0.0, ssim_weight=0.0,
                           sampler_blurs=blurs)  # fmt: skip
    method = TextureMethod(config, partial=[Path("unused")])
    model = TextureNet(config)
    truth = torch.full((1, 3, 32, 32), 0.5)
    truth[:, 0, :, :16] = torch.linspace(0, 1, 16)
    truth[:, 0, :, 16:] = torch.linspace(1, 0, 16)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :16] = 1
    source = truth.clone()
    source[..., 16:] = truth[..., 15:16]
    batch = {"partial": truth * mask, "mask": mask, "normal": torch.zeros(1, 3, 32, 32), "source": source,
             "truth": truth, "coverage": torch.ones(1, 1, 32, 32)}  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    try:
        for _ in range(200):
            loss, _ = method.loss(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        sampled, _ = model.sampler(batch["partial"], mask, batch["normal"], source)
    error = float((sampled - truth)[..., 16:].abs().mean())
    start = float((source - truth)[..., 16:].abs().mean())
    if blurs:
        assert error < 0.25 * start
    else:
        assert error > 0.9 * start
    assert bool(model.sampler_trained) and not bool(model.refiner_trained)


def test_per_view_partial_textures_and_the_texture_preset(people):
    root, _ = people
    tex = read_artifact(root / "partial" / "human_0000.h5", "texture")
    assert tex.view_yaw.tolist() == [-90.0, 0.0, 90.0]  # both ends of the texture preset's range
    assert tex.view_texture.shape == (3, 64, 64, 3) and tex.view_visibility.shape == (3, 64, 64)
    # the whole texture's visibility is the best over the views; each view sees less than all
    assert np.allclose(tex.visibility, tex.view_visibility.max(0))
    assert all((v > 0).sum() < (tex.visibility > 0).sum() for v in tex.view_visibility)
    # mirror-filled texels were not seen by that view
    assert not ((tex.view_mirrored > 0) & (tex.view_visibility > 0)).any()
    assert tex.attrs["uv_layout"].startswith("uv-") and tex.attrs["per_view"]


def test_training_validates_on_held_out_people_and_records_the_layout(people):
    root, summary = people
    assert summary["subjects"] == 3 and summary["val"] == 1 and summary["texture_size"] == 64
    assert summary["uv_layout"].startswith("uv-")
    for key in ("val/psnr_unseen", "val/psnr_all", "val/ssim_all", "val/mirror_psnr_unseen"):
        assert np.isfinite(summary["metrics"][key])
    config = json.loads((root / "run" / "config.json").read_text())
    assert config["config"]["texture_size"] == 64 and config["split"]["val"]


def test_complete_keeps_the_observed_texels_and_fills_the_others(people, tmp_path):
    root, _ = people
    mesh, views = root / "meshes" / "human_0002.h5", root / "views" / "human_0002.h5"
    r = invoke("unwrap-uv", mesh, "--views", views, "-o", tmp_path / "tex.h5", "--complete", root / "run", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["completion"] == "sampler+refiner"
    r = invoke("unwrap-uv", mesh, "--views", views, "-o", tmp_path / "partial.h5", "--symmetric", "--size", 64)
    assert r.exit_code == 0, r.output
    done = read_artifact(tmp_path / "tex.h5", "texture")
    partial = read_artifact(tmp_path / "partial.h5", "texture")
    assert done.attrs["completed"] and done.texture.shape == (64, 64, 3)
    from avatarkit.methods.texture.data import feather

    inner = feather(partial.visibility > 0, int(done.attrs["feather"])) == 1
    assert inner.sum() > 100
    assert np.array_equal(done.texture[inner], partial.texture[inner])  # observed texels kept as observed
    r = invoke("render", mesh, "--texture", tmp_path / "tex.h5", "-o", tmp_path / "turn.h5", "--views", 2,
               "--size", 32, "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output


def test_complete_refuses_another_layout_another_method_and_another_size(people, tmp_path):
    root, _ = people
    mesh, views = root / "meshes" / "human_0002.h5", root / "views" / "human_0002.h5"
    # a mesh with another UV layout: the same person with an xatlas atlas
    r = invoke("unwrap-uv", mesh, "-o", tmp_path / "atlas.h5", "--atlas", "--size", 64, "--quiet")
    assert r.exit_code == 0, r.output
    out = tmp_path / "out.h5"
    r = invoke("unwrap-uv", tmp_path / "atlas.h5", "--views", views, "-o", out, "--complete", root / "run")
    assert_clean_failure(r, "atlas.h5", "UV layout")
    assert not out.exists()
    # a run of another method
    from avatarkit.methods import checkpoint

    other = tmp_path / "pifu_run"
    checkpoint.save(checkpoint.RunFolder(other).last, {"method": "pifu", "config": {}, "model": {}})
    r = invoke("unwrap-uv", mesh, "--views", views, "-o", out, "--complete", other)
    assert_clean_failure(r, "pifu run", "train texture")
    assert not out.exists()
    r = invoke("unwrap-uv", mesh, "--views", views, "-o", out, "--complete", root / "run", "--size", 32)
    assert_clean_failure(r, "64-texel")
    assert not out.exists()


def test_training_refuses_textures_of_two_sizes(people, tmp_path):
    root, _ = people
    mixed = tmp_path / "partial"
    mixed.mkdir()
    for name in ("human_0000.h5", "human_0001.h5"):
        (mixed / name).write_bytes((root / "partial" / name).read_bytes())
    r = invoke("unwrap-uv", root / "meshes" / "human_0002.h5", "--views", root / "views" / "human_0002.h5",
               "-o", mixed / "human_0002.h5", "--symmetric", "--per-view", "--size", 32, "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    r = invoke("train", "texture", "--partial", mixed, "--meshes", root / "meshes", "-o", run, *TINY)
    assert_clean_failure(r, "human_0002.h5", "32 x 32", "one size")
    assert not (run / "checkpoints").exists()


def seed_folder(people, data):
    """``people``'s partial textures written as Sample&Refine's dataset lays them out."""
    from PIL import Image

    root, _ = people
    for i in range(3):
        tex = read_artifact(root / "partial" / f"human_{i:04d}.h5", "texture")
        with h5py.File(root / "meshes" / f"human_{i:04d}.h5") as f:
            truth = f["/mesh/texture"][()]
        (data / "texture_map").mkdir(parents=True, exist_ok=True)
        Image.fromarray(truth).save(data / "texture_map" / f"image_{i:04d}_texture_map.png")
        for v, yaw in enumerate(tex.view_yaw):
            filled = (tex.view_visibility[v] > 0) | (tex.view_mirrored[v] > 0)
            for sub, image in (
                ("symmetry", np.where(filled[..., None], tex.view_texture[v], 0).astype(np.uint8)),
                ("mask_symm", (filled * 255).astype(np.uint8)),
                ("normal_map", np.rint((tex.normal_map + 1) / 2 * 255).astype(np.uint8)),
            ):
                folder = data / sub / str(int(yaw))
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(folder / f"image_{i:04d}_{sub}.png")
    return data


def test_seed_layout_folders_are_read_as_pairs(people, tmp_path):
    """A folder laid out as Sample&Refine's dataset (PNG partial textures, masks and normal maps
    by yaw, full textures) is read as pairs: one per image name, its views by yaw."""
    from avatarkit.methods.texture.data import read_pairs

    data = seed_folder(people, tmp_path / "Dataset")
    pairs = read_pairs([data])
    assert [p.stem for p in pairs] == ["image_0000", "image_0001", "image_0002"]
    assert pairs[0].partial.shape == (3, 64, 64, 3) and pairs[0].yaw.tolist() == [-90.0, 0.0, 90.0]
    assert pairs[0].coverage.mean() > 0.3 and pairs[0].layout == ""
    tex = read_artifact(people[0] / "partial" / "human_0000.h5", "texture")
    assert np.array_equal(pairs[0].filled, (tex.view_visibility > 0) | (tex.view_mirrored > 0))


def test_seed_layout_folders_train(people, tmp_path):
    data = seed_folder(people, tmp_path / "Dataset")
    r = invoke("train", "texture", "--partial", data, "-o", tmp_path / "run", *TINY, "--json", "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["uv_layout"] == "unrecorded"


def test_the_refiner_stage_starts_from_another_runs_sampler_and_keeps_it(people, tmp_path):
    root, _ = people
    data = ("--partial", root / "partial", "--meshes", root / "meshes")
    r = invoke("train", "texture", *data, "-o", tmp_path / "none", *TINY, "--stage", "refiner")
    assert_clean_failure(r, "--sampler-run")
    r = invoke("train", "texture", *data, "-o", tmp_path / "refiner", *TINY, "--stage", "refiner",
               "--sampler-run", root / "run", "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    theirs = torch.load(root / "run" / "checkpoints" / "last.pt", weights_only=False)["model"]
    ours = torch.load(tmp_path / "refiner" / "checkpoints" / "last.pt", weights_only=False)["model"]
    for key in (k for k in theirs if k.startswith("sampler.")):
        assert torch.equal(theirs[key], ours[key]), key  # frozen
    assert bool(ours["refiner_trained"]) and bool(ours["sampler_trained"])


def test_per_view_needs_a_mesh_and_views(people, tmp_path):
    root, _ = people
    r = invoke("unwrap-uv", root / "meshes" / "human_0000.h5", "--atlas", "--per-view", "-o", tmp_path / "a.h5")
    assert_clean_failure(r, "--per-view")
    assert not (tmp_path / "a.h5").exists()


def test_a_partial_texture_file_is_completed_unless_of_another_layout(people, tmp_path):
    root, _ = people
    views = root / "views" / "human_0002.h5"
    r = invoke("unwrap-uv", root / "partial" / "human_0002.h5", "--complete", root / "run", "-o", tmp_path / "t.h5")
    assert r.exit_code == 0, r.output
    done = read_artifact(tmp_path / "t.h5", "texture")
    assert done.attrs["completion"] == "sampler+refiner" and done.texture.shape == (64, 64, 3)
    # a partial texture unwrapped onto another UV layout (an xatlas atlas of the same person)
    r = invoke("unwrap-uv", root / "meshes" / "human_0002.h5", "-o", tmp_path / "atlas.h5", "--atlas", "--quiet")
    assert r.exit_code == 0, r.output
    other = tmp_path / "other_layout.h5"
    r = invoke("unwrap-uv", tmp_path / "atlas.h5", "--views", views, "-o", other, "--symmetric", "--size", 64)
    assert r.exit_code == 0, r.output
    out = tmp_path / "out.h5"
    r = invoke("unwrap-uv", other, "--complete", root / "run", "-o", out)
    assert_clean_failure(r, "other_layout.h5", "UV layout")
    assert not out.exists()
