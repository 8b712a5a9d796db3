"""Signed distances pinned against analytic shapes, with holes, and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from avatarkit.geometry.sdf import SIGN_METHODS, signed_distance

rng = np.random.default_rng(0)


def _brute_unsigned(vertices, faces, points):
    """Slow, obvious reference: closest point on every triangle (trimesh)."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    _, distance, _ = trimesh.proximity.closest_point_naive(mesh, points)
    return distance


@pytest.mark.parametrize("sign", SIGN_METHODS)
def test_sphere_is_negative_inside_and_exact(sign):
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
    points = rng.uniform(-0.8, 0.8, (4000, 3))
    result = signed_distance(sphere.vertices, sphere.faces, points, sign=sign)
    r = np.linalg.norm(points, axis=1)
    analytic = r - 0.5
    clear = np.abs(analytic) > 2e-3  # the polyhedron differs from the sphere by < 1 mm
    assert np.array_equal(result.sdf[clear] < 0, analytic[clear] < 0)
    assert np.abs(np.abs(result.sdf) - np.abs(analytic)).max() < 2e-3


def test_box_distances_match_analytic():
    box = trimesh.creation.box(extents=(0.4, 0.6, 0.2))
    points = rng.uniform(-0.5, 0.5, (3000, 3))
    half = np.array([0.2, 0.3, 0.1])
    q = np.abs(points) - half
    analytic = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
    result = signed_distance(box.vertices, box.faces, points)
    assert np.abs(result.sdf - analytic).max() < 1e-5


def test_torus_sign_and_closest_points():
    torus = trimesh.creation.torus(major_radius=0.3, minor_radius=0.1, major_sections=96, minor_sections=48)
    points = rng.uniform(-0.45, 0.45, (3000, 3))
    ring = np.sqrt(points[:, 0] ** 2 + points[:, 1] ** 2) - 0.3
    analytic = np.sqrt(ring**2 + points[:, 2] ** 2) - 0.1
    result = signed_distance(torus.vertices, torus.faces, points)
    clear = np.abs(analytic) > 2e-3
    assert np.array_equal(result.sdf[clear] < 0, analytic[clear] < 0)
    assert np.abs(np.linalg.norm(points - result.closest, axis=1) - np.abs(result.sdf)).max() < 1e-5


def test_distance_equals_brute_force_reference():
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    points = rng.normal(scale=0.4, size=(300, 3))
    result = signed_distance(mesh.vertices, mesh.faces, points)
    assert np.abs(np.abs(result.sdf) - _brute_unsigned(mesh.vertices, mesh.faces, points)).max() < 1e-5


def test_winding_sign_survives_holes_where_parity_does_not():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    keep = np.ones(len(sphere.faces), bool)
    keep[rng.choice(len(keep), size=len(keep) // 50, replace=False)] = False  # 2% of faces removed
    points = rng.uniform(-0.8, 0.8, (20000, 3))
    analytic_inside = np.linalg.norm(points, axis=1) < 0.5
    clear = np.abs(np.linalg.norm(points, axis=1) - 0.5) > 0.02
    errors = {}
    for sign in ("winding", "parity"):
        sdf = signed_distance(sphere.vertices, sphere.faces[keep], points, sign=sign).sdf
        errors[sign] = np.mean((sdf[clear] < 0) != analytic_inside[clear])
    assert errors["winding"] == 0.0
    assert errors["parity"] >= errors["winding"]
