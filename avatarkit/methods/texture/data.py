"""``train texture``'s data: UV-space pairs of partial textures (what single views give, mirror
filled) and the full texture they come from.

Two sources, in one run or apart:

- texture files of ``unwrap-uv --per-view`` (each holds one partial texture per view, with its
  visibility, mirror-filled texels, yaw and the normal map), matched by stem to ``--meshes``
  whose ``/mesh/texture`` is the full texture (``synth``'s people): the layouts must agree;
- folders laid out as Sample&Refine's seed lays its dataset out: ``symmetry/YAW/NAME.png``
  (the mirror-filled partial texture, black where unfilled), ``mask_symm/YAW/NAME.png`` (its
  filled texels, 0/255), ``normal_map/YAW/NAME.png`` (normals as ``(n + 1) / 2 * 255``) and
  ``texture_map/NAME.png`` (the full texture). Files are matched by NAME with the suffixes
  ``_symmetry``, ``_mask_symm``, ``_mask``, ``_normal_map``, ``_normal``, ``_texture_map``,
  ``_texture`` set aside (``image_0000_symmetry.png`` is NAME ``image_0000``). A missing mask is
  the partial texture's non-black texels; a missing normal map is zero.

A run takes one texture size and one UV layout; a pair of another is refused by name.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarkitWarning, InputError, OptionError

SEED_FOLDERS = ("symmetry", "mask_symm", "normal_map", "texture_map")
_SUFFIX = re.compile(r"_(symmetry|mask_symm|mask|normal_map|normal|texture_map|texture)$")


@dataclasses.dataclass
class TexturePairs:
    """One subject's partial textures (one per view) and its full texture.

    Attributes:
        stem: the subject's name (file stem, or the seed's image name).
        partial: (V, H, W, 3) uint8, each view's partial texture; unfilled texels carry the
            nearest filled texel's colour (what SamplerNet samples).
        filled: (V, H, W) bool, texels seen or mirror-filled in each view.
        seen: (V, H, W) bool, texels the view itself saw (kept as they are by completion).
        normal: (1 or V, H, W, 3) float16, the world normal at each texel (zero off the layout).
        yaw: (V,) float32, each view's yaw, degrees (NaN when unknown).
        truth: (H, W, 3) uint8, the full texture.
        coverage: (H, W) bool, texels on the UV layout (where the scores count).
        source: the file or folder it came from (for messages).
        layout: the UV layout's fingerprint (empty when not recorded).
    """

    stem: str
    partial: np.ndarray
    filled: np.ndarray
    seen: np.ndarray
    normal: np.ndarray
    yaw: np.ndarray
    truth: np.ndarray
    coverage: np.ndarray
    source: Path
    layout: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return int(self.truth.shape[0]), int(self.truth.shape[1])

    def views_front_first(self) -> list[int]:
        """View indices by |yaw|, the front view first (unknown yaws last, in order)."""
        key = np.where(np.isnan(self.yaw), np.inf, np.abs(self.yaw))
        return [int(i) for i in np.argsort(key, kind="stable")]


def is_seed_folder(path: Path) -> bool:
    """A folder laid out as Sample&Refine's dataset (it has ``symmetry/`` and ``texture_map/``)."""
    return path.is_dir() and (path / "symmetry").is_dir() and (path / "texture_map").is_dir()


def read_pairs(partial: list[Path], meshes: list[Path] | None = None) -> list[TexturePairs]:
    """Every subject of ``partial`` (texture files or folders of them, and seed-layout folders),
    checked: one texture size, one UV layout.

    Raises:
        OptionError: texture files without ``--meshes``.
        InputError: a file without per-view textures, a mesh without a texture or of another
            layout, a pair of another size or layout than the others (naming its file).
    """
    from avatarkit.io.formats import HDF5_SUFFIXES
    from avatarkit.io.stems import files_by_stem

    seed = [Path(p) for p in partial if is_seed_folder(Path(p))]
    files = [Path(p) for p in partial if not is_seed_folder(Path(p))]
    pairs: list[TexturePairs] = []
    if files:
        by_stem = files_by_stem(files, HDF5_SUFFIXES, "partial texture")
        if not meshes:
            raise OptionError(
                "--meshes is required with unwrap-uv textures: the meshes whose full textures they complete"
            )
        mesh_by = files_by_stem(meshes, HDF5_SUFFIXES, "mesh")
        missing = [s for s in by_stem if s not in mesh_by]
        if missing:
            warnings.warn(
                f"{len(missing)} partial texture(s) without a mesh of the same stem are left out ({', '.join(missing[:4])})",
                AvatarkitWarning,
                stacklevel=2,
            )
        for stem, path in by_stem.items():
            if stem in mesh_by:
                pairs.append(read_unwrapped(path, mesh_by[stem]))
    for folder in seed:
        pairs.extend(read_seed_folder(folder))
    if not pairs:
        raise InputError("no pairs of partial and full textures found", partial[0] if partial else None)
    check_pairs(pairs)
    return pairs


