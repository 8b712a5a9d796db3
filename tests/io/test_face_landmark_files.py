"""Users' 2D face landmark files (``track-face --landmarks FILE``): every layout the tools people
use write (dlib / face_alignment / 300-W / MediaPipe, as NPY, TXT, PTS and JSON), and every
refusal, each one line naming the file and the problem."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from avatarkit.errors import InputError
from avatarkit.io.face_landmarks import (
    MEDIAPIPE_TO_IBUG68,
    OUTSIDE_MARGIN,
    mediapipe_to_ibug68,
    read_face_landmarks,
)

W, H = 640, 480
SIZE = [(W, H)]


def ibug_points(seed=0, n=None):
    """68 (or (n, 68)) pixel points well inside a 640x480 image."""
    rng = np.random.default_rng(seed)
    shape = (68, 2) if n is None else (n, 68, 2)
    return rng.uniform([150, 100], [500, 400], size=shape)


def mediapipe_points(seed=0, n=None, count=478):
    """MediaPipe's normalised points (x, y in [0.2, 0.8], z around 0)."""
    rng = np.random.default_rng(seed)
    shape = (count, 3) if n is None else (n, count, 3)
    points = rng.uniform(0.2, 0.8, size=shape)
    points[..., 2] = rng.normal(0.0, 0.05, size=shape[:-1])
    return points


def mp_expected(normalised, sizes=SIZE):
    """What the reader should return for MediaPipe points: pixels (centres), mapped, confidence 1."""
    normalised = np.asarray(normalised)[..., :2]
    if normalised.ndim == 2:
        normalised = normalised[None]
    size = np.array(sizes, dtype=float)[:, None, :]
    xy = mediapipe_to_ibug68(normalised * size - 0.5)
    return np.concatenate([xy, np.ones((*xy.shape[:-1], 1))], axis=-1)


def with_confidence(xy, confidence=1.0):
    xy = np.asarray(xy, dtype=float)
    if xy.ndim == 2:
        xy = xy[None]
    conf = np.broadcast_to(np.asarray(confidence, dtype=float), xy.shape[:-1])
    return np.concatenate([xy, conf[..., None]], axis=-1)


def refused(path, match, sizes=SIZE, names=None):
    """The reader refuses ``path`` with one line that names it and says ``match``."""
    with pytest.raises(InputError) as info:
        read_face_landmarks(path, sizes, names)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert re.search(match, message), message
    return message


# ---------------------------------------------------------------- the mapping


def test_mapping_is_68_mediapipe_points_or_pairs():
    assert len(MEDIAPIPE_TO_IBUG68) == 68
    assert all(1 <= len(p) <= 2 and all(0 <= i < 468 for i in p) for p in MEDIAPIPE_TO_IBUG68)
    # the iBUG midline (chin, nose bridge and tip, nostril base, lip middles) lies on MediaPipe's
    # mid-plane: vertices with x = 0 in its canonical face model
    canonical_midline = {0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 94, 151, 152, 164,
                         168, 175, 195, 197, 199, 200}  # fmt: skip
    for i in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert set(MEDIAPIPE_TO_IBUG68[i]) <= canonical_midline, i
    # pairs are averaged
    points = np.zeros((478, 2))
    points[132], points[58] = (10.0, 20.0), (30.0, 40.0)
    np.testing.assert_allclose(mediapipe_to_ibug68(points)[3], [20.0, 30.0])


def test_mapping_follows_mediapipe_contours():
    """Each iBUG group maps onto the MediaPipe contour of the same name (jaw: the face oval)."""
    pytest.importorskip("mediapipe")
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as C

    def contour(name):
        return {i for c in getattr(C, f"FACE_LANDMARKS_{name}") for i in (c.start, c.end)}

    groups = {"FACE_OVAL": range(17), "RIGHT_EYEBROW": range(17, 22), "LEFT_EYEBROW": range(22, 27),
              "RIGHT_EYE": range(36, 42), "LEFT_EYE": range(42, 48), "LIPS": range(48, 68)}  # fmt: skip
    for name, points in groups.items():
        for i in points:
            assert set(MEDIAPIPE_TO_IBUG68[i]) <= contour(name), (name, i)


# ---------------------------------------------------------------- NPY


def test_npy_ibug68_layouts(tmp_path):
    xy = ibug_points()
    np.save(tmp_path / "a.npy", xy)
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "a.npy", SIZE), with_confidence(xy))

    conf = np.linspace(0.0, 1.0, 68)
    np.save(tmp_path / "b.npy", np.column_stack([xy, conf]))  # x y confidence
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "b.npy", SIZE), with_confidence(xy, conf))

    z = np.random.default_rng(1).normal(0, 30, 68)  # face_alignment's 3D points: x y z (z ignored)
    np.save(tmp_path / "c.npy", np.column_stack([xy, z]))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "c.npy", SIZE), with_confidence(xy))


