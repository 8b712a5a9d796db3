"""Completion with a trained texture run (the core of ``unwrap-uv --complete RUN``).

A partial texture (``unwrap-uv --symmetric``: seen texels, mirror-filled ones, the normal map)
goes through the run's SamplerNet and, once trained, RefinerNet; the texels the views saw
are kept as observed, blended into the network's texture over ``feather`` texels inside the
visibility boundary; texels off the UV layout take the nearest texel on it (bilinear lookups
never blend in black). A texture of another size or UV layout than the run's is refused.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avatarkit.errors import InputError, MeshError, OptionError
from avatarkit.structures import Mesh, Texture, Views


@functools.cache
def load_texture_run(run: Path, device: str = "cpu") -> Any:
    """A trained ``train texture`` run (best checkpoint, else last) as a
    :class:`~avatarkit.methods.registry.Trained`, loaded once per process and device; a run of
    another method is an InputError."""
    from avatarkit.methods import checkpoint
    from avatarkit.methods.registry import load_trained

    path = checkpoint.find(run, "best")
    method = checkpoint.load(path).get("method")
    if method != "texture":
        raise InputError(f"a {method} run: --complete takes a run of `avatarkit train texture`", run)
    return load_trained(run, device, meshes=False)


def check_completable(texture: Texture, config: Any) -> None:
    """Refuse (InputError, no path) a texture the run cannot complete: no normal map, another
    size, another UV layout."""
    h, w = texture.texture.shape[:2]
    if texture.normal_map is None:
        raise InputError("the texture has no normal map: unwrap it onto a mesh (unwrap-uv MESH --views ...)")
    if (h, w) != (config.texture_size, config.texture_size):
        raise InputError(
            f"the texture is {w} x {h} texels; the run completes {config.texture_size} x {config.texture_size} "
            f"(unwrap-uv --size {config.texture_size})"
        )
    layout = str(texture.attrs.get("uv_layout", ""))
    if config.uv_layout and layout != config.uv_layout:
        raise InputError(
            f"the texture's UV layout ({layout or 'unrecorded'}) is not the run's ({config.uv_layout}): the run "
            "completes textures of the meshes it was trained on"
        )


def complete_texture(trained: Any, texture: Texture, device: str = "cpu") -> Texture:
    """``texture`` completed by ``trained`` (see the module docstring); ``visibility``,
    ``normal_map`` and ``mirrored`` are kept, ``attrs`` say how it was completed."""
    from avatarkit.geometry.uv_raster import dilate_into_gutter
    from avatarkit.methods.texture.data import feather
    from avatarkit.methods.texture.train import blend

    config = trained.config
    check_completable(texture, config)
    assert texture.normal_map is not None
    seen = texture.visibility > 0
    mirrored = texture.mirrored > 0 if texture.mirrored is not None else np.zeros_like(seen)
    filled = seen | mirrored
    coverage = np.abs(texture.normal_map).sum(-1) > 0
    source = dilate_into_gutter(texture.texture, filled).astype(np.float32) / 255
    arrays: dict[str, np.ndarray] = {
        "partial": source * filled[..., None],
        "mask": filled.astype(np.float32)[..., None],
        "normal": texture.normal_map.astype(np.float32),
        "source": source,
        "alpha": feather(seen, config.feather)[..., None],
    }
    b = {k: torch.from_numpy(np.ascontiguousarray(v.transpose(2, 0, 1)))[None].to(device) for k, v in arrays.items()}
    with torch.no_grad():
        generated = trained.model.complete(b["partial"], b["mask"], b["normal"], b["source"])
        out = blend(generated, b)[0].permute(1, 2, 0).cpu().numpy()
    rgb = np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
    rgb = dilate_into_gutter(rgb, coverage) if coverage.any() else rgb
    refined = bool(trained.model.refiner_trained)
    attrs = {
        **texture.attrs,
        "completed": True,
        "completed_by": str(trained.path),
        "completion": "sampler+refiner" if refined else "sampler",
        "completion_step": np.int64(trained.step),
        "feather": np.int64(config.feather),
    }
    return dataclasses.replace(texture, texture=rgb, attrs=attrs)


def unwrap_and_complete(
    mesh: Mesh, views: Views, trained: Any, size: int | None = None, device: str = "cpu", per_view: bool = False
) -> Texture:
    """The core of ``unwrap-uv MESH --views V --complete RUN``: ``views`` unwrapped onto ``mesh``
    with the mirror fill (at the run's texture size unless ``size`` says otherwise), then
    completed by ``trained``. The layout and size are checked before any projection."""
    from avatarkit.texture.unwrap import unwrap_uv, uv_layout

    config = trained.config
    size = size or config.texture_size
    if size != config.texture_size:
        raise OptionError(f"--size {size}: the run completes {config.texture_size}-texel textures")
    if not mesh.has_uvs:
        raise MeshError("the mesh has no UVs (the run completes textures in its UV layout)")
    if config.uv_layout and uv_layout(mesh) != config.uv_layout:
        raise MeshError(
            f"the mesh's UV layout ({uv_layout(mesh)}) is not the run's ({config.uv_layout}): the run completes "
            "textures of the meshes it was trained on"
        )
    partial = unwrap_uv(mesh, views, size, symmetric=True, device=device, per_view=per_view)
    assert isinstance(partial, Texture)
    return complete_texture(trained, partial, device)


def make_texture(
    surface: Mesh | None,
    views: Any,
    partial: Texture | None,
    run: Path | None,
    *,
    size: int | None,
    symmetric: bool,
    atlas: bool,
    device: str,
    per_view: bool,
) -> Any:
    """What ``unwrap-uv`` makes: a ``partial`` texture completed by the ``run``; else ``surface``
    unwrapped from ``views`` (:func:`~avatarkit.texture.unwrap.unwrap_uv`), completed by the
    ``run`` when one is given."""
    from avatarkit.texture.unwrap import unwrap_uv

    if partial is not None:
        assert run is not None
        return complete_texture(load_texture_run(run, device), partial, device)
    if run is not None:
        assert surface is not None  # check_unwrap: completion needs the mesh
        return unwrap_and_complete(surface, views, load_texture_run(run, device), size, device, per_view)
    return unwrap_uv(surface, views, size, symmetric, atlas, device, per_view)
