"""examples/phorhum_pipeline.sh runs at a CPU size: people in clothes lit by the built-in sky,
OSA's points, a short train phorhum, and a coloured mesh from a photo (albedo and shaded)."""

from __future__ import annotations

import json

import pytest
from helpers import run_example

TINY = (
    "--channels 16 --stem-channels 8 --mlp 32,32 --shading-mlp 16 --image-size 64 --points 256 --batch-size 2 "
    "--patch-size 4 --trace-steps 8 --val-resolution 32"
)


@pytest.mark.slow
@pytest.mark.timeout(900)  # about two minutes on 2 shared cores
def test_phorhum_pipeline_gives_a_coloured_mesh(tmp_path):
    from avatarkit.io.meshfile import load_mesh

    done = run_example(
        "phorhum_pipeline.sh", tmp_path, timeout=900,
        N="3", VIEWS="4", SIZE="64", POINTS="20000", CONFIG="small", STEPS="20", RESOLUTION="32", TRAIN_ARGS=TINY,
    )  # fmt: skip
    assert "test subject:" in done.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["chamfer_l1"] > 0
    albedo, shaded = load_mesh(tmp_path / "me.ply"), load_mesh(tmp_path / "me_shaded.ply")
    assert albedo.vertex_colors is not None and shaded.vertex_colors is not None
    assert not (tmp_path / "data" / "views" / "human_0002.h5").exists()  # the test subject was never trained on
