"""What ``avatarkit view`` shows: avatarkit's files turned into viewer primitives (pure numpy).

:func:`build_scene` reads each file with avatarkit's readers and turns it into
:class:`Surface` (meshes with vertex colours or a texture), :class:`Points` (samples with
per-point SDF, colour and normal colourings; voxels as their occupied centres),
:class:`Frustum` (a views file's cameras with their images) and :class:`Picture` (textures)
items. A file it cannot show is listed in :attr:`Scene.problems` with its reason and the others
are shown; only when nothing can be shown does it raise.

A reconstruction and its ground truth (``truth``, or the second of exactly two meshes, the
order of ``evaluate-chamfer PRED GT``) are shown side by side: the truth where it is, the
prediction and its error heatmap (each vertex coloured by its distance to the truth's surface,
:func:`avatarkit.evaluate.heatmap.error_mesh`) beside it along +X.

Everything is in metres in avatarkit's world frame (+Y up, the subject facing +Z); the server
glue (:mod:`avatarkit.view.server`) only hands these arrays to the browser.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarkitError, InputError
from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES
from avatarkit.structures import Mesh, Samples, Texture, Views, Voxels

DEFAULT_COLOR = (180, 180, 190)
"""Surface colour of a mesh without colours or texture (sRGB)."""
LAYOUTS = ("world", "row")
"""``world``: every file where its coordinates put it; ``row``: each file's items beside the last."""
FRUSTUM_IMAGE_SIDE = 128
"""Longest side (pixels) of a camera's image drawn in its frustum (smaller: hundreds of views)."""
VALIDATION_FOLDER = "validation"
"""Where a training run keeps its validation meshes (``RUN/validation/*.h5``)."""


@dataclasses.dataclass
class Surface:
    """A triangle mesh to draw.

    Attributes:
        name: scene path (``/file/what``). label: what the panel calls it.
        vertices: (V, 3) float32 metres. faces: (F, 3) int32, counter-clockwise from outside.
        vertex_colors: (V, 3) uint8, or None. uvs: (V, 2) float32, one per vertex (UV seams
            split), with ``texture`` (H, W, 3) uint8, or None.
        offset: (3,) where the file's origin is placed (metres).
        note: a line for the panel (the heatmap's scale).
    """

    name: str
    label: str
    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None = None
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    offset: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    note: str = ""


@dataclasses.dataclass
class Points:
    """A point cloud with one or more colourings.

    Attributes:
        points: (N, 3) float32 metres (a subset when the file has more than the limit).
        colorings: name -> (N, 3) uint8; the first is shown first (``sdf``, ``color``,
            ``normal``, ``occupancy``).
        size: point size, metres. total: how many points the file has.
    """

    name: str
    label: str
    points: np.ndarray
    colorings: dict[str, np.ndarray]
    size: float
    total: int
    offset: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    note: str = ""


@dataclasses.dataclass
class Frustum:
    """One camera: OpenCV axes (+Z forward, +Y down) at ``position`` turned by ``wxyz``
    (camera to world); ``fov`` vertical, radians; ``aspect`` width / height; ``scale`` metres;
    ``image`` (h, w, 3) uint8 or None."""

    name: str
    label: str
    fov: float
    aspect: float
    scale: float
    wxyz: np.ndarray
    position: np.ndarray
    image: np.ndarray | None
    offset: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))


@dataclasses.dataclass
class Picture:
    """A 2D image for the side panel (a texture file): (H, W, 3) uint8."""

    name: str
    label: str
    image: np.ndarray


Item = Surface | Points | Frustum | Picture


