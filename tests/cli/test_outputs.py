"""Nothing a user had is lost: outputs are checked before any work, land together or not at
all, and a run stopped by SIGTERM leaves nothing behind; bad options are one line; --shard
splits a batch so that the shards together are the whole run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import write_artifact
from avatarkit.structures import Mesh


def _ball(radius=0.4, center=(0.0, 1.0, 0.0), subdivisions=3):
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return Mesh(s.vertices + np.asarray(center), s.faces)


@pytest.fixture
def balls(tmp_path):
    folder = tmp_path / "meshes"
    return [write_artifact(folder / f"ball_{i}.h5", _ball(0.3 + 0.05 * i)) for i in range(3)]


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _content(path):
    """A file's datasets and attributes, without its provenance (command line, version)."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: out.update({name: hashlib.sha1(item[()].tobytes()).hexdigest()})
                     if hasattr(item, "shape") else None)  # fmt: skip
        out.update({k: str(v) for k, v in f.attrs.items() if k not in ("command", "inputs", "avatarkit_version")})
    return out


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(balls, tmp_path, textured_sphere):
    before = _snapshot(tmp_path)
    for args in (
        ("sample-sdf", balls[0], "-o", balls[0], "--points", 1000),
        ("voxelize", balls[0], "-o", balls[0], "--resolution", 8),
        ("render", balls[0], "-o", balls[0], "--views", 1, "--size", 16),
        ("sample-sdf", *balls, "-o", balls[0].parent, "--points", 1000),  # the output folder holds the inputs
        ("icp-align", balls[0], balls[1], "-o", balls[1], "--samples", 500),
        ("icp-align", balls[0], balls[1], "-o", tmp_path / "T.h5", "--aligned", balls[0], "--samples", 500),
    ):
        assert_clean_failure(invoke(*args), "would write over the input")
    views = tmp_path / "views.h5"
    assert invoke("render", balls[0], "-o", views, "--views", 2, "--size", 16).exit_code == 0
    mesh = write_artifact(tmp_path / "textured.h5", textured_sphere)
    before = _snapshot(tmp_path)
    assert_clean_failure(invoke("unwrap-uv", mesh, "--views", views, "-o", views, "--size", 16), "would write over")
    assert _snapshot(tmp_path) == before


def test_a_file_avatarkit_did_not_write_is_replaced_only_with_overwrite(balls, tmp_path):
    foreign = tmp_path / "results.h5"
    with h5py.File(foreign, "w") as f:
        f["/my_data"] = np.arange(10)
    data = foreign.read_bytes()
    r = invoke("sample-sdf", balls[0], "-o", foreign, "--points", 1000)
    assert_clean_failure(r, str(foreign), "not an avatarkit samples file", "--overwrite")
    assert foreign.read_bytes() == data
    ply = tmp_path / "scan.ply"
    ply.write_bytes(b"not ours")
    assert_clean_failure(invoke("convert", balls[0], ply), "--overwrite")
    assert ply.read_bytes() == b"not ours"
    assert invoke("sample-sdf", balls[0], "-o", foreign, "--points", 1000, "--overwrite").exit_code == 0
    assert invoke("convert", balls[0], ply, "--overwrite").exit_code == 0
    assert trimesh.load(ply).vertices.shape[0] == len(_ball().vertices)


def test_a_run_with_a_bad_second_output_writes_nothing(balls, tmp_path):
    t = tmp_path / "T.h5"
    r = invoke("icp-align", balls[0], balls[1], "-o", t, "--aligned", tmp_path / "moved.xyz", "--samples", 500)
    assert_clean_failure(r, "--aligned must name a mesh file")
    assert not t.exists()
    (tmp_path / "moved.ply").mkdir()
    r = invoke("icp-align", balls[0], balls[1], "-o", t, "--aligned", tmp_path / "moved.ply", "--samples", 500)
    assert_clean_failure(r, "is a folder")
    assert not t.exists()


def test_outputs_that_belong_together_land_together(balls, tmp_path, monkeypatch):
    """A failure while writing the second output of a run removes the first."""
    from avatarkit.errors import ResourceError
    from avatarkit.io import convert

    def full_disk(mesh, path):
        raise ResourceError("no space left on the device (simulated)", path)

    monkeypatch.setattr(convert, "save_mesh", full_disk)
    r = invoke("icp-align", balls[0], balls[1], "-o", tmp_path / "T.h5", "--aligned", tmp_path / "a.ply",
               "--samples", 500)  # fmt: skip
    assert_clean_failure(r, "no space left")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshes"]  # no T.h5, no temporary file


