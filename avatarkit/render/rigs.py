"""Camera rigs around a subject: look-at poses, orbits, random rigs, PIFu's rig, an H3DS-like
handheld capture of a head with its few-view subsets, portrait photos of a face at random head
poses and focal lengths, and :func:`make_rig`, which picks one from a render's options (the
cameras ``avatarkit render`` uses).
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarkitWarning, MeshError, OptionError
from avatarkit.structures import Cameras, Mesh
from avatarkit.structures.cameras import PROJECTIONS


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """4x4 ``world_to_cam`` of a camera at ``eye`` looking at ``target``, world ``up`` at the
    top of the image (OpenCV: +Z forward, +Y down)."""
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:  # looking straight up or down: any right vector will do
        x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, :3] = np.stack([x, y, z])
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def direction(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Unit vector from the subject to a camera at ``yaw`` about +Y (0: in front, on +Z;
    90: on the subject's left, +X) and ``pitch`` above the horizon."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    return np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])


def orbit(
    center: np.ndarray,
    radius: float,
    yaws: np.ndarray,
    pitches: np.ndarray,
    size: tuple[int, int],
    projection: str = "perspective",
    fov_deg: float = 40.0,
    fill: float = 0.9,
) -> Cameras:
    """Cameras around ``center`` at every (yaw, pitch) pair, framing a sphere of ``radius``.

    Perspective cameras stand far enough for the sphere to fill ``fill`` of the shorter
    image side at vertical field of view ``fov_deg``; orthographic ones scale fx so it does.
    """
    width, height = size
    pairs = [(y, p) for p in np.atleast_1d(pitches) for y in np.atleast_1d(yaws)]
    short = min(width, height)
    if projection == "perspective":
        f = 0.5 * height / np.tan(np.radians(fov_deg) / 2)
        distance = radius / np.sin(np.arctan(fill * short / (2 * f)))
    else:
        f = fill * short / (2 * radius)
        distance = 3.0 * radius  # in front of the subject; orthographic depth is relative
    k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    poses = [look_at(center + distance * direction(y, p), center) for y, p in pairs]
    targets = np.repeat(np.asarray(center, dtype=np.float64)[None], len(poses), 0)
    return Cameras(np.repeat(k[None], len(poses), 0), np.stack(poses), projection, width, height, targets)


def random_rig(
    rng: np.random.Generator,
    count: int,
    center: np.ndarray,
    radius: float,
    size: tuple[int, int],
    projection: str = "perspective",
    pitch_range: tuple[float, float] = (-15.0, 30.0),
    fov_range: tuple[float, float] = (30.0, 50.0),
    yaw_range: tuple[float, float] = (0.0, 360.0),
) -> Cameras:
    """``count`` cameras at uniformly random yaws and pitches (and, for perspective, fields of
    view), all framing the subject."""
    rigs = []
    for _ in range(count):
        yaw = rng.uniform(*yaw_range)
        pitch = rng.uniform(*pitch_range)
        fov = rng.uniform(*fov_range)
        rigs.append(orbit(center, radius, yaw, pitch, size, projection, fov))
    return Cameras(
        np.concatenate([c.K for c in rigs]),
        np.concatenate([c.world_to_cam for c in rigs]),
        projection,
        *size,
        np.concatenate([c.target for c in rigs]),
    )


def pifu_rig(vertices: np.ndarray, size: int = 512, yaws: np.ndarray | None = None, pitches=(0.0,)) -> Cameras:
    """PIFu's training cameras (``apps/render_data.py``): orthographic, one view per degree of
    yaw, the subject's vertical centre (x and z: medians of the vertices) at the image centre,
    and scaled as PIFu scales every scan to 180 units tall in a view 204.8 units high
    (``ortho_ratio`` 0.4 at 512 px): the subject spans 180/204.8 of the image height."""
    v = np.asarray(vertices, dtype=np.float64)
    center = np.median(v, axis=0)
    center[1] = 0.5 * (v[:, 1].min() + v[:, 1].max())
    height_m = float(v[:, 1].max() - v[:, 1].min())
    if not height_m > 0:
        raise OptionError("the mesh has no height to frame")
    f = size * 1.8 / (2.048 * height_m)
    yaws = np.arange(360.0) if yaws is None else np.asarray(yaws, dtype=np.float64)
    k = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1]])
    distance = 2.0 * height_m
    poses = [look_at(center + distance * direction(y, p), center) for p in pitches for y in yaws]
    targets = np.repeat(center[None], len(poses), 0)
    return Cameras(np.repeat(k[None], len(poses), 0), np.stack(poses), "orthographic", size, size, targets)


GEOPIFU_YAWS = (0.0, 90.0, 180.0, 270.0)
"""Yaws of ``--preset geopifu``, degrees (0: in front of the subject, 90: on its left): Geo-PIFu's
four views (``render_mesh.py``, ``start_rendering``: the mesh turned by ``inverseRotateY`` 0, -90,
-90, -90 degrees in turn, "FRONT", "RIGHT", "BACK", "LEFT", so its views 0-3 are these yaws)."""
GEOPIFU_HEIGHT = 1536
"""Image height of ``--preset geopifu``, pixels; the width is 2/3 of it (Geo-PIFu's ``--w 256 --h 384
--f 384`` times ``--resolutionScale 4``: 1024 x 1536)."""


def geopifu_rig(mesh: Mesh, height: int = GEOPIFU_HEIGHT, yaws=GEOPIFU_YAWS, pitches=(0.0,)) -> Cameras:
    """Geo-PIFu's cameras (``render_mesh.py``): orthographic, one view per yaw (default its four),
    each image the front face of the mesh's ``voxelize --preset geopifu`` box seen from that side.

    The box is :func:`~avatarkit.geometry.voxelize.plan_grid`'s ``geopifu`` grid (128 x 192 x 128
    voxels, the mesh filling 85% of its height or of its width and depth), so the views and the
    voxels files line up: the image's height spans the box's 192 voxels and its width
    (``height * 2 / 3``) the 128 of its width or depth, edge to edge (``height / 192`` pixels per
    voxel; OpenCV pixel centres, so ``cx = (width - 1) / 2``); every camera aims at the box's
    centre (its ``target``). Geo-PIFu's ``f`` is 192 S pixels per its box height of 1, ``c`` the
    image centre, so that "voxel projection can be aligned with ortho. renderings"."""
    from avatarkit.geometry.voxelize import plan_grid

    grid = plan_grid(mesh, preset="geopifu")
    nx, ny, _ = grid.shape
    width = max(1, round(height * nx / ny))
    f = height / (ny * grid.pitch)  # pixels per metre: the box's height is the image's
    center = grid.origin + 0.5 * np.asarray(grid.shape, dtype=np.float64) * grid.pitch
    distance = float(max(grid.shape)) * grid.pitch  # outside the box; orthographic depth is relative
    k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    yaws = np.asarray(yaws, dtype=np.float64)
    poses = [look_at(center + distance * direction(y, p), center) for p in pitches for y in yaws]
    targets = np.repeat(center[None], len(poses), 0)
    return Cameras(np.repeat(k[None], len(poses), 0), np.stack(poses), "orthographic", width, height, targets)


H3DS_VIEWS = 70
"""Views of ``--preset h3ds``: H3DS's scenes hold about 70 photos each."""
H3DS_YAWS = (-90.0, 90.0)
"""Yaws of ``--preset h3ds``, degrees from the way the face looks (90: towards the subject's left),
ends included."""
H3DS_PITCHES = (-20.0, 30.0)
"""Pitches of ``--preset h3ds``, degrees above the horizon, drawn uniformly per view."""
H3DS_DISTANCES = (0.5, 0.7)
"""Camera to head-centre distances of ``--preset h3ds``, metres (arm's length), drawn per view."""
H3DS_ROLL = 5.0
"""Largest roll of a ``--preset h3ds`` camera about its axis, degrees (a camera held by hand)."""
H3DS_FILL = 1.0
"""Share of the image width the head's bounding sphere spans from the nearest distance."""
H3DS_SUBSETS = (3, 4, 8, 16, 32)
"""The few-view subsets H3D-Net is scored on (the ``h3ds`` package's views configurations)."""


