"""Image-based methods' data: subjects by stem, items fixed by their key, points on the pixels that show them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avatarkit.errors import AvatarkitWarning, InputError
from avatarkit.methods import image_data as D
from avatarkit.methods.configs import replace
from avatarkit.methods.pifu.config import PRESETS
from avatarkit.render.projection import project_to_grid

CONFIG = replace(PRESETS["small"], image_size=64, points=400)


@pytest.fixture(scope="module")
def dataset(pifu_data):
    subjects = D.match_subjects({"views": [pifu_data / "views"], "samples": [pifu_data / "samples"]})
    return D.ImagePointsDataset(subjects, [D.read_view_set(s.views) for s in subjects], CONFIG, augment=True)


def test_subjects_match_by_stem_and_find_their_meshes(pifu_data, tmp_path):
    subjects = D.match_subjects({"views": [pifu_data / "views"], "samples": [pifu_data / "samples"]})
    assert [s.stem for s in subjects] == ["human_0000", "human_0001", "human_0002"]
    assert all(s.mesh == pifu_data / "meshes" / f"{s.stem}.h5" for s in subjects)  # from the samples' provenance
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "someone.h5").write_bytes((pifu_data / "samples" / "human_0000.h5").read_bytes())
    with pytest.raises(InputError, match=r"no stem is shared by the views and samples files.*samples stems: someone"):
        D.match_subjects({"views": [pifu_data / "views"], "samples": [tmp_path / "other"]})


def test_an_item_is_fixed_by_its_key(dataset):
    a, b, c = dataset[(1, 42, -1)], dataset[(1, 42, -1)], dataset[(1, 43, -1)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["points"], c["points"])
    assert a["image"].shape == (3, 64, 64) and a["points"].shape == (400, 3)
    assert a["labels"].mean() <= 0.5  # PIFu's balance: at most half inside


def test_inside_points_project_onto_the_augmented_mask(dataset):
    """Augmentation moves image and camera together: the subject's inside points still land
    on its (zoomed, shifted, flipped) silhouette, and would not with the camera left alone."""
    plain = D.ImagePointsDataset(dataset.subjects, dataset.view_sets, CONFIG, augment=False)

    def on_mask(item, K):
        inside = item["points"][item["labels"] > 0.5][None]
        grid, _ = project_to_grid(inside, K[None], item["world_to_cam"][None], bool(item["orthographic"]), 64, 64)
        px = np.rint((grid[0].numpy() + 1) / 2 * 64 - 0.5).astype(int).clip(0, 63)
        return item["mask"][0].numpy()[px[:, 1], px[:, 0]].mean()

    hits, control = [], []
    for seed in range(12):
        item = dataset[(seed % 3, seed, -1)]
        hits.append(on_mask(item, item["K"]))
        control.append(on_mask(item, plain[(seed % 3, seed, -1)]["K"]))
    assert np.mean(hits) > 0.97 and min(hits) > 0.93, hits  # 64-pixel masks: thin limbs round off
    assert np.mean(control) < np.mean(hits) - 0.05, control


def test_silhouette_draw_takes_outside_points_in_front_of_and_behind_the_subject(dataset):
    """With silhouette_draw 1, every outside point of an item projects inside the item's own
    (augmented) silhouette: the depth the image leaves open; with 0 (PIFu), about half do."""
    focused = D.ImagePointsDataset(dataset.subjects, dataset.view_sets, replace(CONFIG, silhouette_draw=1.0), True)

    def outside_on_mask(item):
        outside = item["points"][item["labels"] < 0.5][None]
        grid, _ = project_to_grid(outside, item["K"][None], item["world_to_cam"][None], True, 64, 64)
        px = np.rint((grid[0].numpy() + 1) / 2 * 64 - 0.5).astype(int)
        seen = ((px >= 0) & (px < 64)).all(1)
        on = np.zeros(len(px), bool)
        on[seen] = item["mask"][0].numpy()[px[seen, 1], px[seen, 0]] > 0.5
        return on.mean()

    for seed in range(4):
        item = focused[(seed % 3, seed, -1)]
        assert outside_on_mask(item) == 1.0 and item["labels"].mean() == 0.5
        assert outside_on_mask(dataset[(seed % 3, seed, -1)]) < 0.8  # PIFu draw: about half


def test_perspective_views_and_background_swaps(pifu_data, tmp_path):
    """Perspective views train as orthographic ones do (points on their pixels); a background
    folder fills what the mask leaves out, unless the image is masked as PIFu's is."""
    from PIL import Image

    from avatarkit.io.hdf5 import read_mesh, write_artifact
    from avatarkit.render.render import RenderConfig, render
    from avatarkit.render.rigs import orbit

    mesh = read_mesh(pifu_data / "meshes" / "human_0001.h5")
    v = mesh.vertices
    center = 0.5 * (v.min(0) + v.max(0))
    cams = orbit(center, float(np.linalg.norm(v - center, axis=1).max()), [0.0, 120.0, 240.0], [10.0], (64, 64))
    write_artifact(tmp_path / "views" / "human_0001.h5", render(mesh, cams, RenderConfig()))
    with pytest.warns(AvatarkitWarning, match="without a partner left out: human_0000, human_0002"):
        subjects = D.match_subjects({"views": [tmp_path / "views"], "samples": [pifu_data / "samples"]})
    (tmp_path / "rooms").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (80, 90, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "rooms" / "a.png")
    for mask_input in (True, False):
        config = replace(CONFIG, background_dir=str(tmp_path / "rooms"), mask_input=mask_input)
        data = D.ImagePointsDataset(subjects, [D.read_view_set(s.views) for s in subjects], config, augment=True)
        item = data[(0, 5, -1)]
        assert not bool(item["orthographic"])
        inside = item["points"][item["labels"] > 0.5][None]
        grid, _ = project_to_grid(inside, item["K"][None], item["world_to_cam"][None], False, 64, 64)
        px = np.rint((grid[0].numpy() + 1) / 2 * 64 - 0.5).astype(int).clip(0, 63)
        assert item["mask"][0].numpy()[px[:, 1], px[:, 0]].mean() > 0.93
        background = item["image"][:, item["mask"][0] == 0]
        assert (background.abs().max() == 0) if mask_input else (background.std() > 0.3)


