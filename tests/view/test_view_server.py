"""The viewer's server without a browser: every item reaches viser, and the panel's controls act."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from avatarkit.errors import ResourceError
from avatarkit.io.hdf5 import write_artifact
from avatarkit.render.rigs import orbit
from avatarkit.structures import Mesh, Samples, Views
from avatarkit.view.scene import build_scene
from avatarkit.view.server import Viewer, check_port, free_port


def test_items_reach_viser_and_the_panel_switches_them(tmp_path):
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    mesh = write_artifact(tmp_path / "ball.h5", Mesh(s.vertices + np.array([0.0, 1.0, 0.0]), s.faces))
    rng = np.random.default_rng(0)
    p = rng.normal(size=(500, 3))
    sdf = np.linalg.norm(p, axis=1) - 1
    normals = p / np.linalg.norm(p, axis=1, keepdims=True)
    samples = write_artifact(tmp_path / "pts.h5", Samples(p, sdf, (sdf < 0).astype(np.uint8), normals=normals))
    cameras = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [0.0, 120.0, 240.0], [0.0], (32, 32))
    rgb = np.zeros((3, 32, 32, 3), np.uint8)
    views = Views(cameras.K, cameras.world_to_cam, cameras.projection, rgb, np.zeros((3, 32, 32), np.uint8))
    views_path = write_artifact(tmp_path / "cams.h5", views)
    scene = build_scene([mesh, samples, views_path])

    with Viewer(scene, "127.0.0.1", free_port()) as viewer:
        assert set(viewer.handles) == {"/ball", "/pts", "/cams"}
        (frame,) = viewer.handles["/cams"]  # the file's frame: its cameras are its children, hidden with it
        box, switch = viewer.controls["cams.h5"]
        box.value = False
        switch(None)
        assert not frame.visible and viewer.handles["/ball"][0].visible
        choice, recolour = viewer.controls["pts.h5: colour by"]
        assert tuple(choice.options) == ("sdf", "normal")
        choice.value = "normal"
        recolour(None)
        points = scene.items[1]
        assert np.array_equal(viewer.handles["/pts"][0].colors, points.colorings["normal"])
        with pytest.raises(ResourceError, match="in use"):  # the viewer holds its port
            check_port("127.0.0.1", viewer.port)
