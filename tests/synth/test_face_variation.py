"""`synth`'s face variation: every person's face shape drawn from the Anny face model's prior
(Anny's local changes of the face and head), as a user of ``synth --part head`` sees it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avatarkit.cli.app import app
from avatarkit.io.hdf5 import read_artifact, read_mesh

runner = CliRunner()

OLD_HEAD_NOSE_TIP = (-0.006345999892801046, 1.5184634923934937, 0.19530299305915833)
"""``synth --part head --expressions --texture skin --seed 3``'s head 1's ``nose_tip`` landmark,
written by synth before the face variation (commit 32432b4)."""


def _synth(folder, *args) -> list:
    result = runner.invoke(app, ["synth", "--part", "head", "--texture", "none", "-o", str(folder), *map(str, args)])
    assert result.exit_code == 0, result.output
    return [read_mesh(path) for path in sorted(folder.glob("head_*.h5"))]


def _rigid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` moved onto ``b`` by the best rotation and translation."""
    ca, cb = a.mean(0), b.mean(0)
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    rotation = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    return (a - ca) @ rotation + cb


def face_spread(heads) -> float:
    """Mean over the face region (every head's ``/regions/face``) of each vertex's standard
    deviation over the heads (the root of its summed per-axis variances), mm, after rigid
    alignment on that region (to the mean, three rounds): how much faces differ in shape."""
    region = sorted(set.intersection(*(set(h.regions["face"].tolist()) for h in heads)))
    points = [h.vertices[region].astype(np.float64) for h in heads]
    mean = points[0]
    for _ in range(3):
        points = [_rigid(p, mean) for p in points]
        mean = np.mean(points, axis=0)
    return float(np.sqrt(np.stack(points).var(axis=0).sum(axis=1)).mean() * 1000)


@pytest.fixture(scope="module")
def eight_heads(tmp_path_factory, anny_body):
    """8 heads of one seed, with the face variation (the default) and without."""
    root = tmp_path_factory.mktemp("variation")
    varied = _synth(root / "varied", "-n", 8, "--seed", 11)
    plain = _synth(root / "plain", "-n", 8, "--seed", 11, "--no-face-variation")
    return root, varied, plain


def test_faces_vary_beyond_the_phenotype(eight_heads):
    _, varied, plain = eight_heads
    with_variation, phenotype_only = face_spread(varied), face_spread(plain)
    # measured: 5.45 mm against 2.34 mm (seed 11), 4.47 against 1.88 (seed 3)
    assert with_variation > 2.0 * phenotype_only, (with_variation, phenotype_only)
    assert 3.0 < with_variation < 8.0
    # and the variation is in the shape: two heads of the same body differ in the face
    for on, off in zip(varied, plain, strict=True):
        anny_on, anny_off = on.params["anny"], off.params["anny"]
        assert anny_on["phenotype"] == anny_off["phenotype"]
        assert np.array_equal(anny_on["pose"], anny_off["pose"])
        face = on.regions["face"]
        aligned = _rigid(on.vertices[face].astype(np.float64), off.vertices[face].astype(np.float64))
        assert np.linalg.norm(aligned - off.vertices[face], axis=1).max() > 0.002


def test_local_changes_are_stored_and_rebuild_the_head(eight_heads, anny_body):
    from avatarkit.parametric.anny_face import AnnyFaceModel, face_local_changes

    _, varied, plain = eight_heads
    labels = list(face_local_changes())
    for head in varied:
        anny = head.params["anny"]
        assert anny["local_change_labels"] == labels
        assert anny["local_changes"].shape == (len(labels),) and anny["local_changes"].dtype == np.float32
        assert np.abs(anny["local_changes"]).max() > 0.3
    assert not np.array_equal(varied[0].params["anny"]["local_changes"], varied[1].params["anny"]["local_changes"])
    for head in plain:
        assert head.params["anny"]["local_change_labels"] == labels
        assert not head.params["anny"]["local_changes"].any()
    # the stored parameters are the face model's identity: its head is synth's (rest pose, no
    # expression: the face model turns the head on the neck, synth's random pose bends the neck)
    from avatarkit.synth.generate import HumanGenerator, SynthConfig

    truth = HumanGenerator(SynthConfig(part="head", pose="rest", texture="none", seed=11), body=anny_body).subject(2)
    model = AnnyFaceModel(anny_body)
    assert list(model.local_change_labels) == labels
    anny = truth.params["anny"]
    identity = [float(anny["phenotype"][k]) for k in model.phenotype_labels] + anny["local_changes"].tolist()
    with torch.no_grad():
        out = model(identity=torch.tensor([identity]))
    head_joint = truth.landmarks.as_dict()["head"]
    np.testing.assert_allclose(out.vertices[0].numpy() + head_joint, truth.vertices, atol=2e-5, rtol=0)