def test_npy_many_frames(tmp_path):
    sizes = [(W, H), (W, H), (W, H)]
    xy = ibug_points(2, n=3)
    for name, array in {
        "frames.npy": xy,
        "frames3.npy": np.concatenate([xy, np.full((3, 68, 1), 0.5)], axis=-1),
        "stacked.npy": xy.reshape(-1, 2),  # (N * 68, 2)
        "faces.npy": xy[:, None],  # (N, 1, 68, 2): face_alignment's per-image lists stacked
    }.items():
        np.save(tmp_path / name, array)
        conf = 0.5 if name == "frames3.npy" else 1.0
        np.testing.assert_allclose(read_face_landmarks(tmp_path / name, sizes), with_confidence(xy, conf))


def test_npy_mediapipe_normalised(tmp_path):
    points = mediapipe_points()
    np.save(tmp_path / "mp.npy", points)  # (478, 3)
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "mp.npy", SIZE), mp_expected(points))
    np.save(tmp_path / "mp2.npy", points[:, :2])  # (478, 2)
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "mp2.npy", SIZE), mp_expected(points))
    np.save(tmp_path / "mesh.npy", points[:468])  # 468: the face mesh without iris points
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "mesh.npy", SIZE), mp_expected(points))

    sizes = [(W, H), (320, 240)]  # each frame normalised by its own size
    frames = mediapipe_points(3, n=2)
    np.save(tmp_path / "mp_frames.npy", frames)
    got = read_face_landmarks(tmp_path / "mp_frames.npy", sizes)
    np.testing.assert_allclose(got, mp_expected(frames, sizes))
    assert got.shape == (2, 68, 3)


def test_npy_mediapipe_in_pixels_and_normalised_ibug68(tmp_path):
    points = mediapipe_points()
    pixels = points[:, :2] * [W, H] - 0.5
    np.save(tmp_path / "px.npy", pixels)
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "px.npy", SIZE), mp_expected(points))
    xy = ibug_points()
    np.save(tmp_path / "norm68.npy", (xy + 0.5) / [W, H])  # normalised 68 points
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "norm68.npy", SIZE), with_confidence(xy))


def test_npz(tmp_path):
    xy = ibug_points()
    np.savez(tmp_path / "one.npz", xy)
    np.savez(tmp_path / "named.npz", landmarks=xy, other=np.zeros(3))
    for name in ("one.npz", "named.npz"):
        np.testing.assert_allclose(read_face_landmarks(tmp_path / name, SIZE), with_confidence(xy))
    np.savez(tmp_path / "two.npz", a=xy, b=xy)
    refused(tmp_path / "two.npz", "arrays a, b")


# ---------------------------------------------------------------- TXT and 300-W .pts


def test_txt_dumps(tmp_path):
    xy = ibug_points()
    np.savetxt(tmp_path / "dlib.txt", np.round(xy), fmt="%d")  # dlib: integer pixels
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "dlib.txt", SIZE), with_confidence(np.round(xy)))
    np.savetxt(tmp_path / "fa.txt", xy)  # face_alignment via np.savetxt: "%.18e"
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "fa.txt", SIZE), with_confidence(xy))
    conf = np.linspace(0.2, 0.9, 68)
    np.savetxt(tmp_path / "conf.csv", np.column_stack([xy, conf]), delimiter=",", header="x,y,confidence")
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "conf.csv", SIZE), with_confidence(xy, conf))
    z = np.random.default_rng(2).normal(0, 20, 68)
    np.savetxt(tmp_path / "xyz.txt", np.column_stack([xy, z]))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "xyz.txt", SIZE), with_confidence(xy))


def test_txt_mediapipe_and_frames(tmp_path):
    points = mediapipe_points()
    np.savetxt(tmp_path / "mp.txt", points)  # 478 lines of x y z, normalised
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "mp.txt", SIZE), mp_expected(points))
    xy = ibug_points(4, n=2)
    (tmp_path / "two.txt").write_text("\n\n".join("\n".join(f"{x} {y}" for x, y in frame) for frame in xy))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "two.txt", [(W, H)] * 2), with_confidence(xy))


def write_pts(path, xy, n_points=None):
    lines = ["version: 1", f"n_points:  {len(xy) if n_points is None else n_points}", "{"]
    lines += [f"{x:.3f} {y:.3f}" for x, y in xy] + ["}"]
    path.write_text("\n".join(lines) + "\n")


