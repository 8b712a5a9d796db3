"""NoW-style scoring of a fitted face against its truth: the seven-landmark similarity, the rigid
ICP, scan-to-mesh distances in millimetres, pooled figures, 2D landmark errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from avatarkit.errors import MeshError, OptionError
from avatarkit.evaluate.face_truth import (
    NOW_IBUG,
    FaceScore,
    landmark_error_px,
    now_similarity,
    rigid_icp,
    score_face,
    summarise,
)


def _head():
    """A head-sized ellipsoid (metres), 68 'landmarks' on its front, its front half as the region."""
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    vertices = np.asarray(sphere.vertices) * [0.075, 0.1, 0.09]
    front = np.flatnonzero(vertices[:, 2] > 0.02)
    landmarks = vertices[np.random.default_rng(0).choice(front, 68, replace=False)]
    return vertices, np.asarray(sphere.faces), landmarks, front


def _move(points, scale, rotation, shift):
    return scale * points @ rotation.T + shift


def test_now_similarity_recovers_a_similarity():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(7, 3))
    rotation = Rotation.random(random_state=2).as_matrix()
    target = _move(source, 1.7, rotation, [0.1, -2.0, 0.5])
    m = now_similarity(source, target)
    assert np.allclose(source @ m[:3, :3].T + m[:3, 3], target, atol=1e-10)
    assert np.isclose(np.cbrt(np.linalg.det(m[:3, :3])), 1.7)
    with pytest.raises(OptionError, match="at least 3"):
        now_similarity(source[:2], target[:2])


def test_a_moved_copy_of_the_truth_scores_zero_and_is_put_back():
    vertices, faces, landmarks, region = _head()
    rotation = Rotation.from_rotvec([0.3, -0.5, 0.2]).as_matrix()
    pred, pred_landmarks = (_move(p, 0.9, rotation, [0.2, 1.5, -0.3]) for p in (vertices, landmarks))
    score = score_face(pred, faces, pred_landmarks, vertices, landmarks, region)
    assert isinstance(score, FaceScore) and score.distances.shape == (len(region),)
    assert score.mean < 1e-3 and score.median < 1e-3  # millimetres
    assert np.isclose(score.scale, 1 / 0.9, rtol=1e-6)
    back = pred @ score.transform[:3, :3].T + score.transform[:3, 3]
    assert np.abs(back - vertices).max() < 1e-6


def test_distances_are_millimetres_of_surface_gap_after_icp():
    """A prediction with a 2 mm bump on the front (the landmarks off it) scores 2 mm at the bump's
    top and about 0 elsewhere: the alignment does not spread the bump over the face."""
    vertices, faces, landmarks, region = _head()
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    centre = np.array([0.0, 0.0, 0.09])
    near = np.linalg.norm(vertices - centre, axis=1)
    bumped = vertices + 0.002 * np.clip(1 - near / 0.02, 0, 1)[:, None] * mesh.vertex_normals
    nearest = [int(np.argmin(np.linalg.norm(vertices - p, axis=1))) for p in landmarks]
    index = np.zeros(68, dtype=int)
    index[list(NOW_IBUG)] = [i for i in nearest if near[i] > 0.03][:7]  # the seven NoW uses, off the bump
    score = score_face(bumped, faces, bumped[index], vertices, vertices[index], region)
    assert 1.7 < score.distances.max() < 2.1 and score.median < 0.1, (score.distances.max(), score.median)
    # a point cloud on the surface, shifted: the ICP takes the shift out
    shift = np.array([0.003, -0.002, 0.001])
    motion, distances, iterations = rigid_icp(vertices[region] + shift, vertices, faces)
    assert distances.max() < 1e-4 and iterations >= 2
    assert np.allclose(motion[:3, 3], shift, atol=1e-5)  # the mesh moved onto the points


def test_bad_meshes_are_refused():
    vertices, faces, landmarks, region = _head()
    with pytest.raises(MeshError, match="predicted vertices"):
        score_face(vertices[:, :2], faces, landmarks, vertices, landmarks, region)
    with pytest.raises(MeshError, match="face region"):
        score_face(vertices, faces, landmarks, vertices, landmarks, np.array([len(vertices)]))


def test_landmark_errors_and_pooled_figures():
    truth = np.zeros((2, 68, 2))
    predicted = truth.copy()
    predicted[0, :, 0] = 3.0
    predicted[1, :, 1] = 4.0
    use = np.ones((2, 68), bool)
    use[1, :34] = False
    assert np.allclose(landmark_error_px(predicted, truth, use), [3.0, 4.0])
    scores = [FaceScore(np.array([1.0, 2.0, 3.0]), np.eye(4), 1.0, 1), FaceScore(np.array([5.0]), np.eye(4), 1.0, 1)]
    figures = summarise(scores)
    assert figures["faces"] == 2 and figures["median"] == 2.5 and figures["mean"] == 2.75
    assert figures["face_mean_median"] == 3.5
    assert summarise([]) == {"faces": 0}
    assert len(NOW_IBUG) == 7
