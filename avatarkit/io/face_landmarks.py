"""2D face landmark files that users already have: iBUG-68 or MediaPipe face-mesh points per image.

:func:`read_face_landmarks` reads ``track-face --landmarks FILE`` and returns, for each image,
the 68 iBUG / 300-W points (``parametric.face_landmarks.IBUG68_GROUPS`` names their groups) as
``x, y, confidence``: pixels in the OpenCV convention (integer coordinates are pixel centres, x
right, y down) and a confidence in [0, 1] (0: the point is missing).

Layouts (the number of points per image):

- 68: iBUG / 300-W, as dlib, face_alignment, OpenFace and the 300-W annotations write them;
- 478 (468 face mesh + 10 iris points) or 468 (the face mesh without iris refinement):
  MediaPipe's face mesh; turned into the 68 points by :data:`MEDIAPIPE_TO_IBUG68`.

Files (chosen by suffix):

- ``.npy`` (and ``.npz`` with one array or a ``landmarks`` array): ``(P, D)`` for one image
  or ``(N, P, D)`` for N images (also ``(N * P, D)`` and ``(N, 1, P, D)``), D = 2 or 3;
- ``.txt`` (any other text suffix too): one point per line, ``x y`` or ``x y z|conf``
  (spaces or commas; blank lines and ``#`` comments skipped), as ``np.savetxt`` writes dlib's
  or face_alignment's points; all images' points one after the other for many images;
- ``.pts``: the 300-W / iBUG format (``version: 1``, ``n_points: 68``, ``{``, ``x y`` lines,
  ``}``). Its coordinates are 1-based (the annotations were made in Matlab, where the first
  pixel's centre is 1): 1 is subtracted from both, as menpo's PTS importer does
  (menpo/io/input/landmark.py: "we make the assumption (as is common) that PTS landmarks are
  1-based ... we *subtract 1*");
- ``.csv`` as OpenFace 2's FeatureExtraction / FaceLandmarkImg write it: a header naming
  ``x_0 .. x_67`` and ``y_0 .. y_67`` (pixels), one row per frame (only ``face_id`` 0 where
  there are several faces); each point's confidence is the row's ``confidence``, 0 where
  ``success`` is 0 (the tracker lost the face);
- ``.json``: a list of points (``[x, y]``, ``[x, y, c]`` or ``{"x": .., "y": .., "z": ..}``, the
  last as MediaPipe's Python tasks API dumps its ``NormalizedLandmark``), a list of such lists
  (one per image), ``{"landmarks": ...}`` or ``{"points": ...}`` around either, MediaPipe's
  ``FaceLandmarkerResult`` (``{"face_landmarks": [[points of face 0], ...]}``: face 0 is used),
  or a dict keyed by image file name or stem (``{"frame_0001.png": points, ...}``), matched with
  the ``names`` of the images.

Coordinates: pixels, unless every x and y of the file's points (those with a confidence above
0) lies in [-0.1, 1.1] (MediaPipe's normalised coordinates, which stray a little past [0, 1]
for a face at the border; never for .pts and OpenFace files, always pixels): then
``x * width - 0.5``, ``y * height - 0.5`` (MediaPipe normalises by the image's width and height
with 0 and 1 at the image's edges; the OpenCV convention puts the edges at -0.5 and W - 0.5).
A third column is a confidence when every value in it lies in [0, 1] and the layout is iBUG-68;
otherwise it is a depth (face_alignment's 3D points, MediaPipe's z) and ignored (confidence 1).

Refused, in one :class:`~avatarkit.errors.InputError` naming the file: unreadable or garbled
files, a point count that is not 68, 468 or 478 per image, NaN or infinite values, points more
than :data:`OUTSIDE_MARGIN` of the image's size outside it, a number of frames that is not the
number of images, a dict with no entry for one of the images.

The left/right permutation of the 68 points (to flip landmarks with their image) is
``avatarkit.parametric.face_landmarks.IBUG68_MIRROR``; this module, below ``parametric`` in the
layers, does not need it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avatarkit.errors import InputError

IBUG68 = 68
"""Points of the iBUG / 300-W layout."""

MEDIAPIPE_COUNTS = (478, 468)
"""Points of MediaPipe's face mesh: with the 10 iris points (FaceLandmarker, ``refine_landmarks``),
and without."""

ACCEPTED_COUNTS = (IBUG68, *MEDIAPIPE_COUNTS)

OUTSIDE_MARGIN = 0.1
"""How far outside the image a point may lie, as a fraction of the image's width (for x) or
height (for y): detectors extrapolate a jaw cut by the frame's edge a little past it."""