def test_pts_is_one_based(tmp_path):
    xy = ibug_points()
    write_pts(tmp_path / "image_001.pts", xy + 1.0)  # 300-W: 1-based pixels
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "image_001.pts", SIZE), with_confidence(xy), atol=1e-3)
    # a .pts of small coordinates is still pixels, never taken for normalised ones
    small = np.full((68, 2), 0.5)
    write_pts(tmp_path / "corner.pts", small + 1.0)
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "corner.pts", SIZE), with_confidence(small))


# ---------------------------------------------------------------- JSON


def test_json_points_and_frames(tmp_path):
    xy = ibug_points()
    (tmp_path / "list.json").write_text(json.dumps(xy.tolist()))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "list.json", SIZE), with_confidence(xy))
    (tmp_path / "wrapped.json").write_text(json.dumps({"landmarks": xy.tolist(), "image": "photo.jpg"}))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "wrapped.json", SIZE), with_confidence(xy))
    dicts = [{"x": x, "y": y, "score": 0.75} for x, y in xy]
    (tmp_path / "dicts.json").write_text(json.dumps({"points": dicts}))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "dicts.json", SIZE), with_confidence(xy, 0.75))

    frames = ibug_points(5, n=3)
    sizes = [(W, H)] * 3
    (tmp_path / "frames.json").write_text(json.dumps(frames.tolist()))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "frames.json", sizes), with_confidence(frames))
    wrapped = {"landmarks": [{"landmarks": f.tolist()} for f in frames]}
    (tmp_path / "frames_wrapped.json").write_text(json.dumps(wrapped))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "frames_wrapped.json", sizes), with_confidence(frames))


def test_json_keyed_by_image_name(tmp_path):
    frames = ibug_points(6, n=3)
    names = ["frame_0001.png", "frame_0002.png", "frame_0003.png"]
    sizes = [(W, H)] * 3
    by_name = {"frame_0003.png": frames[2].tolist(), "frame_0001.png": frames[0].tolist(),
               "frame_0002.png": frames[1].tolist(), "frame_0004.png": frames[0].tolist()}  # fmt: skip
    (tmp_path / "names.json").write_text(json.dumps(by_name))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "names.json", sizes, names), with_confidence(frames))
    by_stem = {
        f"frames/{n.removesuffix('.png')}": {"landmarks": f.tolist()} for n, f in zip(names, frames, strict=True)
    }
    (tmp_path / "stems.json").write_text(json.dumps(by_stem))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "stems.json", sizes, names), with_confidence(frames))
    # one image, one key: the key need not match (nor names be given)
    (tmp_path / "single.json").write_text(json.dumps({"photo.jpg": frames[0].tolist()}))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "single.json", SIZE), with_confidence(frames[0]))


@dataclasses.dataclass
class NormalizedLandmark:
    """The fields of mediapipe.tasks.python.components.containers.landmark.NormalizedLandmark."""

    x: float
    y: float
    z: float
    visibility: float | None = None
    presence: float | None = None
    name: str | None = None


def mediapipe_dump(points):
    """A face's points as ``json.dumps([dataclasses.asdict(p) for p in face])`` writes them."""
    return [dataclasses.asdict(NormalizedLandmark(*map(float, p))) for p in points]


def test_json_mediapipe(tmp_path):
    points = mediapipe_points()
    (tmp_path / "mp.json").write_text(json.dumps(mediapipe_dump(points)))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "mp.json", SIZE), mp_expected(points))
    # a whole FaceLandmarkerResult (dataclasses.asdict): face_landmarks is a list of faces
    result = {"face_landmarks": [mediapipe_dump(points)], "face_blendshapes": [], "facial_transformation_matrixes": []}
    (tmp_path / "result.json").write_text(json.dumps(result))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "result.json", SIZE), mp_expected(points))
    # one result per frame, and a list of frames of points
    frames = mediapipe_points(7, n=2)
    sizes = [(W, H), (W, H)]
    results = [{"face_landmarks": [mediapipe_dump(f)]} for f in frames]
    (tmp_path / "results.json").write_text(json.dumps(results))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "results.json", sizes), mp_expected(frames, sizes))
    (tmp_path / "mp_frames.json").write_text(json.dumps([mediapipe_dump(f) for f in frames]))
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "mp_frames.json", sizes), mp_expected(frames, sizes))