def head_vertices(mesh: Mesh) -> np.ndarray:
    """(K, 3) vertices of the head: those labelled ``head`` when the mesh has that label
    (Anny's skin of the head and neck, so a whole synthetic body's head), else all of them (a
    head scan)."""
    names = mesh.label_names or []
    if mesh.vertex_labels is not None and "head" in names:
        head = mesh.vertex_labels == names.index("head")
        if head.any():
            return mesh.vertices[head]
    return mesh.vertices


def head_sphere(mesh: Mesh) -> tuple[np.ndarray, float]:
    """(3,) float64 centre and radius, metres, of the head's bounding sphere (of
    :func:`head_vertices`)."""
    return Mesh(head_vertices(mesh), np.zeros((0, 3), np.int32)).bounding_sphere()


def face_heading(mesh: Mesh) -> float:
    """The yaw, degrees, the face looks towards (:meth:`Mesh.face_forward` about +Y: 0 along +Z,
    90 along +X); 0 for a mesh without face landmarks or whose face looks straight up or down."""
    forward = mesh.face_forward()
    if forward is None or np.hypot(forward[0], forward[2]) < 1e-6:
        return 0.0
    return float(np.degrees(np.arctan2(forward[0], forward[2])))


def h3ds_rig(
    center: np.ndarray,
    radius: float,
    rng: np.random.Generator,
    views: int = H3DS_VIEWS,
    height: int = 512,
    yaw_range: tuple[float, float] = H3DS_YAWS,
    heading: float = 0.0,
) -> Cameras:
    """An H3DS-like capture of a head (photos taken by hand, going round the front of the
    subject's head at arm's length) whose bounding sphere is ``center``, ``radius`` (metres,
    world frame): ``views`` perspective cameras of ``3/4 height`` x ``height`` pixels
    (portrait), in yaw order across ``yaw_range`` (degrees, ends included, each yaw jittered by
    up to a third of the step, counted from ``heading``, the yaw the face looks towards, as a
    photographer goes round the face); pitch drawn from :data:`H3DS_PITCHES`; distance to
    ``center`` drawn from :data:`H3DS_DISTANCES` (farther for a sphere wider than a head: 2.5
    to 3.5 ``radius``); a roll of up to :data:`H3DS_ROLL` degrees; each aimed at ``center``
    (the rig's ``target``). One focal length for all: the sphere spans :data:`H3DS_FILL` of
    the image width from the nearest distance, so the head fills most of every photo and never
    leaves it."""
    width = max(1, round(height * 3 / 4))
    low, high = yaw_range
    step = (high - low) / max(views - 1, 1)
    yaws = np.linspace(low, high, views) if views > 1 else np.array([0.5 * (low + high)])
    yaws = np.clip(yaws + rng.uniform(-step / 3, step / 3, views), low, high)
    pitches = rng.uniform(*H3DS_PITCHES, views)
    near = max(H3DS_DISTANCES[0], 2.5 * radius)
    distances = rng.uniform(near, near * H3DS_DISTANCES[1] / H3DS_DISTANCES[0], views)
    rolls = np.radians(rng.uniform(-H3DS_ROLL, H3DS_ROLL, views))
    f = H3DS_FILL * (width / 2) / np.tan(np.arcsin(radius / near))
    k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    center = np.asarray(center, dtype=np.float64)
    poses = []
    for yaw, pitch, distance, roll in zip(yaws, pitches, distances, rolls, strict=True):
        pose = look_at(center + distance * direction(heading + yaw, pitch), center)
        spin = np.eye(4)  # roll about the camera's own +Z
        spin[:2, :2] = [[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]]
        poses.append(spin @ pose)
    targets = np.repeat(center[None], views, 0)
    return Cameras(np.repeat(k[None], views, 0), np.stack(poses), "perspective", width, height, targets)


