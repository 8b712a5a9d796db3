"""The viewer's server: a :class:`~avatarkit.view.scene.Scene` handed to viser, and screenshots.

viser (the viewer nerfstudio uses) serves a prebuilt React/three.js client from its wheel and
streams the scene over a websocket: point clouds as float16 positions and uint8 colours, meshes
as GLB (vertex colours, textures), camera frusta with their images. This module only translates
the scene's items into viser calls, adds a panel (the files shown and those that could not
be, a visibility switch per file, a colouring choice for point files), and frames the scene
from the front.

A screenshot starts the server on a free port of this machine, opens the page in headless
Chromium (:mod:`avatarkit.view.browser`), waits for the page to connect, then asks it for
frames over the websocket until two in a row are the same (everything loaded and drawn); every
wait has a deadline.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from avatarkit.errors import OptionError, ResourceError
from avatarkit.view.scene import DEFAULT_COLOR, Frustum, Picture, Points, Scene, Surface

FOV = float(np.radians(50.0))
"""The initial camera's vertical field of view, radians."""
Camera = tuple[np.ndarray, np.ndarray]
"""(position, look-at point), (3,) each, metres, world frame."""
SETTLED = 0.5
"""Mean absolute difference (0-255) under which two frames count as the same."""
STEADY_FRAMES = 3
"""How many frames in a row must be the same (and not blank) before a screenshot is taken."""


