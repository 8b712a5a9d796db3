"""Views as folders of images: the IDR/H3DS layout (written and read), and PNG files with a
contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from avatarkit.errors import InputError, OptionError
from avatarkit.io.atomic import atomic_path
from avatarkit.io.images import write_png
from avatarkit.structures import Views

EXPORTS = ("idr", "png")
CAMERAS_FILE = "cameras.npz"
"""An IDR/H3DS folder's cameras (``world_mat_i``, ``scale_mat_i``)."""
CONTACT_SHEET = "contact_sheet.png"
"""The PNG export's sheet of every view."""


def export_names(folder: Path, export: str | None) -> list[Path]:
    """The files of fixed name :func:`export_views` writes into ``folder`` for ``export``
    (``idr``: ``cameras.npz`` and ``subsets.json``; ``png``: the contact sheet): what an export
    must not overwrite unasked, checked before any work."""
    names = {"idr": [CAMERAS_FILE, SUBSETS_FILE], "png": [CONTACT_SHEET]}.get(export or "", [])
    return [folder / name for name in names]


def is_views_folder(path: Path) -> bool:
    """A folder of views .h5 files (not an IDR/H3DS folder, nor a DensePose one)."""
    return path.is_dir() and not (path / CAMERAS_FILE).exists() and not (path / "iuv").is_dir()


def check_export(export: str | None, orthographic: bool, cameras: Path | None = None) -> None:
    """Raise :class:`OptionError` when views with ``orthographic`` cameras (from the camera file
    ``cameras``, if one) are to be exported as ``idr``, whose cameras.npz holds perspective ones only."""
    if export is not None and export not in EXPORTS:
        raise OptionError(f"--export must be one of {', '.join(EXPORTS)}, got {export!r}")
    if export == "idr" and orthographic:
        source = f", and {cameras} has orthographic ones" if cameras is not None else ""
        raise OptionError(f"--export idr holds perspective cameras only (IDR's cameras.npz){source}; use --export png")


def export_views(folder: Path, views: Views, export: str, mesh=None) -> list[Path]:
    """Write ``views`` into ``folder`` as ``export`` (``idr``: IDR/H3DS layout, its unit sphere
    around ``mesh``'s bounding sphere grown by 10%; ``png``: PNGs and a contact sheet)."""
    check_export(export, views.projection == "orthographic")
    if export == "png":
        return write_png_folder(folder, views)
    from avatarkit.io.cameras import idr_scale_mat

    return write_idr_folder(folder, views, idr_scale_mat(*mesh.bounding_sphere(1.1)))


SUBSETS_FILE = "subsets.json"
"""The view subsets of an IDR/H3DS folder: ``{"3": [0, 18, 65], ...}``, view indices in image order."""


def write_idr_folder(folder: Path, views: Views, scale_mat: np.ndarray) -> list[Path]:
    """``image/000.png``, ``mask/000.png`` and ``cameras.npz`` (``world_mat_i``, ``scale_mat_i``),
    the layout IDR and the H3DS loaders read, and ``subsets.json`` when the views have subsets
    (a stale one from an earlier export is removed, as are the images and masks of an earlier
    export's views past these: the folder is read back by listing image/ and mask/)."""
    import json
    import re

    from avatarkit.io.atomic import remove_stale
    from avatarkit.io.cameras import write_idr

    check_export("idr", views.projection == "orthographic")  # before any image is written
    cameras = views.cameras()
    written = []
    for i in range(len(views)):
        for sub, image in (("image", views.rgb[i]), ("mask", views.mask[i])):
            path = folder / sub / f"{i:03d}.png"
            write_png(path, image)
            written.append(path)
    with atomic_path(folder / CAMERAS_FILE) as tmp:
        write_idr(tmp, cameras, scale_mat)
    written.append(folder / CAMERAS_FILE)
    subsets = folder / SUBSETS_FILE
    if views.subsets:
        with atomic_path(subsets) as tmp:
            tmp.write_text(json.dumps({k: [int(i) for i in v] for k, v in views.subsets.items()}) + "\n")
        written.append(subsets)
    elif subsets.exists():
        remove_stale(subsets)  # it named the views of the cameras.npz just replaced
    for sub in ("image", "mask"):
        for path in (folder / sub).iterdir():
            if re.fullmatch(r"\d+\.(png|jpe?g)", path.name, re.IGNORECASE) and path not in written:
                remove_stale(path)
    return written