def view_subsets(
    cameras: Cameras, sizes: tuple[int, ...] = H3DS_SUBSETS, heading: float = 0.0
) -> dict[str, np.ndarray]:
    """H3DS-style few-view subsets of a rig, name (the count) -> sorted (K,) int32 view indices;
    sizes above the rig's count are left out.

    The smallest is H3D-Net's three-view set: the view looking most squarely at the subject's
    face (direction yaw ``heading``, pitch 0) and those nearest ``heading`` -45 and +45
    degrees of yaw. Each larger one keeps the smaller and adds, one at a time, the view whose
    direction (from its target to the camera) is farthest in angle from those chosen (greedy
    farthest-point sampling), so the subsets are nested and spread evenly over the captured
    directions.
    """
    sizes = tuple(sorted(n for n in sizes if 0 < n <= len(cameras)))
    if not sizes:
        return {}
    targets = cameras.targets()
    offset = cameras.centers() - (targets if targets is not None else 0.0)
    dirs = offset / np.linalg.norm(offset, axis=1, keepdims=True)
    chosen: list[int] = []
    for yaw in (0.0, -45.0, 45.0)[: sizes[0]]:
        closeness = dirs @ direction(heading + yaw, 0.0)
        closeness[chosen] = -np.inf
        chosen.append(int(np.argmax(closeness)))
    out = {}
    for size in sizes:
        while len(chosen) < size:
            nearest = (dirs @ dirs[chosen].T).max(axis=1)  # cosine to the nearest chosen view
            nearest[chosen] = np.inf
            chosen.append(int(np.argmin(nearest)))
        out[str(size)] = np.sort(np.asarray(chosen[:size], dtype=np.int32))
    return out