@pytest.mark.parametrize(
    "where",
    ["under-a-file", "folder-named-h5", "proc"],
)
def test_an_unwritable_output_is_one_line_and_writes_nothing(balls, tmp_path, where):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "dir.h5").mkdir()
    output = {
        "under-a-file": tmp_path / "notes.txt" / "s.h5",
        "folder-named-h5": tmp_path / "dir.h5",
        "proc": __import__("pathlib").Path("/proc/avatarkit/s.h5"),
    }[where]
    before = _snapshot(tmp_path)
    r = invoke("sample-sdf", balls[0], "-o", output, "--points", 1000)
    assert_clean_failure(r)
    assert _snapshot(tmp_path) == before


def test_bad_options_are_one_line_and_exit_1(balls, tmp_path):
    assert_clean_failure(invoke("sample-sdf", balls[0], "-o", tmp_path / "s", "--preset", "nope"), "--preset", "nope")
    assert_clean_failure(invoke("synth", "-n", 0, "-o", tmp_path / "p"), "--count")
    assert_clean_failure(invoke("nope"), "No such command")
    for verb in (("sample-sdf", balls[0], "-o", tmp_path / "s"), ("synth", "-o", tmp_path / "p"),
                 ("render", balls[0], "-o", tmp_path / "v"), ("icp-align", balls[0], balls[1], "-o", tmp_path / "t.h5"),
                 ("evaluate-chamfer", balls[0], balls[1])):  # fmt: skip
        assert_clean_failure(invoke(*verb, "--seed", -1), "--seed")
    assert_clean_failure(invoke("sample-sdf", balls[0], "-o", tmp_path / "s", "--shard", "3/2"), "--shard")
    odd = tmp_path / "scan:x:v2.ply"  # a name Rich would have turned into an emoji
    assert_clean_failure(invoke("sample-sdf", odd, "-o", tmp_path / "s"), str(odd), "no such file")
    assert_clean_failure(invoke("sample-sdf", balls[0], "-o", tmp_path / "s", "--device", "cuda:x"), "'cuda:x'")
    assert not any(tmp_path.glob("s*")) and not (tmp_path / "p").exists()


@pytest.mark.timeout(180)
def test_sigterm_during_a_write_leaves_nothing_behind(balls, tmp_path):
    """The process is told to stop while its output is half written (deterministically: the
    writer signals itself after its first dataset); the old output survives whole, and no
    temporary file is left."""
    out = tmp_path / "out"
    assert invoke("sample-sdf", balls[0], "-o", out, "--points", 1000).exit_code == 0
    before = _snapshot(out)
    script = textwrap.dedent(f"""
        import os, signal, sys
        from avatarkit.io import hdf5
        real = hdf5._write_field
        def stop_halfway(f, field, value):
            real(f, field, value)
            os.kill(os.getpid(), signal.SIGTERM)
        hdf5._write_field = stop_halfway
        sys.argv = ["avatarkit", "sample-sdf", {str(balls[0])!r}, {str(balls[1])!r}, "-o", {str(out)!r},
                    "--points", "1000", "--overwrite"]
        from avatarkit.cli.app import main
        main()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=150,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))  # fmt: skip
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "Traceback" not in done.stderr and "terminated" in done.stderr
    assert _snapshot(out) == before  # ball_0 as it was, no ball_1, no .tmp file


def test_shards_together_are_the_whole_run(balls, tmp_path):
    more = [write_artifact(balls[0].parent / f"extra_{i}.h5", _ball(0.2 + 0.03 * i, subdivisions=2)) for i in range(3)]
    inputs = [*balls, *more]
    assert invoke("sample-sdf", *inputs, "-o", tmp_path / "all", "--points", 500, "-q").exit_code == 0
    for k in (1, 2, 3):
        r = invoke("sample-sdf", *inputs, "-o", tmp_path / "sharded", "--points", 500, "--shard", f"{k}/3", "-q")
        assert r.exit_code == 0, r.output
    whole, parts = sorted((tmp_path / "all").iterdir()), sorted((tmp_path / "sharded").iterdir())
    assert [p.name for p in whole] == [p.name for p in parts]  # the union: every file, none twice
    assert all(_content(a) == _content(b) for a, b in zip(whole, parts, strict=True))  # the same content
    sizes = []
    for k in (1, 2, 3):  # and each shard alone did only its own share
        r = invoke("sample-sdf", *inputs, "-o", tmp_path / f"only{k}", "--points", 500, "--shard", f"{k}/3", "-q")
        sizes.append(len(list((tmp_path / f"only{k}").glob("*.h5"))) if (tmp_path / f"only{k}").exists() else 0)
    assert sum(sizes) == len(inputs) and max(sizes) < len(inputs)
