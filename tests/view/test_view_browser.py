"""The viewer in a real browser: headless Chromium draws the scene where the camera says.

Needs Debian's ``chromium`` (``nox -s tests`` installs it when apt-get can); skipped without it.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from avatarkit.io.hdf5 import write_artifact
from avatarkit.structures import Mesh
from avatarkit.view.scene import Scene, build_scene

try:
    from avatarkit.view.browser import find_chromium

    find_chromium()
    HAS_CHROMIUM = True
except Exception:  # any reason it cannot be found is a reason to skip
    HAS_CHROMIUM = False

pytestmark = [
    pytest.mark.skipif(not HAS_CHROMIUM, reason="needs Chromium (apt-get install chromium)"),
    pytest.mark.timeout(300),
]

WIDTH, HEIGHT = 320, 240


def _project(points, position, look_at, fov, width, height):
    """Pixels (u, v) of world points in the viewer's camera (pinhole, +Y up, square pixels)."""
    forward = (look_at - position) / np.linalg.norm(look_at - position)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    d = points - position
    x, y, z = d @ right, d @ down, d @ forward
    f = height / 2 / np.tan(fov / 2)
    return np.stack([f * x / z + width / 2, f * y / z + height / 2], axis=1)


def test_screenshot_shows_the_object_where_it_projects(tmp_path):
    from avatarkit.view.server import FOV, render_screenshot

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    path = write_artifact(tmp_path / "ball.h5", Mesh(sphere.vertices + np.array([0.4, 1.0, 0.0]), sphere.faces))
    scene = build_scene([path])
    # look to the ball's left, so it is drawn right of the middle: a check of the axes, not only of presence
    position, look_at = scene.front_camera(FOV)
    camera = (position - [0.4, 0.0, 0.0], look_at - [0.4, 0.0, 0.0])
    shot = render_screenshot(scene, WIDTH, HEIGHT, timeout=120, camera=camera)
    empty = render_screenshot(Scene([], {}, {}), WIDTH, HEIGHT, timeout=120, camera=camera)
    assert shot.shape == empty.shape == (HEIGHT, WIDTH, 3)

    center = _project(np.array([[0.4, 1.0, 0.0]]), *camera, FOV, WIDTH, HEIGHT)[0]
    rim = _project(scene.items[0].vertices, *camera, FOV, WIDTH, HEIGHT)
    radius = np.linalg.norm(rim - center, axis=1).max()
    assert center[0] > WIDTH / 2 + radius / 2  # right of the middle, as the camera says
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    distance = np.hypot(u + 0.5 - center[0], v + 0.5 - center[1])
    inside, outside = distance < 0.8 * radius, distance > 1.3 * radius
    difference = np.abs(shot.astype(int) - empty.astype(int)).sum(axis=2)
    assert (difference[inside] > 30).mean() > 0.95, "the object is not drawn where it projects"
    assert (difference[outside] > 30).mean() < 0.02, "something is drawn where the object is not"


@pytest.mark.slow
def test_the_verb_writes_a_screenshot_of_a_coloured_mesh(tmp_path):
    from helpers import invoke
    from PIL import Image

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    colors = np.tile(np.array([[230, 30, 30]], np.uint8), (len(sphere.vertices), 1))
    path = write_artifact(tmp_path / "red.h5", Mesh(sphere.vertices, sphere.faces, vertex_colors=colors))
    out = tmp_path / "shot.png"
    result = invoke("view", path, "--screenshot", out, "--size", WIDTH, HEIGHT, "--json")
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert image.shape == (HEIGHT, WIDTH, 3)
    middle = image[HEIGHT // 2 - 10 : HEIGHT // 2 + 10, WIDTH // 2 - 10 : WIDTH // 2 + 10]
    assert (middle[..., 0] > middle[..., 1] + 60).all()  # the sphere's own red, lit
    assert (image[:5, :5] > 240).all()  # the page's white around it
