"""examples/phorhum_pipeline.sh runs at a CPU size: people in clothes lit by the built-in sky,
OSA's points, a short train phorhum, and a coloured mesh from a photo (albedo and shaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = (
    "--channels 16 --stem-channels 8 --mlp 32,32 --shading-mlp 16 --image-size 64 --points 256 --batch-size 2 "
    "--patch-size 4 --trace-steps 8 --val-resolution 32"
)


@pytest.mark.slow
@pytest.mark.timeout(900)  # about two minutes on 2 shared cores
def test_phorhum_pipeline_gives_a_coloured_mesh(tmp_path):
    from avatarkit.io.meshfile import load_mesh

    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        N="3", VIEWS="4", SIZE="64", POINTS="20000", CONFIG="small", STEPS="20", RESOLUTION="32", TRAIN_ARGS=TINY,
    )  # fmt: skip
    done = subprocess.run(["bash", str(ROOT / "examples" / "phorhum_pipeline.sh"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test subject:" in done.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["chamfer_l1"] > 0
    albedo, shaded = load_mesh(tmp_path / "me.ply"), load_mesh(tmp_path / "me_shaded.ply")
    assert albedo.vertex_colors is not None and shaded.vertex_colors is not None
    assert not (tmp_path / "data" / "views" / "human_0002.h5").exists()  # the test subject was never trained on
