"""The interface every parametric body or face model in avatarkit implements.

A parametric model is a ``torch.nn.Module`` (as smplx's SMPL and FLAME layers are) with
named parameter groups and a forward that takes them by name and returns named outputs
in avatarkit's world frame (metres, +Y up, the subject facing +Z, +X the subject's left;
see docs/conventions.md). Fitting code depends on :class:`ParametricModel` only, so a
model (Anny, FLAME, ...) can be swapped without touching it.

Parameter groups are batched tensors, ``(B, *shape)`` with ``shape`` from
:meth:`ParametricModel.parameter_shapes`. Models use the common group names where they
apply:

| group | meaning |
|---|---|
| ``phenotype`` / ``shape`` | identity: body shape, age, ... (model-specific units) |
| ``identity`` | a face model's identity (:mod:`avatarkit.parametric.face`) |
| ``expression`` | facial expression coefficients |
| ``pose`` | per-joint rotations below the root |
| ``jaw``, ``neck`` | (3,) a face model's jaw and head-on-neck rotations, axis-angle, world axes |
| ``eyes`` | (2, 3) a face model's eyeball rotations, the subject's left eye first |
| ``rotation`` | (3,) global rotation, axis-angle in radians, world axes, about the model's pivot: the world origin for a body model, the head's pivot for a face model |
| ``translation`` | (3,) global translation in metres, world frame, applied after ``rotation`` |

This module imports no torch at run time, so it may be imported anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor


class ModelOutput(NamedTuple):
    """What a parametric model's forward returns, in the world frame.

    Attributes:
        vertices: (B, V, 3) float32, metres: the mesh vertices (faces are the model's).
        joints: (B, J, 3) float32, metres: joint centres, in ``joint_names`` order.
        landmarks: (B, L, 3) float32, metres: named surface points and joint centres, in
            ``landmark_names`` order.
        joint_names: the J joint names (the model's ``joint_names``).
        landmark_names: the L landmark names (the model's ``landmark_names``).
    """

    vertices: Tensor
    joints: Tensor
    landmarks: Tensor
    joint_names: tuple[str, ...] = ()
    landmark_names: tuple[str, ...] = ()

    def landmark(self, name: str) -> Tensor:
        """(B, 3) the landmark called ``name``."""
        return self.landmarks[:, self.landmark_names.index(name)]

    def joint(self, name: str) -> Tensor:
        """(B, 3) the joint called ``name``."""
        return self.joints[:, self.joint_names.index(name)]


@runtime_checkable
class ParametricModel(Protocol):
    """A differentiable parametric model (structural type: any module with these members).

    Attributes:
        faces: (F, 3) int64 tensor of vertex indices, counter-clockwise seen from outside.
        joint_names: names of the J joints that ``forward`` returns.
        landmark_names: names of the L landmarks that ``forward`` returns.
    """

    faces: Tensor
    joint_names: tuple[str, ...]
    landmark_names: tuple[str, ...]

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter group's name and per-sample shape (without the batch dimension)."""
        ...

    def zero_parameters(self, batch: int = 1) -> dict[str, Tensor]:
        """The neutral value of every group, ``(batch, *shape)`` on the model's device and dtype.

        Neutral is the model's template: no expression, rest pose, no global motion, its
        default identity (not necessarily all zeros, e.g. Anny's phenotype is 0.5). New
        tensors each call, safe to set ``requires_grad`` on and optimise.
        """
        ...

    def forward(self, **groups: Tensor) -> ModelOutput:
        """Evaluate the model; omitted groups take their neutral value.

        Groups of batch size 1 broadcast against the others. Differentiable in every
        continuous group (almost everywhere: see the model for kinks and clamps).
        """
        ...

    def __call__(self, **groups: Tensor) -> ModelOutput: ...


def axis_angle_to_matrix(rotvec: Tensor) -> Tensor:
    """Rotation matrices from rotation vectors (Rodrigues), differentiable everywhere.

    Args:
        rotvec: (..., 3) axis times angle in radians.

    Returns:
        (..., 3, 3) rotations acting on column vectors. Near zero the series expansion
        is used, so the gradient at a zero rotation is finite (and exact).
    """
    import torch

    theta2 = (rotvec * rotvec).sum(-1)[..., None, None]
    small = theta2 < 1e-6
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    half_sinc = torch.sin(theta / 2) / (theta / 2)
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)  # sin(t) / t
    b = torch.where(small, 0.5 - theta2 / 24, 0.5 * half_sinc * half_sinc)  # (1 - cos(t)) / t^2
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), -1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + a * k + b * (k @ k)


def broadcast_groups(
    groups: dict[str, Tensor],
    shapes: dict[str, tuple[int, ...]],
    neutral: dict[str, Tensor],
    dtype,
    device,
    owner: str,
) -> dict[str, Tensor]:
    """Every group of a model's forward, checked and broadcast to one batch size.

    Args:
        groups: the groups given (tensors or array-likes), any subset of ``shapes``.
        shapes: each group's per-sample shape (:meth:`ParametricModel.parameter_shapes`).
        neutral: each group's neutral value, batch 1 (for the groups not given).
        dtype, device: what the values are converted to.
        owner: the model's name, for messages.

    Returns:
        name -> (B, *shape) for every group of ``shapes``; groups of batch 1 are expanded
        (views, so gradients reach the tensors given).

    Raises:
        ValueError: an unknown group, a wrong shape, or two batch sizes other than 1.
    """
    import torch

    unknown = sorted(set(groups) - set(shapes))
    if unknown:
        raise ValueError(f"unknown parameter groups {unknown}; {owner} takes {list(shapes)}")
    values = {}
    for name, value in groups.items():
        value = torch.as_tensor(value).to(dtype=dtype, device=device)
        if value.dim() != 1 + len(shapes[name]) or tuple(value.shape[1:]) != shapes[name]:
            raise ValueError(f"{name} must be (B, {', '.join(map(str, shapes[name]))}), got {tuple(value.shape)}")
        values[name] = value
    sizes = {v.shape[0] for v in values.values()} - {1}
    if len(sizes) > 1:
        raise ValueError(f"parameter groups have different batch sizes {sorted(sizes)}")
    batch = sizes.pop() if sizes else 1
    return {name: values.get(name, neutral[name]).expand(batch, *shapes[name]) for name in shapes}
