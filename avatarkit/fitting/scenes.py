"""The posed photos of one scene, as users bring them to a per-scene fit (``fit-head``).

- a views ``.h5`` (``avatarkit render``): its cameras, images and masks, and its fixed view
  subsets (``render --preset h3ds``) when it has them;
- an IDR/H3DS scene folder: ``image/``, ``mask/`` and ``cameras.npz`` with ``world_mat_i`` and
  ``scale_mat_i`` (IDR's unit sphere), and the view subsets an export wrote (``subsets.json``);
- a NeRF folder: ``transforms.json`` with its images, masks in ``mask/`` (same names) or in
  the images' alpha channel.

Masks are required: a fit needs the silhouette. :func:`choose_views` picks the views a fit
uses: the scene's own fixed subset of that size (as H3DS's ``views_config``), else views
spread evenly over the capture.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from avatarkit.errors import InputError, OptionError
from avatarkit.io.view_folders import SUBSETS_FILE
from avatarkit.structures import Views


@dataclasses.dataclass
class Scene:
    """A scene's views, where it came from, and its unit sphere when the files say it
    (IDR's ``scale_mat``: ``center`` and ``radius`` in the scene's world units), else None."""

    views: Views
    source: Path
    center: np.ndarray | None = None
    radius: float | None = None


def read_scene(path: str | Path) -> Scene:
    """A scene from a views file, an IDR/H3DS folder or a NeRF folder (module docstring);
    :class:`InputError` naming the file for anything missing or inconsistent."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_dir():
        if (path / "cameras.npz").exists():
            return _read_idr(path)
        if (path / "transforms.json").exists():
            return _read_nerf(path)
        raise InputError("not a scene folder: no cameras.npz (IDR/H3DS) and no transforms.json (NeRF)", path)
    from avatarkit.io.formats import is_hdf5
    from avatarkit.io.hdf5 import read_artifact

    if not is_hdf5(path):
        raise InputError(
            "not a scene: give a views .h5 (avatarkit render), an IDR/H3DS folder (image/, mask/, cameras.npz) "
            "or a NeRF folder (transforms.json)",
            path,
        )
    views = read_artifact(path, "views")
    if views.projection != "perspective":
        raise InputError("the views are orthographic; a head is fitted to perspective photos", path)
    return Scene(views, path)


def _read_idr(folder: Path) -> Scene:
    from avatarkit.io.view_folders import read_idr_folder

    suffixes = (".png", ".jpg", ".jpeg")
    if not (folder / "mask").is_dir() or not any(p.suffix.lower() in suffixes for p in (folder / "mask").iterdir()):
        raise InputError("no masks in mask/ (a fit needs each image's mask)", folder)
    views = read_idr_folder(folder)  # checks cameras.npz's world_mat_i
    center, radius = _unit_sphere(folder / "cameras.npz")
    return Scene(views, folder, center, radius)


def _unit_sphere(path: Path) -> tuple[np.ndarray, float]:
    """IDR's unit sphere from a cameras.npz's ``scale_mat_i``: one uniform scale and a
    translation, the same for every view (IDR and H3DS write one sphere per scene)."""
    import re

    from avatarkit.io.cameras import _npz_matrix

    data = np.load(path)
    ids = sorted(int(m.group(1)) for k in data.files if (m := re.fullmatch(r"world_mat_(\d+)", k)))
    first = None
    for i in ids:
        name = f"scale_mat_{i}"
        if name not in data.files:
            raise InputError(f"cameras.npz has no {name} (IDR's unit sphere around the subject)", path)
        scale = _npz_matrix(data, name, path)
        if scale.shape not in ((4, 4), (3, 4)):
            raise InputError(f"{name} has shape {scale.shape}, expected 4 x 4", path)
        s = float(scale[0, 0])
        if not np.isfinite(scale).all() or not s > 0 or not np.allclose(scale[:3, :3], s * np.eye(3), atol=1e-9 * s):
            raise InputError(
                f"{name} is not IDR's unit sphere (a 4 x 4 of a uniform scale s > 0 and a translation): "
                f"its 3 x 3 part is {np.round(scale[:3, :3], 4).tolist()}",
                path,
            )
        if first is None:
            first = (name, scale)
        elif not np.allclose(scale[:3, :4], first[1][:3, :4], rtol=1e-6, atol=1e-9 * s):
            raise InputError(f"{name} differs from {first[0]}: the views must share one unit sphere", path)
    assert first is not None  # read_idr_folder found world_mat_i
    return first[1][:3, 3].copy(), float(first[1][0, 0])


