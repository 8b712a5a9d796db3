from __future__ import annotations

import numpy as np

from avatarkit.synth.pose import FORWARD, JOINT_LIMITS, joint_rotations, sample_pose


def _heads():
    return {
        "lowerleg01.L": np.array([0.1, 0.0, -0.35]),
        "foot.L": np.array([0.1, 0.0, -0.75]),
        "upperleg01.L": np.array([0.1, 0.0, 0.0]),
        "lowerleg01.R": np.array([-0.1, 0.0, -0.35]),
        "foot.R": np.array([-0.1, 0.0, -0.75]),
        "upperleg01.R": np.array([-0.1, 0.0, 0.0]),
    }


def test_flexion_and_abduction_directions():
    heads = _heads()
    knee = next(j for j in JOINT_LIMITS if j.bone == "lowerleg01.L")
    hip = next(j for j in JOINT_LIMITS if j.bone == "upperleg01.L")
    shin = heads["foot.L"] - heads["lowerleg01.L"]
    bent = joint_rotations(knee, heads, -60, 0, 0, side=1.0) @ shin
    assert bent @ FORWARD < -0.2  # a knee bends backwards
    thigh = heads["lowerleg01.L"] - heads["upperleg01.L"]
    assert (joint_rotations(hip, heads, 40, 0, 0, side=1.0) @ thigh) @ FORWARD > 0.2  # hip flexes forwards
    assert (joint_rotations(hip, heads, 0, 20, 0, side=1.0) @ thigh)[0] > 0.05  # left leg abducts to +X
    assert (joint_rotations(hip, heads, 0, 20, 0, side=-1.0) @ thigh)[0] < -0.05  # right leg to -X


def test_sampled_pose_is_rotations_within_limits():
    labels = [
        "root",
        *sorted(
            {b for j in JOINT_LIMITS for b in (j.bone, j.target)}
            | {j.bone.replace(".L", ".R") for j in JOINT_LIMITS}
            | {j.target.replace(".L", ".R") for j in JOINT_LIMITS}
        ),
    ]
    rng = np.random.default_rng(0)
    heads = rng.normal(size=(len(labels), 3))
    pose = sample_pose(np.random.default_rng(1), labels, heads)
    r = pose[:, :3, :3]
    assert np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-5)
    assert np.allclose(np.linalg.det(r), 1, atol=1e-5)
    assert np.allclose(pose[labels.index("root")], np.eye(4))
    angles = np.degrees(np.arccos(np.clip((np.trace(r, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angles.max() < 125  # no joint past its combined limits