def check_port(host: str, port: int) -> None:
    """:class:`ResourceError` when ``port`` cannot be listened on at ``host`` (in use, or not
    this machine's address); :class:`OptionError` when it is out of range."""
    if not 0 < port < 65536:
        raise OptionError(f"--port must be between 1 and 65535, got {port}")
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise ResourceError(f"port {port} on {host} is in use; choose another with --port") from None
            raise ResourceError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on at ``host`` right now (the OS's choice)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Viewer:
    """A running viser server showing a scene (stop it with :meth:`stop`, or use it as a
    context manager). ``url``: where a browser finds it."""

    def __init__(self, scene: Scene, host: str = "127.0.0.1", port: int = 8080, camera: Camera | None = None) -> None:
        check_port(host, port)
        import viser

        # a browser's speculative connection that it closes unused is not an error of ours
        logging.getLogger("websockets.server").setLevel(logging.CRITICAL)
        with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner; the verb says where it is
            self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.host, self.port = host, self.server.get_port()
        if self.port != port:  # taken between the check and viser's bind: viser moved on quietly
            self.stop()
            raise ResourceError(f"port {port} on {host} is in use; choose another with --port")
        self.clients: list[Any] = []
        self._connected = threading.Event()
        self.server.on_client_connect(self._on_connect)
        self.handles: dict[str, list[Any]] = {}
        """Scene nodes by group (a file's items): what each panel switch shows or hides."""
        self.controls: dict[str, tuple[Any, Any]] = {}
        """Panel controls by label, each with the function it calls on a change."""
        try:
            populate(self.server, scene, self.handles, camera, self.controls)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "::1", "localhost") else self.host
        return f"http://{host}:{self.port}/"

    def _on_connect(self, client: Any) -> None:
        self.clients.append(client)
        self._connected.set()

    def wait_for_client(self, timeout: float) -> Any:
        """The first browser to connect; :class:`ResourceError` after ``timeout`` seconds."""
        if not self._connected.wait(timeout):
            raise ResourceError(f"no browser connected to the viewer within {timeout:.0f} s")
        return self.clients[0]

    def stop(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            self.server.stop()

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def populate(
    server: Any,
    scene: Scene,
    handles: dict[str, list[Any]] | None = None,
    camera: Camera | None = None,
    controls: dict[str, tuple[Any, Any]] | None = None,
) -> None:
    """Add ``scene``'s items to a viser server, its panel, and the initial camera (+Y up):
    ``camera`` (position, look-at point), else :meth:`Scene.front_camera`."""
    handles = {} if handles is None else handles
    server.scene.set_up_direction("+y")
    position, look_at = camera if camera is not None else scene.front_camera(FOV)
    server.initial_camera.position = tuple(position)
    server.initial_camera.look_at = tuple(look_at)
    server.initial_camera.fov = FOV
    frames: set[str] = set()
    for item in scene.items:
        group = item.name.rsplit("/", 1)[0] if isinstance(item, Frustum) else item.name
        if isinstance(item, Surface):
            handle = _add_surface(server, item)
        elif isinstance(item, Points):
            handle = server.scene.add_point_cloud(
                item.name,
                np.asarray(item.points, dtype=np.float32),
                next(iter(item.colorings.values())),
                point_size=float(item.size),
                point_shape="rounded",
                point_shading="flat",
                position=tuple(item.offset),
            )
        elif isinstance(item, Frustum):
            if group not in frames:  # one frame per views file: its switch hides its cameras
                frames.add(group)
                handles.setdefault(group, []).append(
                    server.scene.add_frame(group, show_axes=False, position=tuple(item.offset))
                )
            handle = server.scene.add_camera_frustum(
                item.name,
                fov=item.fov,
                aspect=item.aspect,
                scale=item.scale,
                thickness=1.5,
                thickness_units="screen",  # pixels: visible from afar, as a wireframe should be
                image=item.image,
                wxyz=tuple(item.wxyz),
                position=tuple(item.position),
                color=(40, 40, 40),
            )
            continue
        else:
            continue
        handles.setdefault(group, []).append(handle)
    _panel(server, scene, handles, {} if controls is None else controls)


def _add_surface(server: Any, item: Surface) -> Any:
    if item.texture is None and item.vertex_colors is None:
        return server.scene.add_mesh_simple(
            item.name,
            np.asarray(item.vertices, dtype=np.float32),
            np.asarray(item.faces, dtype=np.uint32),
            color=DEFAULT_COLOR,
            side="double",
            position=tuple(item.offset),
        )
    import trimesh

    if item.texture is not None:
        from PIL import Image

        visual: Any = trimesh.visual.TextureVisuals(
            uv=item.uvs, material=trimesh.visual.material.SimpleMaterial(image=Image.fromarray(item.texture))
        )
    else:
        colors = np.concatenate([item.vertex_colors, np.full((len(item.vertices), 1), 255, np.uint8)], axis=1)
        visual = trimesh.visual.ColorVisuals(vertex_colors=colors)
    mesh = trimesh.Trimesh(item.vertices, item.faces, visual=visual, process=False)
    return server.scene.add_mesh_trimesh(item.name, mesh, position=tuple(item.offset))


def _panel(server: Any, scene: Scene, handles: dict[str, list[Any]], controls: dict[str, tuple[Any, Any]]) -> None:
    """The side panel: what is shown, what could not be, and a switch per file."""
    name_of = scene.labels.get
    lines = [f"- **{name_of(path, path.name)}**: {what}" for path, what in scene.shown.items()]
    lines += [f"- ~~{name_of(path, path.name)}~~: {why}" for path, why in scene.problems.items()]
    server.gui.add_markdown("\n".join(lines))
    notes = [
        f"*{item.label}*: {item.note}" for item in scene.items if isinstance(item, (Surface, Points)) and item.note
    ]
    if notes:
        server.gui.add_markdown("\n\n".join(notes))
    labels = {item.name: item.label for item in scene.items if not isinstance(item, Frustum)}
    labels |= {
        item.name.rsplit("/", 1)[0]: item.label.rsplit(" #", 1)[0] for item in scene.items if isinstance(item, Frustum)
    }
    for group, group_handles in handles.items():
        label = labels.get(group, group)
        box = server.gui.add_checkbox(label, initial_value=True)
        controls[label] = (box, _visibility(box, group_handles))
        box.on_update(controls[label][1])
    for item in scene.items:
        if isinstance(item, Points) and len(item.colorings) > 1:
            label = f"{item.label}: colour by"
            choice = server.gui.add_dropdown(label, tuple(item.colorings))
            controls[label] = (choice, _coloring(choice, handles[item.name][0], item))
            choice.on_update(controls[label][1])
    for item in scene.items:
        if isinstance(item, Picture):
            server.gui.add_image(item.image, label=item.label)


def _visibility(box: Any, group_handles: list[Any]):
    def update(_: Any) -> None:
        for handle in group_handles:
            handle.visible = bool(box.value)

    return update


def _coloring(choice: Any, handle: Any, item: Points):
    def update(_: Any) -> None:
        handle.colors = item.colorings[choice.value]

    return update


def render_screenshot(
    scene: Scene, width: int = 960, height: int = 720, timeout: float = 120.0, camera: Camera | None = None
) -> np.ndarray:
    """The scene drawn by headless Chromium from ``camera`` (position, look-at point; default
    :meth:`Scene.front_camera`, vertical field of view :data:`FOV`): (height, width, 3) uint8.

    Raises:
        ResourceError: no Chromium, or the page did not connect or draw within ``timeout`` s.
    """
    from avatarkit.view.browser import find_chromium, headless_chromium

    if width < 16 or height < 16:
        raise OptionError(f"--size must be at least 16 x 16, got {width} x {height}")
    find_chromium()  # before the server starts: no browser, nothing to start
    deadline = time.monotonic() + timeout
    with (
        Viewer(scene, "127.0.0.1", free_port(), camera) as viewer,
        headless_chromium(viewer.url, width + 32, height + 32),
    ):
        client = viewer.wait_for_client(max(deadline - time.monotonic(), 1.0))
        return settled_render(client, width, height, deadline, content=bool(scene.items))


def settled_render(client: Any, width: int, height: int, deadline: float, content: bool = True) -> np.ndarray:
    """Frames from ``client`` until :data:`STEADY_FRAMES` in a row are the same (each differs
    from the one before by less than :data:`SETTLED`) and not blank: meshes arrive as GLB and
    load asynchronously, and a frame taken too early misses them; the scene is framed, so a
    blank frame is one drawn before anything arrived (``content``: the scene has something)."""
    previous, steady = None, 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ResourceError("the browser did not finish drawing the scene in time")
        try:
            frame = np.asarray(client.get_render(height, width, timeout=left))[..., :3]
        except TimeoutError:
            raise ResourceError("the browser did not draw a frame in time") from None
        current = frame.astype(np.int16)
        same = previous is not None and np.abs(current - previous).mean() < SETTLED
        blank = content and np.abs(current - current[:1, :1]).max() < 16
        steady = steady + 1 if same and not blank else 1
        if steady >= STEADY_FRAMES:
            return frame
        previous = current


@contextlib.contextmanager
def serving(scene: Scene, host: str, port: int) -> Iterator[Viewer]:
    """A :class:`Viewer` for the block, stopped afterwards."""
    viewer = Viewer(scene, host, port)
    try:
        yield viewer
    finally:
        viewer.stop()
