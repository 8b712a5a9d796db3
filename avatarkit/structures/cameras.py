"""Cameras in our convention (OpenCV axes, ``x_cam = R x_world + t``, K in pixels).

A rig is a :class:`Cameras`: N intrinsics, N ``world_to_cam`` matrices, one projection and
one image size. ``orthographic`` is PIFu's weak perspective: ``u = fx * X + cx`` with fx in
pixels per metre. A rig may also know its ``target``: the world point each camera is aimed at
(the subject's centre), which pixel-aligned networks take as the origin of depth.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from avatarkit.errors import InputError, OptionError

PROJECTIONS = ("perspective", "orthographic")
ROTATION_TOLERANCE = 1e-3
"""Largest entry of R R^T - I accepted for a pose's rotation (files store float32 or decimals)."""


def camera_problems(k: np.ndarray, world_to_cam: np.ndarray, target: np.ndarray | None = None) -> list[str]:
    """Every way a rig's numbers cannot be used, as short sentences naming the first camera
    each applies to (empty when usable): non-finite values, focal lengths that are not
    positive, poses whose rotation is not a rotation (singular, scaled, reflected).

    Args:
        k: (N, 3, 3) intrinsics. world_to_cam: (N, 4, 4) or (N, 3, 4) poses. target: (N, 3) or None.
    """
    k = np.asarray(k, dtype=np.float64).reshape(-1, 3, 3)
    pose = np.asarray(world_to_cam, dtype=np.float64)
    problems = []

    def first(bad: np.ndarray, what: str) -> None:
        bad = np.asarray(bad).reshape(len(bad), -1).any(axis=1)
        if bad.any():
            count = f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""
            problems.append(f"camera {int(np.argmax(bad))}: {what}{count}")

    first(~np.isfinite(k), "K has NaN or infinite values")
    fx, fy = k[:, 0, 0], k[:, 1, 1]
    first(
        np.isfinite(k).all(axis=(1, 2)) & ~((fx > 0) & (fy > 0)), "the focal lengths K[0, 0], K[1, 1] are not positive"
    )
    finite = np.isfinite(pose).all(axis=(1, 2))
    first(~finite, "world_to_cam has NaN or infinite values")
    r = np.where(finite[:, None, None], pose[:, :3, :3], np.eye(3))
    off = np.abs(r @ np.swapaxes(r, 1, 2) - np.eye(3)).max(axis=(1, 2))
    first(
        (off > ROTATION_TOLERANCE) | (np.linalg.det(r) < 0),
        "world_to_cam's 3x3 part is not a rotation (degenerate, scaled or a reflection)",
    )
    if target is not None:
        first(~np.isfinite(np.asarray(target, dtype=np.float64)), "target has NaN or infinite values")
    return problems