PORTRAIT_VIEWS = 8
"""Views of ``--preset portrait`` (photos of one face)."""
PORTRAIT_YAWS = (-45.0, 45.0)
"""Head yaws of ``--preset portrait`` relative to the camera, degrees (positive: the face turned
towards the subject's left), drawn uniformly per view."""
PORTRAIT_PITCH = 20.0
"""Largest head pitch of ``--preset portrait``, degrees (positive: chin up), drawn uniformly."""
PORTRAIT_ROLL = 10.0
"""Largest head roll of ``--preset portrait``, degrees (positive: the left ear up), drawn uniformly."""
PORTRAIT_FOCAL_MM = (24.0, 85.0)
"""Focal lengths of ``--preset portrait``, mm full-frame equivalent (a phone's main camera to a
portrait lens), drawn log-uniformly per view."""
PORTRAIT_FILL = (0.5, 0.9)
"""Share of the image height the head's bounding sphere spans in ``--preset portrait``, drawn per
view (less where the head would not fit: it never leaves the image)."""
PORTRAIT_MARGIN = 0.02
"""Least gap of ``--preset portrait`` between the head and the image border, share of the height."""
PORTRAIT_MIN_SIZE = 8
"""Least image height of ``--preset portrait``, pixels: room for the head inside its margins."""
FULL_FRAME_DIAGONAL_MM = float(np.hypot(36.0, 24.0))
"""The diagonal of a 36 x 24 mm frame: a focal length's full-frame equivalent gives the same
diagonal field of view."""


def face_frame(mesh: Mesh) -> np.ndarray | None:
    """(3, 3) float64 rotation whose columns are the face's left (the subject's), up and forward
    in the world frame, from the eye and lip-corner landmarks: forward is
    :meth:`Mesh.face_forward`, up the lips-to-eyes direction made square to it, left
    ``up x forward`` (the identity for a subject in our rest frame). None without those landmarks."""
    forward = mesh.face_forward()
    if forward is None:
        return None
    p = mesh.landmark_points()
    up = 0.5 * (p["left_eye"] + p["right_eye"] - p["left_lips"] - p["right_lips"])
    up = up - (up @ forward) * forward
    up /= np.linalg.norm(up)
    return np.stack([np.cross(up, forward), up, forward], axis=1)


FRONTAL = np.diag([1.0, -1.0, -1.0])
"""The face's axes (left, up, forward) in the camera's (OpenCV) of a frontal photo: the subject's
left on the image's right, up at the top, looking into the lens."""