# MediaPipe face mesh -> iBUG-68. Each iBUG point is one MediaPipe point, or the mean of two
# where the 68-point annotation falls between two mesh vertices. Source: Peizhi Yan's
# Mediapipe_2_Dlib_Landmarks (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks,
# mediapipe2dlib/mp2dlib.py, 2024: "each Dlib landmark index maps to one or two Mediapipe
# landmark indices ... we take the average"), the same correspondence as the LM68 tables used
# in the MediaPipe community (jaw, brows, nose, eyes and lips along MediaPipe's own
# FaceLandmarksConnections contours). Checked against MediaPipe's canonical face model
# (mediapipe/modules/face_geometry/data/canonical_face_model.obj, seen frontally): the jaw
# points are all on the face oval (FACE_LANDMARKS_FACE_OVAL) and run from the subject's right
# ear over the chin to the left ear, every pair of iBUG mirror points (IBUG68_MIRROR) is mirror
# symmetric on the model and every midline point lies on its mid-plane, with one change to the
# source: jaw point 13 is the mean of 361 and 288 (the mirror images of point 3's 132 and 58),
# where the source has 361 alone, 0.95 model units (about 1 cm) off point 3's mirror image.
# Indices are below 468, so 468-point meshes (no iris) map the same way.
MEDIAPIPE_TO_IBUG68: tuple[tuple[int, ...], ...] = (
    # jaw 0-16: face-oval vertices, subject's right ear -> chin (152) -> left ear
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361, 288), (323,), (454,), (356,),
    # right brow 17-21 (outer -> inner), left brow 22-26 (inner -> outer)
    (70,), (63,), (105,), (66,), (107,),
    (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30 (top -> tip), nostrils 31-35 (right -> left)
    (168, 6), (197, 195), (5,), (4,),
    (75,), (97,), (2,), (326,), (305,),
    # right eye 36-41, left eye 42-47 (corner, upper lid, corner, lower lid)
    (33,), (160,), (158,), (133,), (153,), (144,),
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59 (right corner, upper lip, left corner, lower lip)
    (61,), (39,), (37,), (0,), (267,), (269,), (291,),
    (321,), (314,), (17,), (84,), (91,),
    # inner lips 60-67
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)  # fmt: skip
"""For each iBUG-68 point, the MediaPipe face-mesh point (or two, averaged) it is."""

_PAIRS = np.array([(p[0], p[-1]) for p in MEDIAPIPE_TO_IBUG68], dtype=np.int64)