def test_steps_split_across_ranks_and_resume_in_place():
    one = list(D.StepBatches([0, 2, 5, 7], batch_size=4, seed=1, start=0, stop=6))
    ranks = [list(D.StepBatches([0, 2, 5, 7], 2, 1, 0, 6, rank=r, world=2)) for r in range(2)]
    assert [a + b for a, b in zip(*ranks, strict=True)] == one
    assert list(D.StepBatches([0, 2, 5, 7], 4, 1, 3, 6)) == one[3:]
    subjects = [key[0] for batch in one for key in batch]
    assert sorted(subjects[:4]) == [0, 2, 5, 7]  # an epoch sees every subject once


def test_views_without_targets_fall_back_on_the_rigs_focus(pifu_data, tmp_path):
    from avatarkit.io.hdf5 import read_artifact, write_artifact

    views = read_artifact(pifu_data / "views" / "human_0000.h5", "views")
    assert views.target is not None
    expected = D.read_view_set(pifu_data / "views" / "human_0000.h5").depth_center
    views.target = None
    write_artifact(tmp_path / "old.h5", views)
    assert np.allclose(D.read_view_set(tmp_path / "old.h5").depth_center, expected, atol=1e-4)
    one = read_artifact(pifu_data / "views" / "human_0000.h5", "views")
    for name in ("K", "world_to_cam", "rgb", "mask", "depth", "normal", "uv", "label"):
        value = getattr(one, name)
        setattr(one, name, None if value is None else value[:1])
    one.target, one.lighting = None, {}
    write_artifact(tmp_path / "single.h5", one)
    with pytest.raises(InputError, match="depth is unknown"):
        D.read_view_set(tmp_path / "single.h5")
