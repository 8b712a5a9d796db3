"""sample-sdf and voxelize as a researcher types them: synth humans, OBJ files in cm, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, bad_inputs, invoke

from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.io.meshfile import save_mesh
from avatarkit.structures import Mesh


@pytest.fixture(scope="module")
def humans(make_generator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("meshes")
    generator = make_generator(seed=0, texture="clothes", texture_size=256)
    return [write_artifact(folder / f"human_{i:04d}.h5", generator.subject(i)) for i in range(2)]


@pytest.fixture
def sphere_obj_cm(tmp_path):
    s = trimesh.creation.icosphere(subdivisions=4, radius=50.0)  # centimetres
    return save_mesh(Mesh(s.vertices + np.array([0, 100, 0]), s.faces), tmp_path / "ball.obj")[0]


def test_sample_sdf_pifu_over_many_meshes_then_skips_complete(humans, tmp_path):
    out = tmp_path / "samples"
    r = invoke("sample-sdf", *humans, "-o", out, "--preset", "pifu", "--points", 20000, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert [w["output"] for w in summary["written"]] == [str(out / "human_0000.h5"), str(out / "human_0001.h5")]
    s = read_artifact(out / "human_0000.h5", "samples")
    assert len(s.points) == 20000 and s.occupancy.sum() == 10000
    assert s.attrs["preset"] == "pifu" and s.attrs["sign"] == "winding"
    with h5py.File(out / "human_0001.h5") as f:
        assert list(f.attrs["inputs"]) == [str(humans[1])]
        assert "sample-sdf" in f.attrs["command"]
    r = invoke("sample-sdf", *humans, "-o", out, "--preset", "pifu", "--points", 20000)
    assert r.exit_code == 0 and "2 already complete" in r.stderr


def test_sample_sdf_deepsdf_single_file_is_seeded(humans, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for out in (a, b):
        r = invoke("sample-sdf", humans[0], "-o", out, "--preset", "deepsdf", "--points", 5000, "--seed", 7, "-q")
        assert r.exit_code == 0, r.output
    sa, sb = read_artifact(a, "samples"), read_artifact(b, "samples")
    assert np.array_equal(sa.points, sb.points) and np.array_equal(sa.sdf, sb.sdf)
    assert sa.attrs["sigma_frame"] == "unit" and sa.attrs["unit_radius"] > 0.8  # a standing adult, metres


def test_sample_sdf_osa_has_normals_and_texture_colours(humans, tmp_path):
    out = tmp_path / "osa.h5"
    r = invoke("sample-sdf", humans[0], "-o", out, "--preset", "osa", "--points", 4000)
    assert r.exit_code == 0, r.output
    s = read_artifact(out, "samples")
    assert s.normals.shape == (4000, 3) and s.colors.shape == (4000, 3)
    assert np.allclose(np.linalg.norm(s.normals, axis=1), 1, atol=1e-4)
    assert len(np.unique(s.colors[:2000], axis=0)) > 10  # clothes and skin, not one flat colour


def test_obj_in_centimetres_with_units_flag(sphere_obj_cm, tmp_path):
    out = tmp_path / "ball.h5"
    r = invoke("sample-sdf", sphere_obj_cm, "-o", out, "--units", "cm", "--points", 2000)
    assert r.exit_code == 0, r.output
    s = read_artifact(out, "samples")
    r_m = np.linalg.norm(s.points - [0, 1, 0], axis=1)
    clear = np.abs(r_m - 0.5) > 3e-3
    assert np.array_equal(s.sdf[clear] < 0, r_m[clear] < 0.5)
    r = invoke("voxelize", sphere_obj_cm, "-o", tmp_path / "ball_vox.h5", "--units", "cm", "--resolution", 32)
    assert r.exit_code == 0, r.output
    v = read_artifact(tmp_path / "ball_vox.h5", "voxels")
    assert v.occupancy.shape == (32, 32, 32) and v.pitch == pytest.approx(1.04 / 32, rel=1e-3)


def test_voxelize_resolution_and_geopifu_with_binvox_export(humans, tmp_path):
    r = invoke("voxelize", *humans, "-o", tmp_path / "vox", "--resolution", 64, "--json")
    assert r.exit_code == 0, r.output
    written = json.loads(r.stdout)["written"]
    assert max(written[0]["shape"]) == 64 and written[0]["method"].startswith("scanline winding")
    v = read_artifact(tmp_path / "vox" / "human_0000.h5", "voxels")
    assert v.occupancy.any() and not v.occupancy[0].any()  # the margin is empty
    out = tmp_path / "body_vox.h5"
    r = invoke("voxelize", humans[0], "-o", out, "--preset", "geopifu", "--export", "binvox")
    assert r.exit_code == 0, r.output
    from avatarkit.io.voxel_export import read_binvox

    v = read_artifact(out, "voxels")
    assert v.occupancy.shape == (128, 192, 128)
    cube = read_binvox(tmp_path / "body_vox.binvox")  # padded to 192^3 at the high ends, same indices
    assert cube.occupancy.shape == (192, 192, 192) and cube.occupancy.sum() == v.occupancy.sum()
    assert np.array_equal(cube.occupancy[:128, :, :128], v.occupancy)
    assert np.allclose(cube.origin, v.origin) and cube.pitch == pytest.approx(v.pitch)


@pytest.mark.parametrize("case", ["missing", "wrong kind", "truncated", "empty", "nan", "faces past vertices"])
@pytest.mark.parametrize("verb", ["sample-sdf", "voxelize"])
def test_bad_meshes_one_line_exit_1_no_output(tmp_path, verb, case):
    path, needle = bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / "result.h5"
    assert_clean_failure(invoke(verb, path, "-o", out), str(path), needle)
    assert not out.parent.exists() or not any(out.parent.iterdir())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("sample-sdf", "--points", 0), "--points must be positive"),
        (("sample-sdf", "--sigma", -0.01), "--sigma must be positive"),
        (("sample-sdf", "--bounds", 5, 5, 5, 6, 6, 6), "do not overlap the mesh"),
        (("voxelize", "--bounds", 5, 5, 5, 6, 6, 6), "do not overlap the mesh"),
        (("voxelize", "--resolution", 4096, "--max-memory", 1), "needs about"),
        (("voxelize", "--resolution", 0), "at least 1"),
    ],
)
def test_bad_options_one_line_exit_1_no_output(sphere_obj_cm, tmp_path, args, needle):
    verb, *rest = args
    out = tmp_path / "out.h5"
    assert_clean_failure(invoke(verb, sphere_obj_cm, "-o", out, "--units", "cm", *rest), needle)
    assert not out.exists()


def test_one_bad_input_among_many_others_still_written(humans, tmp_path):
    bad = tmp_path / "nan.obj"
    bad.write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    out = tmp_path / "vox"
    r = invoke("voxelize", humans[0], bad, "-o", out, "--resolution", 32)
    assert r.exit_code == 1
    assert (out / "human_0000.h5").exists() and not (out / "nan.h5").exists()
    assert "1 of 2 inputs failed: " + str(bad) in r.stderr
    assert "Traceback" not in r.output


def test_existing_output_survives_a_failed_run(humans, tmp_path, monkeypatch):
    from avatarkit.errors import ResourceError
    from avatarkit.io import hdf5

    out = tmp_path / "keep.h5"
    assert invoke("voxelize", humans[0], "-o", out, "--resolution", 16).exit_code == 0
    before = out.read_bytes()
    r = invoke("voxelize", humans[0], "-o", out, "--resolution", 4096, "--max-memory", 1, "--overwrite")
    assert_clean_failure(r, "needs about")  # refused before any work
    assert out.read_bytes() == before
    written = []

    def fail_after_the_first_dataset(f, field, value):  # the disk fills up halfway through the write
        real(f, field, value)
        written.append(field.path)
        raise ResourceError("no space left on the device (simulated)")

    real = hdf5._write_field
    monkeypatch.setattr(hdf5, "_write_field", fail_after_the_first_dataset)
    r = invoke("voxelize", humans[0], "-o", out, "--resolution", 24, "--overwrite")
    assert_clean_failure(r, "no space left")
    assert written and out.read_bytes() == before  # the old output, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.h5"]  # and no temporary file


def test_many_inputs_need_a_folder_and_distinct_stems(humans, tmp_path):
    assert_clean_failure(invoke("voxelize", *humans, "-o", tmp_path / "one.h5"), "need an output folder")
    other = tmp_path / "x" / humans[0].name
    other.parent.mkdir()
    other.write_bytes(humans[0].read_bytes())
    assert_clean_failure(invoke("voxelize", humans[0], other, "-o", tmp_path / "v"), "would both write")


@pytest.mark.slow
def test_jobs_run_in_worker_processes_with_the_same_result(humans, tmp_path):
    r = invoke("sample-sdf", *humans, "-o", tmp_path / "p", "--points", 3000, "--jobs", 2, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("sample-sdf", *humans, "-o", tmp_path / "s", "--points", 3000, "-q")
    for h in humans:
        a = read_artifact(tmp_path / "p" / h.name, "samples")
        b = read_artifact(tmp_path / "s" / h.name, "samples")
        assert np.array_equal(a.points, b.points) and np.array_equal(a.sdf, b.sdf)