def check_pairs(pairs: list[TexturePairs]) -> None:
    """One size and one recorded UV layout over ``pairs`` (the first sets them)."""
    first = pairs[0]
    for p in pairs[1:]:
        if p.size != first.size:
            raise InputError(
                f"{p.size[1]} x {p.size[0]} texels, but {first.source} has {first.size[1]} x {first.size[0]}: "
                "a run takes textures of one size (unwrap-uv --size)",
                p.source,
            )
    layouts = {p.layout for p in pairs if p.layout}
    if len(layouts) > 1:
        first_layout = next(p for p in pairs if p.layout)
        other = next(p for p in pairs if p.layout and p.layout != first_layout.layout)
        raise InputError(
            f"UV layout {other.layout}, but {first_layout.source} has {first_layout.layout}: a run takes textures "
            "of one UV layout",
            other.source,
        )


def run_layout(pairs: list[TexturePairs]) -> str:
    """The UV layout the pairs record (empty when none does)."""
    return next((p.layout for p in pairs if p.layout), "")


def read_unwrapped(path: Path, mesh_path: Path) -> TexturePairs:
    """A subject from an ``unwrap-uv --per-view`` texture file and its mesh (the full texture)."""
    from avatarkit.io.hdf5 import read_artifact, read_mesh
    from avatarkit.texture.unwrap import uv_layout

    tex = read_artifact(path, "texture")
    if tex.view_texture is None or tex.view_visibility is None:
        raise InputError("no per-view textures: write it with unwrap-uv --per-view", path)
    if tex.normal_map is None:
        raise InputError("no normal map: unwrap it onto a mesh (unwrap-uv MESH --views ...)", path)
    mesh = read_mesh(mesh_path)
    if mesh.texture is None:
        raise InputError("the mesh has no texture to learn from (synth writes one)", mesh_path)
    layout = str(tex.attrs.get("uv_layout", ""))
    if not mesh.has_uvs or (layout and uv_layout(mesh) != layout):
        raise InputError(f"its UV layout is not the one {path} was unwrapped onto", mesh_path)
    h, w = tex.texture.shape[:2]
    truth = _resized(mesh.texture, h, w)
    seen = tex.view_visibility > 0
    mirrored = tex.view_mirrored > 0 if tex.view_mirrored is not None else np.zeros_like(seen)
    n = len(tex.view_texture)
    yaw = tex.view_yaw if tex.view_yaw is not None else np.full(n, np.nan, np.float32)
    return TexturePairs(
        stem=path.stem,
        partial=tex.view_texture,
        filled=seen | mirrored,
        seen=seen,
        normal=tex.normal_map[None].astype(np.float16),
        yaw=np.asarray(yaw, np.float32),
        truth=truth,
        coverage=np.abs(tex.normal_map).sum(-1) > 0,
        source=path,
        layout=layout,
    )


def _resized(image: np.ndarray, h: int, w: int) -> np.ndarray:
    if image.shape[:2] == (h, w):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BOX))


def _name(path: Path) -> str:
    return _SUFFIX.sub("", path.stem)


def _yaw_folders(folder: Path) -> list[Path]:
    def key(p: Path) -> tuple[float, str]:
        try:
            return float(p.name), p.name
        except ValueError:
            return float("inf"), p.name

    return sorted((p for p in folder.iterdir() if p.is_dir()), key=key)


