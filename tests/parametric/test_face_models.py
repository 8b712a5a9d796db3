"""Face models behind one interface: FLAME read from a stand-in file with FLAME's structure
(checked against an independent FLAME forward written here in plain numpy) and Anny's head
(checked against the full Anny model, the shipped landmarks and what its groups should do)."""

from __future__ import annotations

import pickle
import pickletools
import sys

import numpy as np
import pytest
import torch
from flame_standin import stand_in_embedding, stand_in_flame, write_flame_pickle

from avatarkit.errors import InputError, OptionError
from avatarkit.parametric.face import FACE_LANDMARK_NAMES, FaceModel, FaceOutput, load_face_model
from avatarkit.parametric.face_landmarks import H3DS_NAMES, ibug68_group

MM = 1e-3

# ----------------------------------------------------------------------------- FLAME stand-in


@pytest.fixture(scope="module")
def flame_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flame")
    model = stand_in_flame()
    write_flame_pickle(folder / "flame2023.pkl", model)
    embedding = stand_in_embedding(len(model["f"]))
    np.save(folder / "landmark_embedding.npy", embedding, allow_pickle=True)
    return folder / "flame2023.pkl", model, embedding


@pytest.fixture(scope="module")
def flame(flame_files):
    from avatarkit.parametric.flame import FlameModel

    return FlameModel(flame_files[0])


# ----------------------------------------------------------------------------- FLAME, by hand


def rodrigues(r: np.ndarray) -> np.ndarray:
    theta = np.linalg.norm(r)
    if theta < 1e-12:
        return np.eye(3)
    k = r / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def flame_by_hand(model, shape, expression, pose, translation):
    """FLAME's forward for one sample, float64, written from the paper's equations: blend
    shapes, joint regression, pose correctives from (R - I) of the four non-root joints,
    the kinematic chain as 4x4 matrices, linear blend skinning. ``pose`` (5, 3): global,
    neck, jaw, left eye, right eye."""
    n_shape, n_expression = len(shape), len(expression)
    dirs = model["shapedirs"]
    v = model["v_template"] + dirs[:, :, :n_shape] @ shape + dirs[:, :, 300 : 300 + n_expression] @ expression
    joints = model["J_regressor"] @ v
    rotations = [rodrigues(p) for p in pose]
    features = np.concatenate([(r - np.eye(3)).ravel() for r in rotations[1:]])
    v = v + model["posedirs"] @ features
    parents = [-1, 0, 1, 1, 1]
    world = []
    for j, parent in enumerate(parents):
        local = np.eye(4)
        local[:3, :3] = rotations[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0)
        world.append(local if parent < 0 else world[parent] @ local)
    skinning = []
    for j in range(5):
        unrest = np.eye(4)
        unrest[:3, 3] = -joints[j]
        skinning.append(world[j] @ unrest)
    out = np.empty_like(v)
    for i in range(len(v)):
        blended = sum(model["weights"][i, j] * skinning[j] for j in range(5))
        out[i] = (blended @ np.append(v[i], 1.0))[:3]
    posed_joints = np.array([w[:3, 3] for w in world])
    return out + translation, posed_joints + translation


def landmarks_by_hand(vertices, faces, face_index, bary):
    return (vertices[faces[face_index].astype(np.int64)] * bary[..., None]).sum(1)


# ----------------------------------------------------------------------------- FLAME tests


def test_flame_file_is_read_without_chumpy(flame_files, flame):
    path, _, _ = flame_files
    names = {arg for op, arg, _ in pickletools.genops(path.read_bytes()) if op.name == "GLOBAL"}
    assert "chumpy.ch Ch" in names  # the stand-in is pickled as FLAME's files are
    assert "chumpy" not in sys.modules  # and read without importing chumpy
    assert isinstance(flame, FaceModel)
    assert flame.parameter_shapes() == {
        "identity": (100,),
        "expression": (50,),
        "jaw": (3,),
        "neck": (3,),
        "eyes": (2, 3),
        "rotation": (3,),
        "translation": (3,),
    }


