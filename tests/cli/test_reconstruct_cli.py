"""reconstruct as a researcher types it: a views file, a photo with its mask, a folder of
photos; and every way the input can be wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import TINY_PIFU, assert_clean_failure, invoke
from PIL import Image

from avatarkit.io.hdf5 import read_artifact, read_mesh
from avatarkit.io.meshfile import load_mesh


@pytest.fixture(scope="module")
def run(pifu_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "pifu"
    r = invoke(
        "train", "pifu", "--views", pifu_data / "views", "--samples", pifu_data / "samples", "-o", out,
        *TINY_PIFU, "--max-steps", 40, "--val-every", 40, "--lr", 2e-3, "-q",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def photo(pifu_data, tmp_path):
    """View 0 of a subject as a user's photo.png with photo_mask.png beside it."""
    views = read_artifact(pifu_data / "views" / "human_0002.h5", "views")
    Image.fromarray(views.rgb[0]).save(tmp_path / "photo.png")
    Image.fromarray(views.mask[0]).save(tmp_path / "photo_mask.png")
    return tmp_path / "photo.png"


def test_from_a_views_file_into_the_ground_truths_frame(run, pifu_data, tmp_path):
    views = read_artifact(pifu_data / "views" / "human_0001.h5", "views")
    Image.fromarray(views.rgb[2]).save(tmp_path / "photo.png")
    Image.fromarray(views.mask[2]).save(tmp_path / "photo_mask.png")
    out = tmp_path / "pred.h5"
    r = invoke("reconstruct", run, pifu_data / "views" / "human_0001.h5", "--view", 2, "-o", out,
               "--resolution", 64, "--preview", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)["written"][0]
    assert info["queries"] < info["lattice_points"] and info["faces"] > 0
    pred, gt = read_mesh(out), read_mesh(pifu_data / "meshes" / "human_0001.h5")
    assert np.linalg.norm(pred.vertices.mean(0) - gt.vertices.mean(0)) < 0.25  # the same place, in metres
    with Image.open(tmp_path / "pred.preview.png") as preview:  # input, truth, front, side
        assert preview.size == (4 * 512, 512)
    # the same view through --camera (the views file's own cameras), the last checkpoint
    r = invoke("reconstruct", run, tmp_path / "photo.png", "--camera", pifu_data / "views" / "human_0001.h5",
               "--camera-index", 2, "--checkpoint", "last", "--keep-all", "-o", tmp_path / "again.h5",
               "--resolution", 64)  # fmt: skip
    assert r.exit_code == 0, r.output
    again = read_mesh(tmp_path / "again.h5")
    assert len(again.faces) >= len(pred.faces)  # --keep-all keeps every part
    assert np.abs(again.vertices.min(0) - pred.vertices.min(0)).max() < 0.05


def test_a_photo_with_its_mask_beside_it_uses_the_runs_camera(run, photo, tmp_path):
    r = invoke("reconstruct", run, photo, "-o", tmp_path / "photo_mesh.obj", "--resolution", 32)
    assert r.exit_code == 0, r.output
    mesh = load_mesh(tmp_path / "photo_mesh.obj")
    assert 1.0 < np.ptp(mesh.vertices[:, 1]) < 2.6  # a person's height, in metres
    # the same photo with the mask as its alpha channel
    rgba = np.dstack([np.asarray(Image.open(photo)), np.asarray(Image.open(tmp_path / "photo_mask.png"))])
    (tmp_path / "alpha").mkdir()
    Image.fromarray(rgba).save(tmp_path / "alpha" / "cut.png")
    r = invoke("reconstruct", run, tmp_path / "alpha" / "cut.png", "-o", tmp_path / "cut.h5", "--resolution", 32)
    assert r.exit_code == 0, r.output
    assert np.allclose(read_mesh(tmp_path / "cut.h5").vertices.mean(0), mesh.vertices.mean(0), atol=0.02)


