"""Camera files users bring, to and from our convention (``docs/conventions.md``).

- IDR / H3DS ``cameras.npz``: ``world_mat_i`` = K [R | t] padded to 4x4 (world to pixels,
  OpenCV axes), ``scale_mat_i`` maps IDR's unit sphere to the world. Image sizes are not
  stored; they are taken from the principal point (2 cx + 1, 2 cy + 1) unless given.
- NeRF ``transforms.json``: per frame ``transform_matrix`` = camera-to-world with OpenGL
  axes (camera looks down -Z, +Y up); ``camera_angle_x`` or ``fl_x``/``fl_y``, optional
  ``cx``, ``cy``, ``w``, ``h``.
- our ``views`` files: ``/cameras/K``, ``/cameras/world_to_cam``, ``projection``, size, and
  ``/cameras/target`` where the rig knew it.

Targets (where cameras are aimed): IDR's ``scale_mat`` centre, a views file's own; NeRF
files have none (:meth:`Cameras.targets` then falls back on the rig's focus).
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from avatarkit.errors import InputError
from avatarkit.io.formats import HDF5_SUFFIXES
from avatarkit.structures import Cameras

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def read_cameras(path: str | Path, size: tuple[int, int] | None = None) -> Cameras:
    """Cameras from ``cameras.npz`` (IDR/H3DS), ``transforms.json`` (NeRF) or a views .h5,
    checked (:meth:`Cameras.validate`): an :class:`InputError` naming ``path`` for anything
    unreadable, missing, non-finite or degenerate."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_idr(path, size)
    if suffix == ".json":
        return read_transforms_json(path, size)
    if suffix in HDF5_SUFFIXES:
        from avatarkit.io.hdf5 import check_kind, open_h5

        with open_h5(path) as f:
            check_kind(f, path, "views")  # also checks the attributes and the cameras' numbers
            k, w2c = f["/cameras/K"][()], f["/cameras/world_to_cam"][()]
            target = f["/cameras/target"][()] if "/cameras/target" in f else None
            projection = f.attrs["projection"]
            projection = projection.decode() if isinstance(projection, bytes) else str(projection)
            width, height = int(f.attrs["width"]), int(f.attrs["height"])
        return Cameras(k, w2c, projection, *(size or (width, height)), target).validate(path)
    raise InputError("cameras must be an IDR/H3DS cameras.npz, a NeRF transforms.json or a views .h5", path)


def decompose_projection(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """K (3x3, positive diagonal, K[2, 2] = 1) and 4x4 world_to_cam from a 3x4 P = K [R | t]."""
    import scipy.linalg

    k, r = scipy.linalg.rq(p[:, :3])
    signs = np.diag(np.sign(np.diag(k)))
    k, r = k @ signs, signs @ r
    if np.linalg.det(r) < 0:  # P was scaled by a negative number
        r, p = -r, -p
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, np.linalg.solve(k, p[:, 3])  # P's overall scale cancels here
    return k / k[2, 2], m


def read_idr(path: Path, size: tuple[int, int] | None = None) -> Cameras:
    """Cameras from an IDR/H3DS ``cameras.npz`` (see the module docstring), checked."""
    try:
        data = np.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"not a readable .npz file ({exc})", path) from None
    if not hasattr(data, "files"):
        raise InputError("not an .npz archive (one array, not named arrays)", path)
    ids = sorted(int(m.group(1)) for k in data.files if (m := re.fullmatch(r"world_mat_(\d+)", k)))
    if not ids:
        raise InputError("no world_mat_i arrays (not an IDR/H3DS cameras.npz)", path)
    ks, poses, targets = [], [], []
    for i in ids:
        p = _npz_matrix(data, f"world_mat_{i}", path)[:3, :4]
        if not np.isfinite(p).all():
            raise InputError(f"world_mat_{i} has NaN or infinite values", path)
        if not abs(np.linalg.det(p[:, :3])) > 0:
            raise InputError(f"world_mat_{i} is degenerate (its 3x3 part K R is singular)", path)
        k, w2c = decompose_projection(p)
        ks.append(k)
        poses.append(w2c)
        if f"scale_mat_{i}" in data.files:  # IDR's unit sphere is centred on the subject
            targets.append(_npz_matrix(data, f"scale_mat_{i}", path)[:3, 3])
    k0 = ks[0]
    if size is None:
        size = (round(2 * k0[0, 2] + 1), round(2 * k0[1, 2] + 1))
        if min(size) < 1:
            raise InputError(
                f"the principal point ({k0[0, 2]:.4g}, {k0[1, 2]:.4g}) gives no image size; pass --size", path
            )
    target = np.stack(targets) if len(targets) == len(ids) else None
    return Cameras(np.stack(ks), np.stack(poses), "perspective", *size, target).validate(path)