@dataclasses.dataclass
class Scene:
    """Everything to show: ``items``, the files shown (``shown``: path -> what), and the files
    that could not be shown (``problems``: path -> reason)."""

    items: list[Item]
    shown: dict[Path, str]
    problems: dict[Path, str]
    labels: dict[Path, str] = dataclasses.field(default_factory=dict)
    """What the panel calls each file: its name, with its folder when two files share a name."""

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(3,), (3,) corners of the box around the scene's meshes and points as placed (the 1st
        to 99th percentile of each point set, so that a few far samples do not shrink the
        subject), or around its cameras when it has nothing else; metres."""
        corners = []
        for item in self.items:
            if isinstance(item, Surface):
                corners.append(item.vertices + item.offset)
            elif isinstance(item, Points) and len(item.points):
                corners.append(np.percentile(item.points, [1, 99], axis=0) + item.offset)
        if not corners:
            corners = [(i.position + i.offset)[None] for i in self.items if isinstance(i, Frustum)]
        if not corners:
            return np.full(3, -0.5), np.full(3, 0.5)
        stacked = np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1, 3) for c in corners])
        return stacked.min(0), stacked.max(0)

    def front_camera(self, fov: float = np.radians(50.0)) -> tuple[np.ndarray, np.ndarray]:
        """(position, look_at) of a camera in front of the scene (the way subjects face, +Z,
        turned 20 degrees towards +X and raised 10 degrees, so that a views file's front camera
        does not hide the subject) that sees the box of :meth:`bounds` whole with vertical field
        of view ``fov``."""
        lo, hi = self.bounds()
        center = 0.5 * (lo + hi)
        radius = max(0.5 * float(np.linalg.norm(hi - lo)), 0.05)
        distance = radius / np.sin(fov / 2) * 1.05
        yaw, pitch = np.radians(20.0), np.radians(10.0)
        direction = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        return center + distance * direction, center

    @property
    def point_count(self) -> int:
        return sum(len(i.points) for i in self.items if isinstance(i, Points))


def build_scene(
    paths: list[Path],
    truth: Path | None = None,
    max_points: int = 2_000_000,
    point_size: float = 0.004,
    layout: str = "world",
    device: str = "cpu",
    seed: int = 0,
) -> Scene:
    """Read ``paths`` (and ``truth``) into a :class:`Scene`.

    Args:
        paths: mesh files (OBJ, PLY, GLB, GLTF, OFF), avatarkit HDF5 files (``mesh``, ``face``,
            ``samples``, ``views``, ``voxels``, ``texture``) and training run folders (their
            ``validation/`` meshes).
        truth: a ground-truth mesh; every other mesh is shown beside it with its error heatmap.
            None: the second of exactly two meshes is the truth of the first.
        max_points: most points drawn per point file (a random subset beyond it, seeded).
        point_size: point size, metres (voxels use their pitch).
        layout: one of :data:`LAYOUTS`.
        device: where the heatmap's distances are computed (warp: ``cpu`` or ``cuda[:N]``).

    Returns:
        The scene; files that cannot be shown are in ``problems``, not raised.

    Raises:
        InputError: nothing in ``paths`` can be shown (each file's problem in the message),
        or ``truth`` cannot be read.
    """
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if max_points < 1:
        raise InputError(f"--max-points must be at least 1, got {max_points}")
    rng = np.random.default_rng(seed)
    loaded: list[tuple[Path, object]] = []
    problems: dict[Path, str] = {}
    run_truths: dict[Path, Path] = {}
    for path in _expand(paths, problems, run_truths):
        try:
            loaded.append((path, read_viewable(path)))
        except AvatarkitError as exc:
            problems[path] = exc.message if exc.path is not None else str(exc)
    groups = _run_comparisons(loaded, run_truths)
    from_runs = {pred for _, preds in groups for pred, _ in preds}
    loaded = [(p, m) for p, m in loaded if p not in from_runs]
    meshes = [(p, m) for p, m in loaded if isinstance(m, Mesh)]
    if truth is not None:
        from avatarkit.io.meshfile import load_mesh

        groups.append(((truth, load_mesh(truth)), meshes))
    elif len(meshes) == 2:
        groups.append((meshes[1], meshes[:1]))
    compared = list(dict.fromkeys(p for (t, _), preds in groups for p in [t, *(q for q, _ in preds)]))
    loaded = [(p, m) for p, m in loaded if p not in compared]
    items: list[Item] = []
    shown: dict[Path, str] = {}
    names: dict[Path, str] = {}
    for path in [*(p for p, _ in loaded), *compared]:
        names[path] = _unique_name(path, set(names.values()))
    labels = _labels([*names, *problems])
    start = 0.0
    for group_truth, predictions in groups:
        new, start = _comparison(group_truth, predictions, names, labels, device, shown, start)
        items += new
    step = _row_step(loaded) if layout == "row" else 0.0
    for index, (path, obj) in enumerate(loaded):
        offset = np.array([index * step, 0.0, 0.0])
        new, what = _items_of(path, names[path], labels[path], obj, max_points, point_size, rng)
        for item in new:
            if not isinstance(item, Picture):
                item.offset = offset
        items += new
        shown[path] = what
    if not items:
        listed = "; ".join(f"{p}: {why}" for p, why in problems.items()) or "no files given"
        raise InputError(f"nothing to show ({listed})")
    return Scene(items, shown, problems, labels)


# ---------------------------------------------------------------------------- reading


def read_viewable(path: Path) -> object:
    """One file as the structure the viewer draws (``Mesh``, ``Samples``, ``Views``,
    ``Voxels``, ``Texture``); :class:`InputError` naming ``path`` when it cannot be shown."""
    from avatarkit.io.hdf5 import file_kind, open_h5, read_artifact, read_mesh
    from avatarkit.io.meshfile import load_mesh

    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError("no such file", path)
    if suffix in MESH_SUFFIXES:
        return load_mesh(path)
    if suffix not in HDF5_SUFFIXES:
        raise InputError(
            f"cannot show a {suffix or 'suffix-less'} file; the viewer shows mesh files "
            f"({', '.join(MESH_SUFFIXES)}), avatarkit HDF5 files and run folders",
            path,
        )
    with open_h5(path) as f:
        kind = file_kind(f, path)
    if kind in ("mesh", "face"):
        return read_mesh(path)
    if kind in ("samples", "views", "voxels", "texture"):
        return read_artifact(path, kind)
    what = f"a {kind!r} file" if kind else "an HDF5 file without an avatarkit kind"
    raise InputError(
        f"{what} has nothing to draw (the viewer shows mesh, face, samples, views, voxels and texture)", path
    )


def _expand(paths: list[Path], problems: dict[Path, str], run_truths: dict[Path, Path]) -> list[Path]:
    """Files as given; a training run folder becomes its validation meshes (each with the true
    mesh its provenance names, into ``run_truths``); other folders become the files in them the
    viewer reads."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        if (path / "config.json").is_file():
            found = _run_meshes(path)
            run_truths.update(_provenance_truths(found))
            if not found:
                problems[path] = (
                    f"a training run without validation meshes (no mesh files in {VALIDATION_FOLDER}/; "
                    "runs write them as they validate)"
                )
            files += found
            continue
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in (*HDF5_SUFFIXES, *MESH_SUFFIXES))
        if not found:
            problems[path] = "a folder without mesh or HDF5 files"
        files += found
    return files


