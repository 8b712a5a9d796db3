"""`avatarkit synth` as the issue's user runs it, and the properties its people must have."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from avatarkit.cli.app import app
from avatarkit.io.hdf5 import read_mesh
from avatarkit.parametric.anny import FACE_LANDMARKS
from avatarkit.synth.generate import HIDDEN_PARTS

runner = CliRunner()


@pytest.fixture(scope="module")
def three_people(tmp_path_factory, anny_body):
    out = tmp_path_factory.mktemp("synth") / "out"
    result = runner.invoke(app, ["synth", "-n", "3", "--seed", "7", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["written"]) == 3
    return out, [read_mesh(out / f"human_{i:04d}.h5") for i in range(3)]


def test_three_valid_different_people(three_people):
    _, people = three_people
    heights = [m.vertices[:, 1].max() for m in people]
    assert len({round(h, 4) for h in heights}) == 3
    assert not np.array_equal(people[0].vertices, people[1].vertices)
    for mesh in people:
        assert mesh.vertices.shape == (13718, 3)
        assert mesh.has_uvs and mesh.texture.shape == (1024, 1024, 3)
        assert mesh.vertex_labels is not None and "head" in mesh.label_names
        assert set(FACE_LANDMARKS) <= set(mesh.landmarks.names)
        assert set(mesh.regions) == {"face_sphere", "face"}  # bodies have faces too


def test_frame_units_and_landmarks(three_people):
    _, people = three_people
    for mesh in people:
        lm = mesh.landmarks.as_dict()
        assert mesh.vertices[:, 1].min() == pytest.approx(0.0, abs=1e-6)  # feet on y = 0
        assert 1.2 < lm["head"][1] < 2.1  # adult head height, metres, +Y up
        assert lm["head"][1] > lm["left_knee"][1] > lm["left_ankle"][1]
        assert lm["nose_tip"][2] > lm["head"][2]  # facing +Z
        assert lm["left_eye"][0] > lm["right_eye"][0]  # +X is the subject's left
        assert lm["left_lips"][0] > lm["right_lips"][0]
        assert 0.04 < np.linalg.norm(lm["left_eye"] - lm["right_eye"]) < 0.08
        # the nose between the eyes and the lips, its tip in front (in the face's frame: heads are
        # posed, and a drooping nose tip, a face shape synth draws, may hang below its base)
        lips, eyes = (lm["left_lips"] + lm["right_lips"]) / 2, (lm["left_eye"] + lm["right_eye"]) / 2
        up = (eyes - lips) / np.linalg.norm(eyes - lips)
        assert (eyes - lips) @ up > (lm["nose_tip"] - lips) @ up > 0 and (lm["nose_base"] - lips) @ up > -0.01
        assert (lm["nose_tip"] - lm["nose_base"]) @ mesh.face_forward() > 0.005
        ids = dict(zip(mesh.landmarks.names, mesh.landmarks.vertex_ids, strict=True))
        for name in FACE_LANDMARKS:  # face landmarks are mesh vertices
            assert np.array_equal(mesh.vertices[ids[name]], lm[name])


def test_same_seed_is_bit_identical_and_skips_complete_outputs(three_people, tmp_path):
    out, people = three_people
    again = tmp_path / "again"
    # a different count and a subset of indices: subject i is still the same person
    result = runner.invoke(app, ["synth", "-n", "2", "--seed", "7", "-o", str(again)])
    assert result.exit_code == 0, result.output
    for i in range(2):
        assert np.array_equal(read_mesh(again / f"human_{i:04d}.h5").vertices, people[i].vertices)
    other = runner.invoke(app, ["synth", "-n", "1", "--seed", "8", "-o", str(tmp_path / "other")])
    assert other.exit_code == 0
    assert not np.array_equal(read_mesh(tmp_path / "other" / "human_0000.h5").vertices, people[0].vertices)
    before = (out / "human_0000.h5").stat().st_mtime_ns
    skip = runner.invoke(app, ["synth", "-n", "3", "--seed", "7", "-o", str(out), "--json"])
    assert json.loads(skip.stdout)["skipped"] == [str(out / f"human_{i:04d}.h5") for i in range(3)]
    assert (out / "human_0000.h5").stat().st_mtime_ns == before


def test_poses_are_random_and_rest_is_rest(make_generator):
    rest = make_generator(pose="rest", texture="none").subject(0)
    posed = make_generator(pose="random", texture="none").subject(0)
    # same person (same seed and index), different pose: rest-pose bone lengths agree
    assert np.abs(rest.vertices - posed.vertices).max() > 0.05
    assert np.array_equal(make_generator(pose="rest", texture="none").subject(0).vertices, rest.vertices)
    lm_rest, lm_posed = rest.landmarks.as_dict(), posed.landmarks.as_dict()
    for a, b in (("left_knee", "left_ankle"), ("left_elbow", "left_wrist")):
        assert np.linalg.norm(lm_rest[a] - lm_rest[b]) == pytest.approx(
            np.linalg.norm(lm_posed[a] - lm_posed[b]), rel=0.02
        )


def test_age_range_and_gender(make_generator):
    child = make_generator(age_range=(8, 8), texture="none", pose="rest").subject(0)
    adult = make_generator(age_range=(30, 30), texture="none", pose="rest").subject(0)
    assert child.params["anny"]["phenotype"]["age_years"] == pytest.approx(8.0)
    assert child.vertices[:, 1].max() < adult.vertices[:, 1].max() - 0.2
    female = make_generator(gender="female", texture="none").subject(3)
    assert female.params["anny"]["phenotype"]["gender"] > 0.5


def test_expressions_move_the_face_only(make_generator):
    neutral = make_generator(pose="rest", texture="none").subject(0)
    smiling = make_generator(pose="rest", texture="none", expressions=True).subject(0)
    moved = np.linalg.norm(smiling.vertices - neutral.vertices, axis=1) > 1e-4
    neck = neutral.landmarks.as_dict()["neck"]
    assert moved.sum() > 500
    assert neutral.vertices[moved, 1].min() > neck[1] - 0.03  # nothing below the neck moves
    assert smiling.params["anny"]["facial_actions"].max() > 0


def test_textures_have_signal(make_generator):
    skin = make_generator(texture="skin", texture_size=256).subject(0).texture
    clothes = make_generator(texture="clothes", texture_size=256).subject(0).texture
    assert skin.shape == (256, 256, 3)
    assert len(np.unique(clothes.reshape(-1, 3), axis=0)) > len(np.unique(skin.reshape(-1, 3), axis=0))
    assert make_generator(texture="none").subject(0).texture is None


def test_head_part(make_generator, tmp_path):
    head = make_generator(part="head", texture="none").subject(0)
    full = make_generator(texture="none").subject(0)
    assert 3000 < len(head.vertices) < 6000
    assert 0.15 < np.ptp(head.vertices[:, 1]) < 0.4
    assert set(FACE_LANDMARKS) <= set(head.landmarks.names)
    lm_head, lm_full = head.landmarks.as_dict(), full.landmarks.as_dict()
    assert np.array_equal(lm_head["nose_tip"], lm_full["nose_tip"])  # same frame as the body
    head.validate()

    # a scan's surface, as H3DS's ground truth: nothing of what lies inside the head (eye
    # sockets and backs, mouth cavity, tongue) but the rims where it meets the outside
    def hidden(mesh):
        return np.array([mesh.label_names[k].startswith(HIDDEN_PARTS) for k in mesh.vertex_labels])

    inside = hidden(head)
    assert "tongue" not in {head.label_names[k] for k in head.vertex_labels}
    assert not inside[head.faces].all(axis=1).any()
    assert inside.sum() < 0.05 * len(inside) and hidden(full).sum() > 1000


def test_bad_options(tmp_path):
    r = runner.invoke(app, ["synth", "-o", str(tmp_path / "o"), "--age-range", "50", "20"])
    assert r.exit_code == 1 and "--age-range" in r.stderr
    assert not (tmp_path / "o").exists()
    r = runner.invoke(app, ["synth", "-o", str(tmp_path / "o"), "--device", "tpu"])
    assert r.exit_code == 1 and "--device" in r.stderr
    for bad in ("cuda:x", "cuda:", "cuda:-1"):  # a traceback (int("x")) before
        r = runner.invoke(app, ["synth", "-o", str(tmp_path / "o"), "--device", bad])
        assert r.exit_code == 1 and f"got '{bad}'" in r.stderr and "Traceback" not in r.output, r.output


def test_shards_of_synth_together_make_the_same_people(three_people, tmp_path):
    _, people = three_people
    sharded = tmp_path / "sharded"
    for k in (1, 2):
        r = runner.invoke(app, ["synth", "-n", "3", "--seed", "7", "-o", str(sharded), "--shard", f"{k}/2", "-q"])
        assert r.exit_code == 0, r.output
    assert sorted(p.name for p in sharded.iterdir()) == [f"human_{i:04d}.h5" for i in range(3)]
    for i in range(3):
        assert np.array_equal(read_mesh(sharded / f"human_{i:04d}.h5").vertices, people[i].vertices)


def test_head_carries_h3ds_face_regions(make_generator, tmp_path):
    from avatarkit.geometry.surface import vertex_normals

    out = tmp_path / "heads"
    r = runner.invoke(app, ["synth", "-n", "2", "--part", "head", "--texture", "none", "--seed", "5", "-o", str(out)])
    assert r.exit_code == 0, r.output
    for i in range(2):
        head = read_mesh(out / f"head_{i:04d}.h5")
        sphere, face = head.regions["face_sphere"], head.regions["face"]
        nose = head.landmark_points()["nose_tip"]
        distance = np.linalg.norm(head.vertices - nose, axis=1)
        # H3DS's face region: every vertex within 95 mm of the nose tip, and no other
        assert np.array_equal(sphere, np.flatnonzero(distance <= 0.095))
        assert 1000 < len(face) < len(sphere) and set(face.tolist()) <= set(sphere.tolist())
        # the face: skin looking forward; not the eyes, the mouth's inside or the back of the head
        labels = [head.label_names[k] for k in np.unique(head.vertex_labels[face])]
        assert labels == ["head"]
        forward = head.face_forward()
        assert (vertex_normals(head)[face] @ forward > 0).all()
        assert head.landmark_ids()["nose_tip"] in face
        assert np.all((head.vertices[face] - nose) @ forward < 0.01)  # nothing in front of the nose
    # the head's regions are the body's, renumbered: the same points of the same person, less
    # what the head leaves out (inside the head: the face region has none of it)
    body = make_generator(texture="none", seed=5).subject(0)
    first = read_mesh(out / "head_0000.h5")
    assert np.array_equal(first.vertices[first.regions["face"]], body.vertices[body.regions["face"]])
    sphere = body.regions["face_sphere"]
    kept = np.isin(body.vertices[sphere], first.vertices).all(axis=1)
    assert np.array_equal(first.vertices[first.regions["face_sphere"]], body.vertices[sphere[kept]])
    names = np.asarray(body.label_names)[body.vertex_labels[sphere[~kept]]]
    assert len(names) > 100 and all(n.startswith(HIDDEN_PARTS) for n in names)
    r = runner.invoke(app, ["inspect", str(out / "head_0000.h5"), "--json"])
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["datasets"]["/regions/face"]["dtype"] == "int32"