def write_png_folder(folder: Path, views: Views) -> list[Path]:
    """``rgb_000.png`` and ``mask_000.png`` per view, and ``contact_sheet.png`` of every view."""
    written = []
    for i in range(len(views)):
        for name, image in (("rgb", views.rgb[i]), ("mask", views.mask[i])):
            path = folder / f"{name}_{i:03d}.png"
            write_png(path, image)
            written.append(path)
    sheet = contact_sheet(views.rgb)
    write_png(folder / CONTACT_SHEET, sheet)
    written.append(folder / CONTACT_SHEET)
    return written


def contact_sheet(images: np.ndarray, max_side: int = 2048) -> np.ndarray:
    """All images on a near-square grid, shrunk so the sheet's longer side is at most ``max_side``."""
    n, h, w = images.shape[:3]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    step = max(1, int(np.ceil(max(cols * w, rows * h) / max_side)))
    small = images[:, ::step, ::step]
    sh, sw = small.shape[1:3]
    sheet = np.zeros((rows * sh, cols * sw, 3), dtype=np.uint8)
    for i, image in enumerate(small):
        r, c = divmod(i, cols)
        sheet[r * sh : (r + 1) * sh, c * sw : (c + 1) * sw] = image
    return sheet


def read_idr_folder(folder: Path) -> Views:
    """Views from an IDR/H3DS folder: ``image/*.png|jpg`` in name order, optional ``mask/``
    (a pixel is in the mask when any channel is above 127), ``cameras.npz``, optional
    ``subsets.json`` (view subsets, :data:`SUBSETS_FILE`)."""
    from PIL import Image

    from avatarkit.io.cameras import read_idr

    folder = Path(folder)
    if not (folder / CAMERAS_FILE).exists():
        raise InputError("no cameras.npz in this folder (an IDR/H3DS folder has image/, mask/, cameras.npz)", folder)
    suffixes = (".png", ".jpg", ".jpeg")
    images = sorted(p for p in (folder / "image").glob("*") if p.suffix.lower() in suffixes)
    if not images:
        raise InputError("no images in image/", folder)
    cameras = read_idr(folder / CAMERAS_FILE)
    if len(cameras) != len(images):
        raise InputError(f"{len(images)} images in image/ but {len(cameras)} cameras in cameras.npz", folder)
    rgb = []
    for path in images:
        try:
            with Image.open(path) as im:
                rgb.append(np.asarray(im.convert("RGB")))
        except OSError as exc:
            raise InputError(f"unreadable image ({exc})", path) from None
    shapes = {im.shape for im in rgb}
    if len(shapes) > 1:
        raise InputError(f"images differ in size: {sorted(shapes)}", folder)
    h, w = rgb[0].shape[:2]
    masks = sorted(p for p in (folder / "mask").glob("*") if p.suffix.lower() in suffixes)
    if masks:
        if len(masks) != len(images):
            raise InputError(f"{len(masks)} masks for {len(images)} images", folder)
        mask = []
        for path in masks:
            try:
                with Image.open(path) as im:
                    m = np.asarray(im.convert("L")) > 127
            except OSError as exc:
                raise InputError(f"unreadable mask ({exc})", path) from None
            if m.shape != (h, w):
                raise InputError(f"mask is {m.shape[1]} x {m.shape[0]}, its image {w} x {h}", path)
            mask.append(m.astype(np.uint8) * 255)
    else:
        mask = [np.full((h, w), 255, np.uint8)] * len(rgb)
    k = cameras.K.copy()
    return Views(
        k.astype(np.float32),
        cameras.world_to_cam.astype(np.float32),
        "perspective",
        np.stack(rgb),
        np.stack(mask),
        target=None if cameras.target is None else cameras.target.astype(np.float32),
        subsets=read_subsets_file(folder / SUBSETS_FILE, len(images)) if (folder / SUBSETS_FILE).exists() else {},
    )


