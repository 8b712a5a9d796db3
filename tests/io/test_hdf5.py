"""The HDF5 contract: every kind round-trips, readers check kind and schema, writes are atomic."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from avatarkit.errors import InputError, KindError
from avatarkit.io.hdf5 import Provenance, describe, is_complete, read_artifact, read_mesh, write_artifact
from avatarkit.structures import Landmarks, Metrics, Samples, Texture, Transform, Views, Voxels

rng = np.random.default_rng(1)


def _views():
    n, h, w = 2, 8, 6
    return Views(
        K=np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
        world_to_cam=np.tile(np.eye(4, dtype=np.float32), (n, 1, 1)),
        projection="orthographic",
        rgb=rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
        mask=rng.integers(0, 2, (n, h, w), dtype=np.uint8) * 255,
        depth=rng.random((n, h, w)).astype(np.float32),
        uv=rng.random((n, h, w, 2)).astype(np.float32),
        lighting={"sh": rng.random((n, 9, 3))},
        subsets={"1": [1], "2": [1, 0]},
    )


ARTIFACTS = {
    "views": _views,
    "samples": lambda: Samples(
        rng.random((50, 3)), rng.random(50) - 0.5, rng.integers(0, 2, 50), attrs={"preset": "pifu", "sigma": 0.05}
    ),
    "voxels": lambda: Voxels(
        rng.random((4, 5, 6)) > 0.5, np.array([-1.0, 0.0, -1.0]), 0.01, attrs={"method": "winding"}
    ),
    "texture": lambda: Texture(rng.integers(0, 256, (8, 8, 3)), rng.random((8, 8)).astype(np.float32)),
    "transform": lambda: Transform(
        np.eye(4), scale=1.1, rmse=0.002, fitness=0.9, iterations=12, method="point_to_plane"
    ),
    "metrics": lambda: Metrics(
        {"chamfer_l1": 0.01, "p2s": 0.005}, "m", "default", {"accuracy": rng.random(10).astype(np.float32)}
    ),
}


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b or (isinstance(a, float) and np.isnan(a) and np.isnan(b))


@pytest.mark.parametrize("kind", list(ARTIFACTS))
def test_every_kind_round_trips(tmp_path, kind):
    obj = ARTIFACTS[kind]()
    path = write_artifact(tmp_path / f"{kind}.h5", obj, Provenance("avatarkit test", ("in.obj",)))
    back = read_artifact(path, kind)
    assert type(back) is type(obj)
    for name in vars(obj):
        want = getattr(obj, name)
        if isinstance(want, np.ndarray):
            want = want.astype(getattr(back, name).dtype)
        assert _equal(want, getattr(back, name)), name
    with h5py.File(path) as f:
        assert f.attrs["avatarkit_kind"] == kind
        assert f.attrs["avatarkit_schema"] == 1
        assert f.attrs["command"] == "avatarkit test"
        assert list(f.attrs["inputs"]) == ["in.obj"]
        assert f.attrs["units"] == "m"
    assert describe(path)["valid"]


def test_views_are_chunked_one_view_per_chunk_and_compressed(tmp_path):
    path = write_artifact(tmp_path / "v.h5", _views())
    with h5py.File(path) as f:
        assert f["/images/rgb"].chunks == (1, 8, 6, 3)
        assert f["/images/rgb"].compression == "gzip"


def test_mesh_round_trip_keeps_everything(tmp_path, textured_sphere):
    mesh = textured_sphere
    mesh.landmarks = Landmarks(["nose_tip", "neck"], [[0, 1.5, 0.5], [0, 1.2, 0]], [3, -1])
    mesh.params = {"anny": {"pose": np.eye(4), "labels": ["a", "b"], "phenotype": {"age": np.float32(0.5)}}}
    mesh.regions = {"face_sphere": [3, 4, 5], "face": [4]}
    back = read_mesh(write_artifact(tmp_path / "m.h5", mesh))
    assert list(back.regions) == ["face_sphere", "face"] and np.array_equal(back.regions["face_sphere"], [3, 4, 5])
    assert back.regions["face"].dtype == np.int32
    moved = back.transformed(np.eye(4), scale=2.0)
    assert (
        all(np.array_equal(moved.regions[k], back.regions[k]) for k in back.regions)
        and moved.regions.keys() == back.regions.keys()
    )
    for name in ("vertices", "faces", "uvs", "face_uvs", "texture", "vertex_labels"):
        assert np.array_equal(getattr(mesh, name), getattr(back, name)), name
    assert back.label_names == mesh.label_names
    assert back.landmarks.names == ["nose_tip", "neck"]
    assert np.array_equal(back.landmarks.vertex_ids, [3, -1])
    assert back.params["anny"]["labels"] == ["a", "b"]
    assert np.array_equal(back.params["anny"]["pose"], np.eye(4))
    assert back.params["anny"]["phenotype"]["age"] == np.float32(0.5)


def test_reader_names_file_kind_found_and_expected(tmp_path):
    path = write_artifact(tmp_path / "s.h5", ARTIFACTS["samples"]())
    with pytest.raises(KindError) as info:
        read_mesh(path)
    message = str(info.value)
    assert str(path) in message and "'samples'" in message and "'mesh'" in message


def test_plain_hdf5_is_not_an_avatarkit_file(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = 1
    with pytest.raises(KindError, match="not an avatarkit file"):
        read_mesh(path)


def test_newer_schema_is_refused(tmp_path, textured_sphere):
    path = write_artifact(tmp_path / "m.h5", textured_sphere)
    with h5py.File(path, "a") as f:
        f.attrs["avatarkit_schema"] = 99
    with pytest.raises(KindError, match="schema 99"):
        read_mesh(path)


def test_truncated_and_missing_files(tmp_path, textured_sphere):
    path = write_artifact(tmp_path / "m.h5", textured_sphere)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InputError, match="not a readable HDF5 file"):
        read_mesh(cut)
    with pytest.raises(InputError, match="no such file"):
        read_mesh(tmp_path / "absent.h5")


def test_validation_finds_broken_contract(tmp_path, textured_sphere):
    path = write_artifact(tmp_path / "m.h5", textured_sphere)
    with h5py.File(path, "a") as f:
        del f["/mesh/face_uvs"]
        f["/mesh/face_uvs"] = np.zeros((5, 3), np.int32)  # F mismatch
    report = describe(path)
    assert not report["valid"]
    assert any("F=5" in p for p in report["problems"])
    with pytest.raises(KindError, match="invalid mesh file"):
        read_mesh(path)
    assert not is_complete(path, "mesh")


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, textured_sphere, monkeypatch):
    import avatarkit.io.hdf5 as hdf5

    path = write_artifact(tmp_path / "m.h5", textured_sphere)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hdf5, "_write_extras", boom)
    for target in (path, tmp_path / "new.h5"):
        with pytest.raises(KeyboardInterrupt):
            write_artifact(target, textured_sphere)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


def test_regions_and_subsets_out_of_range_are_refused_naming_the_file(tmp_path, textured_sphere):
    from avatarkit.errors import MeshError

    path = write_artifact(tmp_path / "m.h5", textured_sphere)
    n = len(textured_sphere.vertices)
    with h5py.File(path, "a") as f:
        f["/regions/face"] = np.array([0, n], np.int32)
    with pytest.raises(KindError, match=f"/regions/face names vertex {n} but there are {n} vertices") as info:
        read_mesh(path)
    assert str(path) in str(info.value)
    assert not describe(path)["valid"]
    textured_sphere.regions = {"face": [-1]}
    with pytest.raises(MeshError, match="region face names vertex -1"):
        textured_sphere.validate()
    views = write_artifact(tmp_path / "v.h5", _views())
    with h5py.File(views, "a") as f:
        f["/subsets/3"] = np.array([0, 1, 2], np.int32)
    with pytest.raises(KindError, match="/subsets/3 names view 2 but there are 2 views"):
        read_artifact(views, "views")
    with h5py.File(views, "a") as f:
        del f["/subsets/3"]
        f["/subsets/3"] = np.array([0.0, 1.0])
    with pytest.raises(KindError, match="/subsets/3 has shape"):
        read_artifact(views, "views")


def test_views_select_and_subset(tmp_path):
    from avatarkit.errors import OptionError
    from avatarkit.io.hdf5 import read_view

    views = read_artifact(write_artifact(tmp_path / "v.h5", _views()), "views")
    pair = views.subset("2")
    assert np.array_equal(pair.rgb, views.rgb[[1, 0]]) and np.array_equal(pair.K, views.K[[1, 0]])
    assert np.array_equal(pair.lighting["sh"], views.lighting["sh"][[1, 0]]) and pair.subsets == {}
    with pytest.raises(OptionError, match="no view subset '9' \\(the views have 1, 2\\)"):
        views.subset("9")
    assert read_view(tmp_path / "v.h5", 1).subsets == {}  # one view: the file's subsets do not apply
