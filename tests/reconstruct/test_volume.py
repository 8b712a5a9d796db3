"""Single-view volumes: the box in front of a camera holds the subject, and meshes come back
in the world frame, from orthographic and perspective cameras alike."""

from __future__ import annotations

import numpy as np

from avatarkit.reconstruct.volume import reconstruct_view, view_box
from avatarkit.render.rigs import orbit, pifu_rig

CENTER = np.array([0.1, 1.0, -0.2])


def ball(points):
    return (np.linalg.norm(points - CENTER, axis=1) < 0.3).astype(np.float32)


def test_the_box_frames_what_the_image_shows():
    vertices = np.random.default_rng(0).uniform([-0.3, 0.0, -0.15], [0.3, 1.8, 0.15], (2000, 3))
    cams = pifu_rig(vertices, 128, [30.0])
    lo, hi = view_box(cams, cams.target[0])
    w2c = cams.world_to_cam[0]
    inside = vertices @ w2c[:3, :3].T + w2c[:3, 3]
    assert (inside >= lo).all() and (inside <= hi).all()  # the subject, in camera coordinates
    assert np.allclose(hi[:2] - lo[:2], 128 / cams.K[0, 0, 0])  # the whole image across, pixel edges included
    assert np.isclose(hi[2] - lo[2], hi[0] - lo[0])


def test_a_ball_comes_back_where_it_is_from_either_projection():
    for projection in ("orthographic", "perspective"):
        cams = orbit(CENTER, 0.5, [40.0], [15.0], (96, 80), projection)
        result = reconstruct_view(ball, cams, CENTER, resolution=64, initial=8)
        r = np.linalg.norm(result.mesh.vertices - CENTER, axis=1)
        step = float(np.max((result.bounds[1] - result.bounds[0]) / 64))
        assert np.abs(r - 0.3).max() < step, projection
        assert result.queries < result.lattice_points / 5
