"""fit-head as a researcher types it: a head-like shape rendered as a capture, fitted without
a prior (IDR) and with a tiny DeepSDF prior (H3D-Net); the fit must learn (its error falls with
steps); IDR folders in millimetres come back in millimetres; bad inputs in one line, nothing
written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.structures import Mesh

EGG_CENTER = np.array([0.0, 1.5, 0.0])


def egg(scale=(0.09, 0.12, 0.10)) -> Mesh:
    shape = trimesh.creation.icosphere(3, 1.0).apply_scale(scale)
    colors = np.where(shape.vertices[:, 2:3] > 0, [200, 150, 120], [60, 40, 30]).astype(np.uint8)
    return Mesh((shape.vertices + EGG_CENTER).astype(np.float32), np.asarray(shape.faces), vertex_colors=colors)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """An egg-shaped 'head' and its capture: 12 views of 64 px around it, as a views file."""
    root = tmp_path_factory.mktemp("fit_head")
    write_artifact(root / "head.h5", egg())
    r = invoke("render", root / "head.h5", "-o", root / "views.h5", "--views", 12, "--size", 64, "--pitch", 0,
               "--pitch", 20, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    return root


def chamfer_mm(pred, gt) -> float:
    r = invoke("evaluate-chamfer", pred, gt, "--units", "mm", "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["chamfer_l1"]


FAST = ("--config", "small", "--rays", 128, "--resolution", 32, "--seed", 0)


def test_fit_without_a_prior_learns_the_head(scene, tmp_path):
    early, late = tmp_path / "early.h5", tmp_path / "late.h5"
    r = invoke("fit-head", scene / "views.h5", "--no-prior", "--views", 8, "-o", early, *FAST, "--steps", 2, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("fit-head", scene / "views.h5", "--no-prior", "--views", 8, "-o", late, *FAST, "--steps", 120,
               "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["views_chosen"] == "spread" and len(summary["views"]) == 8
    assert summary["steps"] == 120 and summary["stopped"] == "done"
    before, after = chamfer_mm(early, scene / "head.h5"), chamfer_mm(late, scene / "head.h5")
    assert after < 0.6 * before, (before, after)
    mesh = read_artifact(late, "mesh")
    assert mesh.vertex_colors is not None  # the colour network's colours
    assert np.abs(mesh.vertices.mean(0) - EGG_CENTER).max() < 0.03  # in the scene's world frame
    assert (tmp_path / "late.preview.png").is_file()


def test_an_idr_folder_in_millimetres_gives_a_mesh_in_millimetres(scene, tmp_path):
    """H3DS scenes are in mm: cameras.npz in mm in, an OBJ in mm out (and .h5 in metres)."""
    from avatarkit.io.cameras import idr_scale_mat, read_idr, write_idr

    folder = tmp_path / "idr"
    r = invoke("render", scene / "head.h5", "-o", folder, "--views", 6, "--size", 48, "--export", "idr", "-q")
    assert r.exit_code == 0, r.output
    idr = folder
    cams = read_idr(idr / "cameras.npz")
    data = np.load(idr / "cameras.npz")
    scale = np.asarray(data["scale_mat_0"])
    mm = cams.world_to_cam.copy()
    mm[:, :3, 3] *= 1000.0
    cams.world_to_cam = mm
    write_idr(idr / "cameras.npz", cams, idr_scale_mat(scale[:3, 3] * 1000.0, scale[0, 0] * 1000.0))
    obj, h5 = tmp_path / "fit.obj", tmp_path / "fit.h5"
    for out in (obj, h5):
        r = invoke("fit-head", idr, "--no-prior", "-o", out, "--units", "mm", *FAST, "--steps", 3, "--no-preview", "-q")
        assert r.exit_code == 0, r.output
    in_mm = trimesh.load(obj, force="mesh").vertices
    in_m = read_artifact(h5, "mesh").vertices
    assert np.abs(in_mm.mean(0) / 1000.0 - in_m.mean(0)).max() < 1e-3
    assert np.abs(in_m.mean(0) - EGG_CENTER).max() < 0.1


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    """A tiny DeepSDF prior of eggs of different proportions (each in its own unit sphere)."""
    root = tmp_path_factory.mktemp("egg_prior")
    rng = np.random.default_rng(0)
    for i in range(5):
        write_artifact(root / "meshes" / f"egg_{i}.h5", egg(tuple(rng.uniform(0.07, 0.13, 3))))
    r = invoke("sample-sdf", *sorted((root / "meshes").iterdir()), "-o", root / "samples", "--preset", "deepsdf",
               "--points", 6000, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = invoke("train", "deepsdf", "--samples", root / "samples", "-o", root / "run", "--config", "small",
               "--latent-size", 8, "--hidden", 64, "--layers", 4, "--latent-in", 2, "--points-per-shape", 512,
               "--batch-size", 4, "--dropout", 0, "--lr", 2e-3, "--max-steps", 150, "--val-fraction", 0, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    return root / "run"


def test_fit_with_a_prior_starts_from_the_prior_and_fine_tunes(scene, prior, tmp_path):
    out, keep = tmp_path / "fit.h5", tmp_path / "run"
    r = invoke("fit-head", scene / "views.h5", "--prior", prior, "--views", 3, "-o", out, *FAST, "--steps", 12,
               "--prior-steps", 6, "--keep-run", keep, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["prior"] == str(prior) and len(summary["views"]) == 3
    assert next(h["stage"] for h in map(json.loads, (keep / "history.jsonl").read_text().splitlines())) == 1.0
    # the prior alone (its mean code, before any step) is already a head-sized closed surface
    assert chamfer_mm(out, scene / "head.h5") < 40.0


def test_the_prior_is_frozen_in_stage_one(scene, prior):
    """H3D-Net's stage 1 moves the latent code and the colour network only."""
    import dataclasses

    import torch

    from avatarkit.fitting.head import PRESETS, fit_scene
    from avatarkit.fitting.scenes import read_scene
    from avatarkit.methods.deepsdf.prior import load_prior

    net = load_prior(prior)
    before = [p.detach().clone() for p in net.prior_parameters()]
    latent = net.latent.detach().clone()
    config = dataclasses.replace(PRESETS["small"], steps=4, prior_steps=4, rays=64)
    fit_scene(read_scene(scene / "views.h5"), [0, 4, 8], config, net)
    assert all(torch.equal(a, b) for a, b in zip(before, net.prior_parameters(), strict=True))
    assert not torch.equal(latent, net.latent.detach())
    config = dataclasses.replace(config, steps=6)
    fit_scene(read_scene(scene / "views.h5"), [0, 4, 8], config, net)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.prior_parameters(), strict=True))


