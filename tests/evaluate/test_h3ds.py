"""The H3DS protocol: landmark Procrustes, ICP with scale, nearest-vertex distances in mm."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from helpers import assert_clean_failure, invoke

from avatarkit.errors import InputError, OptionError
from avatarkit.evaluate.h3ds import H3DS_LANDMARKS, evaluate_h3ds
from avatarkit.io.hdf5 import write_artifact
from avatarkit.structures import Mesh


@pytest.fixture(scope="module")
def head(make_generator):
    return make_generator(part="head", seed=3).subject(0)


def _moved(mesh, scale=1.05, degrees=10.0, shift=(0.02, -0.01, 0.03), noise=0.0):
    a = np.radians(degrees)
    r = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    v = (mesh.vertices.astype(np.float64) * scale) @ r.T + np.asarray(shift)
    v += np.random.default_rng(0).normal(0, noise, v.shape)
    return dataclasses.replace(mesh, vertices=v.astype(np.float32), landmarks=mesh.landmarks)


def test_a_similarity_moved_prediction_is_aligned_back(head):
    landmarks = head.landmark_ids()
    assert set(H3DS_LANDMARKS) <= set(landmarks)
    pred = _moved(head, noise=0.0002)  # 0.2 mm noise
    metrics, aligned = evaluate_h3ds(pred, head, landmarks, landmarks)
    assert metrics.units == "mm" and metrics.protocol == "h3ds"
    assert metrics.values["gt_to_pred"] < 0.5 and metrics.values["pred_to_gt"] < 0.5
    assert np.abs(aligned.vertices - head.vertices).max() < 0.002
    # a real shape difference survives the alignment: the nose pushed 5 mm forward
    nose = head.vertices[landmarks["nose_tip"]]
    near = np.linalg.norm(head.vertices - nose, axis=1) < 0.015
    bumped = head.vertices.copy()
    bumped[near, 2] += 0.005
    bump, _ = evaluate_h3ds(Mesh(bumped, head.faces), head, landmarks, landmarks)
    assert bump.per_point["pred_to_gt"].max() > 3.0  # mm, at the nose
    assert np.median(bump.per_point["pred_to_gt"]) < 0.1  # the rest stays put


def test_face_region_and_bad_inputs(head):
    landmarks = head.landmark_ids()
    front = np.flatnonzero(head.vertices[:, 2] > np.median(head.vertices[:, 2]))
    pred = _moved(head, noise=0.0005)
    face, _ = evaluate_h3ds(pred, head, landmarks, landmarks, front, "face")
    assert len(face.per_point["gt_to_pred"]) == len(front)
    with pytest.raises(OptionError, match="lacks nose_tip"):
        evaluate_h3ds(pred, head, {k: v for k, v in landmarks.items() if k != "nose_tip"}, landmarks)
    with pytest.raises(InputError, match="ground-truth region index names vertex"):
        evaluate_h3ds(pred, head, landmarks, landmarks, np.array([0, 10**7]), "face")
    with pytest.raises(OptionError, match="needs the ground truth's face region"):
        evaluate_h3ds(pred, head, landmarks, landmarks, None, "face")


def test_cli_h3ds_with_landmark_and_region_files(head, tmp_path):
    gt = write_artifact(tmp_path / "gt.h5", head)
    pred = write_artifact(tmp_path / "pred.h5", _moved(head, noise=0.0003))
    lm = "\n".join(f"{k} {v}" for k, v in head.landmark_ids().items() if k in H3DS_LANDMARKS)
    (tmp_path / "lm.txt").write_text(lm + "\n")
    front = np.flatnonzero(head.vertices[:, 2] > np.median(head.vertices[:, 2]))
    (tmp_path / "face.txt").write_text("\n".join(map(str, front)))
    args = ["--protocol", "h3ds", "--landmarks-pred", tmp_path / "lm.txt", "--landmarks-gt", tmp_path / "lm.txt"]
    r = invoke("evaluate-chamfer", pred, gt, *args, "--region", "face", "--gt-region", tmp_path / "face.txt", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["units"] == "mm" and row["region"] == "face" and row["gt_to_pred"] < 1.0
    (tmp_path / "bad.txt").write_text("right_eye 1\nnose_tip twelve\n")
    assert_clean_failure(
        invoke("evaluate-chamfer", pred, gt, "--protocol", "h3ds", "--landmarks-pred", tmp_path / "bad.txt"), "line 2"
    )
    assert_clean_failure(invoke("evaluate-chamfer", pred, gt, "--region", "face"), "belong to --protocol h3ds")
    (tmp_path / "far.txt").write_text("1\n2\n99999999\n")
    far = ["--protocol", "h3ds", "--gt-region", tmp_path / "far.txt", "--region", "face"]
    assert_clean_failure(invoke("evaluate-chamfer", pred, gt, *far), str(tmp_path / "far.txt"), "99999999")


def test_cli_h3ds_uses_the_ground_truths_own_face_region(head, tmp_path):
    gt = write_artifact(tmp_path / "head_0000.h5", head)
    # a synthetic head against itself: no extra files, the face region scores 0 mm
    r = invoke("evaluate-chamfer", gt, gt, "--protocol", "h3ds", "--region", "face", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["region"] == "face" and row["gt_region"] == "/regions/face" and row["landmarks"]
    assert row["gt_to_pred"] < 1e-3  # mm; pred_to_gt measures the whole prediction against the face, as H3DS does
    assert row["pred_to_gt"] > 5
    # a moved, noisy prediction: the file's region is the one used, for ICP and for --region face
    pred = write_artifact(tmp_path / "pred.h5", dataclasses.replace(_moved(head, noise=0.0003), regions=None))
    (tmp_path / "face.txt").write_text("\n".join(map(str, head.regions["face"])))
    landmarks = head.landmark_ids()
    for region in (None, "face"):
        args = ("--region", region) if region else ()
        own = json.loads(invoke("evaluate-chamfer", pred, gt, "--protocol", "h3ds", *args, "--json").stdout)
        filed = invoke("evaluate-chamfer", pred, gt, "--protocol", "h3ds", *args, "--gt-region", tmp_path / "face.txt",
                       "--json")  # fmt: skip
        assert json.loads(filed.stdout)["gt_to_pred"] == own["gt_to_pred"]
        direct, _ = evaluate_h3ds(_moved(head, noise=0.0003), head, landmarks, landmarks, head.regions["face"], region)
        assert own["gt_to_pred"] == pytest.approx(direct.values["gt_to_pred"], rel=1e-9)
        assert own["gt_to_pred"] < 0.6
    assert own["region"] == "face" and len(head.regions["face"]) < len(head.vertices) / 2
    # without a face region anywhere, --region face says what it needs
    bare = write_artifact(tmp_path / "bare.h5", dataclasses.replace(head, regions=None))
    result = invoke("evaluate-chamfer", pred, bare, "--protocol", "h3ds", "--region", "face")
    assert_clean_failure(result, "--gt-region", "/regions/face")
