"""Image files: photos, masks, background folders (through Pillow).

Images are (H, W, 3) uint8 sRGB; masks (H, W) bool, true on the subject.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarkit.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


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


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write an (H, W, 3) or (H, W) uint8 image as PNG, atomically."""
    from PIL import Image

    from avatarkit.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
