"""Render a mesh into a ``views`` artifact (the core of ``avatarkit render``).

Pipeline per batch of views: warp finds the surface seen at each pixel centre and fills the
G-buffers (depth, world normal, UV, label; ``avatarkit.render.raycast``); torch samples the
albedo and shades it at the covered pixels; supersampled colour is averaged down over the
background. G-buffers always come from the pixel centres, never averaged.

Lighting (``docs/render.md``): ``none`` (the albedo exactly), ``sh`` (second-order
spherical harmonics, a random studio environment or an HDR map, randomly turned per view; or,
``environments="random"``, a random studio environment of its own per view),
``prt`` (the same with PIFu's precomputed radiance transfer: per-vertex visibility, so
self-shadowing), ``directional`` (one light with cast shadows, plus ambient).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarkitWarning, OptionError
from avatarkit.geometry.surface import vertex_normals
from avatarkit.render import lighting as L
from avatarkit.render.raycast import RayCaster
from avatarkit.render.rigs import RigSpec, make_rig, rig_subsets, subject_seed
from avatarkit.structures import Cameras, Mesh, Views

LIGHTINGS = ("none", "sh", "prt", "directional")
ENVIRONMENTS = ("turned", "random", "fixed")
PRESET_LIGHTING = {"portrait": ("sh", "random"), "h3ds": ("sh", "fixed")}
"""Rig presets with lighting of their own: preset -> (the lighting when ``--lighting`` is not
given, the environments); the others take ``none`` and ``turned``."""
ALBEDOS = ("auto", "texture", "vertex", "flat")
MAX_RAYS_PER_BATCH = 4_000_000
BUFFERS = ("depth", "normal", "uv", "label")
SKY = "sky"
"""``--hdri sky``: a built-in procedural sky per view, no file needed (a file or folder named
``sky`` is given by a longer path, e.g. absolute)."""


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """How to shade. ``background`` is an RGB colour; ``background_dir`` a folder of images
    to crop random backgrounds from; ``hdri`` the environment for ``sh`` and ``prt``: an
    equirectangular ``.hdr`` or ``.exr`` map, a folder of them (each view draws one, view i from
    ``[seed, 5, i]``), or ``sky`` (:data:`SKY`: a built-in procedural sky of its own per view,
    :func:`~avatarkit.render.lighting.procedural_sky`); ``environments`` how ``sh`` and ``prt`` light the views: ``turned``, one
    environment (a random studio or ``hdri``) turned by a random yaw per view, as PIFu does;
    ``random``, a random studio environment of its own per view (view i drawn from
    ``[seed, 4, i]``; an ``hdri`` is turned as with ``turned``); ``fixed``, one environment fixed
    in the world for every view (a still subject in still light, the camera going round: a
    capture such as H3DS's, which IDR's and NeuS's radiance models assume); ``ssaa`` the
    supersampling factor per side."""

    lighting: str = "none"
    albedo: str = "auto"
    flat_color: tuple[int, int, int] = (180, 180, 180)
    background: tuple[int, int, int] = (0, 0, 0)
    background_dir: Path | None = None
    hdri: Path | None = None
    environments: str = "turned"
    ssaa: int = 1
    ambient: float = 0.25
    prt_samples: int = 256

    def check(self) -> None:
        if self.lighting not in LIGHTINGS:
            raise OptionError(f"--lighting must be one of {', '.join(LIGHTINGS)}, got {self.lighting!r}")
        if self.environments not in ENVIRONMENTS:
            raise OptionError(f"environments must be one of {', '.join(ENVIRONMENTS)}, got {self.environments!r}")
        if self.albedo not in ALBEDOS:
            raise OptionError(f"--albedo must be one of {', '.join(ALBEDOS)}, got {self.albedo!r}")
        if not 1 <= self.ssaa <= 8:
            raise OptionError(f"--ssaa must be between 1 and 8, got {self.ssaa}")
        if self.hdri is not None and self.lighting not in ("sh", "prt"):
            raise OptionError("--hdri lights --lighting sh or prt")
        if self.hdri is not None and str(self.hdri) != SKY and not Path(self.hdri).exists():
            raise OptionError(f"--hdri {self.hdri}: no such file or folder (or give sky, the built-in sky)")
        for value in (*self.background, *self.flat_color):
            if not 0 <= value <= 255:
                raise OptionError(f"colours are 0-255 per channel, got {value}")


def preset_lighting(preset: str | None, lighting: str | None) -> tuple[str, str]:
    """The lighting and environments (:class:`RenderConfig`) of a render with rig ``preset`` and
    ``--lighting`` ``lighting`` (None when not given): :data:`PRESET_LIGHTING`'s for a preset that
    has its own (``portrait``: ``sh``, a random environment per view), else ``none``, ``turned``."""
    default, environments = PRESET_LIGHTING.get(preset or "", ("none", "turned"))
    return lighting or default, environments


def render_rig(
    mesh: Mesh,
    rig: RigSpec,
    config: RenderConfig,
    seed: int = 0,
    device: str = "cpu",
    export: str | None = None,
    max_bytes: int | None = None,
) -> Views:
    """Render ``mesh`` from the cameras ``rig`` makes for it (:func:`~avatarkit.render.rigs.make_rig`);
    the core of ``avatarkit render`` for one input. ``export``: the folder format the views
    will be written in (``idr`` takes perspective cameras only). ``max_bytes``: refuse, with a
    :class:`~avatarkit.errors.ResourceError`, a render whose :func:`render_memory` is above it.
    Warns about cameras that see nothing of the mesh. The views carry the rig's view subsets
    (:func:`~avatarkit.render.rigs.rig_subsets`: H3DS's for ``--preset h3ds``). With ``--preset
    portrait`` every draw (cameras, lighting, backgrounds) comes from
    :func:`~avatarkit.render.rigs.subject_seed` of the mesh and ``seed``, so each subject of a
    batch gets its own photos."""
    from avatarkit.device import refuse_over_memory
    from avatarkit.io.view_folders import check_export

    check_export(export, rig.orthographic)
    if rig.preset == "portrait":
        seed = subject_seed(mesh, seed)
    cameras = make_rig(mesh, rig, seed)
    check_export(export, cameras.projection == "orthographic", rig.cameras)
    if max_bytes is not None:
        refuse_over_memory(
            render_memory(cameras, config, mesh),
            max_bytes,
            f"rendering {len(cameras)} view{'s' if len(cameras) != 1 else ''} of "
            f"{cameras.width} x {cameras.height} pixels" + (f" at --ssaa {config.ssaa}" if config.ssaa > 1 else ""),
            "lower --size, --views or --ssaa",
        )
    views = render(mesh, cameras, config, seed=seed, device=device)
    views.subsets = rig_subsets(mesh, rig, cameras)
    empty = [i for i in range(len(views)) if not views.mask[i].any()]
    if empty:
        warnings.warn(
            f"camera{'s' if len(empty) > 1 else ''} {', '.join(map(str, empty))} "
            f"see{'' if len(empty) > 1 else 's'} nothing of the mesh",
            AvatarkitWarning,
            stacklevel=2,
        )
    return views


OUTPUT_BYTES_PER_PIXEL = 3 + 1 + 4 + 12
"""Bytes of every view's rgb, mask, depth and normal per pixel (+8 for uv, +2 for label)."""
WORK_BYTES_PER_RAY = 160
"""Peak working bytes per ray of a batch (warp's G-buffers, the covered pixels' tensors, the
colour and shading, the supersampled composite): an upper estimate."""


def render_memory(cameras: Cameras, config: RenderConfig, mesh: Mesh | None = None) -> int:
    """Estimated peak bytes of :func:`render`: the views it returns (all held until written)
    and one batch of rays in flight (up to ``MAX_RAYS_PER_BATCH``, at least one view at
    ``config.ssaa`` squared rays per pixel). The mesh's own arrays are not counted."""
    n, pixels, s = len(cameras), cameras.width * cameras.height, config.ssaa
    per_pixel = OUTPUT_BYTES_PER_PIXEL + (3 if config.lighting != "none" else 0)  # the albedo images
    if mesh is None or mesh.has_uvs:
        per_pixel += 8
    if mesh is None or mesh.vertex_labels is not None:
        per_pixel += 2
    batch = min(n, max(1, MAX_RAYS_PER_BATCH // (pixels * s * s)))
    return n * pixels * per_pixel + batch * pixels * s * s * WORK_BYTES_PER_RAY


def render(mesh: Mesh, cameras: Cameras, config: RenderConfig, seed: int = 0, device: str = "cpu") -> Views:
    """Render ``mesh`` from every camera; see the module docstring.

    Raises:
        OptionError: unusable settings (``--albedo texture`` on a mesh without one, ...).
        InputError: an unreadable HDR map or background folder.
    """
    import torch

    config.check()
    mesh.validate()
    rng = np.random.default_rng(seed)
    normals = vertex_normals(mesh)
    caster = RayCaster(mesh.vertices, mesh.faces, device, normals, mesh.uvs, mesh.face_uvs, mesh.vertex_labels)
    tdev = torch.device(device)
    albedo = _Albedo(mesh, config, tdev)
    env, env_maps = _environments(config, cameras, rng, seed) if config.lighting in ("sh", "prt") else (None, None)
    transfer = None
    if config.lighting == "prt":
        transfer = torch.as_tensor(
            L.prt_transfer(
                mesh.vertices.astype(np.float64), normals.astype(np.float64), caster.occluded, config.prt_samples
            ),
            dtype=torch.float32,
            device=tdev,
        )
    lights = _light_directions(cameras, rng) if config.lighting == "directional" else None
    backgrounds = _Backgrounds(config, rng)
    g = _Geometry(mesh, tdev)

    n, h, w, s = len(cameras), cameras.height, cameras.width, config.ssaa
    out = {
        "rgb": np.empty((n, h, w, 3), np.uint8),
        "mask": np.zeros((n, h, w), np.uint8),
        "depth": np.empty((n, h, w), np.float32),  # the G-buffer kernel writes every pixel
        "normal": np.empty((n, h, w, 3), np.float32),
        "uv": np.empty((n, h, w, 2), np.float32) if mesh.has_uvs else None,
        "label": np.empty((n, h, w), np.int16) if mesh.vertex_labels is not None else None,
        "albedo": np.zeros((n, h, w, 3), np.uint8) if config.lighting != "none" else None,
    }
    fine = cameras.scaled(s) if s > 1 else cameras
    batch = max(1, MAX_RAYS_PER_BATCH // (h * w * s * s))
    for start in range(0, n, batch):
        views = slice(start, min(n, start + batch))
        count = views.stop - views.start
        gb = caster.gbuffer(cameras, views, into={k: out[k][views] if out[k] is not None else None for k in BUFFERS})
        np.multiply(gb.face >= 0, 255, out=out["mask"][views], casting="unsafe")
        if out["albedo"] is not None:  # a G-buffer: the albedo at the pixel centres, unlit
            centre = _Pixels(gb, tdev)
            centre.scatter(out["albedo"][views], (albedo.sample(centre, g).clamp(0, 1) * 255 + 0.5).to(torch.uint8))
        if s > 1:
            gb = caster.gbuffer(fine, views)
        px = _Pixels(gb, tdev)  # colour is computed at covered pixels only
        nrm = px.normal
        color = albedo.sample(px, g)  # (P, 3) float in [0, 1], sRGB
        if config.lighting != "none":
            shade = _shade(config, px, nrm, views, env, transfer, lights, g, caster, tdev)
            color = linear_to_srgb(srgb_to_linear(color) * shade)
        color = (color.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
        if s == 1:
            rgb = out["rgb"][views]
            rgb[...] = backgrounds.take(count, h, w)
            px.scatter(rgb, color)
        else:  # composite at the fine resolution, then average down
            image = torch.as_tensor(np.array(backgrounds.take(count, h * s, w * s)), device=tdev).reshape(-1, 3)
            image[px.index] = color
            image = image.reshape(count, h * s, w * s, 3).permute(0, 3, 1, 2).float()
            image = torch.nn.functional.avg_pool2d(image, s).permute(0, 2, 3, 1)
            out["rgb"][views] = (image + 0.5).to(torch.uint8).cpu().numpy()

    lighting_record = {"type": config.lighting, "albedo": albedo.source, "ssaa": np.int64(s)}
    if env is not None:
        lighting_record["sh"] = env.astype(np.float32)
        lighting_record["environment"] = _environment_name(config.hdri)
        if env_maps is not None:
            lighting_record["environment_index"] = env_maps
        per_view = "turned" if config.environments == "random" and config.hdri else config.environments
        lighting_record["environments"] = per_view
    if lights is not None:
        lighting_record["direction"] = lights.astype(np.float32)
        lighting_record["ambient"] = np.float32(config.ambient)
    views_out = Views(
        K=cameras.K.astype(np.float32),
        world_to_cam=cameras.world_to_cam.astype(np.float32),
        projection=cameras.projection,
        lighting=lighting_record,
        target=None if cameras.target is None else cameras.target.astype(np.float32),
        **out,
    )
    return views_out


# ----------------------------------------------------------------------------- parts


class _Pixels:
    """The covered pixels of a batch of views: flat ``index`` into (views * H * W), their
    ``view``, ``face``, ``bary``, ``normal`` and ``uv`` as tensors on the shading device."""

    def __init__(self, gb, device) -> None:
        import torch

        flat = gb.face.reshape(-1)
        index = np.flatnonzero(flat >= 0)
        self.view = index // (gb.face.shape[1] * gb.face.shape[2])
        self.index_np = index
        self.index = torch.as_tensor(index, device=device)

        def take(array):
            return None if array is None else torch.as_tensor(array.reshape(len(flat), -1)[index], device=device)

        self.face = torch.as_tensor(flat[index], device=device).long()
        self.bary = take(gb.bary)
        self.normal = take(gb.normal)
        self.uv = take(gb.uv)

    def scatter(self, target: np.ndarray, values) -> None:
        """Write per-pixel ``values`` into the image array ``target`` (views, H, W[, C])."""
        flat = target.reshape(-1, *target.shape[3:])  # a view: target is contiguous
        flat[self.index_np] = values.cpu().numpy()


class _Geometry:
    """Mesh attributes interpolated at covered pixels (for shading: positions, colours, PRT)."""

    def __init__(self, mesh: Mesh, device) -> None:
        import torch

        self.faces = torch.as_tensor(mesh.faces, device=device).long()
        self.vertices = torch.as_tensor(mesh.vertices, device=device)

    def interpolate(self, values, index, px: _Pixels):
        """Per-corner ``values[index[face]]`` weighted by the barycentric coordinates."""
        return (values[index[px.face]] * px.bary[..., None]).sum(-2)

    def position(self, px: _Pixels):
        return self.interpolate(self.vertices, self.faces, px)


class _Albedo:
    """Surface colour in [0, 1] sRGB: texture (bilinear at the per-corner UV), vertex colours, or flat."""

    def __init__(self, mesh: Mesh, config: RenderConfig, device) -> None:
        import torch

        has_texture = mesh.texture is not None and mesh.has_uvs
        source = config.albedo
        if source == "auto":
            source = "texture" if has_texture else "vertex" if mesh.vertex_colors is not None else "flat"
        if source == "texture" and not has_texture:
            raise OptionError("--albedo texture: the mesh has no texture and UVs")
        if source == "vertex" and mesh.vertex_colors is None:
            raise OptionError("--albedo vertex: the mesh has no vertex colours")
        self.source = source
        if source == "texture":
            tex = torch.as_tensor(mesh.texture, device=device).float() / 255.0
            self.texture = tex.permute(2, 0, 1)[None]  # (1, 3, H, W)
        elif source == "vertex":
            self.colors = torch.as_tensor(mesh.vertex_colors, device=device).float() / 255.0
        self.flat = torch.tensor(config.flat_color, device=device).float() / 255.0

    def sample(self, px: _Pixels, g: _Geometry):
        import torch

        if self.source == "texture":
            uv = px.uv
            grid = torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2], -1).reshape(1, -1, 1, 2)
            rgb = torch.nn.functional.grid_sample(
                self.texture, grid, mode="bilinear", padding_mode="border", align_corners=False
            )
            return rgb[0, :, :, 0].T
        if self.source == "vertex":
            return g.interpolate(self.colors, g.faces, px)
        return self.flat.expand(len(px.face), 3).clone()


class _Backgrounds:
    def __init__(self, config: RenderConfig, rng: np.random.Generator) -> None:
        from avatarkit.io.images import list_images

        self.color = np.asarray(config.background, dtype=np.uint8)
        self.rng = rng
        self.images = [] if config.background_dir is None else list_images(config.background_dir)

    def take(self, count: int, h: int, w: int) -> np.ndarray:
        """(count, h, w, 3) uint8 backgrounds."""
        from avatarkit.io.images import random_crop

        if not self.images:
            return np.broadcast_to(self.color, (count, h, w, 3))
        return np.stack(
            [random_crop(self.images[self.rng.integers(len(self.images))], self.rng, h, w) for _ in range(count)]
        )


def _environment_name(hdri: Path | None) -> str:
    if hdri is None:
        return "random studio"
    if str(hdri) == SKY:
        return "procedural sky, one per view"
    return f"{hdri} (one map per view)" if Path(hdri).is_dir() else str(hdri)


def _exposed(coeffs: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """SH radiance scaled so that its brightest direction gives a shading factor near 1."""
    peak = L.irradiance(coeffs, directions).mean(-1).max()
    return coeffs * (np.pi / max(peak, 1e-12))


def _environments(
    config: RenderConfig, cameras: Cameras, rng: np.random.Generator, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 9, 3) SH radiance per view, and which map of an ``hdri`` folder each view drew
    ((N,) int32, or None): one environment, turned by a random yaw per view; or, with
    ``environments="random"`` and no HDR map, a random studio environment per view (view i's from
    ``[seed, 4, i]``, so fewer views are the first ones); or, ``fixed``, one environment for all
    (a random studio's key light on the side the cameras are, as a photographer lights). An
    ``hdri`` folder or the built-in sky gives each view its own map (view i's from
    ``[seed, 5, i]``), turned by a random yaw as one map is."""
    count = len(cameras)
    directions = L.sphere_directions(2048)
    if config.environments == "random" and config.hdri is None:
        studios = [L.random_environment(np.random.default_rng([seed, 4, i]), directions) for i in range(count)]
        return np.stack(studios), None
    if config.hdri is not None and (str(config.hdri) == SKY or Path(config.hdri).is_dir()):
        from avatarkit.io.hdr import list_environments, read_environment

        draws = [np.random.default_rng([seed, 5, i]) for i in range(count)]
        if str(config.hdri) == SKY:
            bases = [_exposed(L.equirect_to_sh(L.procedural_sky(r)), directions) for r in draws]
            index = None
        else:
            maps = list_environments(config.hdri)
            index = np.array([r.integers(len(maps)) for r in draws], dtype=np.int32)
            cache = {i: _exposed(L.equirect_to_sh(read_environment(maps[i])), directions) for i in sorted(set(index))}
            bases = [cache[i] for i in index]
        if config.environments == "fixed":
            return np.stack(bases), index
        turned = [L.rotate(b, L.rotation_y(rng.uniform(0, 2 * np.pi)), directions) for b in bases]
        return np.stack(turned), index
    if config.hdri is not None:
        from avatarkit.io.hdr import read_environment

        base = _exposed(L.equirect_to_sh(read_environment(config.hdri)), directions)
    elif config.environments == "fixed":
        base = L.random_environment(rng, directions, toward=-cameras.axes().mean(axis=0))
    else:
        base = L.random_environment(rng, directions)
    if config.environments == "fixed":
        return np.repeat(base[None], count, axis=0), None
    return np.stack([L.rotate(base, L.rotation_y(rng.uniform(0, 2 * np.pi)), directions) for _ in range(count)]), None


def _light_directions(cameras: Cameras, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) unit directions towards the light: from the camera's side, up to 60 degrees off."""
    toward_camera = -cameras.world_to_cam[:, 2, :3]  # the camera's -Z axis in the world
    out = []
    for d in toward_camera:
        jitter = rng.normal(size=3)
        jitter -= jitter @ d * d
        jitter /= np.linalg.norm(jitter) + 1e-12
        angle = np.radians(rng.uniform(10, 60))
        light = np.cos(angle) * d + np.sin(angle) * jitter
        light[1] = abs(light[1])  # from above
        out.append(light / np.linalg.norm(light))
    return np.stack(out)


def _shade(config, px, nrm, views, env, transfer, lights, g, caster, tdev):
    """(P, 3) shading factors at covered pixels (multiplied with linear albedo)."""
    import torch

    view = torch.as_tensor(px.view, device=tdev)
    if config.lighting == "sh":
        coeffs = torch.as_tensor(env[views] * L.BAND[None, :, None], dtype=torch.float32, device=tdev)
        return torch.einsum("pk,pkc->pc", L.sh_basis(nrm), coeffs[view]).clamp(min=0) / np.pi
    if config.lighting == "prt":
        coeffs = torch.as_tensor(env[views], dtype=torch.float32, device=tdev)
        t = g.interpolate(transfer, g.faces, px)
        return torch.einsum("pk,pkc->pc", t, coeffs[view]).clamp(min=0) / np.pi
    # directional, with a shadow ray from every pixel facing the light
    light = torch.as_tensor(lights[views], dtype=torch.float32, device=tdev)[view]
    cos = (nrm * light).sum(-1).clamp(min=0)
    lit = (cos > 0).nonzero(as_tuple=True)[0]
    if len(lit):
        origins = g.position(px)[lit] + 1e-4 * caster.extent * nrm[lit]
        blocked = caster.occluded(origins.cpu().numpy(), light[lit].cpu().numpy())
        cos[lit[torch.as_tensor(blocked, device=tdev)]] = 0.0
    return (config.ambient + (1 - config.ambient) * cos)[:, None].expand(-1, 3)


def srgb_to_linear(c):
    """sRGB values in [0, 1] (a torch tensor) to linear light."""
    import torch

    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c):
    """Linear light (a torch tensor, 0 or more) to sRGB values."""
    import torch

    c = c.clamp(min=0)
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