def test_mediapipe_points_at_the_border(tmp_path):
    """A face cut by the frame: MediaPipe's normalised points stray a little past [0, 1]."""
    points = mediapipe_points()
    points[:10, 0] -= 0.25  # a few points just past the left edge (x down to -0.05)
    np.save(tmp_path / "edge.npy", points)
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "edge.npy", SIZE), mp_expected(points))


# ---------------------------------------------------------------- refusals


def test_refuses_wrong_point_counts(tmp_path):
    np.save(tmp_path / "67.npy", ibug_points()[:67])
    message = refused(tmp_path / "67.npy", "found 67 points")
    assert "expected 68" in message and "478" in message
    np.savetxt(tmp_path / "5.txt", ibug_points()[:5])
    refused(tmp_path / "5.txt", "found 5 points")
    (tmp_path / "100.json").write_text(json.dumps(ibug_points().tolist() + ibug_points().tolist()[:32]))
    refused(tmp_path / "100.json", "found 100 points")
    np.save(tmp_path / "frames.npy", ibug_points(n=2)[:, :60])
    refused(tmp_path / "frames.npy", "found 60 points per image", sizes=[(W, H)] * 2)
    np.save(tmp_path / "columns.npy", np.zeros((68, 5)))
    refused(tmp_path / "columns.npy", "5 values each")
    np.save(tmp_path / "shape.npy", np.zeros((2, 2, 68, 2)))
    refused(tmp_path / "shape.npy", r"shape \(2, 2, 68, 2\)")
    write_pts(tmp_path / "count.pts", ibug_points() + 1, n_points=69)
    refused(tmp_path / "count.pts", "n_points says 69 but the file has 68 points")


def test_refuses_nan_and_inf(tmp_path):
    xy = ibug_points()
    xy[12, 1] = np.nan
    np.save(tmp_path / "nan.npy", xy)
    refused(tmp_path / "nan.npy", "point 12 of frame 0 is nan")
    np.savetxt(tmp_path / "inf.txt", np.where(np.arange(68)[:, None] == 3, np.inf, ibug_points()))
    refused(tmp_path / "inf.txt", "point 3 of frame 0 is inf")
    (tmp_path / "nan.json").write_text(json.dumps(xy.tolist()))  # json writes NaN
    refused(tmp_path / "nan.json", "is nan")


def test_refuses_points_outside_the_image(tmp_path):
    xy = ibug_points()
    xy[8] = (320, H + OUTSIDE_MARGIN * H + 5)  # chin well below the image
    np.save(tmp_path / "outside.npy", xy)
    refused(tmp_path / "outside.npy", r"point 8 of frame 0 at \(320.0, 533.0\) px is outside the 640x480 image")
    # a little past the edge is allowed (a jaw cut by the frame)
    xy[8] = (320, H + 10)
    np.save(tmp_path / "edge.npy", xy)
    assert read_face_landmarks(tmp_path / "edge.npy", SIZE).shape == (1, 68, 3)
    # ... and a missing point (confidence 0) is not checked
    np.save(
        tmp_path / "missing.npy",
        np.column_stack([np.where(np.arange(68)[:, None] == 0, -1e4, xy), np.r_[0.0, np.ones(67)]]),
    )
    assert read_face_landmarks(tmp_path / "missing.npy", SIZE)[0, 0, 2] == 0.0
    # landmarks for a bigger image than the one given
    np.save(tmp_path / "big.npy", ibug_points() * 3)
    refused(tmp_path / "big.npy", "outside the 640x480 image")


def test_refuses_frame_count_mismatch(tmp_path):
    np.save(tmp_path / "two.npy", ibug_points(n=2))
    refused(tmp_path / "two.npy", "landmarks for 2 frames but 3 images", sizes=[(W, H)] * 3)
    np.save(tmp_path / "one.npy", ibug_points())
    refused(tmp_path / "one.npy", "landmarks for 1 frame but 2 images", sizes=[(W, H)] * 2)
    (tmp_path / "three.json").write_text(json.dumps(ibug_points(n=3).tolist()))
    refused(tmp_path / "three.json", "landmarks for 3 frames but 1 image")
    np.savetxt(tmp_path / "one.txt", ibug_points())
    refused(tmp_path / "one.txt", "for 1 frame but 2 images", sizes=[(W, H)] * 2)


def test_refuses_dict_missing_an_image(tmp_path):
    frames = ibug_points(n=2)
    (tmp_path / "names.json").write_text(json.dumps({"a.png": frames[0].tolist(), "b.png": frames[1].tolist()}))
    refused(tmp_path / "names.json", "no landmarks for image 'c.png'", sizes=[(W, H)] * 2, names=["a.png", "c.png"])
    refused(tmp_path / "names.json", "keyed by image name .* names are not known", sizes=[(W, H)] * 2)


