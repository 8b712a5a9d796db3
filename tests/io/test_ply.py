"""PLY files as users bring them: ASCII and binary, with and without a ``label`` vertex
property, and with broken face indices, through several verbs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import read_artifact, read_mesh

LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def box_ply(path, encoding="binary", labels=False):
    """A 1 m box (8 vertices, 12 faces) exported by trimesh, optionally with a ``label`` property."""
    box = trimesh.creation.box()
    mesh = trimesh.Trimesh(box.vertices, box.faces, process=False)
    if labels:
        mesh.vertex_attributes["label"] = LABELS.astype(np.int32)
    path.write_bytes(mesh.export(file_type="ply", encoding=encoding))
    return path


def binary_ply(path, faces, vertices=None):
    """A binary PLY written by hand, so that its face indices can be anything."""
    vertices = trimesh.creation.box().vertices if vertices is None else vertices
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    body = np.asarray(vertices, "<f4").tobytes()
    for face in faces:
        body += bytes([3]) + np.asarray(face, "<i4").tobytes()
    path.write_bytes(header.encode() + body)
    return path


@pytest.mark.parametrize("labels", [False, True], ids=["plain", "labels"])
@pytest.mark.parametrize("encoding", ["ascii", "binary"])
def test_valid_ply_through_inspect_convert_and_sample_sdf(tmp_path, encoding, labels):
    src = box_ply(tmp_path / "box.ply", encoding, labels)

    r = invoke("inspect", src, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["valid"] and report["summary"]["vertices"] == 8 and report["summary"]["faces"] == 12
    assert report["summary"]["vertex_labels"] is labels

    r = invoke("convert", src, tmp_path / "box.h5")
    assert r.exit_code == 0, r.output
    mesh = read_mesh(tmp_path / "box.h5")
    assert len(mesh.vertices) == 8 and len(mesh.faces) == 12
    if labels:
        assert np.array_equal(mesh.vertex_labels, LABELS)
    else:
        assert mesh.vertex_labels is None

    r = invoke("sample-sdf", src, "-o", tmp_path / "samples.h5", "--points", 2000)
    assert r.exit_code == 0, r.output
    samples = read_artifact(tmp_path / "samples.h5", "samples")
    assert len(samples.points) == 2000


def test_ply_labels_that_are_not_whole_numbers_are_refused(tmp_path):
    box = trimesh.creation.box()
    mesh = trimesh.Trimesh(box.vertices, box.faces, process=False)
    mesh.vertex_attributes["label"] = np.linspace(0, 1, 8).astype(np.float32)
    src = tmp_path / "float_labels.ply"
    src.write_bytes(mesh.export(file_type="ply", encoding="ascii"))
    assert_clean_failure(invoke("convert", src, tmp_path / "out.h5"), str(src), "label")
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize(("index", "needle"), [(99, "vertex 99"), (8, "vertex 8"), (-1, "vertex -1")])
def test_face_index_out_of_range_is_a_clean_error(tmp_path, index, needle):
    faces = trimesh.creation.box().faces.copy()
    faces[3, 1] = index
    src = binary_ply(tmp_path / "bad.ply", faces)
    assert_clean_failure(invoke("convert", src, tmp_path / "out.h5"), str(src), needle)
    assert not (tmp_path / "out.h5").exists()
    r = invoke("inspect", src, "--json")
    assert "Traceback" not in r.output
    assert needle in r.stdout and '"valid": false' in r.stdout


def test_negative_face_index_in_an_ascii_ply_and_an_off_is_refused(tmp_path):
    ply = tmp_path / "neg.ply"
    ply.write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0\n1 0 0\n0 1 0\n3 0 1 -1\n"
    )
    off = tmp_path / "neg.off"
    off.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 -1\n")
    for src in (ply, off):
        r = invoke("convert", src, tmp_path / "out.h5")
        assert r.exit_code == 1, r.output  # not a silently wrapped, wrong mesh
        assert_clean_failure(r, str(src))
        assert not (tmp_path / "out.h5").exists()


def test_batch_goes_on_past_a_ply_with_faces_past_the_vertices(tmp_path):
    a = box_ply(tmp_path / "a.ply")
    faces = trimesh.creation.box().faces.copy()
    faces[0, 0] = 1000
    bad = binary_ply(tmp_path / "bad.ply", faces)
    b = box_ply(tmp_path / "b.ply", "ascii")
    out = tmp_path / "out"
    r = invoke("sample-sdf", a, bad, b, "-o", out, "--points", 1000)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    assert (out / "a.h5").exists() and (out / "b.h5").exists() and not (out / "bad.h5").exists()
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert any(str(bad) in line and "vertex 1000" in line for line in errors), r.stderr


@pytest.mark.parametrize("ext", ["obj", "ply", "off"])
def test_vertices_without_faces_are_counted(tmp_path, ext):
    src = tmp_path / f"points.{ext}"
    if ext == "obj":
        src.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    elif ext == "off":
        src.write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    else:
        src.write_bytes(trimesh.PointCloud([[0, 0, 0], [1, 0, 0], [0, 1, 0]]).export(file_type="ply"))
    assert_clean_failure(invoke("convert", src, tmp_path / "out.h5"), str(src), "3 vertices, 0 faces")
