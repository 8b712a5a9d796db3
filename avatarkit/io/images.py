"""Image files: photos, masks, background folders (through Pillow).

Images are (H, W, 3) uint8 sRGB; masks (H, W) bool, true on the subject.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarkit.errors import InputError
from avatarkit.io.formats import IMAGE_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    """The image files of a folder, in name order; an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder", folder)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder", folder)
    return images


def read_rgba(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) uint8 colour and the (H, W) bool alpha mask, or None when the image has no
    alpha channel or an alpha that hides nothing."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = "A" in im.getbands() or (im.mode == "P" and "transparency" in im.info)
            rgba = np.asarray(im.convert("RGBA"))
    except OSError as exc:
        raise InputError(f"unreadable image ({exc})", path) from None
    alpha = rgba[..., 3] > 127 if has_alpha else None  # a mask's own alpha, or a cut-out photo's
    if alpha is not None and alpha.all():
        alpha = None
    return np.ascontiguousarray(rgba[..., :3]), alpha


def read_mask(path: str | Path) -> np.ndarray:
    """(H, W) bool: a pixel is in the mask when its alpha (where the alpha hides something)
    or else its grey value is above 127."""
    rgb, alpha = read_rgba(path)
    if alpha is not None:
        return alpha
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) > 127


def read_image_and_mask(
    path: str | Path, masks: str | Path | None = None, threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A photo and its subject's mask: (H, W, 3) uint8 and (H, W) bool.

    The mask comes from ``masks`` (a mask file, or a folder holding ``STEM_mask.png`` or
    ``STEM.png``), else ``STEM_mask.png`` beside the image (PIFu's layout), else the image's
    alpha, else ``threshold`` on a plain background (:func:`mask_from_background`); with none
    of them it is an :class:`InputError`, as is an empty mask or one of another size.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"not an image ({', '.join(IMAGE_SUFFIXES)})", path)
    rgb, alpha = read_rgba(path)
    mask_path = None
    if masks is not None:
        masks = Path(masks)
        mask_path = masks if masks.is_file() else _mask_in(masks, path)
        if mask_path is None:
            raise InputError(f"no mask for {path.name} in this folder (STEM.png or STEM_mask.png)", masks)
    elif threshold is None:
        mask_path = _mask_in(path.parent, path, own=False)
    if mask_path is not None:
        mask, where = read_mask(mask_path), mask_path
    elif alpha is not None:
        mask, where = alpha, path
    elif threshold is not None:
        mask, where = mask_from_background(rgb, threshold), path
    else:
        raise InputError(
            "no mask: give --mask, put STEM_mask.png beside the image, use an image with alpha, "
            "or --mask-threshold for a plain background",
            path,
        )
    if mask.shape != rgb.shape[:2]:
        raise InputError(
            f"the mask is {mask.shape[1]} x {mask.shape[0]}, its image {rgb.shape[1]} x {rgb.shape[0]}", where
        )
    if not mask.any():
        raise InputError("the mask is empty", where)
    return rgb, mask


def _mask_in(folder: Path, image: Path, own: bool = True) -> Path | None:
    """``STEM_mask.*`` (and, with ``own``, ``STEM.*``) for ``image`` in ``folder``, or None."""
    names = [f"{image.stem}_mask"] + ([image.stem] if own else [])
    for name in names:
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file() and candidate != image:
                return candidate
    return None


def mask_from_background(rgb: np.ndarray, threshold: float) -> np.ndarray:
    """The subject on a plain background: pixels whose colour differs from the median colour
    of the image border by more than ``threshold`` (0-255, any channel), holes filled, the
    largest connected region kept."""
    from scipy import ndimage

    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.float32)
    background = np.median(border, axis=0)
    mask = np.abs(rgb.astype(np.float32) - background).max(axis=-1) > threshold
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
        mask = labels == 1 + int(np.argmax(sizes))
    return ndimage.binary_fill_holes(mask)


def random_crop(path: Path, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random ``height`` x ``width`` crop of an image, scaled up first if it is smaller."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = max(height / im.height, width / im.width, 1.0)
            if scale > 1.0:
                im = im.resize((int(np.ceil(im.width * scale)), int(np.ceil(im.height * scale))), Image.BILINEAR)
            x = int(rng.integers(0, im.width - width + 1))
            y = int(rng.integers(0, im.height - height + 1))
            return np.array(im.crop((x, y, x + width, y + height)), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"unreadable background image ({exc})", path) from None


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) or (H, W) uint8 image as PNG, atomically; returns ``path``."""
    from PIL import Image

    from avatarkit.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
    return Path(path)