def read_seed_folder(folder: Path) -> list[TexturePairs]:
    """The subjects of a folder in the seed's layout (see the module docstring)."""
    from avatarkit.geometry.uv_raster import dilate_into_gutter
    from avatarkit.io.images import list_images, read_rgba

    truths = {_name(p): p for p in list_images(folder / "texture_map")}
    views: dict[str, list[tuple[float, Path, Path | None, Path | None]]] = {}
    for yaw_dir in _yaw_folders(folder / "symmetry"):
        try:
            yaw = float(yaw_dir.name)
        except ValueError:
            yaw = float("nan")
        masks = _by_name(folder / "mask_symm" / yaw_dir.name)
        normal_files = _by_name(folder / "normal_map" / yaw_dir.name)
        for image in list_images(yaw_dir):
            name = _name(image)
            views.setdefault(name, []).append((yaw, image, masks.get(name), normal_files.get(name)))
    pairs = []
    for name, items in sorted(views.items()):
        if name not in truths:
            raise InputError(f"no texture_map image for {name!r}", folder)
        truth = read_rgba(truths[name])[0]
        partial, filled, normal = [], [], []
        for _, image, mask_path, normal_path in items:
            rgb = read_rgba(image)[0]
            if rgb.shape != truth.shape:
                raise InputError(f"{rgb.shape[1]} x {rgb.shape[0]} texels, but its texture_map is "
                                 f"{truth.shape[1]} x {truth.shape[0]}", image)  # fmt: skip
            mask = read_rgba(mask_path)[0].max(-1) > 127 if mask_path else rgb.max(-1) > 0
            partial.append(dilate_into_gutter(rgb, mask))
            filled.append(mask)
            if normal_path is not None:
                normal.append((read_rgba(normal_path)[0].astype(np.float32) / 255 * 2 - 1).astype(np.float16))
            else:
                normal.append(np.zeros(truth.shape, np.float16))
        normals = np.stack(normal)
        on_layout = (np.abs(normals.astype(np.float32)).sum(-1) > 0.05).any(0)
        coverage = on_layout if on_layout.any() else np.ones(truth.shape[:2], bool)
        fill = np.stack(filled)
        pairs.append(
            TexturePairs(
                stem=name,
                partial=np.stack(partial),
                filled=fill,
                seen=fill,
                normal=normals,
                yaw=np.array([it[0] for it in items], np.float32),
                truth=truth,
                coverage=coverage,
                source=folder / "symmetry",
            )
        )
    if not pairs:
        raise InputError("no partial textures under symmetry/YAW/", folder)
    return pairs


def _by_name(folder: Path) -> dict[str, Path]:
    from avatarkit.io.images import list_images

    return {_name(p): p for p in list_images(folder)} if folder.is_dir() else {}


def feather(seen: np.ndarray, width: int) -> np.ndarray:
    """(..., H, W) float32 weight of the observed texture in a completion: 1 on seen texels at
    least ``width`` texels inside the visibility boundary, falling to 0 across it, 0 elsewhere."""
    from scipy import ndimage

    seen = np.asarray(seen, bool)
    if width <= 0:
        return seen.astype(np.float32)
    flat = seen.reshape(-1, *seen.shape[-2:])
    out = np.stack([ndimage.distance_transform_edt(s) for s in flat]).reshape(seen.shape)
    return np.clip(out / (width + 1), 0, 1).astype(np.float32)


def item(pairs: TexturePairs, view: int, feather_width: int) -> dict[str, np.ndarray]:
    """The arrays of one (subject, view) item, channels first, float32: ``partial`` (3, H, W)
    zero where unfilled, ``mask`` (1, H, W), ``normal`` (3, H, W), ``source`` (3, H, W), ``truth``
    (3, H, W), ``coverage`` (1, H, W), ``seen`` (1, H, W), ``alpha`` (1, H, W): the weight of the
    observed texture when blending."""
    source = pairs.partial[view].astype(np.float32) / 255
    mask = pairs.filled[view].astype(np.float32)
    normal = pairs.normal[min(view, len(pairs.normal) - 1)].astype(np.float32)
    seen = pairs.seen[view]
    return {
        "partial": (source * mask[..., None]).transpose(2, 0, 1),
        "mask": mask[None],
        "normal": normal.transpose(2, 0, 1),
        "source": source.transpose(2, 0, 1),
        "truth": (pairs.truth.astype(np.float32) / 255).transpose(2, 0, 1),
        "coverage": pairs.coverage.astype(np.float32)[None],
        "seen": seen.astype(np.float32)[None],
        "alpha": feather(seen, feather_width)[None],
    }


def augment_colors(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The colour channels of ``partial``, ``source`` and ``truth`` permuted and scaled alike."""
    order = rng.permutation(3)
    scale = rng.uniform(0.8, 1.2, 3).astype(np.float32)[:, None, None]
    out = dict(arrays)
    for key in ("partial", "source", "truth"):
        out[key] = np.clip(arrays[key][order] * scale, 0, 1).astype(np.float32)
    return out