def head_pose_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) rotation from the face's axes (left, up, forward) to the camera's of a head at
    ``yaw`` (towards its left), ``pitch`` (chin up) and ``roll`` (left ear up), degrees:
    ``FRONTAL @ Ry(yaw) @ Rx(-pitch) @ Rz(roll)``, so yaw turns the head about the camera's
    vertical, pitch raises its nose and roll spins it about its own forward axis."""
    from scipy.spatial.transform import Rotation

    return FRONTAL @ Rotation.from_euler("YXZ", [yaw, -pitch, roll], degrees=True).as_matrix()


def head_pose(world_to_cam: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """(N, 3) yaw, pitch and roll, degrees, of the head whose :func:`face_frame` is ``frame``
    seen by cameras ``world_to_cam`` (N, 4, 4): the inverse of :func:`head_pose_rotation`, the
    truth a face tracker's head rotation is scored against."""
    from scipy.spatial.transform import Rotation

    rotations = FRONTAL @ np.asarray(world_to_cam, dtype=np.float64).reshape(-1, 4, 4)[:, :3, :3] @ frame
    yaw, pitch, roll = Rotation.from_matrix(rotations).as_euler("YXZ", degrees=True).T
    return np.stack([yaw, -pitch, roll], axis=1)


def portrait_rig(
    head: np.ndarray,
    center: np.ndarray,
    radius: float,
    frame: np.ndarray,
    rngs: list[np.random.Generator],
    height: int = 512,
    yaw_range: tuple[float, float] = PORTRAIT_YAWS,
) -> Cameras:
    """Portrait photos of a face, one perspective camera of ``3/4 height`` x ``height`` pixels
    per generator of ``rngs`` (each view draws from its own): the head (vertices ``head``,
    bounding sphere ``center``, ``radius``, face axes ``frame`` as :func:`face_frame`; world
    frame, metres) at a random pose relative to the camera (:func:`head_pose_rotation`: yaw from
    ``yaw_range``, pitch within :data:`PORTRAIT_PITCH`, roll within :data:`PORTRAIT_ROLL`), a
    focal length from :data:`PORTRAIT_FOCAL_MM` (full-frame equivalent, log-uniform), at the
    distance where its bounding sphere spans a share of the image height drawn from
    :data:`PORTRAIT_FILL`, and at a random place in the image: anywhere every head vertex stays
    :data:`PORTRAIT_MARGIN` of the height inside the border (farther where it would not fit at
    that size), so the face is never cut. Principal point at the centre, square pixels; each
    camera's ``target`` is ``center``."""
    width = max(1, round(height * 3 / 4))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    margin = max(1.0, PORTRAIT_MARGIN * height)
    points = np.asarray(head, dtype=np.float64) - np.asarray(center, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)
    ks, poses = [], []
    for rng in rngs:
        yaw = rng.uniform(*yaw_range)
        pitch = rng.uniform(-PORTRAIT_PITCH, PORTRAIT_PITCH)
        roll = rng.uniform(-PORTRAIT_ROLL, PORTRAIT_ROLL)
        focal_mm = np.exp(rng.uniform(*np.log(PORTRAIT_FOCAL_MM)))
        fill = rng.uniform(*PORTRAIT_FILL)
        place = rng.uniform(0.0, 1.0, 2)
        f = focal_mm * np.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
        rotation = head_pose_rotation(yaw, pitch, roll) @ frame.T  # world to camera
        q = points @ rotation.T  # head vertices about the centre, camera axes
        distance = radius / np.sin(np.arctan(fill * height / (2 * f)))
        # where the centre may go: every vertex projects within [lo, hi] of the principal point
        bounds = [(q[:, 0], margin - cx, width - 1 - margin - cx), (q[:, 1], margin - cy, height - 1 - margin - cy)]
        for across, lo, hi in bounds:  # the nearest distance at which the head fits across this axis
            distance = max(
                distance, (np.max(lo * q[:, 2] / f - across) - np.min(hi * q[:, 2] / f - across)) * f / (hi - lo)
            )
        offset = []
        for (across, lo, hi), t in zip(bounds, place, strict=True):
            low = np.max(lo * (q[:, 2] + distance) / f - across)
            high = np.min(hi * (q[:, 2] + distance) / f - across)
            offset.append(low + t * (high - low))
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = np.array([*offset, distance]) - rotation @ center
        ks.append([[f, 0, cx], [0, f, cy], [0, 0, 1]])
        poses.append(pose)
    targets = np.repeat(center[None], len(poses), 0)
    return Cameras(np.asarray(ks, dtype=np.float64), np.stack(poses), "perspective", width, height, targets)