def _run_meshes(run: Path) -> list[Path]:
    """A run's validation meshes (``validation/*``), by name; the run's method in
    ``config.json`` is not needed to show them."""
    try:
        json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        return []
    folder = run / VALIDATION_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (*HDF5_SUFFIXES, *MESH_SUFFIXES))


def _provenance_truths(meshes: list[Path]) -> dict[Path, Path]:
    """Validation mesh -> the true mesh its provenance names (its first input), where that file
    still exists."""
    from avatarkit.io.hdf5 import open_h5

    truths = {}
    for path in meshes:
        if path.suffix.lower() not in HDF5_SUFFIXES:
            continue
        try:
            with open_h5(path) as f:
                inputs = [str(p) for p in np.atleast_1d(f.attrs.get("inputs", []))]
        except AvatarkitError:
            continue  # read_viewable says what is wrong with it
        if inputs and Path(inputs[0]).is_file():
            truths[path] = Path(inputs[0])
    return truths


def _run_comparisons(loaded: list[tuple[Path, object]], run_truths: dict[Path, Path]) -> list[tuple]:
    """(truth, [prediction]) for each validation mesh read whose truth can be read; a truth
    that cannot leaves its mesh to be shown alone."""
    from avatarkit.io.meshfile import load_mesh

    groups = []
    for path, obj in loaded:
        if path in run_truths and isinstance(obj, Mesh):
            try:
                groups.append(((run_truths[path], load_mesh(run_truths[path])), [(path, obj)]))
            except AvatarkitError:
                continue
    return groups


# ---------------------------------------------------------------------------- items


def _items_of(
    path: Path, base: str, label: str, obj: object, max_points: int, point_size: float, rng
) -> tuple[list[Item], str]:
    if isinstance(obj, Mesh):
        return [mesh_surface(obj, base, label)], f"mesh, {len(obj.vertices):,} vertices"
    if isinstance(obj, Samples):
        points = samples_points(obj, base, label, max_points, point_size, rng)
        return [points], f"samples, {points.total:,} points ({', '.join(points.colorings)})"
    if isinstance(obj, Voxels):
        points = voxel_points(obj, base, label, max_points, rng)
        return [points], f"voxels, {points.total:,} occupied"
    if isinstance(obj, Views):
        frusta = view_frusta(obj, base, label)
        return list(frusta), f"views, {len(frusta)} cameras"
    if isinstance(obj, Texture):
        return [Picture(base, label, obj.texture)], "texture"
    raise AssertionError(type(obj))  # read_viewable returns only the kinds above