def read_subsets_file(path: Path, count: int) -> dict[str, np.ndarray]:
    """View subsets from a JSON object of lists of view indices (``{"3": [0, 18, 65], ...}``),
    checked against ``count`` views; an :class:`InputError` naming ``path`` when it is not one."""
    import json

    from avatarkit.structures.indices import index_set_problems

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a JSON file of view subsets ({exc})", path) from None
    lists = data.values() if isinstance(data, dict) else ()
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v) for v in lists
    ):
        raise InputError('expected {"NAME": [view index, ...], ...} (JSON lists of whole numbers)', path)
    subsets = {str(k): np.asarray(v, dtype=np.int64) for k, v in data.items()}
    problems = index_set_problems(subsets, count, "subset", "view")
    if problems:
        raise InputError(problems[0], path)
    return subsets


class IuvImages(NamedTuple):
    """Photos and their DensePose IUV images (see :func:`read_iuv_folder`)."""

    rgb: np.ndarray
    """(N, H, W, 3) uint8."""
    iuv: np.ndarray
    """(N, H, W, 3) uint8, channels I (part, 0 off the body), U, V."""
    names: list[Path]
    """The photos' paths."""


def read_views(path: Path) -> Views | IuvImages:
    """Views from a views ``.h5``, an IDR/H3DS folder (``image/``, ``mask/``, ``cameras.npz``),
    or photos with DensePose IUV images (a folder with ``image/`` and ``iuv/``)."""
    from avatarkit.io.hdf5 import read_artifact

    path = Path(path)
    if path.is_dir():
        return read_iuv_folder(path) if (path / "iuv").is_dir() else read_idr_folder(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    return read_artifact(path, "views")


def read_iuv_folder(folder: Path) -> IuvImages:
    """Photos and their DensePose IUV images: ``image/*`` and ``iuv/*.png``, paired in name order.

    IUV images as DensePose's ``infer_simple.py`` writes them (``NAME_IUV.png``, saved by
    OpenCV): part index I (1-24, 0 for background), U and V (0-255) in OpenCV's channel
    order, so the PNG's red channel holds V, green U and blue I.

    Returns:
        rgb (N, H, W, 3) uint8, iuv (N, H, W, 3) uint8 with channels I, U, V, and the image paths.
    """
    from PIL import Image

    folder = Path(folder)
    suffixes = (".png", ".jpg", ".jpeg")
    images = sorted(p for p in (folder / "image").glob("*") if p.suffix.lower() in suffixes)
    iuvs = sorted(p for p in (folder / "iuv").glob("*") if p.suffix.lower() == ".png")
    if not images:
        raise InputError("no images in image/", folder)
    if len(iuvs) != len(images):
        raise InputError(f"{len(iuvs)} IUV images in iuv/ for {len(images)} images in image/", folder)

    def load(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise InputError(f"unreadable image ({exc})", path) from None

    rgb, iuv = [], []
    for image_path, iuv_path in zip(images, iuvs, strict=True):
        photo, coords = load(image_path), load(iuv_path)[..., ::-1]  # OpenCV's BGR: I, U, V
        if photo.shape != coords.shape:
            raise InputError(
                f"IUV image is {coords.shape[1]} x {coords.shape[0]}, its photo {image_path.name} "
                f"{photo.shape[1]} x {photo.shape[0]}",
                iuv_path,
            )
        if coords[..., 0].max() > 24:
            raise InputError(
                f"part index up to {coords[..., 0].max()} (DensePose has 24 parts): not an IUV image?", iuv_path
            )
        rgb.append(photo)
        iuv.append(coords)
    shapes = {im.shape for im in rgb}
    if len(shapes) > 1:
        raise InputError(f"images differ in size: {sorted(shapes)}", folder)
    return IuvImages(np.stack(rgb), np.ascontiguousarray(np.stack(iuv)), images)