def test_flame_matches_an_independent_forward(flame_files, flame):
    _, model, embedding = flame_files
    rng = np.random.default_rng(3)
    batch = 3
    groups = {
        "identity": rng.normal(0, 1, (batch, 100)),
        "expression": rng.normal(0, 1, (batch, 50)),
        "jaw": rng.normal(0, 0.2, (batch, 3)),
        "neck": rng.normal(0, 0.3, (batch, 3)),
        "eyes": rng.normal(0, 0.3, (batch, 2, 3)),
        "rotation": rng.normal(0, 0.5, (batch, 3)),
        "translation": rng.normal(0, 0.1, (batch, 3)),
    }
    out = flame(**{k: torch.as_tensor(v, dtype=torch.float32) for k, v in groups.items()})
    assert isinstance(out, FaceOutput)
    face_index = np.concatenate([embedding["full_lmk_faces_idx"][0, :17], embedding["static_lmk_faces_idx"]])
    bary = np.concatenate([embedding["full_lmk_bary_coords"][0, :17], embedding["static_lmk_bary_coords"]])
    for b in range(batch):
        pose = np.stack([groups["rotation"][b], groups["neck"][b], groups["jaw"][b], *groups["eyes"][b]])
        vertices, joints = flame_by_hand(
            model, groups["identity"][b], groups["expression"][b], pose, groups["translation"][b]
        )
        np.testing.assert_allclose(out.vertices[b].numpy(), vertices, atol=1e-5)
        np.testing.assert_allclose(out.joints[b].numpy(), joints, atol=1e-5)
        lm = landmarks_by_hand(vertices, model["f"], face_index, bary)
        np.testing.assert_allclose(out.landmarks68[b].numpy(), lm, atol=1e-5)
    np.testing.assert_allclose(out.pivot.numpy(), out.joints[:, 0].numpy())


def test_flame_neutral_is_the_template_and_the_pivot_stays(flame_files, flame):
    _, model, _ = flame_files
    out = flame()
    np.testing.assert_allclose(out.vertices[0].numpy(), model["v_template"], atol=1e-6)
    pivot = model["J_regressor"][0] @ model["v_template"]
    turned = flame(rotation=torch.tensor([[0.3, -0.5, 0.2]]), translation=torch.tensor([[0.01, 0.02, -0.03]]))
    np.testing.assert_allclose(turned.pivot[0].numpy(), pivot + np.array([0.01, 0.02, -0.03]), atol=1e-6)


def test_flame_h3ds_six_follow_the_68(flame):
    ibug, h3ds = flame.embeddings["ibug68"], flame.embeddings["h3ds6"]
    for name, point in (("nose_tip", 30), ("nose_base", 33), ("right_lips", 48), ("left_lips", 54)):
        k = H3DS_NAMES.index(name)
        assert h3ds.face_index[k] == ibug.face_index[point]
        np.testing.assert_allclose(h3ds.bary[k], ibug.bary[point])
    out = flame()
    for name in ("right_eye", "left_eye"):
        centre = out.landmarks68[0, list(ibug68_group(name))].mean(0)
        eye = out.h3ds[0, H3DS_NAMES.index(name)]
        # the frontal ray through the eye's centre: the same x and y, on the mesh in front
        np.testing.assert_allclose(eye[:2].numpy(), centre[:2].numpy(), atol=1e-5)
        assert eye[2] > 0


def test_flame_gradients_reach_every_group(flame):
    groups = {k: (v + 0.05).requires_grad_(True) for k, v in flame.zero_parameters(2).items()}
    out = flame(**groups)
    (out.vertices.square().sum() + out.landmarks.square().sum()).backward()
    for name, value in groups.items():
        assert value.grad is not None and torch.isfinite(value.grad).all(), name
        assert value.grad.abs().sum() > 0, name


def test_flame_options_and_files_without_landmarks(flame_files, tmp_path):
    from avatarkit.parametric.flame import FlameModel

    path = flame_files[0]
    lone = tmp_path / "generic_model.pkl"
    lone.write_bytes(path.read_bytes())
    bare = FlameModel(lone, n_shape=300, n_expression=100)
    assert bare.parameter_shapes()["identity"] == (300,) and bare.landmark_names == ()
    out = bare()
    assert out.landmarks.shape == (1, 0, 3)
    with pytest.raises(ValueError, match="no iBUG-68"):
        _ = out.landmarks68
    with pytest.raises(OptionError, match="101 asked for"):
        FlameModel(lone, n_expression=101)
    with pytest.raises(OptionError, match="flame-model"):
        load_face_model("flame")
    loaded = load_face_model("flame", flame_model=path, n_shape=10)
    assert loaded.parameter_shapes()["identity"] == (10,) and loaded.landmark_names == FACE_LANDMARK_NAMES