def mesh_surface(mesh: Mesh, name: str, label: str) -> Surface:
    """A mesh as drawn: its texture on per-vertex UVs (seams split) when it has one, else its
    vertex colours, else :data:`DEFAULT_COLOR`."""
    if mesh.texture is not None and mesh.uvs is not None and mesh.face_uvs is not None:
        from avatarkit.io.meshfile import split_at_seams

        keep, uv_ids, faces = split_at_seams(mesh.faces, mesh.face_uvs, len(mesh.vertices))
        return Surface(
            name, label, mesh.vertices[keep], faces.astype(np.int32), uvs=mesh.uvs[uv_ids], texture=mesh.texture
        )
    return Surface(name, label, mesh.vertices, mesh.faces, vertex_colors=mesh.vertex_colors)


def samples_points(samples: Samples, name: str, label: str, max_points: int, size: float, rng) -> Points:
    """Samples coloured by signed distance (blue inside, white on the surface, red outside;
    the scale is the 95th percentile of ``|sdf|``), and by their colours and normals when the
    file has them."""
    keep = _subset(len(samples.points), max_points, rng)
    sdf = samples.sdf[keep]
    scale = max(float(np.percentile(np.abs(sdf), 95)), 1e-6) if len(sdf) else 1.0
    colorings = {"sdf": sdf_colors(sdf, scale)}
    if samples.colors is not None:
        colorings["color"] = np.asarray(samples.colors[keep], dtype=np.uint8)
    if samples.normals is not None:
        colorings["normal"] = normal_colors(samples.normals[keep])
    note = f"sdf: inside blue (dark at -{scale * 1000:.1f} mm), outside orange to dark red (+{scale * 1000:.1f} mm)"
    return Points(name, label, samples.points[keep].astype(np.float32), colorings, size, len(samples.points), note=note)


def voxel_points(voxels: Voxels, name: str, label: str, max_points: int, rng) -> Points:
    """A grid's occupied voxel centres (``origin + (index + 0.5) * pitch``), coloured by height."""
    index = np.argwhere(voxels.occupancy)
    keep = _subset(len(index), max_points, rng)
    centers = (voxels.origin + (index[keep] + 0.5) * voxels.pitch).astype(np.float32)
    from avatarkit.evaluate.heatmap import colormap

    height = centers[:, 1] - centers[:, 1].min() if len(centers) else centers[:, 1]
    colors = colormap(height, float(height.max()) if len(height) else 1.0)
    return Points(name, label, centers, {"height": colors}, float(voxels.pitch), len(index))


def view_frusta(views: Views, name: str, label: str) -> list[Frustum]:
    """Each camera of a views file as a frustum with its image, sized a tenth of the cameras'
    distance to where they aim (0.2 m when unknown). An orthographic camera is drawn as the
    perspective frustum that frames the same box at its target's depth."""
    cameras = views.cameras()
    centers = cameras.centers()
    targets = cameras.targets()
    depth = np.linalg.norm(centers - targets, axis=1) if targets is not None else np.ones(len(cameras))
    scale = 0.1 * float(np.median(depth)) if targets is not None else 0.2
    height, width = views.rgb.shape[1:3]
    frusta = []
    for i in range(len(cameras)):
        fy = float(cameras.K[i, 1, 1])
        half = height / 2 / fy  # perspective: tan of the half angle; orthographic: metres
        if cameras.projection == "orthographic":
            half = half / max(float(depth[i]), 1e-6)
        r = cameras.world_to_cam[i, :3, :3]
        frusta.append(
            Frustum(
                f"{name}/camera_{i:03d}",
                f"{label} #{i}",
                fov=2.0 * float(np.arctan(half)),
                aspect=width / height,
                scale=scale,
                wxyz=rotation_to_wxyz(r.T),
                position=centers[i],
                image=_thumbnail(views.rgb[i], FRUSTUM_IMAGE_SIDE),
            )
        )
    return frusta


