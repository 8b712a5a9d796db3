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
    from avatarkit.io.hdf5 import read_artifact

    views = read_artifact(path, "views")
    if views.projection != "perspective":
        raise InputError("the views are orthographic; a head is fitted to perspective photos", path)
    return Scene(views, path)


def _read_idr(folder: Path) -> Scene:
    from avatarkit.io.view_folders import read_idr_folder

    suffixes = (".png", ".jpg", ".jpeg")
    if not (folder / "mask").is_dir() or not any(p.suffix.lower() in suffixes for p in (folder / "mask").iterdir()):
        raise InputError("no masks in mask/ (a fit needs each image's mask)", folder)
    views = read_idr_folder(folder)
    data = np.load(folder / "cameras.npz")
    if "scale_mat_0" not in data.files:
        raise InputError(
            "cameras.npz has no scale_mat_0 (IDR's unit sphere around the subject)", folder / "cameras.npz"
        )
    scale = np.asarray(data["scale_mat_0"], dtype=np.float64)
    if scale.shape != (4, 4) or not np.isfinite(scale).all() or not scale[0, 0] > 0:
        raise InputError("scale_mat_0 is not a 4 x 4 scale and translation", folder / "cameras.npz")
    return Scene(views, folder, scale[:3, 3].copy(), float(scale[0, 0]))


def _read_nerf(folder: Path) -> Scene:
    from PIL import Image

    from avatarkit.io.cameras import read_transforms_json

    meta_path = folder / "transforms.json"
    try:
        frames = json.loads(meta_path.read_text()).get("frames", [])
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"not a NeRF transforms.json ({exc})", meta_path) from None
    rgb, masks = [], []
    for i, frame in enumerate(frames):
        name = frame.get("file_path") if isinstance(frame, dict) else None
        if not isinstance(name, str):
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
            with Image.open(mask_path) as im:
                mask = np.asarray(im.convert("L")) > 127
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
    cameras = read_transforms_json(meta_path, (w, h) if "w" not in json.loads(meta_path.read_text()) else None)
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
    for key, chosen in subsets.items():
        if int(key) == count:
            return [int(i) for i in chosen], "subset"
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
    while len(chosen) < count:
        nxt = int(np.argmin(nearest))
        chosen.append(nxt)
        nearest = np.maximum(nearest, dirs @ dirs[nxt])
    return sorted(chosen)
