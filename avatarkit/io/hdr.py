"""HDR environment maps: Radiance RGBE (``.hdr``) and OpenEXR (``.exr``) images, the formats
of HDR environment maps (Poly Haven, ...), and folders of them.

The ``.hdr`` reader is written here because the readers in imageio need a FreeImage binary
fetched from the network. It supports the usual files: ``32-bit_rle_rgbe`` with ``-Y H +X W``
layout, flat or new-style run-length encoded scanlines. ``.exr`` files are read with the
OpenEXR bindings (their RGB or R, G, B channels; half or float).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarkit.errors import InputError


def read_hdr(path: str | Path) -> np.ndarray:
    """(H, W, 3) float32 linear radiance."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", path) from None
    if not (data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")):
        raise InputError("not a Radiance .hdr file (no #?RADIANCE header)", path)
    end = data.find(b"\n\n")
    if end < 0:
        raise InputError("corrupt .hdr header", path)
    header = data[:end].decode("ascii", "replace")
    if "FORMAT=" in header and "32-bit_rle_rgbe" not in header:
        raise InputError("only 32-bit_rle_rgbe .hdr files are supported", path)
    line_end = data.find(b"\n", end + 2)
    size = data[end + 2 : line_end].split()
    if len(size) != 4 or size[0] != b"-Y" or size[2] != b"+X":
        raise InputError(f"unsupported .hdr layout {b' '.join(size).decode(errors='replace')!r}", path)
    try:
        height, width = int(size[1]), int(size[3])
    except ValueError:
        raise InputError(f"corrupt .hdr size line {b' '.join(size).decode(errors='replace')!r}", path) from None
    if height < 1 or width < 1:
        raise InputError(f"the .hdr image has no pixels ({width} x {height})", path)
    body = memoryview(data)[line_end + 1 :]
    # the least a scanline can take: 4 bytes flat per pixel, or runs of up to 127 per channel
    least = 4 * width if not 8 <= width < 32768 else min(4 * width, 4 + 8 * -(-width // 127))
    if len(body) < height * least:
        raise InputError(f"corrupt .hdr pixel data (too short for {width} x {height} pixels: truncated?)", path)
    try:
        rgbe = _decode(body, width, height)
    except (IndexError, ValueError) as exc:
        raise InputError(f"corrupt .hdr pixel data ({exc})", path) from None
    exponent = rgbe[..., 3].astype(np.int32)
    scale = np.where(exponent > 0, np.ldexp(1.0, exponent - 136), 0.0).astype(np.float32)
    return rgbe[..., :3].astype(np.float32) * scale[..., None]


def _decode(body, width: int, height: int) -> np.ndarray:
    out = np.empty((height, width, 4), dtype=np.uint8)
    buf = np.frombuffer(body, dtype=np.uint8)
    pos = 0
    for row in range(height):
        if 8 <= width < 32768 and buf[pos] == 2 and buf[pos + 1] == 2 and buf[pos + 2] < 128:
            if (int(buf[pos + 2]) << 8 | int(buf[pos + 3])) != width:
                raise ValueError(f"scanline {row} has the wrong length")
            pos += 4
            for channel in range(4):
                x = 0
                line = out[row, :, channel]
                while x < width:
                    count = int(buf[pos])
                    if count > 128:  # a run of one value
                        count -= 128
                        line[x : x + count] = buf[pos + 1]
                        pos += 2
                    else:  # literal bytes
                        if count == 0:
                            raise ValueError("zero-length run")
                        line[x : x + count] = buf[pos + 1 : pos + 1 + count]
                        pos += 1 + count
                    x += count
                if x != width:
                    raise ValueError(f"scanline {row} overruns")
        else:  # flat scanline
            out[row] = buf[pos : pos + 4 * width].reshape(width, 4)
            pos += 4 * width
    return out


def write_hdr(path: str | Path, image: np.ndarray) -> None:
    """Write (H, W, 3) linear radiance as a flat (not run-length encoded) RGBE file."""
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape[:2]
    peak = image.max(axis=2)
    mantissa, exponent = np.frexp(peak)
    scale = np.where(peak > 1e-32, mantissa * 256.0 / np.maximum(peak, 1e-300), 0.0)
    rgbe = np.zeros((h, w, 4), dtype=np.uint8)
    rgbe[..., :3] = np.clip(image * scale[..., None], 0, 255).astype(np.uint8)
    rgbe[..., 3] = np.where(peak > 1e-32, exponent + 128, 0).astype(np.uint8)
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {h} +X {w}\n".encode()
    Path(path).write_bytes(header + rgbe.tobytes())


ENVIRONMENT_SUFFIXES = (".hdr", ".exr")


def read_environment(path: str | Path) -> np.ndarray:
    """(H, W, 3) float32 linear radiance of an ``.hdr`` or ``.exr`` environment map; anything
    unreadable raises :class:`InputError` naming the file."""
    path = Path(path)
    if path.suffix.lower() == ".exr":
        return read_exr(path)
    if path.suffix.lower() != ".hdr":
        raise InputError(f"not an environment map (use {' or '.join(ENVIRONMENT_SUFFIXES)})", path)
    return read_hdr(path)


def read_exr(path: str | Path) -> np.ndarray:
    """(H, W, 3) float32 linear radiance of an OpenEXR image (its ``RGB`` channels, or ``R``,
    ``G``, ``B``; a one-channel image is grey)."""
    import OpenEXR

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        with OpenEXR.File(str(path)) as f:
            channels = {name: np.asarray(c.pixels) for name, c in f.channels().items()}
    except Exception as exc:  # the bindings raise plain exceptions for every kind of bad file
        raise InputError(
            f"not a readable OpenEXR image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})", path
        ) from None
    if "RGB" in channels or "RGBA" in channels:
        image = channels.get("RGB", channels.get("RGBA"))[..., :3]
    elif {"R", "G", "B"} <= channels.keys():
        image = np.stack([channels["R"], channels["G"], channels["B"]], -1)
    elif len(channels) == 1:
        image = np.repeat(next(iter(channels.values()))[..., None], 3, -1)
    else:
        raise InputError(f"has no RGB channels (found {', '.join(sorted(channels))})", path)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or min(image.shape[:2]) < 1:
        raise InputError(f"the image has no pixels ({image.shape})", path)
    if not np.isfinite(image).all():
        raise InputError("has pixels that are not finite numbers", path)
    return np.maximum(image, 0.0)


def list_environments(folder: str | Path) -> list[Path]:
    """The ``.hdr`` and ``.exr`` files of ``folder``, sorted by name; none is an :class:`InputError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder", folder)
    maps = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ENVIRONMENT_SUFFIXES)
    if not maps:
        raise InputError(f"holds no environment maps ({' or '.join(ENVIRONMENT_SUFFIXES)} files)", folder)
    return maps