def mediapipe_to_ibug68(points: np.ndarray) -> np.ndarray:
    """MediaPipe face-mesh points ``(..., 478 or 468, D)`` as iBUG-68 points ``(..., 68, D)``
    (:data:`MEDIAPIPE_TO_IBUG68`: a point or the mean of two)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2] not in MEDIAPIPE_COUNTS:
        raise ValueError(f"expected (..., 478 or 468, D) MediaPipe points, got {points.shape}")
    return 0.5 * (points[..., _PAIRS[:, 0], :] + points[..., _PAIRS[:, 1], :])


def read_face_landmarks(
    path: str | Path,
    image_sizes: Sequence[tuple[int, int]],
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """The iBUG-68 points of each image from a landmark file (see the module's docstring).

    Args:
        path: a ``.json``, ``.txt``, ``.pts``, ``.npy`` or ``.npz`` file.
        image_sizes: ``(width, height)`` in pixels of each of the N images, in order.
        names: the images' file names (or stems), in the same order; needed only for a JSON
            dict keyed by image name (with one image and one key, the key need not match).

    Returns:
        (N, 68, 3) float64: x, y in pixels (OpenCV convention), confidence in [0, 1].

    Raises:
        InputError: naming ``path``, for any problem with the file or its points.
    """
    path = Path(path)
    sizes = [(int(w), int(h)) for w, h in image_sizes]
    if not sizes:
        raise ValueError("read_face_landmarks needs the size of at least one image")
    if names is not None and len(names) != len(sizes):
        raise ValueError(f"{len(names)} names for {len(sizes)} images")
    if not path.is_file():
        raise InputError("no such landmark file" if not path.exists() else "not a file", path)

    suffix = path.suffix.lower()
    coordinates = "pixels or normalised"
    if suffix in (".npy", ".npz"):
        frames = _read_numpy(path, len(sizes))
    elif suffix == ".json":
        frames = _read_json(path, len(sizes), names)
    else:
        text = _read_text(path)
        if _is_pts(text):
            frames, coordinates = _parse_pts(text, path), "1-based pixels"
        elif _is_openface(text):
            frames, coordinates = _parse_openface(text, path), "pixels"
        else:
            frames = _parse_txt(text, path, len(sizes))

    if len(frames) != len(sizes):
        raise InputError(
            f"landmarks for {len(frames)} frame{'s' * (len(frames) != 1)} but {len(sizes)} "
            f"image{'s' * (len(sizes) != 1)}: give one set of points per image",
            path,
        )
    return _to_ibug68(frames, sizes, coordinates, path)


# ---------------------------------------------------------------- points to iBUG-68 pixels


def _to_ibug68(frames: np.ndarray, sizes: list[tuple[int, int]], coordinates: str, path: Path) -> np.ndarray:
    """(N, P, D) points read from a file -> (N, 68, 3) pixels and confidence, after the checks.

    ``coordinates``: ``1-based pixels`` (.pts), ``pixels`` or ``pixels or normalised`` (told
    apart by the values of the points that are there, confidence above 0)."""
    n, count, dims = frames.shape
    if count not in ACCEPTED_COUNTS:
        raise InputError(f"found {count} points per image: {_accepted()}", path)
    if dims not in (2, 3):
        raise InputError(f"points have {dims} values each: expected x y, x y z or x y confidence", path)
    bad = ~np.isfinite(frames)
    if bad.any():
        f, p, _ = np.argwhere(bad)[0]
        value = frames[f, p][bad[f, p]][0]
        raise InputError(f"point {p} of frame {f} is {value} (every coordinate must be a finite number)", path)

    xy = frames[..., :2].copy()
    confidence = np.ones((n, count))
    if dims == 3 and count == IBUG68:
        third = frames[..., 2]
        if third.min() >= 0.0 and third.max() <= 1.0:
            confidence = third.copy()
    size = np.array(sizes, dtype=np.float64)[:, None, :]  # (N, 1, 2) width, height
    present = xy[confidence > 0]
    if coordinates == "1-based pixels":
        xy -= 1.0
    elif (
        coordinates == "pixels or normalised"
        and len(present)
        and present.min() >= -OUTSIDE_MARGIN
        and present.max() <= 1.0 + OUTSIDE_MARGIN
    ):
        xy = xy * size - 0.5  # normalised (MediaPipe): 0 and 1 are the image's edges

    low = -0.5 - OUTSIDE_MARGIN * size
    high = size - 0.5 + OUTSIDE_MARGIN * size
    outside = ((xy < low) | (xy > high)).any(axis=-1) & (confidence > 0)
    if outside.any():
        f, p = np.argwhere(outside)[0]
        w, h = sizes[f]
        raise InputError(
            f"point {p} of frame {f} at ({xy[f, p, 0]:.1f}, {xy[f, p, 1]:.1f}) px is outside the "
            f"{w}x{h} image (by more than {OUTSIDE_MARGIN:.0%} of its size)",
            path,
        )

    if count != IBUG68:
        xy = mediapipe_to_ibug68(xy)
        confidence = np.minimum(confidence[:, _PAIRS[:, 0]], confidence[:, _PAIRS[:, 1]])
    return np.concatenate([xy, confidence[..., None]], axis=-1)


def _accepted() -> str:
    return "expected 68 (iBUG / 300-W) or 478 or 468 (MediaPipe face mesh) per image"


def _frames_of(points: np.ndarray, n_images: int, path: Path) -> np.ndarray:
    """(P, D) points of every image one after the other -> (N, P / N, D)."""
    total = len(points)
    if total in ACCEPTED_COUNTS and n_images > 1:
        return points[None]  # one frame: the frame-count check says so
    if total % n_images == 0 and total // n_images in ACCEPTED_COUNTS:
        return points.reshape(n_images, total // n_images, points.shape[-1])
    per = f" for {n_images} images" if n_images > 1 else ""
    raise InputError(f"found {total} points{per}: {_accepted()}", path)


# ---------------------------------------------------------------- NumPy


def _read_numpy(path: Path, n_images: int) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                keys = list(data.keys())
                if "landmarks" in keys:
                    array = data["landmarks"]
                elif len(keys) == 1:
                    array = data[keys[0]]
                else:
                    raise InputError(f"an .npz with arrays {', '.join(keys)}: name one 'landmarks'", path)
        else:
            array = data
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"not a readable NumPy file ({_reason(exc)})", path) from None
    if not (np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)):
        raise InputError(f"an array of {array.dtype}, not of numbers", path)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 4 and array.shape[1] == 1:  # (N, faces=1, P, D), as face_alignment's lists stack
        array = array[:, 0]
    if array.ndim == 2:
        return _frames_of(array, n_images, path)
    if array.ndim == 3:
        return array
    raise InputError(f"an array of shape {array.shape}: expected (points, 2 or 3) or (frames, points, 2 or 3)", path)


# ---------------------------------------------------------------- text: plain and 300-W .pts


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not a text landmark file (not UTF-8 text)", path) from None
    except OSError as exc:
        raise InputError(f"cannot read landmarks ({_reason(exc)})", path) from None


def _is_pts(text: str) -> bool:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.lower().startswith(("version", "n_points")) or line == "{"
    return False


def _numbers(line: str, number: int, path: Path) -> list[float]:
    try:
        return [float(word) for word in re.split(r"[,\s]+", line.strip()) if word]
    except ValueError:
        raise InputError(f"line {number}: expected numbers 'x y', got {line.strip()[:60]!r}", path) from None


def _parse_txt(text: str, path: Path, n_images: int) -> np.ndarray:
    rows: list[list[float]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0]
        if not line.strip():
            continue
        values = _numbers(line, number, path)
        if len(values) not in (2, 3) or (rows and len(values) != len(rows[0])):
            want = "2 or 3" if not rows else str(len(rows[0]))
            raise InputError(f"line {number}: {len(values)} numbers where each point has {want}", path)
        rows.append(values)
    if not rows:
        raise InputError(f"no points in the file: {_accepted()}", path)
    return _frames_of(np.array(rows, dtype=np.float64), n_images, path)


def _csv_header(text: str) -> list[str]:
    for line in text.splitlines():
        if line.strip():
            return [word.strip() for word in line.split(",")]
    return []


def _is_openface(text: str) -> bool:
    header = _csv_header(text)
    return "x_0" in header and "y_0" in header


def _parse_openface(text: str, path: Path) -> np.ndarray:
    """OpenFace 2's CSV: ``x_i``, ``y_i`` columns, a row per frame (and face)."""
    header = _csv_header(text)
    column = {name: i for i, name in enumerate(header)}
    missing = [f"{axis}_{i}" for i in range(IBUG68) for axis in "xy" if f"{axis}_{i}" not in column]
    if missing:
        raise InputError(
            f"an OpenFace CSV without the columns {', '.join(missing[:4])}: it needs x_0..x_67, y_0..y_67", path
        )
    xs = [column[f"x_{i}"] for i in range(IBUG68)]
    ys = [column[f"y_{i}"] for i in range(IBUG68)]
    frames = []
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()][1:]
    for number, line in lines:
        words = [word.strip() for word in line.split(",")]
        if len(words) != len(header):
            raise InputError(f"line {number}: {len(words)} values for {len(header)} columns", path)
        try:
            row = np.array([float(word) for word in words])
        except ValueError:
            raise InputError(f"line {number}: values that are not numbers", path) from None
        if "face_id" in column and row[column["face_id"]] != 0:
            continue
        confidence = row[column["confidence"]] if "confidence" in column else 1.0
        if "success" in column and row[column["success"]] == 0:
            confidence = 0.0
        frames.append(np.column_stack([row[xs], row[ys], np.full(IBUG68, np.clip(confidence, 0.0, 1.0))]))
    if not frames:
        raise InputError("an OpenFace CSV without rows of landmarks", path)
    return np.stack(frames)


