"""`avatarkit track-face` as a user runs it: views files scored against the truth, photos with
landmark files, videos, the preview, the face kind read by the other verbs, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import read_artifact
from avatarkit.io.images import write_png

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def portraits(tmp_path_factory, anny_body):
    """One synthetic head, two portrait photos of it (160 px), and its true 2D landmarks."""
    from avatarkit.parametric.face import load_face_model
    from avatarkit.parametric.face_landmarks import landmark_points

    root = tmp_path_factory.mktemp("faces")
    r = invoke("synth", "-n", 1, "--part", "head", "--expressions", "--texture", "skin", "--seed", 3, "-o",
               root / "heads", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    head = root / "heads" / "head_0000.h5"
    r = invoke("render", head, "-o", root / "views", "--preset", "portrait", "--views", 2, "--size", 160, "-q")
    assert r.exit_code == 0, r.output
    views = read_artifact(root / "views" / "head_0000.h5", "views")
    truth = read_artifact(head, "mesh")
    embedding = load_face_model("anny", body=anny_body).embeddings["ibug68"]
    points = views.cameras().project(landmark_points(truth.vertices.astype(np.float64), embedding))[0]
    return {"root": root, "head": head, "views": root / "views" / "head_0000.h5", "rgb": views.rgb, "points": points}


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_views_file_is_tracked_and_scored_against_its_head(portraits, tmp_path):
    out = tmp_path / "fit.h5"
    args = ("--landmarks", "truth", "--landmark-noise", 1, "--landmarks-only", "--json")
    summary = _json(invoke("track-face", portraits["views"], "-o", out, *args))
    assert summary["frames"] == 2 and summary["same_person"] is True
    assert summary["truth"].endswith("head_0000.h5")
    assert all(summary["converged"])
    assert summary["score_mm"]["median"] < 2.0  # NoW's score of the fit against the true head
    assert max(summary["truth_landmark_px"]) < 3.0
    fit = read_artifact(out, "face")
    assert fit.vertices.shape[0] == 2 and fit.model == "anny"
    assert np.array_equal(fit.landmarks_input[..., 2], np.ones((2, 68)))
    # the other verbs read the fit as a mesh (its first frame)
    assert invoke("inspect", out).exit_code == 0
    scored = _json(invoke("evaluate-chamfer", out, portraits["head"], "--json"))
    # metres: the fitted head lies where the true one is, up to one photo's depth-size ambiguity
    assert scored["chamfer_l1"] < 0.1
    aligned = _json(invoke("icp-align", out, portraits["head"], "-o", tmp_path / "t.h5", "--scale", "--json"))
    assert aligned["rmse"] < 0.01
    r = invoke("render", out, "-o", tmp_path / "turntable", "--views", 3, "--size", 64, "-q")
    assert r.exit_code == 0, r.output
    assert read_artifact(tmp_path / "turntable" / "fit.h5", "views").rgb.shape == (3, 64, 64, 3)


def test_a_photo_with_a_landmark_file_and_a_preview(portraits, tmp_path):
    photo = write_png(tmp_path / "photo.png", portraits["rgb"][0])
    landmarks = tmp_path / "photo_landmarks.npy"
    np.save(landmarks, portraits["points"][0])
    out = tmp_path / "photo_face.h5"
    summary = _json(
        invoke("track-face", photo, "-o", out, "--landmarks", landmarks, "--landmarks-only", "--preview", "--json")
    )
    assert summary["frames"] == 1 and summary["focal"] == "optimise"  # no EXIF: optimised from 50 mm
    assert summary["landmarks"] == "file" and summary["converged"] == [True]
    assert summary["landmark_error_px"][0] < 3.0
    preview = imread(tmp_path / "photo_face.preview.png")
    h, w = portraits["rgb"].shape[1:3]
    assert preview.shape[1] == 4 * round(w * preview.shape[0] / h)  # input | landmarks | fit | blend
    fit_panel = preview[:, 2 * preview.shape[1] // 4 : 3 * preview.shape[1] // 4]
    assert (fit_panel.max(-1) > 0).mean() > 0.05  # the shaded head is drawn


def test_a_video_is_one_person_tracked_in_time(portraits, tmp_path):
    import imageio.v3 as iio

    clip = tmp_path / "clip.mp4"
    iio.imwrite(clip, portraits["rgb"], plugin="pyav", codec="libx264", fps=5)
    landmarks = tmp_path / "clip.npy"
    np.save(landmarks, portraits["points"])
    summary = _json(invoke("track-face", clip, "-o", tmp_path / "clip.h5", "--landmarks", landmarks,
                           "--landmarks-only", "--json"))  # fmt: skip
    assert summary["frames"] == 2 and summary["same_person"] is True
    fit = read_artifact(tmp_path / "clip.h5", "face")
    assert fit.frame_names == ["clip.mp4#0", "clip.mp4#1"]
    identity = fit.params["identity"]
    assert np.allclose(identity[0], identity[1])  # one identity for the clip


def test_flame_users_track_with_their_own_model_file(portraits, tmp_path):
    from flame_standin import stand_in_embedding, stand_in_flame, write_flame_pickle

    stand_in = stand_in_flame()
    write_flame_pickle(tmp_path / "flame2023.pkl", stand_in)
    np.save(tmp_path / "landmark_embedding.npy", stand_in_embedding(len(stand_in["f"])), allow_pickle=True)
    photo = write_png(tmp_path / "photo.png", portraits["rgb"][0])
    np.save(tmp_path / "lm.npy", portraits["points"][0])
    out = tmp_path / "flame_fit.h5"
    args = ("--model", "flame", "--flame-model", tmp_path / "flame2023.pkl", "--landmarks", tmp_path / "lm.npy")
    r = invoke("track-face", photo, "-o", out, *args, "--landmarks-only", "-q")
    assert r.exit_code == 0, r.output
    fit = read_artifact(out, "face")
    assert fit.model == "flame" and fit.model_file.endswith("flame2023.pkl")
    assert fit.vertices.shape[1] == len(stand_in["v_template"]) and fit.params["identity"].shape[-1] > 0


def test_landmarks_that_cannot_be_met_are_reported_not_trusted(portraits, tmp_path):
    photo = write_png(tmp_path / "photo.png", portraits["rgb"][0])
    scrambled = portraits["points"][0][np.random.default_rng(0).permutation(68)]
    np.save(tmp_path / "bad.npy", scrambled)
    out = tmp_path / "bad_fit.h5"
    r = invoke("track-face", photo, "-o", out, "--landmarks", tmp_path / "bad.npy", "--landmarks-only")
    assert r.exit_code == 0, r.output
    assert "did not converge" in r.stderr
    fit = read_artifact(out, "face")
    assert not fit.converged[0] and fit.landmark_error_px[0] > 3.0


def test_bad_input_is_one_line_and_writes_nothing(portraits, tmp_path):
    photo = write_png(tmp_path / "photo.png", portraits["rgb"][0])
    small = write_png(tmp_path / "small.png", portraits["rgb"][0][:80])
    blank = write_png(tmp_path / "blank.png", np.full((120, 90, 3), 128, np.uint8))
    np.save(tmp_path / "lm.npy", portraits["points"][0])
    np.save(tmp_path / "ten.npy", portraits["points"][0][:10])
    np.save(tmp_path / "far.npy", portraits["points"][0] + 1000)
    junk_video = tmp_path / "junk.mp4"
    junk_video.write_bytes(bytes(range(256)) * 16)
    not_flame = tmp_path / "not_flame.pkl"
    not_flame.write_bytes(b"not a pickle at all")
    out = tmp_path / "out.h5"
    lm = ("--landmarks", tmp_path / "lm.npy")
    cases = [
        ((tmp_path / "absent.jpg", "-o", out), "no such file"),
        ((blank, "-o", out), "no face found"),
        ((photo, small, "-o", out, *lm), "share one size"),
        ((junk_video, "-o", out, *lm), "cannot be decoded"),
        ((photo, "-o", out, "--landmarks", tmp_path / "ten.npy"), "68"),
        ((photo, "-o", out, "--landmarks", tmp_path / "far.npy"), "outside"),
        ((photo, "-o", out, "--landmarks", "truth"), "views file"),
        ((photo, "-o", out, *lm, "--model", "flame", "--flame-model", not_flame), "not_flame.pkl"),
        ((portraits["views"], "-o", portraits["views"], "--landmarks", "truth"), "would write over"),
        ((photo, "-o", tmp_path / "fit.obj", *lm), ".h5"),
    ]
    for args, needle in cases:
        r = invoke("track-face", *args, "--landmarks-only")
        assert_clean_failure(r, needle)
        assert not out.exists()
    assert read_artifact(portraits["views"], "views").rgb.shape[0] == 2  # the input is untouched


def imread(path):
    import imageio.v3 as iio

    return iio.imread(path)