def subject_seed(mesh: Mesh, seed: int) -> int:
    """A seed of ``seed`` and the mesh itself (a hash of its vertices and faces): the same mesh and
    seed give the same draws, and each subject of a batch gets its own."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(np.int64(seed).tobytes())
    digest.update(np.ascontiguousarray(mesh.vertices, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    return int.from_bytes(digest.digest(), "little") >> 1


RIGS = ("orbit", "random")
RIG_PRESETS = ("pifu", "geopifu", "h3ds", "portrait", "texture")

TEXTURE_YAWS = (-90.0, 90.0)
"""Yaws of ``--preset texture``, degrees, both ends included: Sample&Refine's single photos, one
per yaw from the subject's right side to its left (its data folders ``-90`` ... ``90``)."""
TEXTURE_VIEWS = 7
"""Views of ``--preset texture``: one every 30 degrees of yaw."""


@dataclasses.dataclass(frozen=True)
class RigSpec:
    """Which cameras a render uses (the camera options of ``avatarkit render``)."""

    views: int | None = None
    """Cameras evenly spaced in yaw per pitch (default 8; 360 with the ``pifu`` preset, 4 with
    ``geopifu``, 70 with ``h3ds``; ``portrait``: photos, default 8)."""
    pitches: tuple[float, ...] | None = None
    """Camera elevations, degrees: one ring of cameras each (default one ring at 0; ``h3ds`` and
    ``portrait`` draw their own and take none)."""
    yaw_range: tuple[float, float] | None = None
    """Yaws of the cameras, degrees, MIN included and MAX not (0: in front of the subject, 90: on
    its left): the views are evenly spaced in it (random rigs draw from it). Default 0 360;
    ``h3ds``: -90 90, both ends included; ``portrait``: the head's yaw relative to the camera,
    drawn from it, within -90 90 (default -45 45)."""
    size: int | None = None
    """Image width and height, pixels (default 512; a camera file's own size); with ``h3ds`` and
    ``portrait`` the height, the width being 3/4 of it; with ``geopifu`` the height (default 1536),
    the width being 2/3 of it."""
    projection: str = "perspective"
    """``perspective`` or ``orthographic``."""
    fov: float | None = None
    """Vertical field of view, degrees (perspective orbits; default 40; ``h3ds`` and ``portrait``
    set their own)."""
    rig: str = "orbit"
    """``orbit``: even yaws; ``random``: random yaw, pitch and field of view."""
    preset: str | None = None
    """``pifu``: PIFu's orthographic rig, subject scaled as PIFu does; ``geopifu``: Geo-PIFu's
    orthographic rig, four yaws, the image the front face of the mesh's ``voxelize --preset
    geopifu`` box (:func:`geopifu_rig`); ``h3ds``: an H3DS-like
    hand-held capture of the head (:func:`h3ds_rig`) with its view subsets (:func:`view_subsets`);
    ``portrait``: photos of the face at random head poses, focal lengths and places
    (:func:`portrait_rig`); ``texture``: an orbit of single photos from yaw -90 to 90, both
    included (default 7 views, every 30 degrees), the views ``unwrap-uv --per-view`` turns into
    Sample&Refine's partial textures."""
    cameras: Path | None = None
    """A camera file: IDR/H3DS ``cameras.npz``, NeRF ``transforms.json`` or a views file."""

    def check(self) -> None:
        if self.size is not None and self.size < 1:
            raise OptionError(f"--size must be positive, got {self.size}")
        if self.views is not None and self.views < 1:
            raise OptionError(f"--views must be positive, got {self.views}")
        if self.fov is not None and not 0 < self.fov < 180:  # NaN fails too
            raise OptionError(f"--fov must be between 0 and 180 degrees (exclusive), got {self.fov:g}")
        if self.pitches is not None and not np.isfinite(np.asarray(self.pitches, dtype=np.float64)).all():
            raise OptionError(f"--pitch must be finite degrees, got {', '.join(f'{p:g}' for p in self.pitches)}")
        low, high = self.yaws
        if not (np.isfinite(low) and np.isfinite(high) and low < high <= low + 360):
            raise OptionError(f"--yaws takes MIN MAX degrees with MIN < MAX <= MIN + 360, got {low:g} {high:g}")
        if self.projection not in PROJECTIONS:
            raise OptionError(f"--projection must be one of {', '.join(PROJECTIONS)}, got {self.projection!r}")
        if self.rig not in RIGS:
            raise OptionError(f"--rig must be one of {', '.join(RIGS)}, got {self.rig!r}")
        if self.preset is not None and self.preset not in RIG_PRESETS:
            raise OptionError(f"--preset must be one of {', '.join(RIG_PRESETS)}, got {self.preset!r}")
        if self.cameras is not None and self.preset is not None:
            raise OptionError("--cameras and --preset both set the cameras; give one")
        if self.preset in ("h3ds", "portrait"):
            given = [
                flag
                for flag, value in (
                    ("--pitch", self.pitches is not None),
                    ("--fov", self.fov is not None),
                    ("--projection orthographic", self.projection != "perspective"),
                    ("--rig random", self.rig != "orbit"),
                )
                if value
            ]
            if given:
                drawn = "pitches drawn from --seed, its own focal length"
                if self.preset == "portrait":
                    drawn = "head poses and focal lengths drawn from --seed"
                raise OptionError(
                    f"--preset {self.preset} sets its own cameras (perspective, {drawn}): drop {', '.join(given)}"
                )
        if self.preset == "geopifu":
            given = [
                flag
                for flag, value in (("--fov", self.fov is not None), ("--rig random", self.rig != "orbit"))
                if value
            ]
            if given:
                raise OptionError(
                    f"--preset geopifu sets its own cameras (orthographic, framing its voxel box): drop {', '.join(given)}"
                )
            if self.size is not None and self.size < 3:
                raise OptionError(
                    f"--size with --preset geopifu is the image height, at least 3 pixels, got {self.size}"
                )
        if self.preset == "portrait" and self.size is not None and self.size < PORTRAIT_MIN_SIZE:
            raise OptionError(
                f"--size with --preset portrait is the image height, at least {PORTRAIT_MIN_SIZE} pixels, "
                f"got {self.size}"
            )
        if self.preset == "portrait" and self.cameras is None and not -90 <= low < high <= 90:
            raise OptionError(
                f"--yaws with --preset portrait is the head's yaw range, within -90 90 (the face towards the "
                f"camera), got {low:g} {high:g}"
            )

    @property
    def yaws(self) -> tuple[float, float]:
        """The yaw range in degrees: :attr:`yaw_range`, or the rig's default."""
        if self.yaw_range is not None:
            return self.yaw_range
        if self.cameras is None and self.preset in ("h3ds", "portrait"):
            return H3DS_YAWS if self.preset == "h3ds" else PORTRAIT_YAWS
        if self.cameras is None and self.preset == "texture":
            return TEXTURE_YAWS
        return (0.0, 360.0)

    @property
    def orthographic(self) -> bool:
        """Whether the rig's cameras are orthographic, when the options say (not a camera file)."""
        return self.cameras is None and (self.projection == "orthographic" or self.preset in ("pifu", "geopifu"))