def _parse_pts(text: str, path: Path) -> np.ndarray:
    """300-W ``.pts``: header lines (``version: 1``, ``n_points: 68``), ``{``, points, ``}``."""
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    declared = None
    start = None
    for i, (number, line) in enumerate(lines):
        if line == "{":
            start = i + 1
            break
        key, _, value = line.partition(":")
        if key.strip().lower() == "n_points":
            try:
                declared = int(value)
            except ValueError:
                raise InputError(f"line {number}: n_points is not a number ({value.strip()!r})", path) from None
    if start is None:
        raise InputError("a .pts file without its '{' line before the points", path)
    rows = []
    closed = False
    for number, line in lines[start:]:
        if line == "}":
            closed = True
            break
        values = _numbers(line, number, path)
        if len(values) != 2:
            raise InputError(f"line {number}: {len(values)} numbers where a .pts point has 2 (x y)", path)
        rows.append(values)
    if not closed:
        raise InputError("a .pts file without its closing '}' (cut short?)", path)
    if declared is not None and declared != len(rows):
        raise InputError(f"n_points says {declared} but the file has {len(rows)} points", path)
    return np.array(rows, dtype=np.float64).reshape(1, len(rows), 2)


# ---------------------------------------------------------------- JSON

_WRAPPERS = ("landmarks", "points", "keypoints")
"""Keys of a dict that hold the points (or the frames) themselves."""


