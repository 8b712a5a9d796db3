"""docs/adding_a_method.md's worked example, trained and used as its reader would: the method
registers, ``avatarkit train tiny`` learns, ``avatarkit reconstruct`` meshes with it, mypy
holds it to the contract, and the document shows the code that runs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke

from avatarkit.errors import AvatarkitWarning
from avatarkit.methods import registry

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT / "examples"))

import minimal_method  # noqa: E402 (from examples/, put on the path above)


@pytest.fixture
def tiny(monkeypatch):
    """The example registered for this test only, as a plugin's entry point would register it."""
    from avatarkit.cli import train

    monkeypatch.setitem(registry.METHODS, "tiny", minimal_method.SPEC)
    monkeypatch.setattr(train.app, "registered_commands", list(train.app.registered_commands))
    train.add_method(minimal_method.SPEC)
    return minimal_method.SPEC


def test_the_document_shows_the_code_that_runs():
    text = (ROOT / "docs" / "adding_a_method.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert minimal_method.__doc__ and blocks
    code = (ROOT / "examples" / "minimal_method.py").read_text()
    assert any(block.strip() == code.strip() for block in blocks), "docs/adding_a_method.md drifted from the example"


def test_the_minimal_method_trains_and_reconstructs(tiny, pifu_data, tmp_path):
    run = tmp_path / "tiny"
    r = invoke("train", "tiny", "--views", pifu_data / "views", "--samples", pifu_data / "samples", "-o", run,
               "--max-steps", 120, "--val-every", 60, "--mesh-every", 120, "--lr", 3e-3, "--json", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["method"] == "tiny" and summary["steps"] == 120 and summary["subjects"] == 3
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["val/mse"] < lines[0]["val/mse"]  # it learns
    assert "val/chamfer_cm" in lines[-1]  # the shared validation meshed it through its predictor
    held_out = json.loads((run / "config.json").read_text())["split"]["val"][0]
    out = tmp_path / "pred.h5"
    r = invoke("reconstruct", run, pifu_data / "views" / f"{held_out}.h5", "-o", out, "--resolution", 32, "--json")
    assert r.exit_code == 0, r.output
    from avatarkit.io.hdf5 import read_mesh

    mesh = read_mesh(out)
    assert len(mesh.faces) > 0 and 0.5 < np.ptp(mesh.vertices[:, 1]) < 2.5  # a person's height, world metres


def test_plugins_register_through_entry_points(monkeypatch):
    class Entry:
        name, value = "tiny", "minimal_method:SPEC"

        def load(self):
            return minimal_method.SPEC

    class Broken(Entry):
        name = "broken"

        def load(self):
            raise ImportError("no module named tiny_nets")

    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [Entry(), Broken()])
    monkeypatch.setattr(registry, "METHODS", dict(registry.METHODS))
    with pytest.warns(AvatarkitWarning, match="'broken' not loaded: no module named tiny_nets"):
        found = registry.discover()
    assert found == [minimal_method.SPEC] and registry.METHODS["tiny"] is minimal_method.SPEC