def _read_nerf(folder: Path) -> Scene:
    from PIL import Image

    from avatarkit.io.cameras import read_transforms_json

    meta_path = folder / "transforms.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"not a NeRF transforms.json ({exc})", meta_path) from None
    frames = meta.get("frames", []) if isinstance(meta, dict) else None
    if not isinstance(frames, list):
        raise InputError("not a NeRF transforms.json (no list of frames)", meta_path)
    rgb, masks = [], []
    for i, frame in enumerate(frames):
        name = frame.get("file_path") if isinstance(frame, dict) else None
        if not isinstance(name, str) or not Path(name).name:
            raise InputError(f"frame {i} has no file_path", meta_path)
        image_path = _existing(folder / name)
        if image_path is None:
            raise InputError(f"frame {i}: no image {name}", meta_path)
        try:
            with Image.open(image_path) as im:
                rgba = np.asarray(im.convert("RGBA"))
                has_alpha = "A" in im.getbands()
        except OSError as exc:
            raise InputError(f"unreadable image ({exc})", image_path) from None
        mask_path = _existing(folder / "mask" / Path(name).name)
        if mask_path is not None:
            try:
                with Image.open(mask_path) as im:
                    mask = np.asarray(im.convert("L")) > 127
            except OSError as exc:
                raise InputError(f"unreadable mask ({exc})", mask_path) from None
            if mask.shape != rgba.shape[:2]:
                raise InputError(
                    f"mask is {mask.shape[1]} x {mask.shape[0]}, its image {rgba.shape[1]} x {rgba.shape[0]}", mask_path
                )
        elif has_alpha:
            mask = rgba[..., 3] > 127
        else:
            raise InputError(f"no mask for {image_path.name} (mask/{Path(name).name} or an alpha channel)", folder)
        rgb.append(rgba[..., :3])
        masks.append(mask.astype(np.uint8) * 255)
    if not rgb:
        raise InputError("transforms.json has no frames", meta_path)
    if len({im.shape for im in rgb}) > 1:
        raise InputError("the images differ in size", folder)
    h, w = rgb[0].shape[:2]
    cameras = read_transforms_json(meta_path, (w, h) if "w" not in meta else None)
    if (cameras.width, cameras.height) != (w, h):
        raise InputError(f"transforms.json says {cameras.width} x {cameras.height}, the images are {w} x {h}", folder)
    views = Views(
        cameras.K.astype(np.float32),
        cameras.world_to_cam.astype(np.float32),
        "perspective",
        np.stack(rgb),
        np.stack(masks),
    )
    return Scene(views, folder)


def _existing(path: Path) -> Path | None:
    if path.is_file():
        return path
    for suffix in (".png", ".jpg", ".jpeg"):
        if path.with_suffix(suffix).is_file():
            return path.with_suffix(suffix)
    return None


VIEW_COUNTS = (3, 4, 8, 16, 32)
"""H3DS's fixed view configurations (``views_config_id``)."""


def choose_views(scene: Scene, count: int | None = None, ids: list[int] | None = None) -> tuple[list[int], str]:
    """The views a fit uses and how they were chosen (``given``, ``subset`` or ``spread``):
    ``ids`` as given; the scene's fixed subset of ``count`` views; else ``count`` views spread
    evenly over the capture directions (farthest-point from the most frontal); all without either."""
    n = len(scene.views)
    if ids is not None:
        if count is not None:
            raise OptionError("--views and --view-ids both choose the views; give one")
        bad = [i for i in ids if not 0 <= i < n]
        if bad:
            raise InputError(f"view {bad[0]} is not in the scene (it has views 0 to {n - 1})", scene.source)
        if len(set(ids)) != len(ids):
            raise OptionError("--view-ids lists a view twice")
        return list(ids), "given"
    if count is None:
        return list(range(n)), "all"
    if count < 1:
        raise OptionError(f"--views must be at least 1, got {count}")
    subsets = getattr(scene.views, "subsets", None) or {}
    if str(count) in subsets:  # H3DS's views_config: the subset named by its size
        chosen = [int(i) for i in subsets[str(count)]]
        if len(chosen) != count or len(set(chosen)) != count:
            where = scene.source / SUBSETS_FILE if scene.source.is_dir() else scene.source
            raise InputError(
                f"the scene's subset {count} lists {len(chosen)} views ({len(set(chosen))} distinct), "
                f"not {count}: it cannot be --views {count}",
                where,
            )
        return chosen, "subset"
    if count > n:
        raise InputError(f"the scene has {n} views, fewer than --views {count}", scene.source)
    return spread_views(scene.views.cameras(), count), "spread"


def spread_views(cameras, count: int) -> list[int]:
    """``count`` camera indices spread over the directions they see the subject from: the
    camera nearest the mean direction first, then each next the farthest (in angle) from those
    chosen; returned in capture order."""
    targets = cameras.targets()
    center = targets.mean(0) if targets is not None else np.zeros(3)
    dirs = cameras.centers() - center
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    mean = dirs.mean(0)
    chosen = [int(np.argmax(dirs @ mean))] if np.linalg.norm(mean) > 1e-6 else [0]
    nearest = dirs @ dirs[chosen[0]]
    nearest[chosen[0]] = np.inf
    while len(chosen) < count:  # cameras at one place still give distinct views
        nxt = int(np.argmin(nearest))
        chosen.append(nxt)
        nearest = np.maximum(nearest, dirs @ dirs[nxt])
        nearest[chosen] = np.inf
    return sorted(chosen)