def _read_json(path: Path, n_images: int, names: Sequence[str] | None) -> np.ndarray:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("not a JSON landmark file (not UTF-8 text)", path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", path) from None
    except OSError as exc:
        raise InputError(f"cannot read landmarks ({_reason(exc)})", path) from None
    frames = _json_frames(data, path, n_images, names)
    counts = {frame.shape for frame in frames}
    if len(counts) > 1:
        shapes = sorted({f"{shape[0]} points of {shape[1]} values" for shape in counts})
        raise InputError(f"frames of different layouts ({', '.join(shapes)}): {_accepted()}", path)
    return np.stack(frames)


def _json_frames(data: Any, path: Path, n_images: int, names: Sequence[str] | None) -> list[np.ndarray]:
    """The frames of a JSON document: each (P, D)."""
    if isinstance(data, dict):
        if "face_landmarks" in data:
            return [_json_frame(data, path, "the file")]
        key = next((k for k in _WRAPPERS if k in data), None)
        if key is not None:
            return _json_frames(data[key], path, n_images, names)
        return _json_by_name(data, path, n_images, names)
    if not isinstance(data, list) or not data:
        raise InputError(f"expected a list of points, a list of frames or a dict, found {_kind(data)}", path)
    if all(_is_point(item) for item in data):
        return list(_frames_of(_json_frame(data, path, "the file"), n_images, path))
    return [_json_frame(item, path, f"frame {i}") for i, item in enumerate(data)]


def _json_by_name(data: dict, path: Path, n_images: int, names: Sequence[str] | None) -> list[np.ndarray]:
    """A dict keyed by image file name or stem."""
    if not data:
        raise InputError("an empty JSON object: no landmarks", path)
    if names is None:
        if n_images == 1 and len(data) == 1:
            key = next(iter(data))
            return [_json_frame(data[key], path, f"entry {key!r}")]
        raise InputError(f"landmarks keyed by image name ({_some(data)}) but the images' names are not known", path)
    lookup: dict[str, str] = {}
    for key in data:
        for alias in (Path(key).stem, Path(key).name, key):  # the full key wins over a stem
            lookup[alias] = key
    frames = []
    for name in names:
        key = next((lookup[a] for a in (name, Path(name).name, Path(name).stem) if a in lookup), None)
        if key is None:
            raise InputError(f"no landmarks for image {name!r} (the file has {_some(data)})", path)
        frames.append(_json_frame(data[key], path, f"entry {key!r}"))
    return frames


def _json_frame(item: Any, path: Path, where: str) -> np.ndarray:
    """One frame's points: a list of points, a wrapper dict or a MediaPipe result."""
    if isinstance(item, dict):
        if "face_landmarks" in item:  # MediaPipe's FaceLandmarkerResult: a list of faces
            faces = item["face_landmarks"]
            if not isinstance(faces, list):
                raise InputError(f"{where}: face_landmarks is {_kind(faces)}, not a list of faces", path)
            if not faces:
                raise InputError(f"{where}: MediaPipe found no face (face_landmarks is empty)", path)
            return _json_frame(faces[0], path, where)
        key = next((k for k in _WRAPPERS if k in item), None)
        if key is None:
            raise InputError(f"{where}: a dict without landmarks (keys {_some(item)})", path)
        return _json_frame(item[key], path, where)
    if not isinstance(item, list) or not item:
        raise InputError(f"{where}: expected a list of points, found {_kind(item)}", path)
    if all(isinstance(point, dict) for point in item):
        return np.array([_dict_point(point, path, where, i) for i, point in enumerate(item)], dtype=np.float64)
    try:
        points = np.array(item, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: points that are not lists of numbers", path) from None
    if points.ndim != 2:
        raise InputError(f"{where}: expected a list of [x, y] points, found an array of shape {points.shape}", path)
    return points


def _dict_point(point: dict, path: Path, where: str, index: int) -> list[float]:
    """``{"x", "y"}`` (MediaPipe's NormalizedLandmark has ``z``, ignored) with an optional
    ``confidence`` or ``score``: [x, y, confidence]."""
    try:
        x, y = float(point["x"]), float(point["y"])
        score = next((point[k] for k in ("confidence", "score") if point.get(k) is not None), 1.0)
        return [x, y, float(score)]
    except KeyError as exc:
        raise InputError(f"{where}: point {index} has no {exc.args[0]!r}", path) from None
    except (TypeError, ValueError):
        raise InputError(f"{where}: point {index} has values that are not numbers", path) from None


def _is_point(item: Any) -> bool:
    if isinstance(item, dict):
        return "x" in item or "y" in item
    return (
        isinstance(item, list)
        and len(item) in (2, 3)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item)
    )


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"a {type(value).__name__} ({str(value)[:30]!r})" if value is not None else "null"


def _some(data: dict) -> str:
    keys = [repr(k) for k in list(data)[:4]]
    return "keys " + ", ".join(keys) + (", ..." if len(data) > 4 else "")


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
