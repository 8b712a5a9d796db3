"""Where cameras aim: rigs record their target, files carry it, and a rig's focus finds it."""

from __future__ import annotations

import numpy as np

from avatarkit.io.cameras import idr_scale_mat, read_cameras, write_idr
from avatarkit.render.rigs import orbit, pifu_rig, random_rig
from avatarkit.structures import Cameras

CENTER = np.array([0.2, 0.9, -0.1])


def test_rigs_record_their_target_and_the_focus_recovers_it(tmp_path):
    rigs = [
        orbit(CENTER, 0.8, np.arange(6) * 60.0, [0.0, 20.0], (64, 64)),
        orbit(CENTER, 0.8, np.arange(4) * 90.0, [10.0], (64, 64), "orthographic"),
        random_rig(np.random.default_rng(0), 5, CENTER, 0.8, (64, 48)),
    ]
    for rig in rigs:
        assert np.allclose(rig.target, CENTER)
        blind = Cameras(rig.K, rig.world_to_cam, rig.projection, rig.width, rig.height)
        assert blind.target is None and np.allclose(blind.targets(), CENTER, atol=1e-9)
        assert np.allclose(rig.subset([1, 2]).target, CENTER) and len(rig.subset(1)) == 1
    one = Cameras(rigs[0].K[:1], rigs[0].world_to_cam[:1], "perspective", 64, 64)
    assert one.focus() is None  # a single axis pins no point down
    vertices = np.random.default_rng(1).uniform([-0.3, 0, -0.2], [0.3, 1.7, 0.2], (500, 3))
    pifu = pifu_rig(vertices, 64, [0.0, 90.0])
    assert np.allclose(pifu.target[0], pifu.focus())  # PIFu's rig aims at the subject's centre


def test_idr_files_carry_the_target_as_their_unit_spheres_centre(tmp_path):
    rig = orbit(CENTER, 0.8, np.arange(3) * 120.0, [5.0], (64, 64))
    write_idr(tmp_path / "cameras.npz", rig, idr_scale_mat(CENTER, 0.9))
    back = read_cameras(tmp_path / "cameras.npz")
    assert np.allclose(back.target, CENTER) and np.allclose(back.world_to_cam, rig.world_to_cam, atol=1e-9)