def _npz_matrix(data, name: str, path: Path) -> np.ndarray:
    """The array ``name`` of an npz as a float64 matrix of at least 3 x 4, or an InputError."""
    try:  # object arrays (pickles are refused), strings, a damaged archive
        m = np.asarray(data[name], dtype=np.float64)
    except (ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"{name} is not a readable numeric array ({exc})", path) from None
    if m.ndim != 2 or m.shape[0] < 3 or m.shape[1] < 4:
        raise InputError(f"{name} has shape {m.shape}, expected 4 x 4 (or 3 x 4)", path)
    return m


def idr_scale_mat(center: np.ndarray, radius: float) -> np.ndarray:
    """IDR's ``scale_mat``: maps its unit sphere onto the sphere (``center``, ``radius``)."""
    m = np.eye(4)
    m[:3, :3] *= radius
    m[:3, 3] = center
    return m


def write_idr(path: Path, cameras: Cameras, scale_mat: np.ndarray) -> None:
    """``cameras.npz`` with ``world_mat_i`` and ``scale_mat_i`` per view (perspective cameras:
    :func:`avatarkit.io.view_folders.check_export`)."""
    arrays = {}
    for i in range(len(cameras)):
        world = np.eye(4)
        world[:3, :4] = cameras.K[i] @ cameras.world_to_cam[i, :3, :4]
        arrays[f"world_mat_{i}"] = world
        arrays[f"scale_mat_{i}"] = scale_mat
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def read_transforms_json(path: Path, size: tuple[int, int] | None = None) -> Cameras:
    """Cameras from a NeRF ``transforms.json`` (see the module docstring), checked."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a NeRF transforms.json ({exc})", path) from None
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list):
        raise InputError("not a NeRF transforms.json (no list of frames)", path)
    if not frames:
        raise InputError("transforms.json has no frames", path)

    def number(key: str) -> float:
        value = meta[key]
        try:
            number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not np.isfinite(number):
            raise InputError(f"transforms.json: {key} must be a finite number, got {value!r}", path)
        return number

    def angle(key: str) -> float:
        value = number(key)
        if not 0 < value < np.pi:
            raise InputError(
                f"transforms.json: {key} must be a field of view between 0 and pi radians, got {value}", path
            )
        return value

    if size is None:
        if "w" not in meta or "h" not in meta:
            raise InputError("transforms.json has no w and h; pass --size", path)
        w, h = number("w"), number("h")
        if not (w >= 1 and h >= 1 and w == int(w) and h == int(h)):
            raise InputError(f"transforms.json: w and h must be positive whole numbers, got {w:g} and {h:g}", path)
        size = (int(w), int(h))
    width, height = size
    if "fl_x" in meta:
        fx, fy = number("fl_x"), number("fl_y" if "fl_y" in meta else "fl_x")
    elif "camera_angle_x" in meta:
        fx = 0.5 * width / np.tan(0.5 * angle("camera_angle_x"))
        fy = 0.5 * height / np.tan(0.5 * angle("camera_angle_y")) if "camera_angle_y" in meta else fx
    else:
        raise InputError("transforms.json has neither camera_angle_x nor fl_x", path)
    # NeRF's principal point is in continuous image coordinates (pixel centres at + 0.5)
    cx = (number("cx") if "cx" in meta else width / 2) - 0.5
    cy = (number("cy") if "cy" in meta else height / 2) - 0.5
    k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    poses = []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or "transform_matrix" not in frame:
            raise InputError(f"frame {i} has no transform_matrix", path)
        try:
            c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
        except (ValueError, TypeError):
            c2w = np.empty(0)
        if c2w.shape != (4, 4):
            raise InputError(f"frame {i}: transform_matrix is not a 4 x 4 matrix of numbers", path)
        if not np.isfinite(c2w).all():
            raise InputError(f"frame {i}: transform_matrix has NaN or infinite values", path)
        try:
            poses.append(np.linalg.inv(c2w @ OPENGL_TO_OPENCV))
        except np.linalg.LinAlgError:
            raise InputError(f"frame {i}: transform_matrix is singular (not a camera pose)", path) from None
    return Cameras(np.repeat(k[None], len(poses), 0), np.stack(poses), "perspective", width, height).validate(path)
