"""The examples run as written (at a tiny size), so they cannot drift from the verbs."""

from __future__ import annotations

import json

import pytest
from helpers import TINY_PIFU, run_example


def test_pipeline_runs_end_to_end_and_scores_the_held_out_person(tmp_path):
    done = run_example(
        "pipeline.sh",
        tmp_path,
        timeout=600,
        N="3",
        VIEWS="4",
        SIZE="64",
        CONFIG="small",
        STEPS="4",
        RESOLUTION="32",
        TRAIN_ARGS=" ".join(map(str, TINY_PIFU[2:])),  # the tiny network (after --config small)
    )
    assert "test subject: chamfer" in done.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["units"] == "cm" and metrics["chamfer_l1"] > 0
    assert (tmp_path / "pred.preview.png").is_file() and not (tmp_path / "data" / "views" / "human_0002.h5").exists()
    split = json.loads((tmp_path / "runs" / "pifu" / "config.json").read_text())["split"]
    assert sorted(split["train"] + split["val"]) == ["human_0000", "human_0001"]  # human_0002 is the test


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_demo_script_runs_at_a_tiny_size(tmp_path):
    """examples/demo.sh as nox -s demo runs it, with three people and sixty training steps."""
    done = run_example("demo.sh", tmp_path / "demo", timeout=850, PEOPLE="3", STEPS="60")
    assert "held-out person: chamfer" in done.stdout
    assert (tmp_path / "demo" / "report" / "prediction.preview.png").is_file()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_head_pipeline_runs_at_a_cpu_size(tmp_path):
    """examples/head_pipeline.sh: prior, capture, fits with and without the prior, H3DS scores."""
    run_example(
        "head_pipeline.sh", tmp_path, timeout=850,
        HEADS="4", POINTS="4000", CONFIG="small", PRIOR_STEPS="40", FIT_STEPS="20", SIZE="64", RESOLUTION="32",
    )  # fmt: skip
    for name in ("metrics.json", "metrics_no_prior.json"):
        metrics = json.loads((tmp_path / name).read_text())
        assert metrics["protocol"] == "h3ds" and metrics["units"] == "mm" and metrics["gt_to_pred"] > 0
    assert (tmp_path / "scene" / "subsets.json").is_file() and (tmp_path / "fit.preview.png").is_file()


@pytest.mark.timeout(600)
def test_face_pipeline_tracks_a_photo_a_clip_and_scores_a_views_file(tmp_path):
    done = run_example(
        "face_pipeline.sh",
        tmp_path,
        timeout=600,
        FACES="2",
        VIEWS="2",
        SIZE="160",
        TURNTABLE="3",
        TRACK_ARGS="--landmarks-only",
    )
    assert "mm to the true head" in done.stdout
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["landmarks"] == "builtin" and fit["frames"] == 2
    assert fit["score_mm"]["median"] < 5.0  # the detector's landmarks put the face in place
    assert (tmp_path / "photo_face.preview.png").is_file()
    assert (tmp_path / "turntable" / "photo_face.h5").is_file()


@pytest.mark.timeout(900)  # about a minute on 2 shared cores (voxels at Geo-PIFu's full grid)
def test_geopifu_pipeline_trains_both_stages_and_scores_the_held_out_person(tmp_path):
    from avatarkit.evaluate.chamfer import PROTOCOLS
    from avatarkit.geometry.sample_sdf import PRESETS as SAMPLING
    from avatarkit.render.rigs import RIG_PRESETS

    tiny = (
        "--stacks 1 --channels 16 --stem-channels 8 --mlp 32,16 --image-size 64 --points 256 --batch-size 2 "
        "--val-resolution 32 --coarse-stacks 1 --coarse-channels 16 --coarse-stem-channels 8 --volume-channels 2"
    )
    done = run_example(
        "geopifu_pipeline.sh",
        tmp_path,
        timeout=900,
        N="3",
        SIZE="96",
        CONFIG="small",
        STEPS="4",
        RESOLUTION="32",
        TRAIN_ARGS=tiny,
        # the Geo-PIFu presets of render, sample-sdf and evaluate-chamfer, where this avatarkit has them
        RENDER_PRESET="geopifu" if "geopifu" in RIG_PRESETS else "pifu",
        SAMPLE_PRESET="geopifu" if "geopifu" in SAMPLING else "pifu",
        PROTOCOL="geopifu" if "geopifu" in PROTOCOLS else "default",
    )
    assert "test subject:" in done.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "pred.preview.png").is_file() and (tmp_path / "runs/geopifu/checkpoints/last.pt").is_file()
    assert not (tmp_path / "data" / "voxels" / "human_0002.h5").exists()
