"""examples/texture_pipeline.sh runs as written, at a tiny CPU size."""

from __future__ import annotations

import json

import pytest
from helpers import run_example


@pytest.mark.timeout(600)
def test_texture_pipeline_completes_a_held_out_persons_texture_and_renders_a_turntable(tmp_path):
    done = run_example(
        "texture_pipeline.sh",
        tmp_path,
        timeout=550,
        N="3",
        SIZE="64",
        RENDER="64",
        CONFIG="tiny",
        STEPS="2",
        TURNTABLE="2",
    )
    assert "completed by sampler" in done.stdout
    summary = json.loads((tmp_path / "complete.json").read_text())
    assert 0 < summary["seen_fraction"] < 1
    assert (tmp_path / "turntable" / "rgb_001.png").is_file()
    # the test subject was kept out of training
    split = json.loads((tmp_path / "runs" / "texture" / "config.json").read_text())["split"]
    assert sorted(split["train"] + split["val"]) == ["human_0000", "human_0001"]
