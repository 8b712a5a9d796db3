"""The command line as a user types it: help, errors, convert, inspect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_clean_failure, bad_inputs, invoke

from avatarkit.io.hdf5 import write_artifact
from avatarkit.io.meshfile import save_mesh


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from avatarkit.cli.app import app; from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "heavy = [m for m in ('torch', 'open3d', 'anny', 'warp', 'h5py', 'trimesh', 'scipy', 'PIL', 'skimage') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == ""


def test_installed_entry_point_and_module_run():
    script = str(Path(sys.executable).parent / "avatarkit")
    for cmd in ([script, "--help"], [sys.executable, "-m", "avatarkit", "--help"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)
        for verb in ("synth", "inspect", "convert"):
            assert verb in out.stdout
    version = subprocess.run([script, "--version"], capture_output=True, text=True, check=True, timeout=120)
    assert version.stdout.startswith("avatarkit ")


def test_convert_round_trip_obj_h5(tmp_path, textured_sphere):
    src = tmp_path / "m.h5"
    write_artifact(src, textured_sphere)
    r = invoke("convert", src, tmp_path / "m.obj")
    assert r.exit_code == 0, r.output
    assert "cannot hold vertex_labels" in r.stderr  # OBJ has no labels: told, not silent
    r = invoke("convert", tmp_path / "m.obj", tmp_path / "back.h5")
    assert r.exit_code == 0, r.output
    from avatarkit.io.hdf5 import read_mesh

    back = read_mesh(tmp_path / "back.h5")
    assert np.abs(back.face_corners() - textured_sphere.face_corners()).max() < 1e-5
    assert np.abs(back.face_corner_uvs() - textured_sphere.face_corner_uvs()).max() < 1e-5
    with h5py.File(tmp_path / "back.h5") as f:
        assert "convert" in f.attrs["command"]
        assert list(f.attrs["inputs"]) == [str(tmp_path / "m.obj")]


def raw_vertices(path: Path) -> np.ndarray:
    """The vertices exactly as a file lists them (OBJ parsed by hand; no welding, no reordering)."""
    import trimesh

    if path.suffix == ".obj":
        lines = [line.split() for line in path.read_text().splitlines()]
        return np.array([[float(x) for x in words[1:4]] for words in lines if words and words[0] == "v"])
    return np.asarray(trimesh.load(path, process=False, force="mesh").vertices)


@pytest.mark.parametrize("ext", ["ply", "obj", "glb"])
def test_convert_keeps_vertex_ids_of_an_anny_human(tmp_path, make_generator, ext):
    # landmark and region files index vertices: made on the .h5, they must hold for its export
    human = make_generator(seed=0).subject(0)
    assert human.has_uvs and len(human.uvs) != len(human.vertices)  # UV seams to split
    src = write_artifact(tmp_path / "human.h5", human)
    r = invoke("convert", src, tmp_path / f"human.{ext}")
    assert r.exit_code == 0, r.output
    raw = raw_vertices(tmp_path / f"human.{ext}")
    v = len(human.vertices)
    assert len(raw) > v and np.abs(raw[:v] - human.vertices).max() < 1e-6
    ids = human.landmarks.vertex_ids[human.landmarks.vertex_ids >= 0]
    assert np.abs(raw[ids] - human.vertices[ids]).max() < 1e-6


def test_convert_units_flag_and_warning(tmp_path, textured_sphere):
    mesh = textured_sphere
    mesh.vertices = mesh.vertices * 100
    src = save_mesh(mesh, tmp_path / "cm.ply")[0]
    r = invoke("convert", src, tmp_path / "a.h5")
    assert r.exit_code == 0
    assert "--units" in r.stderr and "warning" in r.stderr
    r = invoke("convert", src, tmp_path / "b.h5", "--units", "cm")
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_inspect_json_and_verdict(tmp_path, textured_sphere):
    write_artifact(tmp_path / "m.h5", textured_sphere)
    r = invoke("inspect", tmp_path / "m.h5", "--json")
    assert r.exit_code == 0
    report = json.loads(r.stdout)
    assert report["kind"] == "mesh" and report["valid"]
    assert report["datasets"]["/mesh/vertices"]["shape"] == [len(textured_sphere.vertices), 3]
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f["/mesh/faces"]
    r = invoke("inspect", tmp_path / "m.h5")
    assert r.exit_code == 1
    assert "INVALID" in r.stderr and "missing dataset /mesh/faces" in r.stderr


@pytest.mark.parametrize(
    "case", ["missing", "wrong kind", "truncated", "junk", "v 1 2 lines", "empty", "nan", "faces past vertices"]
)
def test_bad_input_one_line_exit_1_no_output(tmp_path, case):
    path, needle = bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / "result.h5"
    result = invoke("convert", path, out)
    assert_clean_failure(result, str(path), needle)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_bad_input_never_damages_an_existing_output(tmp_path, textured_sphere):
    out = write_artifact(tmp_path / "keep.h5", textured_sphere)
    before = out.read_bytes()
    bad = tmp_path / "nan.obj"
    bad.write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    assert_clean_failure(invoke("convert", bad, out), "NaN")
    assert out.read_bytes() == before


def test_unknown_output_extension_is_an_error(tmp_path, textured_sphere):
    src = write_artifact(tmp_path / "m.h5", textured_sphere)
    assert_clean_failure(invoke("convert", src, tmp_path / "m.xyz"), ".xyz")
