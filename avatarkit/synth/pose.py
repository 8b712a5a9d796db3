"""Random natural poses for Anny, within plausible joint limits.

Anny's ``local-ref`` pose parameters are per-bone rotations expressed in world-aligned
axes at the rest pose. For each posed joint we build three axes from the rest skeleton:
flexion (rotates the bone towards the body's front), abduction (about the front axis,
away from the midline for a limb) and twist (about the bone). The limits below are
degrees, for the subject's left side; the right side mirrors abduction and twist.
Sources: clinical range-of-motion tables (e.g. AAOS), kept well inside their extremes
so that limbs do not pass through the body.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class JointLimit:
    bone: str
    """Anny bone rotated (``.L`` bones are mirrored to ``.R``)."""
    target: str
    """Bone whose rest head gives the direction of ``bone`` (towards the next joint)."""
    flexion: tuple[float, float] = (0.0, 0.0)
    abduction: tuple[float, float] = (0.0, 0.0)
    twist: tuple[float, float] = (0.0, 0.0)


JOINT_LIMITS = (
    JointLimit("spine04", "neck01", (-4, 10), (-4, 4), (-7, 7)),
    JointLimit("spine03", "neck01", (-4, 10), (-4, 4), (-7, 7)),
    JointLimit("spine02", "neck01", (-4, 10), (-4, 4), (-7, 7)),
    JointLimit("neck01", "head", (-10, 15), (-8, 8), (-15, 15)),
    JointLimit("head", "eye.L", (-15, 20), (-10, 10), (-25, 25)),
    JointLimit("upperarm01.L", "lowerarm01.L", (-30, 70), (-20, 65), (-30, 30)),
    JointLimit("lowerarm01.L", "wrist.L", (0, 95)),
    JointLimit("wrist.L", "finger3-1.L", (-35, 35), (-15, 15)),
    JointLimit("upperleg01.L", "lowerleg01.L", (-15, 60), (-8, 25), (-15, 20)),
    JointLimit("lowerleg01.L", "foot.L", (-90, 0)),
    JointLimit("foot.L", "toe3-1.L", (-20, 25)),
)

FORWARD = np.array([0.0, -1.0, 0.0])
"""The body's front in Anny's frame."""


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def _mirror(name: str) -> str:
    return name[:-2] + ".R" if name.endswith(".L") else name


def joint_rotations(
    limits: JointLimit, heads: dict[str, np.ndarray], flexion: float, abduction: float, twist: float, side: float
) -> np.ndarray:
    """The 3x3 rotation of one joint for given angles (degrees); ``side`` +1 left, -1 right."""
    bone = limits.bone if side > 0 else _mirror(limits.bone)
    target = limits.target if side > 0 else _mirror(limits.target)
    direction = heads[target] - heads[bone]
    direction = direction / np.linalg.norm(direction)
    flex_axis = np.cross(direction, FORWARD)
    if np.linalg.norm(flex_axis) < 1e-6:  # bone along the front axis (foot): flex about X
        flex_axis = np.array([1.0, 0.0, 0.0])
    return _rotation(direction, side * twist) @ _rotation(FORWARD, side * abduction) @ _rotation(flex_axis, flexion)


def sample_pose(rng: np.random.Generator, bone_labels: list[str], rest_heads: np.ndarray) -> np.ndarray:
    """A random natural pose: (J, 4, 4) float32 ``local-ref`` deltas for Anny.

    Each subject gets an activity level in [0.2, 1] that scales every joint's uniform
    draw inside its limits, so poses range from relaxed to clearly articulated.
    """
    heads = {name: rest_heads[i] for i, name in enumerate(bone_labels)}
    pose = np.tile(np.eye(4, dtype=np.float32), (len(bone_labels), 1, 1))
    activity = rng.uniform(0.2, 1.0)
    for limit in JOINT_LIMITS:
        sides = (1.0, -1.0) if limit.bone.endswith(".L") else (1.0,)
        for side in sides:
            angles = [activity * rng.uniform(*rng_range) for rng_range in (limit.flexion, limit.abduction, limit.twist)]
            bone = limit.bone if side > 0 else _mirror(limit.bone)
            pose[bone_labels.index(bone), :3, :3] = joint_rotations(limit, heads, *angles, side=side)
    return pose
