"""Coarse-to-fine occupancy evaluation and mesh extraction, pinned on analytic shapes."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit.errors import OptionError
from avatarkit.geometry.surface import face_areas_normals
from avatarkit.reconstruct.extract import evaluate_dense, evaluate_octree, extract_mesh

BOUNDS = np.array([[-0.6, 0.4, -0.6], [0.6, 1.6, 0.6]])


def two_spheres(points):
    """Occupancy of two balls (radius 0.3 at y = 1 and radius 0.1 off to the side)."""
    a = np.linalg.norm(points - [0.0, 1.0, 0.0], axis=1) < 0.3
    b = np.linalg.norm(points - [0.45, 1.0, 0.0], axis=1) < 0.1
    return (a | b).astype(np.float32)


def test_octree_equals_dense_with_far_fewer_queries():
    octree, queried = evaluate_octree(two_spheres, BOUNDS, resolution=128, initial=16)
    dense, all_points = evaluate_dense(two_spheres, BOUNDS, resolution=128)
    assert np.array_equal(octree > 0.5, dense > 0.5)
    assert all_points / queried >= 5  # the target: at least 5x fewer queries


def test_pifus_tolerance_finds_what_hides_between_agreeing_corners():
    """A smooth field (as a network's) with a small bump that crosses 0.5 only between
    coarse lattice points: sides alone skip it; PIFu's tolerance queries it."""
    step = (BOUNDS[1] - BOUNDS[0]) / 64
    bump = BOUNDS[0] + step * 4.5  # in the corner cell of the coarse grid, far from the ball

    def smooth(points):
        body = 1 / (1 + np.exp((np.linalg.norm(points - [0.0, 1.0, 0.0], axis=1) - 0.3) / 0.02))
        small = 0.6 * np.exp(-np.sum((points - bump) ** 2, axis=1) / (2 * (3 * step[0]) ** 2))
        return np.maximum(body, small).astype(np.float32)

    dense, all_points = evaluate_dense(smooth, BOUNDS, 64)
    sides, _ = evaluate_octree(smooth, BOUNDS, 64, initial=8)
    pifu, queried = evaluate_octree(smooth, BOUNDS, 64, initial=8, tolerance=0.01)
    assert ((sides > 0.5) != (dense > 0.5)).sum() > 0  # the bump is lost
    assert np.array_equal(pifu > 0.5, dense > 0.5) and queried < all_points


def test_extracted_surface_is_the_sphere_facing_out_largest_part_only():
    values, _ = evaluate_octree(two_spheres, BOUNDS, resolution=64, initial=8)
    mesh = extract_mesh(values, BOUNDS)
    r = np.linalg.norm(mesh.vertices - [0.0, 1.0, 0.0], axis=1)
    assert np.abs(r - 0.3).max() < 1.2 / 64  # within a voxel of the big sphere; the small one dropped
    _, normals = face_areas_normals(mesh.vertices, mesh.faces)
    centers = mesh.vertices[mesh.faces].mean(1) - [0.0, 1.0, 0.0]
    assert np.mean(np.sum(normals * centers, axis=1) > 0) > 0.99  # counter-clockwise from outside
    both = extract_mesh(values, BOUNDS, keep_all=True)
    assert len(both.faces) > len(mesh.faces)


def test_bad_grids_and_empty_fields():
    with pytest.raises(OptionError, match="power of two"):
        evaluate_octree(two_spheres, BOUNDS, resolution=100)
    with pytest.raises(OptionError, match="finer"):
        evaluate_octree(two_spheres, BOUNDS, resolution=32, initial=64)
    with pytest.raises(OptionError, match="no surface"):
        extract_mesh(np.zeros((9, 9, 9), np.float32), BOUNDS)
