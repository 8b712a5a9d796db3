"""The portrait rig without Anny: head poses are relative to the face, the head never leaves the
image, and the pose helpers are each other's inverse."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from avatarkit.errors import MeshError, OptionError
from avatarkit.render.rigs import (
    FULL_FRAME_DIAGONAL_MM,
    PORTRAIT_FOCAL_MM,
    PORTRAIT_MARGIN,
    RigSpec,
    face_frame,
    head_pose,
    head_pose_rotation,
    make_rig,
)
from avatarkit.structures import Landmarks, Mesh

FACE = {
    "right_eye": (-0.032, 0.035, 0.085),
    "left_eye": (0.032, 0.035, 0.085),
    "nose_tip": (0.0, 0.0, 0.105),
    "right_lips": (-0.025, -0.035, 0.085),
    "left_lips": (0.025, -0.035, 0.085),
}


def _head(turn: np.ndarray | None = None, at=(0.0, 1.6, 0.0)) -> Mesh:
    """An egg-shaped head facing +Z (or turned by ``turn``, 3x3) with face landmarks on its surface."""
    ball = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    vertices = ball.vertices * [0.08, 0.115, 0.1]
    ids = [int(np.argmin(np.linalg.norm(vertices - p, axis=1))) for p in FACE.values()]
    turn = np.eye(3) if turn is None else turn
    vertices = vertices @ turn.T + np.asarray(at)
    return Mesh(vertices, ball.faces, landmarks=Landmarks(list(FACE), vertices[ids], ids))


def test_pose_helpers_invert_each_other():
    frame = Rotation.from_euler("xyz", [20, -70, 5], degrees=True).as_matrix()
    angles = np.array([[30.0, -12.0, 7.0], [-44.0, 19.0, -9.5], [0.0, 0.0, 0.0]])
    world_to_cam = np.repeat(np.eye(4)[None], 3, 0)
    for i, a in enumerate(angles):
        world_to_cam[i, :3, :3] = head_pose_rotation(*a) @ frame.T
    assert np.allclose(head_pose(world_to_cam, frame), angles, atol=1e-9)
    # frontal: the subject's left on the image's right, the top of the head up, the face towards the lens
    assert np.allclose(head_pose_rotation(0, 0, 0), np.diag([1.0, -1.0, -1.0]))
    forward = head_pose_rotation(30.0, 0.0, 0.0)[:, 2]  # yaw: the nose turns towards image right
    assert forward[0] > 0 and np.isclose(forward[1], 0)
    assert head_pose_rotation(0.0, 15.0, 0.0)[1, 2] < 0  # pitch: the nose goes up the image (-y)
    assert head_pose_rotation(0.0, 0.0, 10.0)[1, 0] < 0  # roll: the left ear goes up the image


def test_poses_are_relative_to_the_face_whatever_its_turn_in_the_world():
    spec = RigSpec(views=40, size=32, preset="portrait")
    turn = Rotation.from_euler("yxz", [120, 25, -15], degrees=True).as_matrix()
    straight, turned = _head(), _head(turn, at=(1.0, 0.5, -2.0))
    assert np.allclose(face_frame(turned), turn @ face_frame(straight), atol=1e-6)
    a, b = make_rig(straight, spec, seed=5), make_rig(turned, spec, seed=5)
    pose = head_pose(a.world_to_cam, face_frame(straight))
    assert np.allclose(pose, head_pose(b.world_to_cam, face_frame(turned)), atol=1e-4)
    assert np.allclose(a.K, b.K)
    assert (np.abs(pose) <= [45, 20, 10]).all() and (np.abs(pose) > [35, 15, 8]).any(axis=0).all()
    focal = a.K[:, 0, 0] * FULL_FRAME_DIAGONAL_MM / np.hypot(a.width, a.height)
    assert PORTRAIT_FOCAL_MM[0] <= focal.min() and focal.max() <= PORTRAIT_FOCAL_MM[1]
    # view i draws from its own seed
    assert np.allclose(make_rig(straight, RigSpec(views=3, size=32, preset="portrait"), seed=5).K, a.K[:3])


@pytest.mark.parametrize("yaws", [None, (-90.0, 90.0)])
def test_every_vertex_of_the_head_stays_inside_the_margins(yaws):
    mesh = _head()
    cams = make_rig(mesh, RigSpec(views=200, size=40, preset="portrait", yaw_range=yaws), seed=1)
    assert (cams.width, cams.height) == (30, 40)
    cam = np.einsum("nij,vj->nvi", cams.world_to_cam[:, :3, :3], mesh.vertices) + cams.world_to_cam[:, None, :3, 3]
    assert (cam[..., 2] > 0).all()
    u = cams.K[:, None, 0, 0] * cam[..., 0] / cam[..., 2] + cams.K[:, None, 0, 2]
    v = cams.K[:, None, 1, 1] * cam[..., 1] / cam[..., 2] + cams.K[:, None, 1, 2]
    margin = max(1.0, PORTRAIT_MARGIN * 40) - 1e-6
    assert u.min() >= margin and u.max() <= 29 - margin and v.min() >= margin and v.max() <= 39 - margin
    # not always in the middle, nor always the same size
    centre = np.stack([u.mean(1), v.mean(1)], 1)
    assert np.ptp(centre, axis=0).min() > 5
    height = v.max(1) - v.min(1)
    assert height.max() > 1.5 * height.min()
    if yaws is not None:
        assert np.abs(head_pose(cams.world_to_cam, face_frame(mesh))[:, 0]).max() > 80


def test_a_mesh_without_face_landmarks_and_clashing_options_are_refused():
    ball = trimesh.creation.icosphere(subdivisions=1, radius=0.1)
    with pytest.raises(MeshError, match="no face landmarks"):
        make_rig(Mesh(ball.vertices, ball.faces), RigSpec(preset="portrait"))
    for spec, needle in (
        (RigSpec(preset="portrait", yaw_range=(-120.0, 0.0)), "within -90 90"),
        (RigSpec(preset="portrait", size=4), "at least 8"),
        (RigSpec(preset="portrait", pitches=(10.0,)), "drop --pitch"),
    ):
        with pytest.raises(OptionError, match=needle):
            spec.check()