def test_same_seed_same_heads_and_no_variation_is_synth_before(eight_heads, tmp_path):
    _, varied, _ = eight_heads
    again = _synth(tmp_path / "again", "-n", 2, "--seed", 11)
    for first, second in zip(varied, again, strict=False):
        assert np.array_equal(first.vertices, second.vertices)
        assert np.array_equal(first.params["anny"]["local_changes"], second.params["anny"]["local_changes"])
    other = _synth(tmp_path / "other", "-n", 1, "--seed", 12)
    assert not np.array_equal(other[0].params["anny"]["local_changes"], varied[0].params["anny"]["local_changes"])
    # --no-face-variation: the heads synth made before the option, to the bit
    common = ("-n", 2, "--seed", 3, "--expressions", "--texture", "skin", "--texture-size", 64)
    old = _synth(tmp_path / "old", *common, "--no-face-variation")[1]
    assert tuple(old.landmarks.as_dict()["nose_tip"].tolist()) == pytest.approx(OLD_HEAD_NOSE_TIP, abs=1e-6)
    new = _synth(tmp_path / "new", *common)[1]
    assert np.array_equal(new.texture, old.texture)  # the same person, another face
    assert np.array_equal(new.params["anny"]["facial_actions"], old.params["anny"]["facial_actions"])
    assert np.abs(new.vertices - old.vertices).max() > 0.002


def test_no_variation_is_anny_without_local_changes(make_generator, anny_body):
    """Without the variation synth evaluates Anny without local changes, as it did before, so
    its people are bit-identical to the people of before."""
    head = make_generator(part="head", pose="rest", texture="none", face_variation=False, seed=4).subject(1)
    anny = head.params["anny"]
    model = anny_body.model
    with torch.no_grad():
        out = model(
            pose_parameters=torch.as_tensor(anny["pose"])[None],
            phenotype_kwargs={k: torch.tensor([float(anny["phenotype"][k])]) for k in model.phenotype_labels},
            facial_actions=torch.as_tensor(anny["facial_actions"])[None],
        )
    to_world = anny["anny_to_world"]
    vertices = out["vertices"][0].numpy().astype(np.float64) @ to_world[:3, :3].T + to_world[:3, 3]
    full = make_generator(pose="rest", texture="none", face_variation=False, seed=4).subject(1)
    assert np.array_equal(vertices.astype(full.vertices.dtype), full.vertices)
    assert np.isin(head.vertices, full.vertices).all()


def test_draws_follow_the_face_model_prior(make_generator, anny_body):
    """The draws' mean and spread are the AnnyFaceModel prior's (its local changes), truncated at
    LOCAL_CHANGE_LIMIT standard deviations."""
    from scipy.stats import truncnorm

    from avatarkit.parametric.anny_face import LOCAL_CHANGE_LIMIT, AnnyFaceModel

    generator = make_generator(texture="none", seed=5)
    model = AnnyFaceModel(anny_body)
    n = len(model.phenotype_labels)
    prior = model.prior()["identity"]
    mean, std = prior.mean[n:].numpy().astype(np.float64), prior.std[n:].numpy().astype(np.float64)
    assert list(model.local_change_labels) == list(generator.local_change_labels)
    draws = np.stack([generator.local_changes(i) for i in range(4000)]).astype(np.float64)
    assert draws.shape == (4000, len(mean))
    shrink = truncnorm(-LOCAL_CHANGE_LIMIT, LOCAL_CHANGE_LIMIT).std()  # 0.954 at 2.5
    assert np.all(np.abs(draws - mean) <= LOCAL_CHANGE_LIMIT * std + 1e-6)
    z = (draws.mean(axis=0) - mean) / (shrink * std / np.sqrt(len(draws)))
    assert np.abs(z).max() < 4.5, np.abs(z).max()
    np.testing.assert_allclose(draws.std(axis=0), shrink * std, rtol=0.06)
    # all of them together (556k values): the truncated prior's spread to 1 %, not the prior's
    pooled = ((draws - mean) / std).std()
    assert pooled == pytest.approx(shrink, rel=0.01) and abs(pooled - 1.0) > 0.03
    # draws of a subject are those synth stores, and independent of -n and of the options
    assert np.array_equal(generator.subject(7).params["anny"]["local_changes"], draws[7].astype(np.float32))
    head = make_generator(part="head", texture="none", expressions=True, seed=5)
    assert np.array_equal(head.local_changes(7), generator.local_changes(7))


def test_varied_heads_render_as_portraits(eight_heads, tmp_path):
    root = eight_heads[0]
    for i in (0, 5):
        out = tmp_path / f"views_{i}.h5"
        args = ["--preset", "portrait", "--views", "2", "--size", "64", "--seed", "1", "-o", str(out)]
        r = runner.invoke(app, ["render", str(root / "varied" / f"head_{i:04d}.h5"), *args])
        assert r.exit_code == 0, r.output
        views = read_artifact(out, "views")
        assert views.mask.shape[:2] == (2, 64) and (views.mask.reshape(2, -1) > 0).mean(axis=1).min() > 0.05
        # every face landmark in the picture, on the head (the nose tip, eyes and lip corners)
        head = eight_heads[1][i]
        names = ("nose_tip", "left_eye", "right_eye", "left_lips", "right_lips")
        pixels = views.cameras().project(np.stack([head.landmarks.as_dict()[n] for n in names]))[0]
        u, v = np.round(pixels[..., 0]).astype(int), np.round(pixels[..., 1]).astype(int)
        assert ((u >= 0) & (u < views.mask.shape[2]) & (v >= 0) & (v < 64)).all()
        assert (views.mask[np.arange(2)[:, None], v, u] > 0).all()