class _RunsCode:
    """A pickle that would run a command when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def _not_flame(kind: str, folder):
    path = folder / f"{kind}.pkl"
    if kind == "text":
        path.write_text("v_template 0 0 0\n")
    elif kind == "dict_of_other_things":
        path.write_bytes(pickle.dumps({"vertices": np.zeros((3, 3))}, protocol=2))
    elif kind == "list":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif kind == "runs_code":
        path.write_bytes(pickle.dumps({"v_template": _RunsCode(folder / "ran")}))
    elif kind == "wrong_shape":
        model = stand_in_flame()
        model["v_template"] = model["v_template"][:, :2]
        write_flame_pickle(path, model)
    elif kind == "no_expression":
        model = stand_in_flame()
        model["shapedirs"] = model["shapedirs"][:, :, :300]
        write_flame_pickle(path, model)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "cannot read it as a pickle"),
        ("dict_of_other_things", "no v_template, shapedirs"),
        ("list", "holds a list"),
        ("runs_code", "posix.system object|os.system object|nt.system object"),
        ("wrong_shape", r"v_template is \(162, 2\)"),
        ("no_expression", "no expression"),
        ("missing", "no such FLAME model file"),
    ],
)
def test_files_that_are_not_flame_fail_in_one_line(kind, message, tmp_path):
    from avatarkit.parametric.flame import FlameModel

    path = tmp_path / "missing.pkl" if kind == "missing" else _not_flame(kind, tmp_path)
    with pytest.raises(InputError, match=message) as error:
        FlameModel(path)
    text = str(error.value)
    assert "\n" not in text and text.startswith(str(path))
    assert not (tmp_path / "ran").exists()


def test_landmark_files_that_do_not_give_68_points_fail(flame_files, tmp_path):
    from avatarkit.parametric.flame import FlameModel

    path, model, embedding = flame_files
    static_only = {k: v for k, v in embedding.items() if k.startswith("static")}
    np.save(tmp_path / "static.npy", static_only, allow_pickle=True)
    with pytest.raises(InputError, match="51 points"):
        FlameModel(path, landmarks=tmp_path / "static.npy")
    out_of_range = dict(embedding, full_lmk_faces_idx=embedding["full_lmk_faces_idx"] + len(model["f"]))
    np.save(tmp_path / "far.npy", out_of_range, allow_pickle=True)
    with pytest.raises(InputError, match="outside the model's"):
        FlameModel(path, landmarks=tmp_path / "far.npy")
    # FLAME's static-embedding layout with all 68 points, as a pickle
    with open(tmp_path / "static_68.pkl", "wb") as f:
        pickle.dump(
            {"lmk_face_idx": embedding["full_lmk_faces_idx"][0], "lmk_b_coords": embedding["full_lmk_bary_coords"][0]},
            f,
        )
    flat = FlameModel(path, landmarks=tmp_path / "static_68.pkl")
    np.testing.assert_array_equal(flat.embeddings["ibug68"].face_index, embedding["full_lmk_faces_idx"][0])


# ----------------------------------------------------------------------------- Anny's head


@pytest.fixture(scope="module")
def anny_face(anny_body):
    from avatarkit.parametric.anny_face import AnnyFaceModel

    return AnnyFaceModel(anny_body)


def random_anny_groups(model, batch: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    groups = model.zero_parameters(batch)
    n = len(model.phenotype_labels)
    groups["identity"][:, :n] = 0.2 + 0.6 * torch.rand(batch, n, generator=g)
    groups["identity"][:, n:] = torch.rand(batch, len(model.local_change_labels), generator=g) - 0.5
    groups["expression"] = 0.5 * torch.rand(batch, len(model.expression_labels), generator=g)
    groups["neck"] = 0.5 * (torch.rand(batch, 3, generator=g) - 0.5)
    groups["eyes"] = 0.5 * (torch.rand(batch, 2, 3, generator=g) - 0.5)
    return groups


def test_anny_face_is_the_full_anny_on_the_head(anny_body, anny_face):
    """Every group at random values: the same vertices as anny.Anny (with the face's local
    changes) computes for the whole body, on the head's vertices, about the head joint."""
    import anny

    from avatarkit.parametric.anny import ANNY_TO_WORLD, AnnyModel

    assert isinstance(anny_face, FaceModel)
    full = anny.Anny(facial_actions="all", local_changes=list(anny_face.local_change_labels)).to(torch.float32)
    body = AnnyModel(anny_body)
    groups = random_anny_groups(anny_face, 3, seed=0)
    pose = torch.zeros(3, len(body.pose_bone_names), 3)
    for bone, value in (("head", groups["neck"]), ("eye.L", groups["eyes"][:, 0]), ("eye.R", groups["eyes"][:, 1])):
        pose[:, body.pose_bone_names.index(bone)] = value
    n = len(anny_face.phenotype_labels)
    actions = torch.zeros(3, len(full.facial_action_labels))
    actions[:, [full.facial_action_labels.index(a) for a in anny_face.expression_labels]] = groups["expression"]
    actions[:, full.facial_action_labels.index("tongueOut")] = 1.0  # not in the head part: no effect
    with torch.no_grad():
        out = anny_face(**groups)
        ref = full(
            pose_parameters=body.to_anny_pose(pose),
            phenotype_kwargs=groups["identity"][:, :n],
            local_changes_kwargs=groups["identity"][:, n:],
            facial_actions=actions,
        )
    to_world = torch.as_tensor(ANNY_TO_WORLD, dtype=torch.float32).T
    vertices, joints = ref["vertices"] @ to_world, ref["bone_poses"][:, :, :3, 3] @ to_world
    bones = list(full.bone_labels)
    head = joints[:, bones.index("head"), None]
    expected = vertices[:, torch.as_tensor(anny_face.body_vertex_index)] - head
    assert (out.vertices - expected).abs().max() < 1e-5
    expected_joints = joints[:, [bones.index(b) for b in ("head", "neck01", "eye.L", "eye.R")]] - head
    assert (out.joints - expected_joints).abs().max() < 1e-5


