"""A training run keeps its validation meshes, and ``view RUN`` shows them beside their truth."""

from __future__ import annotations

import json

from helpers import TINY_PIFU, invoke

from avatarkit.io.hdf5 import open_h5, read_mesh
from avatarkit.view.scene import Surface, build_scene


def test_a_run_writes_its_validation_meshes_and_view_compares_them(pifu_data, tmp_path):
    run = tmp_path / "run"
    r = invoke("train", "pifu", "--views", pifu_data / "views", "--samples", pifu_data / "samples", "-o", run,
               *TINY_PIFU, "--max-steps", 2, "--json", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    held_out = json.loads((run / "config.json").read_text())["split"]["val"]
    written = sorted(p.stem for p in (run / "validation").iterdir())
    assert written and set(written) <= set(held_out)
    mesh_path = run / "validation" / f"{written[0]}.h5"
    assert len(read_mesh(mesh_path).faces) > 0
    with open_h5(mesh_path) as f:
        truth = f.attrs["inputs"][0]
    assert truth.endswith(f"{written[0]}.h5") and "meshes" in truth

    scene = build_scene([run])
    labels = [i.label for i in scene.items if isinstance(i, Surface)]
    name = f"{written[0]}.h5"
    assert labels == [f"meshes/{name} (truth)", f"validation/{name}", f"validation/{name} error"]