def test_refuses_unreadable_and_garbled_files(tmp_path):
    refused(tmp_path / "absent.json", "no such landmark file")
    (tmp_path / "cut.json").write_text("[[1, 2], [3, 4")
    refused(tmp_path / "cut.json", "not valid JSON")
    (tmp_path / "string.json").write_text('"landmarks"')
    refused(tmp_path / "string.json", "expected a list of points")
    (tmp_path / "ragged.json").write_text(json.dumps([[[1, 2], [3, 4]], "x"]))
    refused(tmp_path / "ragged.json", "frame 1: expected a list of points")
    (tmp_path / "words.json").write_text(json.dumps([["a", "b"]] * 68))
    refused(tmp_path / "words.json", "not lists of numbers")
    (tmp_path / "nox.json").write_text(json.dumps([{"y": 1.0}] * 68))
    refused(tmp_path / "nox.json", "point 0 has no 'x'")
    (tmp_path / "noface.json").write_text(json.dumps({"face_landmarks": []}))
    refused(tmp_path / "noface.json", "MediaPipe found no face")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    refused(tmp_path / "binary.txt", "not UTF-8 text")
    (tmp_path / "header.txt").write_text("frame x_0 y_0\n1 2 3\n")
    refused(tmp_path / "header.txt", "line 1: expected numbers")
    (tmp_path / "mixed.txt").write_text("1 2\n3 4 5\n")
    refused(tmp_path / "mixed.txt", "line 2: 3 numbers where each point has 2")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    refused(tmp_path / "empty.txt", "no points")
    (tmp_path / "open.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n")
    refused(tmp_path / "open.pts", "without its closing")
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    refused(tmp_path / "garbage.npy", "not a readable NumPy file")
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    refused(tmp_path / "objects.npy", "not a readable NumPy file")
    np.save(tmp_path / "strings.npy", np.array([["a", "b"]] * 68))
    refused(tmp_path / "strings.npy", "not of numbers")


# ---------------------------------------------------------------- OpenFace 2 CSV


def write_openface(path, frames, confidence, success, face_ids=None):
    """As OpenFace's FeatureExtraction writes it: ", "-separated, a row per frame."""
    header = ["frame", "face_id", "timestamp", "confidence", "success", "gaze_0_x"]
    header += [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)] + ["X_0", "AU01_r"]
    rows = []
    for i, xy in enumerate(frames):
        face = 0 if face_ids is None else face_ids[i]
        row = [i + 1, face, i * 0.04, confidence[i], success[i], 0.1, *xy[:, 0], *xy[:, 1], -30.5, 0.0]
        rows.append(", ".join(f"{v:g}" if not isinstance(v, float) else f"{v:.3f}" for v in row))
    path.write_text(", ".join(header) + "\n" + "\n".join(rows) + "\n")


def test_openface_csv(tmp_path):
    frames = np.round(ibug_points(8, n=3), 3)
    sizes = [(W, H)] * 3
    write_openface(tmp_path / "clip.csv", frames, [0.98, 0.9, 0.7], [1, 1, 0])
    got = read_face_landmarks(tmp_path / "clip.csv", sizes)
    np.testing.assert_allclose(got[..., :2], frames, atol=1e-3)
    np.testing.assert_allclose(got[:, :, 2], np.array([0.98, 0.9, 0.0])[:, None] * np.ones(68))
    # a lost face (success 0) at (0, 0) is not taken for normalised coordinates
    lost = frames.copy()
    lost[2] = 0.0
    write_openface(tmp_path / "lost.csv", lost, [0.98, 0.9, 0.0], [1, 1, 0])
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "lost.csv", sizes)[:2, :, :2], frames[:2], atol=1e-3)
    # several faces per image (FaceLandmarkImg): face 0
    write_openface(tmp_path / "faces.csv", frames[[0, 1]], [0.9, 0.8], [1, 1], face_ids=[0, 1])
    np.testing.assert_allclose(read_face_landmarks(tmp_path / "faces.csv", SIZE)[0, :, :2], frames[0], atol=1e-3)
    (tmp_path / "short.csv").write_text("frame, x_0, y_0\n1, 2, 3\n")
    refused(tmp_path / "short.csv", "OpenFace CSV without the columns x_1, y_1")
    write_openface(tmp_path / "cut.csv", frames, [0.98, 0.9, 0.7], [1, 1, 1])
    (tmp_path / "cut.csv").write_text((tmp_path / "cut.csv").read_text()[:-40])
    refused(tmp_path / "cut.csv", "line 4: 140 values for 144 columns")