def test_anny_head_is_synths_head_part(anny_face, make_generator):
    head = make_generator(part="head", pose="rest", texture="none").subject(0)
    np.testing.assert_array_equal(head.faces, anny_face.faces.numpy())
    assert anny_face.faces.shape[0] == len(anny_face.body_face_index)


def test_anny_neutral_landmarks_are_face_landmarks_on_the_full_body(anny_body, anny_face):
    from avatarkit.parametric.anny import AnnyModel
    from avatarkit.parametric.face_landmarks import h3ds_points, ibug68_points

    with torch.no_grad():
        body = AnnyModel(anny_body)()
        face = anny_face()
    head = body.joint("head")[:, None]
    assert (face.landmarks68 - (ibug68_points(body.vertices) - head)).abs().max() < 1e-6
    assert (face.h3ds - (h3ds_points(body.vertices) - head)).abs().max() < 1e-6
    assert face.landmark_names == FACE_LANDMARK_NAMES
    # our frame: the face looks +Z, +Y up, +X the subject's left
    six = dict(zip(H3DS_NAMES, face.h3ds[0].numpy(), strict=True))
    assert six["nose_tip"][2] > six["left_eye"][2] and six["nose_tip"][2] > 0
    assert six["left_eye"][0] > six["right_eye"][0] and six["left_lips"][0] > six["right_lips"][0]
    assert six["left_eye"][1] > six["nose_tip"][1] > six["left_lips"][1]
    assert torch.equal(face.pivot, torch.zeros(1, 3))


def test_anny_gradients_reach_every_group(anny_face):
    groups = {k: v.requires_grad_(True) for k, v in random_anny_groups(anny_face, 2, seed=1).items()}
    out = anny_face(**groups)
    (out.vertices.square().sum() + out.landmarks.square().sum()).backward()
    for name, value in groups.items():
        assert value.grad is not None and torch.isfinite(value.grad).all(), name
        per_entry = value.grad.abs().flatten(1).sum(0)
        assert (per_entry > 0).all(), f"{name}: {int((per_entry == 0).sum())} entries without a gradient"


def test_anny_local_changes_are_live_at_zero(anny_face):
    """A fit starts at 0: both directions of a local change have a gradient there."""
    identity = anny_face.zero_parameters(1)["identity"].requires_grad_(True)
    out = anny_face(identity=identity)
    out.vertices.sum().backward()
    n = len(anny_face.phenotype_labels)
    assert (identity.grad[0, n:] != 0).float().mean() > 0.95


def test_jaw_open_opens_the_mouth(anny_face):
    expression = torch.zeros(2, len(anny_face.expression_labels))
    expression[1, anny_face.expression_labels.index("jawOpen")] = 1.0
    with torch.no_grad():
        lm = anny_face(expression=expression).landmarks68
    gap = (lm[:, 62] - lm[:, 66]).norm(dim=-1)
    assert gap[0] < 2 * MM and gap[1] > 10 * MM
    assert lm[1, 8, 1] < lm[0, 8, 1] - 10 * MM  # the chin drops
    assert (lm[1, 36:48] - lm[0, 36:48]).norm(dim=-1).max() < 1 * MM  # the eyes stay


