"""AnnyModel: Anny behind the ParametricModel interface, in our world frame, differentiable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avatarkit.parametric import ModelOutput, ParametricModel, axis_angle_to_matrix
from avatarkit.parametric.anny import ANNY_TO_WORLD, FACE_LANDMARKS, JOINTS, AnnyModel


@pytest.fixture(scope="module")
def model(anny_body):
    return AnnyModel(anny_body)


def test_satisfies_the_protocol(model):
    assert isinstance(model, ParametricModel)
    typed: ParametricModel = model  # what fitting code holds
    shapes = typed.parameter_shapes()
    assert shapes == {"phenotype": (6,), "expression": (52,), "pose": (103, 3), "rotation": (3,), "translation": (3,)}
    zeros = typed.zero_parameters(2)
    assert {k: tuple(v.shape) for k, v in zeros.items()} == {k: (2, *s) for k, s in shapes.items()}
    assert typed.faces.shape == (27420, 3) and typed.faces.dtype == torch.int64
    assert typed.landmark_names == (*FACE_LANDMARKS, *JOINTS)
    assert len(typed.joint_names) == 104 and typed.joint_names[0] == "root"


def test_neutral_parameters_give_the_rest_body_in_world_frame(model, anny_body):
    with torch.no_grad():
        rest = anny_body.model(pose_parameters=None, phenotype_kwargs=None)
        out = model(**model.zero_parameters(1))
        default = model()
    assert isinstance(out, ModelOutput)
    expected = rest["vertices"][0].numpy().astype(np.float64) @ ANNY_TO_WORLD.T
    assert out.vertices.shape == (1, 13718, 3) and out.vertices.dtype == torch.float32
    np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=1e-5, rtol=0)
    heads = rest["bone_poses"][0, :, :3, 3].numpy().astype(np.float64) @ ANNY_TO_WORLD.T
    np.testing.assert_allclose(out.joints[0].numpy(), heads, atol=1e-5, rtol=0)
    # Anny's rest (identity) pose puts its root joint at the origin
    assert torch.equal(out.joint("root"), torch.zeros(1, 3))
    assert torch.equal(default.vertices, out.vertices)
    # our frame: +Y up, facing +Z, +X the subject's left; face landmarks are mesh vertices
    assert out.landmark("head")[0, 1] > out.landmark("pelvis")[0, 1] > out.landmark("left_knee")[0, 1]
    assert out.landmark("nose_tip")[0, 2] > out.landmark("head")[0, 2]
    assert out.landmark("left_eye")[0, 0] > out.landmark("right_eye")[0, 0]
    for name, vertex in zip(model.landmark_names, model.landmark_vertex_ids, strict=True):
        if vertex >= 0:
            assert torch.equal(out.landmark(name), out.vertices[:, vertex])
        else:
            assert torch.equal(out.landmark(name), out.joint(JOINTS[name]))


@pytest.mark.parametrize(("pose", "index"), [("rest", 3), ("random", 1)])
def test_matches_synth_before_its_floor_lift(model, make_generator, pose, index):
    mesh = make_generator(pose=pose, expressions=True, texture="none", face_variation=False).subject(index)
    params = mesh.params["anny"]
    groups = {
        "phenotype": torch.tensor([[params["phenotype"][k] for k in model.phenotype_labels]]),
        "expression": torch.as_tensor(params["facial_actions"])[None],
        "pose": model.from_anny_pose(params["pose"]),
    }
    assert groups["expression"].abs().sum() > 0
    with torch.no_grad():
        out = model(**groups)
    lift = params["anny_to_world"][:3, 3]
    np.testing.assert_allclose(out.vertices[0].numpy() + lift, mesh.vertices, atol=1e-5, rtol=0)
    lm = mesh.landmarks.as_dict()
    ours = {n: out.landmarks[0, i].numpy() + lift for i, n in enumerate(out.landmark_names)}
    for name in lm:
        np.testing.assert_allclose(ours[name], lm[name], atol=1e-5, rtol=0)
    if pose == "rest":  # no pose round trip through rotation vectors: the same numbers as synth's
        assert np.array_equal(
            (out.vertices[0].numpy().astype(np.float64) + lift).astype(mesh.vertices.dtype), mesh.vertices
        )
    # and back: our pose group gives synth's Anny pose parameters
    np.testing.assert_allclose(model.to_anny_pose(groups["pose"])[0].numpy(), params["pose"], atol=1e-6)


def test_global_rotation_and_translation(model):
    rotation = torch.tensor([[0.0, np.pi / 2, 0.0]])  # a quarter turn about +Y: facing +Z -> facing +X
    translation = torch.tensor([[0.1, 0.9, -0.2]])
    with torch.no_grad():
        still = model()
        moved = model(rotation=rotation, translation=translation)
    expected = still.vertices @ axis_angle_to_matrix(rotation).transpose(1, 2) + translation[:, None]
    torch.testing.assert_close(moved.vertices, expected, atol=1e-5, rtol=0)
    forward = moved.landmark("nose_tip") - moved.landmark("head")
    assert forward[0, 0] > 0.05 and abs(forward[0, 2]) < 0.02


def test_pose_rotations_are_in_world_axes(model):
    pose = torch.zeros(1, 103, 3)
    pose[0, model.pose_bone_names.index("neck01"), 1] = 0.5  # turn the head about +Y, towards its left
    with torch.no_grad():
        still, turned = model(), model(pose=pose)
    nose = turned.landmark("nose_tip") - still.landmark("nose_tip")
    assert nose[0, 0] > 0.03 and abs(nose[0, 1]) < 0.01  # to +X, the subject's left, at the same height
    torch.testing.assert_close(turned.landmark("left_knee"), still.landmark("left_knee"))


def test_batches_broadcast_and_match_single_evaluations(model):
    expression = torch.zeros(2, 52)
    expression[1, model.expression_labels.index("jawOpen")] = 1.0
    with torch.no_grad():
        both = model(expression=expression, phenotype=torch.full((1, 6), 0.3))
        second = model(expression=expression[1:], phenotype=torch.full((1, 6), 0.3))
    assert both.vertices.shape == (2, 13718, 3)
    torch.testing.assert_close(both.vertices[1:], second.vertices, atol=1e-6, rtol=0)
    chin = both.landmark("left_lips")[:, 1]  # the jaw drops: lip corners move down
    assert chin[1] < chin[0]
    with pytest.raises(ValueError, match="unknown parameter groups"):
        model(betas=torch.zeros(1, 10))
    with pytest.raises(ValueError, match="expression must be"):
        model(expression=torch.zeros(52))


def test_gradients_reach_expression_phenotype_and_pose(model):
    params = model.zero_parameters(1)
    params["phenotype"] = torch.tensor([[0.3, 0.6, 0.45, 0.55, 0.6, 0.4]])
    params["expression"][0, model.expression_labels.index("mouthSmileLeft")] = 0.5
    for value in params.values():
        value.requires_grad_(True)
    target = torch.zeros(1, 1, 3)
    loss = (model(**params).vertices - target).square().mean()
    loss.backward()
    for name in ("expression", "phenotype", "pose", "rotation", "translation"):
        grad = params[name].grad
        assert grad is not None and torch.isfinite(grad).all(), name
        assert grad.abs().max() > 0, name


def test_adam_recovers_an_expression_from_vertices(model):
    truth = torch.zeros(1, 52)
    for name, value in (("jawOpen", 0.6), ("mouthSmileLeft", 0.5), ("browInnerUp", 0.7), ("eyeBlinkRight", 0.8)):
        truth[0, model.expression_labels.index(name)] = value
    with torch.no_grad():
        target = model(expression=truth).vertices
    expression = torch.zeros(1, 52, requires_grad=True)
    optimizer = torch.optim.Adam([expression], lr=0.05)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = (model(expression=expression).vertices - target).square().sum(-1).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100
    # the four actions are recovered (others may trade small amounts between similar shapes)
    for name in ("jawOpen", "mouthSmileLeft", "browInnerUp", "eyeBlinkRight"):
        i = model.expression_labels.index(name)
        assert abs(expression[0, i].item() - truth[0, i].item()) < 0.1, name


def test_axis_angle_matrices_are_rotations_with_finite_gradient_at_zero():
    rotvec = torch.tensor([[0.0, 0.0, 0.0], [1e-5, 0.0, 0.0], [0.3, -0.2, 0.5], [0.0, 0.0, np.pi]], dtype=torch.float64)
    rotvec.requires_grad_(True)
    r = axis_angle_to_matrix(rotvec)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(r @ r.transpose(1, 2), eye.expand(4, 3, 3))
    torch.testing.assert_close(r[3], torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64)))
    from scipy.spatial.transform import Rotation

    torch.testing.assert_close(r[2].detach(), torch.as_tensor(Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()))
    r[:, 0, 1].sum().backward()  # d R01 / d rotvec_z = -1 at zero
    assert torch.isfinite(rotvec.grad).all() and rotvec.grad[0, 2] == pytest.approx(-1.0)