def make_rig(mesh: Mesh, spec: RigSpec, seed: int = 0) -> Cameras:
    """The cameras a render of ``mesh`` uses, from ``spec``: a camera file's (warning when
    ``size`` crops them far from their own image), PIFu's rig, Geo-PIFu's rig, the H3DS-like capture of the
    head (seeded), portrait photos of the face (view i drawn from ``[seed, 3, i]``), a random rig
    (seeded), or an orbit around the mesh's bounding sphere.

    Raises:
        MeshError: ``portrait`` for a mesh without the eye and lip-corner landmarks.
    """
    spec.check()
    if spec.cameras is not None:
        return _from_file(spec.cameras, spec.size)
    low, high = spec.yaws
    pitches = spec.pitches if spec.pitches is not None else (0.0,)
    if spec.preset == "pifu":
        views = spec.views or 360
        yaws = low + np.arange(views) * (high - low) / views
        return pifu_rig(mesh.vertices, spec.size or 512, yaws, pitches)
    if spec.preset == "geopifu":
        views = spec.views or len(GEOPIFU_YAWS)
        yaws = low + np.arange(views) * (high - low) / views
        return geopifu_rig(mesh, spec.size or GEOPIFU_HEIGHT, yaws, pitches)
    if spec.preset == "h3ds":
        center, radius = head_sphere(mesh)
        rng = np.random.default_rng([seed, 2])
        views, height = spec.views or H3DS_VIEWS, spec.size or 512
        return h3ds_rig(center, radius, rng, views, height, (low, high), face_heading(mesh))
    if spec.preset == "portrait":
        frame = face_frame(mesh)
        if frame is None:
            raise MeshError(
                "--preset portrait aims at the face, and the mesh has no face landmarks (left_eye, right_eye, "
                "left_lips, right_lips: synth writes them, a mesh .h5 keeps them)"
            )
        center, radius = head_sphere(mesh)
        rngs = [np.random.default_rng([seed, 3, i]) for i in range(spec.views or PORTRAIT_VIEWS)]
        return portrait_rig(head_vertices(mesh), center, radius, frame, rngs, spec.size or 512, (low, high))
    size, views = spec.size or 512, spec.views or (TEXTURE_VIEWS if spec.preset == "texture" else 8)
    center, radius = mesh.bounding_sphere()
    if spec.preset == "texture" and spec.rig == "orbit":  # both ends of the yaw range included
        fov = spec.fov if spec.fov is not None else 40.0
        yaws = np.linspace(low, high, views) if views > 1 else np.array([(low + high) / 2])
        return orbit(center, radius, yaws, np.asarray(pitches), (size, size), spec.projection, fov)
    if spec.rig == "random":
        rng = np.random.default_rng([seed, 1])
        return random_rig(rng, views, center, radius, (size, size), spec.projection, yaw_range=(low, high))
    yaws = low + np.arange(views) * (high - low) / views
    fov = spec.fov if spec.fov is not None else 40.0
    return orbit(center, radius, yaws, np.asarray(pitches), (size, size), spec.projection, fov)


def rig_subsets(mesh: Mesh, spec: RigSpec, cameras: Cameras) -> dict[str, np.ndarray]:
    """The view subsets the rig :func:`make_rig` made of ``mesh`` comes with: H3DS's
    (:func:`view_subsets` around the face's heading) for ``--preset h3ds``, none for the others."""
    return view_subsets(cameras, heading=face_heading(mesh)) if spec.preset == "h3ds" else {}


def _from_file(path: Path, size: int | None) -> Cameras:
    from avatarkit.io.cameras import read_cameras

    cams = read_cameras(path, None if size is None else (size, size))
    centre = np.array([cams.width - 1, cams.height - 1]) / 2
    principal = np.stack([cams.K[:, 0, 2], cams.K[:, 1, 2]], -1)
    if size is not None and (np.abs(principal - centre) > centre / 2).any():
        native = np.rint(2 * principal[0] + 1).astype(int)
        warnings.warn(
            f"{path}: the cameras' principal point is far from the centre of a {size} x {size} image; "
            f"they look made for about {native[0]} x {native[1]} (--size crops, it does not scale)",
            AvatarkitWarning,
            stacklevel=3,
        )
    return cams
