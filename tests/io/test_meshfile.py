"""Mesh files in and out: lossless where the format allows, units and up axis, bad files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from avatarkit.errors import AvatarkitWarning, InputError, MeshError
from avatarkit.io.meshfile import load_mesh, save_mesh


@pytest.mark.parametrize("ext", ["obj", "ply", "glb", "off"])
def test_face_corners_and_uvs_round_trip(tmp_path, textured_sphere, ext):
    mesh = textured_sphere
    written = save_mesh(mesh, tmp_path / f"m.{ext}")
    back = load_mesh(written[0])
    assert np.abs(back.face_corners() - mesh.face_corners()).max() < 1e-5
    if ext != "off":
        assert back.has_uvs
        assert np.abs(back.face_corner_uvs() - mesh.face_corner_uvs()).max() < 1e-5
        assert len(back.vertices) == len(mesh.vertices)  # seams welded back
    if ext in ("obj", "glb"):
        assert np.array_equal(back.texture, mesh.texture)
    if ext == "ply":
        assert np.array_equal(back.vertex_labels, mesh.vertex_labels)


def raw_vertices(path):
    """The vertices exactly as a file lists them (OBJ parsed by hand; no welding, no reordering)."""
    import trimesh

    if path.suffix == ".obj":
        lines = [line.split() for line in path.read_text().splitlines()]
        return np.array([[float(x) for x in words[1:4]] for words in lines if words and words[0] == "v"])
    return np.asarray(trimesh.load(path, process=False, force="mesh").vertices)


@pytest.mark.parametrize("ext", ["obj", "ply", "glb", "off"])
def test_vertex_ids_survive_the_seam_split(tmp_path, textured_sphere, ext):
    # vertex i of the mesh is vertex i of the file; seam duplicates come after the originals
    mesh = textured_sphere
    path = save_mesh(mesh, tmp_path / f"m.{ext}")[0]
    raw = raw_vertices(path)
    v = len(mesh.vertices)
    assert len(raw) > v or ext == "off"  # this mesh has seams: there are duplicates to append
    assert np.abs(raw[:v] - mesh.vertices).max() < 1e-6
    back = load_mesh(path)
    assert np.abs(back.vertices - mesh.vertices).max() < 1e-6  # welded back in the same order


def test_obj_texture_files_are_named_after_the_mesh(tmp_path, textured_sphere):
    written = save_mesh(textured_sphere, tmp_path / "body.obj")
    assert sorted(p.name for p in written) == ["body.mtl", "body.obj", "body.png"]
    assert "mtllib body.mtl" in (tmp_path / "body.obj").read_text()


def test_vertex_colors_round_trip_through_ply(tmp_path, textured_sphere):
    mesh = textured_sphere
    mesh.uvs = mesh.face_uvs = mesh.texture = None
    mesh.vertex_colors = np.random.default_rng(0).integers(0, 256, (len(mesh.vertices), 3))
    back = load_mesh(save_mesh(mesh, tmp_path / "c.ply")[0])
    assert np.array_equal(back.vertex_colors, mesh.vertex_colors)


def test_units_and_up_axis(tmp_path, textured_sphere):
    mesh = textured_sphere
    path = save_mesh(mesh, tmp_path / "m.ply")[0]
    in_cm = load_mesh(path, units="cm")
    assert np.allclose(in_cm.vertices, mesh.vertices * 0.01, atol=1e-7)
    z_up = load_mesh(path, up="z")  # (x, y, z) -> (x, z, -y)
    assert np.allclose(z_up.vertices, mesh.vertices[:, [0, 2, 1]] * [1, 1, -1], atol=1e-6)


def test_centimetre_mesh_warns_naming_the_flag(tmp_path, textured_sphere):
    mesh = textured_sphere
    mesh.vertices = mesh.vertices * 170.0
    path = save_mesh(mesh, tmp_path / "cm.ply")[0]
    with pytest.warns(AvatarkitWarning, match="--units"):
        load_mesh(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_mesh(path, units="cm")  # no warning once the units are given


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("junk.obj", b"\x00\x01\x02garbage\xff" * 50, (InputError, MeshError), None),
        ("short.obj", b"v 1 2\nv 3 4\nf 1 2 3\n", (InputError, MeshError), None),
        ("empty.obj", b"", (InputError, MeshError), None),
        ("nan.obj", b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", MeshError, "NaN"),
        ("inf.obj", b"v inf 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", MeshError, "NaN or infinite"),
        ("junk.ply", b"ply\nformat ascii 1.0\nelement vertex 2\n", InputError, None),
    ],
)
def test_bad_mesh_files(tmp_path, name, content, error, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=match) as info:
        load_mesh(path)
    assert str(path) in str(info.value)


def test_faces_past_the_vertex_count(tmp_path):
    path = tmp_path / "bad.off"
    path.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    with pytest.raises((MeshError, InputError)) as info:
        load_mesh(path)
    assert str(path) in str(info.value)


def test_unknown_extension(tmp_path):
    path = tmp_path / "m.stl2"
    path.write_text("x")
    with pytest.raises(InputError, match="unknown mesh format"):
        load_mesh(path)


def test_units_and_up_are_refused_for_hdf5(tmp_path, textured_sphere):
    from avatarkit.errors import OptionError
    from avatarkit.io.hdf5 import write_artifact

    path = write_artifact(tmp_path / "m.h5", textured_sphere)
    assert np.array_equal(load_mesh(path).vertices, textured_sphere.vertices)
    for kwargs in ({"units": "cm"}, {"up": "z"}):
        with pytest.raises(OptionError, match="already metres"):
            load_mesh(path, **kwargs)