def test_bad_inputs_are_one_line_and_write_nothing(scene, tmp_path):
    out = tmp_path / "fit.h5"
    views = scene / "views.h5"
    cases = [
        ((views, "-o", out), "--prior RUN"),
        ((views, "--no-prior", "--prior", scene, "-o", out), "--prior RUN"),
        ((views, "--no-prior", "--views", 32, "-o", out), "fewer than --views 32"),
        ((views, "--no-prior", "--view-ids", "0,99", "-o", out), "view 99"),
        ((views, "--no-prior", "-o", views), "input"),
        ((scene / "head.h5", "--no-prior", "-o", out), "'mesh'"),
        ((tmp_path / "absent", "--no-prior", "-o", out), "no such file"),
        ((views, "--prior", scene / "head.h5", "-o", out), ""),
    ]
    for args, needle in cases:
        assert_clean_failure(invoke("fit-head", *args, *FAST, "--steps", 1), needle)
        assert not out.exists()


def test_scene_folders_that_cannot_be_fitted(scene, tmp_path):
    r = invoke("render", scene / "head.h5", "-o", tmp_path / "idr", "--views", 4, "--size", 32, "--export", "idr", "-q")
    assert r.exit_code == 0, r.output
    idr = next(p.parent for p in tmp_path.rglob("cameras.npz"))
    out = tmp_path / "fit.h5"
    data = dict(np.load(idr / "cameras.npz"))
    np.savez(idr / "cameras.npz", **{k: v for k, v in data.items() if not k.startswith("scale_mat")})
    assert_clean_failure(invoke("fit-head", idr, "--no-prior", "-o", out, *FAST), "scale_mat")
    np.savez(idr / "cameras.npz", **data)
    from PIL import Image

    mask = sorted((idr / "mask").iterdir())[0]
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mask)
    assert_clean_failure(invoke("fit-head", idr, "--no-prior", "-o", out, *FAST), "empty")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mask)
    assert_clean_failure(invoke("fit-head", idr, "--no-prior", "-o", out, *FAST), "mask")
    for m in (idr / "mask").iterdir():
        m.unlink()
    assert_clean_failure(invoke("fit-head", idr, "--no-prior", "-o", out, *FAST), "no masks")
    assert not out.exists()


def test_cameras_that_do_not_see_the_mask(scene, tmp_path):
    views = read_artifact(scene / "views.h5", "views")
    turned = views.world_to_cam.copy()
    turned[:, :3, 3] += np.array([5.0, 0.0, 0.0])  # every camera looks 5 m beside the head
    views.world_to_cam = turned
    bad = write_artifact(tmp_path / "bad.h5", views)
    assert_clean_failure(invoke("fit-head", bad, "--no-prior", "-o", tmp_path / "fit.h5", *FAST), "does not see")


@pytest.mark.timeout(300)
def test_ctrl_c_keeps_the_best_surface_so_far(scene, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "fit.h5"
    cmd = [sys.executable, "-m", "avatarkit", "fit-head", str(scene / "views.h5"), "--no-prior", "-o", str(out),
           *map(str, FAST), "--steps", "100000"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=dict(os.environ, COLUMNS="200"))
    try:
        for line in proc.stderr:  # the first progress line: the fit is under way
            if line.startswith("step "):
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    mesh = read_artifact(out, "mesh")
    assert len(mesh.faces) > 0 and (tmp_path / "fit.preview.png").is_file()