def _comparison(
    truth: tuple[Path, Mesh],
    predictions: list[tuple[Path, Mesh]],
    names: dict[Path, str],
    labels: dict[Path, str],
    device: str,
    shown: dict[Path, str],
    start: float = 0.0,
) -> tuple[list[Item], float]:
    """The truth moved ``start`` metres along +X (0: where it is); each prediction and its error
    heatmap beside it along +X. Returns the items and where the next group may start."""
    from avatarkit.evaluate.heatmap import error_mesh

    truth_path, gt = truth
    surface = mesh_surface(gt, names[truth_path], f"{labels[truth_path]} (truth)")
    surface.offset = np.array([start, 0.0, 0.0])
    items: list[Item] = [surface]
    shown[truth_path] = f"ground truth, {len(gt.vertices):,} vertices"
    xs = np.concatenate([gt.vertices[:, 0], *(m.vertices[:, 0] for _, m in predictions)])
    step = 1.1 * max(float(xs.max() - xs.min()), 0.3)  # the widest of them never reaches the next
    for index, (path, pred) in enumerate(predictions):
        heat, vmax = error_mesh(pred, gt, device)
        name = names[path]
        surface = mesh_surface(pred, name, labels[path])
        surface.offset = np.array([start + (2 * index + 1) * step, 0.0, 0.0])
        heatmap = Surface(
            f"{name}_error",
            f"{labels[path]} error",
            heat.vertices,
            heat.faces,
            vertex_colors=heat.vertex_colors,
            offset=np.array([start + (2 * index + 2) * step, 0.0, 0.0]),
            note=f"distance to the truth: blue 0, red {vmax * 1000:.1f} mm or more (95th percentile)",
        )
        items += [surface, heatmap]
        shown[path] = f"compared with {labels[truth_path]}: red = {vmax * 1000:.1f} mm"
    return items, start + (2 * len(predictions) + 1) * step


# ---------------------------------------------------------------------------- colours and small helpers


SDF_COLORS = {
    "inside": ((110, 160, 255), (20, 40, 150)),
    "outside": ((255, 160, 90), (160, 20, 20)),
}
"""Signed-distance colours (sRGB): each side from its colour at the surface to its colour at the
scale; light but saturated at 0, so that surface points stand out on the viewer's white."""


def sdf_colors(sdf: np.ndarray, scale: float) -> np.ndarray:
    """(N, 3) uint8: inside (negative) light blue at the surface to dark blue at ``-scale`` and
    below; outside orange at the surface to dark red at ``+scale`` and above."""
    x = np.clip(np.asarray(sdf, dtype=np.float64) / scale, -1.0, 1.0)[:, None]
    (in0, in1), (out0, out1) = (np.array(SDF_COLORS[k], dtype=np.float64) for k in ("inside", "outside"))
    colors = np.where(x < 0, in0 + (in1 - in0) * -x, out0 + (out1 - out0) * x)
    return np.rint(colors).astype(np.uint8)


def normal_colors(normals: np.ndarray) -> np.ndarray:
    """(N, 3) uint8: unit normals mapped from [-1, 1] to [0, 255] per axis (x red, y green, z blue)."""
    n = np.asarray(normals, dtype=np.float64)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return np.rint((n * 0.5 + 0.5) * 255).astype(np.uint8)


def rotation_to_wxyz(r: np.ndarray) -> np.ndarray:
    """(4,) unit quaternion (w, x, y, z) of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(r, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    out = np.array(q)
    return out / np.linalg.norm(out) * (1 if out[0] >= 0 else -1)


def _subset(count: int, limit: int, rng) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` items: all of them, or a sorted random subset."""
    if count <= limit:
        return np.arange(count)
    return np.sort(rng.choice(count, size=limit, replace=False))


def _thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` shrunk by an integer stride so that its longest side is at most ``side``."""
    stride = max(1, int(np.ceil(max(image.shape[:2]) / side)))
    return np.ascontiguousarray(image[::stride, ::stride])


def _row_step(loaded: list[tuple[Path, object]]) -> float:
    """Spacing of the ``row`` layout: 1.2 times the widest mesh or point set (0.5 m at least)."""
    widths = [0.5 / 1.2]
    for _, obj in loaded:
        if isinstance(obj, Mesh):
            widths.append(float(obj.extent()[0]))
        elif isinstance(obj, Samples) and len(obj.points):
            widths.append(float(np.ptp(obj.points[:, 0])))
    return 1.2 * max(widths)


def _labels(paths: list[Path]) -> dict[Path, str]:
    """Each file's name, or ``folder/name`` where another file has the same name."""
    counts: dict[str, int] = {}
    for path in paths:
        counts[path.name] = counts.get(path.name, 0) + 1
    return {p: f"{p.parent.name}/{p.name}" if counts[p.name] > 1 else p.name for p in paths}


def _unique_name(path: Path, used: set[str]) -> str:
    """A scene-tree name for a file (``/stem``, characters a scene path dislikes replaced), with
    a number added when another file has the same stem (``data/meshes/a.h5``, ``data/sdf/a.h5``)."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem) or "file"
    name, n = f"/{stem}", 1
    while name in used:
        n += 1
        name = f"/{stem}_{n}"
    return name
