"""render --preset geopifu as a Geo-PIFu user types it: four orthographic views at its yaws, the
mesh framed as its normalisation says, and views that line up with voxelize --preset geopifu."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.render.rigs import GEOPIFU_YAWS, direction
from avatarkit.structures import Mesh


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    """A standing, person-sized solid (1.7 m tall, 0.45 m wide, 0.28 m deep), off the origin, so
    its height binds Geo-PIFu's box (0.85 of 192 voxels) before its width (0.85 of 128)."""
    capsule = trimesh.creation.capsule(height=1.42, radius=0.14, count=[24, 24])
    upright = capsule.vertices @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # its axis (z) to +Y, a rotation
    v = upright * np.array([1.6, 1.0, 1.0]) + np.array([0.3, 0.85, -0.2])
    path = tmp_path_factory.mktemp("geopifu") / "body.h5"
    return write_artifact(path, Mesh(v.astype(np.float32), capsule.faces.astype(np.int32)))


@pytest.fixture(scope="module")
def rendered(body, tmp_path_factory):
    out = tmp_path_factory.mktemp("views") / "body_views.h5"
    r = invoke("render", body, "-o", out, "--preset", "geopifu", "--size", 384, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["written"][0]["size"] == [256, 384]
    vox = out.parent / "body_voxels.h5"
    r = invoke("voxelize", body, "-o", vox, "--preset", "geopifu")
    assert r.exit_code == 0, r.output
    return read_artifact(out, "views"), read_artifact(vox, "voxels")


def test_four_orthographic_views_at_geopifus_yaws(rendered):
    views, _ = rendered
    cams = views.cameras()
    assert len(views) == 4 and views.projection == "orthographic"
    assert (views.width, views.height) == (256, 384)  # 2:3, Geo-PIFu's --w 256 --h 384
    # each camera looks at the subject from its yaw: 0 in front (+Z), 90 on its left (+X), ...
    for axis, yaw in zip(cams.axes(), GEOPIFU_YAWS, strict=True):
        assert np.allclose(axis, -direction(yaw, 0.0), atol=1e-6)
    # upright: world +Y is up in every image
    assert np.allclose(views.world_to_cam[:, 1, :3] @ np.array([0.0, 1.0, 0.0]), -1.0, atol=1e-6)


def test_the_mesh_fits_the_image_as_geopifus_normalisation_says(rendered, body):
    """Geo-PIFu's normalisation: the mesh fits its box (2/3 wide, 1 tall, the image's faces) with a
    15% margin, scaled until it touches the margin: a tall subject reaches 0.85 of the half-height
    from the image's centre row and stays within 0.85 of the half-width from its centre column."""
    views, voxels = rendered
    for mask in views.mask:
        rows = np.nonzero(mask.any(axis=1))[0]
        cols = np.nonzero(mask.any(axis=0))[0]
        reach_up, reach_down = 191.5 - (rows[0] - 0.5), (rows[-1] + 0.5) - 191.5
        assert max(reach_up, reach_down) == pytest.approx(0.85 * 192, abs=1.0)
        assert max(127.5 - (cols[0] - 0.5), (cols[-1] + 0.5) - 127.5) <= 0.85 * 128 + 1.0
    # pixels per metre: the box's 192 voxels are the image's 384 rows
    mesh = read_artifact(body, "mesh")
    assert voxels.pitch == pytest.approx(float(np.ptp(mesh.vertices[:, 1])) / (0.85 * 192), rel=1e-5)
    assert views.K[0, 0, 0] == pytest.approx(384 / (192 * voxels.pitch), rel=1e-5)


def test_views_line_up_with_voxelize_preset(rendered):
    """Two pixels per voxel, edge to edge: voxel column i is pixels 2i and 2i + 1 of the front view,
    and every voxel centre inside the mesh projects inside every view's mask."""
    views, voxels = rendered
    assert voxels.occupancy.shape == (128, 192, 128)
    cams = views.cameras()
    idx = np.argwhere(voxels.occupancy)
    centres = voxels.origin + (idx + 0.5) * voxels.pitch
    pixels, _ = cams.project(centres)
    front = pixels[0]
    assert np.allclose(front[:, 0], 2 * idx[:, 0] + 0.5, atol=1e-3)  # x index i -> columns 2i, 2i + 1
    assert np.allclose(front[:, 1], 383 - 2 * idx[:, 1] - 0.5, atol=1e-3)  # y index j, up -> rows from the bottom
    for view, px in enumerate(pixels):
        u, v = np.floor(px[:, 0]).astype(int), np.floor(px[:, 1]).astype(int)
        assert u.min() >= 0 and v.min() >= 0 and u.max() < 256 and v.max() < 384
        # the pixel block of the voxel's column: both pixels at its centre's row and column
        seen = views.mask[view][v, u] > 0
        assert seen.mean() > 0.995, (view, seen.mean())
    # and Geo-PIFu's maskFromVoxels (the grid's silhouette, 2 x 2 pixels per voxel) is the front mask
    silhouette = voxels.occupancy.any(axis=2).T[::-1]  # (Y, X), top row first
    from_voxels = np.kron(silhouette, np.ones((2, 2), bool))
    mask = views.mask[0] > 0
    assert (from_voxels & mask).sum() / (from_voxels | mask).sum() > 0.97


def test_refusals(body, tmp_path):
    r = invoke("render", body, "-o", tmp_path / "v.h5", "--preset", "geopifu", "--fov", 30)
    assert_clean_failure(r, "--preset geopifu", "--fov")
    r = invoke("render", body, "-o", tmp_path / "v", "--preset", "geopifu", "--export", "idr")
    assert_clean_failure(r)