@dataclasses.dataclass
class Cameras:
    """N cameras sharing a projection and an image size (width, height in pixels).

    ``target``: (N, 3) world points the cameras are aimed at (the subject's centre), or None
    when unknown (see :meth:`targets`).
    """

    K: np.ndarray
    world_to_cam: np.ndarray
    projection: str
    width: int
    height: int
    target: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64).reshape(-1, 3, 3)
        self.world_to_cam = np.asarray(self.world_to_cam, dtype=np.float64).reshape(-1, 4, 4)
        if self.target is not None:
            self.target = np.asarray(self.target, dtype=np.float64).reshape(-1, 3)
            if len(self.target) != len(self.K):
                raise OptionError(f"{len(self.target)} targets for {len(self.K)} cameras")
        if self.projection not in PROJECTIONS:
            raise OptionError(f"projection must be perspective or orthographic, got {self.projection!r}")
        if len(self.K) != len(self.world_to_cam):
            raise OptionError(f"{len(self.K)} intrinsics for {len(self.world_to_cam)} poses")
        if self.width < 1 or self.height < 1:
            raise OptionError(f"image size must be positive, got {self.width} x {self.height}")

    def __len__(self) -> int:
        return len(self.K)

    def validate(self, source: str | Path | None = None) -> Cameras:
        """These cameras, checked as a camera file is read: raise :class:`InputError` naming
        ``source`` when they are empty or :func:`camera_problems` finds anything (a K of zeros
        would render nothing, a NaN pose garbage)."""
        if len(self) == 0:
            raise InputError("no cameras", source)
        problems = camera_problems(self.K, self.world_to_cam, self.target)
        if problems:
            raise InputError(problems[0], source)
        return self

    def centers(self) -> np.ndarray:
        """(N, 3) camera centres in the world (for orthographic: the image plane's centre)."""
        r, t = self.world_to_cam[:, :3, :3], self.world_to_cam[:, :3, 3]
        return -np.einsum("nji,nj->ni", r, t)

    def axes(self) -> np.ndarray:
        """(N, 3) unit viewing directions (camera +Z) in the world."""
        return self.world_to_cam[:, 2, :3] / np.linalg.norm(self.world_to_cam[:, 2, :3], axis=1, keepdims=True)

    def focus(self) -> np.ndarray | None:
        """The world point nearest to every optical axis in the least-squares sense (where an
        orbit rig looks), or None when the axes do not pin one down (one camera, parallel axes)."""
        d = self.axes()
        projector = np.eye(3)[None] - d[:, :, None] * d[:, None, :]  # onto each axis' normal plane
        a, b = projector.sum(0), np.einsum("nij,nj->i", projector, self.centers())
        if np.linalg.cond(a) > 1e6:
            return None
        return np.linalg.solve(a, b)

    def targets(self) -> np.ndarray | None:
        """(N, 3) where each camera is aimed: ``target`` when known, else the rig's
        :meth:`focus` for every camera, else None."""
        if self.target is not None:
            return self.target
        focus = self.focus()
        return None if focus is None else np.repeat(focus[None], len(self), 0)

    def aimed(self) -> Cameras:
        """These cameras with ``target`` filled from :meth:`targets`; raises
        :class:`OptionError` when nothing says where they aim."""
        targets = self.targets()
        if targets is None:
            raise OptionError(
                "the cameras do not say where they aim (no target) and do not aim at one point, so the "
                "subject's depth is unknown"
            )
        return Cameras(self.K, self.world_to_cam, self.projection, self.width, self.height, targets)

    def target_depths(self) -> np.ndarray:
        """(N,) camera depth (+Z, metres) of each camera's target: the origin of depth for
        pixel-aligned networks. Needs ``target`` (see :meth:`aimed`)."""
        r, t = self.world_to_cam[:, :3, :3], self.world_to_cam[:, :3, 3]
        return np.einsum("nj,nj->n", r[:, 2], self.target) + t[:, 2]

    def subset(self, index) -> Cameras:
        """The cameras at ``index`` (an int, slice or index array), as a rig of their own."""
        index = np.atleast_1d(np.arange(len(self))[index])
        target = None if self.target is None else self.target[index]
        return Cameras(self.K[index], self.world_to_cam[index], self.projection, self.width, self.height, target)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, P, 2) and camera depth (N, P) of world ``points`` (P, 3)."""
        cam = np.einsum("nij,pj->npi", self.world_to_cam[:, :3, :3], points) + self.world_to_cam[:, None, :3, 3]
        z = cam[..., 2]
        xy = cam[..., :2] / z[..., None] if self.projection == "perspective" else cam[..., :2]
        f = np.stack([self.K[:, 0, 0], self.K[:, 1, 1]], -1)[:, None]
        c = np.stack([self.K[:, 0, 2], self.K[:, 1, 2]], -1)[:, None]
        return xy * f + c, z

    def scaled(self, factor: int) -> Cameras:
        """The same cameras on an image ``factor`` times larger (for supersampling).

        Pixel centres map to pixel centres: u' = factor * (u + 0.5) - 0.5.
        """
        k = self.K.copy()
        k[:, :2, :2] *= factor
        k[:, :2, 2] = factor * (k[:, :2, 2] + 0.5) - 0.5
        return Cameras(k, self.world_to_cam, self.projection, self.width * factor, self.height * factor, self.target)