def test_identity_moves_the_nose(anny_face):
    identity = anny_face.zero_parameters(2)["identity"]
    identity[1, anny_face.identity_labels.index("nose-trans-forward")] = 1.0
    with torch.no_grad():
        six = anny_face(identity=identity).h3ds
    nose, eye = H3DS_NAMES.index("nose_tip"), H3DS_NAMES.index("left_eye")
    assert six[1, nose, 2] - six[0, nose, 2] > 2 * MM  # forward
    assert (six[1, eye] - six[0, eye]).norm() < 0.5 * MM


def test_rotation_turns_the_head_about_the_pivot(anny_face):
    groups = random_anny_groups(anny_face, 1, seed=2)
    rotation = torch.tensor([[0.2, -0.6, 0.1]])
    translation = torch.tensor([[0.05, 1.6, -0.2]])
    with torch.no_grad():
        still = anny_face(**groups)
        turned = anny_face(**{**groups, "rotation": rotation, "translation": translation})
    from avatarkit.parametric.base import axis_angle_to_matrix

    r = axis_angle_to_matrix(rotation)[0]
    assert torch.allclose(turned.pivot, translation, atol=1e-6)
    assert torch.allclose(turned.vertices[0] - translation, still.vertices[0] @ r.T, atol=1e-5)
    assert torch.allclose(turned.landmarks[0] - translation, still.landmarks[0] @ r.T, atol=1e-5)


def test_neck_turns_the_head_not_the_neck_and_eyes_turn_the_eyes(anny_face):
    with torch.no_grad():
        still = anny_face()
        nodded = anny_face(neck=torch.tensor([[0.3, 0.0, 0.0]]))
        looked = anny_face(eyes=torch.tensor([[[0.0, 0.3, 0.0], [0.0, 0.3, 0.0]]]))
    nose, eye = H3DS_NAMES.index("nose_tip"), H3DS_NAMES.index("left_eye")
    assert nodded.h3ds[0, nose, 1] < still.h3ds[0, nose, 1] - 10 * MM  # a nod about +X lowers the nose
    assert torch.allclose(nodded.joint("neck"), still.joint("neck"))
    y = still.vertices[0, :, 1]
    base = y < y.min() + 0.01  # the bottom of the neck: Anny's head weights fade down the neck
    assert (nodded.vertices[0, base] - still.vertices[0, base]).norm(dim=-1).max() < 3 * MM
    # the cornea turns to the subject's left (+X) about +Y; the nose does not move
    assert looked.h3ds[0, eye, 0] > still.h3ds[0, eye, 0] + 2 * MM
    assert (looked.h3ds[0, nose] - still.h3ds[0, nose]).norm() < 1e-6


def test_batch_one_broadcasts(anny_face):
    groups = random_anny_groups(anny_face, 4, seed=3)
    identity = groups["identity"][:1]
    with torch.no_grad():
        both = anny_face(identity=identity, expression=groups["expression"])
        assert both.vertices.shape == (4, anny_face.faces.max() + 1, 3) and both.landmarks.shape == (4, 74, 3)
        for b in range(4):
            one = anny_face(identity=identity, expression=groups["expression"][b : b + 1])
            assert torch.allclose(both.vertices[b], one.vertices[0], atol=1e-6)
    with pytest.raises(ValueError, match="batch sizes"):
        anny_face(identity=groups["identity"][:2], expression=groups["expression"])
    with pytest.raises(ValueError, match="unknown parameter groups"):
        anny_face(jaw=torch.zeros(1, 3))


def test_priors_cover_the_regularised_groups(anny_face, flame):
    for model in (anny_face, flame):
        prior = model.prior()
        shapes = model.parameter_shapes()
        assert set(prior) == set(shapes) - {"rotation", "translation"}
        neutral = model.zero_parameters(1)
        for name, (mean, std) in prior.items():
            assert mean.shape == std.shape == shapes[name] and (std > 0).all()
            assert torch.equal(mean, neutral[name][0])


def test_load_face_model(anny_body, flame_files):
    model = load_face_model("anny", body=anny_body)
    assert model.name == "anny" and "jaw" not in model.parameter_shapes()
    with pytest.raises(OptionError, match="need --model flame"):
        load_face_model("anny", flame_model=flame_files[0])
    with pytest.raises(OptionError, match="--model must be one of anny, flame"):
        load_face_model("basel")
