"""The frames a face is tracked in: photos, a folder of a video's frames, a video file, or a
views file (``render``'s, with its cameras and masks).

Every frame of one input is (H, W, 3) uint8 sRGB of one size (the fit has one camera size);
frames of different sizes are refused in one line naming the first odd one. A photo's EXIF
``FocalLengthIn35mmFilm`` (or ``FocalLength`` with the sensor's crop factor unknown, ignored)
gives the focal length guess, as metrical-tracker and DECA users pass it by hand.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from avatarkit.errors import InputError, OptionError
from avatarkit.io.formats import IMAGE_SUFFIXES, is_hdf5, is_image
from avatarkit.structures import Cameras

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
"""Videos decoded through PyAV (FFmpeg's libraries, shipped in its wheel)."""
EXIF_IFD, EXIF_FOCAL_35MM = 0x8769, 0xA405


@dataclasses.dataclass
class Frames:
    """Frames of one face.

    Attributes:
        images: (N, H, W, 3) uint8 sRGB.
        names: (N,) a name per frame (``photo.jpg``, ``clip.mp4#12``, ``views.h5#3``).
        sources: (N,) the file each frame came from (for messages).
        kind: ``photos``, ``folder``, ``video`` or ``views``.
        cameras: the frames' cameras when known (a views file), else None.
        masks: (N, H, W) bool when known (a views file), else None.
        focal_mm: a 35 mm-equivalent focal length read from the photos' EXIF, else None.
        truth: a views file's source mesh (its provenance), when that file exists.
    """

    images: np.ndarray
    names: list[str]
    sources: list[Path]
    kind: str
    cameras: Cameras | None = None
    masks: np.ndarray | None = None
    focal_mm: float | None = None
    truth: Path | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def sequence(self) -> bool:
        """The frames are consecutive (a video or a folder of its frames)."""
        return self.kind in ("video", "folder")


def read_frames(inputs: list[Path], stride: int = 1, max_frames: int | None = None) -> Frames:
    """Read ``inputs``: one or more photos, one folder of frames, one video, or one views file.

    ``stride`` keeps every stride-th frame of a folder or video, ``max_frames`` at most that
    many (after the stride). Raises :class:`InputError` naming the file for anything unreadable,
    an empty folder or video, frames of different sizes; :class:`OptionError` for a mix of kinds.
    """
    if stride < 1:
        raise OptionError(f"--stride must be at least 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise OptionError(f"--max-frames must be at least 1, got {max_frames}")
    if not inputs:
        raise OptionError("give a photo, photos, a folder of frames, a video or a views .h5")
    for path in inputs:
        if not path.exists():
            raise InputError("no such file or folder", path)
    single = len(inputs) == 1
    first = inputs[0]
    if single and first.is_dir():
        paths = _folder_images(first)[::stride][:max_frames]
        frames = _photos(paths, "folder")
    elif single and first.suffix.lower() in VIDEO_SUFFIXES:
        frames = _video(first, stride, max_frames)
    elif single and is_hdf5(first):
        frames = _views(first, stride, max_frames)
    elif all(p.is_file() and is_image(p) for p in inputs):
        frames = _photos(inputs[:max_frames] if max_frames else inputs, "photos")
    else:
        odd = next(p for p in inputs if not (p.is_file() and is_image(p)))
        if odd.is_dir() or is_hdf5(odd) or odd.suffix.lower() in VIDEO_SUFFIXES:
            raise OptionError(f"{odd}: a folder, a video or a views file is tracked alone, not beside other inputs")
        raise InputError(
            f"not a photo ({', '.join(IMAGE_SUFFIXES)}), a video ({', '.join(VIDEO_SUFFIXES)}), a folder or a "
            "views .h5",
            odd,
        )
    return frames


def _folder_images(folder: Path) -> list[Path]:
    images = sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder", folder)
    return images


def _photos(paths: list[Path], kind: str) -> Frames:
    from avatarkit.io.images import read_rgba

    images: list[np.ndarray] = []
    focal: list[float | None] = []
    for path in paths:
        rgb, _ = read_rgba(path)
        if images and rgb.shape != images[0].shape:
            h, w = images[0].shape[:2]
            raise InputError(
                f"is {rgb.shape[1]} x {rgb.shape[0]} pixels but {paths[0].name} is {w} x {h}: frames tracked "
                "together must share one size (track photos of other sizes in runs of their own)",
                path,
            )
        images.append(rgb)
        focal.append(exif_focal_35mm(path))
    found = [f for f in focal if f is not None]
    names = [p.name for p in paths]
    return Frames(np.stack(images), names, list(paths), kind, focal_mm=float(np.median(found)) if found else None)


def exif_focal_35mm(path: Path) -> float | None:
    """A photo's 35 mm-equivalent focal length from its EXIF, or None."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            value = im.getexif().get_ifd(EXIF_IFD).get(EXIF_FOCAL_35MM)
    except (OSError, ValueError, AttributeError, KeyError):
        return None
    try:
        focal = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return focal if focal is not None and 8.0 <= focal <= 800.0 else None


def _video(path: Path, stride: int, max_frames: int | None) -> Frames:
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        raise OptionError("reading videos needs PyAV: pip install av") from None
    images = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError("has no video stream", path)
            for index, frame in enumerate(container.decode(video=0)):
                if index % stride:
                    continue
                images.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(images) >= max_frames:
                    break
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot be decoded as a video ({exc})", path) from None
    if not images:
        raise InputError("holds no video frames", path)
    step = stride
    names = [f"{path.name}#{i * step}" for i in range(len(images))]
    return Frames(np.stack(images), names, [path] * len(images), "video")


def _views(path: Path, stride: int, max_frames: int | None) -> Frames:
    from avatarkit.io.hdf5 import open_h5, read_artifact

    views = read_artifact(path, "views")
    if views.projection != "perspective":
        raise InputError("has orthographic views; faces are tracked in perspective photos", path)
    keep = np.arange(0, len(views), stride)[:max_frames]
    views = views.select(keep)
    truth = None
    with open_h5(path) as f:
        sources = [str(s) for s in np.atleast_1d(f.attrs.get("inputs", []))]
    for source in sources:
        candidate = Path(source)
        if not candidate.is_absolute():
            candidate = Path.cwd() / candidate
        if candidate.is_file():
            truth = candidate
            break
    names = [f"{path.name}#{i}" for i in keep]
    return Frames(
        views.rgb, names, [path] * len(keep), "views", cameras=views.cameras(), masks=views.mask > 127, truth=truth
    )