def test_a_folder_of_photos_with_a_folder_of_masks(run, photo, tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for name in ("a", "b"):
        (images / f"{name}.png").write_bytes(photo.read_bytes())
        (masks / f"{name}.png").write_bytes((tmp_path / "photo_mask.png").read_bytes())
    r = invoke("reconstruct", run, images / "a.png", images / "b.png", "--mask", masks, "-o", tmp_path / "out",
               "--resolution", 32, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.h5", "b.h5"]
    # finished outputs are kept, mesh files too, unless --overwrite
    r = invoke("reconstruct", run, photo, "-o", tmp_path / "one.obj", "--resolution", 32)
    before = (tmp_path / "one.obj").stat().st_mtime_ns
    r = invoke("reconstruct", run, photo, "-o", tmp_path / "one.obj", "--resolution", 32, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["skipped"] == [str(tmp_path / "one.obj")]
    assert (tmp_path / "one.obj").stat().st_mtime_ns == before


def test_bad_inputs_name_the_problem(run, photo, pifu_data, tmp_path):
    (tmp_path / "empty_run").mkdir()
    assert_clean_failure(invoke("reconstruct", tmp_path / "empty_run", photo, "-o", tmp_path / "x.h5"), "no checkpoint")
    Image.fromarray(np.zeros((80, 100, 3), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.full((80, 100), 255, np.uint8)).save(tmp_path / "big_mask.png")
    r = invoke("reconstruct", run, tmp_path / "big.png", "-o", tmp_path / "x.h5")
    assert_clean_failure(r, "big.png", "100 x 80", "64 x 64")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "none.png")
    r = invoke("reconstruct", run, photo, "--mask", tmp_path / "none.png", "-o", tmp_path / "x.h5")
    assert_clean_failure(r, "none.png", "the mask is empty")
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / "lone.png").write_bytes(photo.read_bytes())
    r = invoke("reconstruct", run, tmp_path / "lone" / "lone.png", "-o", tmp_path / "x.h5")
    assert_clean_failure(r, "lone.png", "no mask", "--mask-threshold")
    r = invoke("reconstruct", run, pifu_data / "views" / "human_0000.h5", "--view", 8, "-o", tmp_path / "x.h5")
    assert_clean_failure(r, "human_0000.h5", "has 8 views")
    r = invoke("reconstruct", run, pifu_data / "samples" / "human_0000.h5", "-o", tmp_path / "x.h5")
    assert_clean_failure(r, "'samples'", "'views'")
    r = invoke("reconstruct", run, "--latent", 0, "-o", tmp_path / "x.h5")  # a code per shape is deepsdf's
    assert_clean_failure(r, "--latent: pifu learns no code per shape", "images or views files")
    assert not (tmp_path / "x.h5").exists()
    # --preview must not write over an input: photo.obj's preview would be photo.preview.png
    (tmp_path / "photo.preview.png").write_bytes(photo.read_bytes())
    r = invoke("reconstruct", run, tmp_path / "photo.preview.png", "--mask", tmp_path / "photo_mask.png",
               "-o", tmp_path / "photo.obj", "--preview")  # fmt: skip
    assert_clean_failure(r, "would write over the input")
    # a plain background is enough with --mask-threshold: the same person as with its mask
    r = invoke("reconstruct", run, tmp_path / "lone" / "lone.png", "--mask-threshold", 10, "-o", tmp_path / "x.h5",
               "--resolution", 32)  # fmt: skip
    assert r.exit_code == 0, r.output
    r = invoke("reconstruct", run, photo, "-o", tmp_path / "masked.h5", "--resolution", 32)
    assert r.exit_code == 0, r.output
    by_threshold, by_mask = read_mesh(tmp_path / "x.h5").vertices, read_mesh(tmp_path / "masked.h5").vertices
    assert np.allclose(by_threshold.mean(0), by_mask.mean(0), atol=0.03)
