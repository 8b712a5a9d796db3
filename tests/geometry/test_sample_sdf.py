"""sample-sdf's recipes pinned on analytic shapes: counts, sigmas in metres, signs, normals, colours."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from avatarkit.errors import MeshError, OptionError
from avatarkit.geometry.sample_sdf import PRESETS, preset_config, sample_sdf
from avatarkit.geometry.surface import sample_surface, sample_texture
from avatarkit.structures import Mesh

CENTER = np.array([0.1, 1.0, -0.2])


def sphere(radius=0.5, subdivisions=4, **extra) -> Mesh:
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return Mesh(s.vertices + CENTER, s.faces, **extra)


def analytic(points, radius=0.5):
    return np.linalg.norm(points - CENTER, axis=1) - radius


def test_pifu_is_balanced_with_box_points_at_16_to_1():
    mesh = sphere()
    s = sample_sdf(mesh, preset_config("pifu", points=4000), seed=1)
    assert len(s.points) == 4000
    assert s.occupancy.sum() == 2000  # PIFu keeps half inside when there are enough
    assert s.attrs["sigmas_m"].tolist() == [0.05]
    candidates = s.attrs["n_near"][0] + s.attrs["n_uniform"]
    assert candidates == 4000
    # the kept uniform points come from 4.25 N candidates of which 1/17 uniform
    assert 0.02 < s.attrs["n_uniform"] / 4000 < 0.12
    # uniform points fill PIFu's box: (-128, -28, -128) to (128, 228, 128) for 180 units tall
    lo, hi = s.attrs["bounds_min"], s.attrs["bounds_max"]
    v = mesh.vertices
    height = np.ptp(v[:, 1])
    assert np.allclose(hi - lo, np.array([256, 256, 256]) / 180 * height)
    assert np.isclose(lo[1], v[:, 1].min() - 28 / 180 * height) and np.isclose(0.5 * (lo[0] + hi[0]), v[:, 0].mean())
    assert s.attrs["uniform_region"] == "pifu-box"
    far = np.abs(s.points[:, 2] - v[:, 2].mean()) > 0.6 * height  # far in front or behind: empty space
    assert far.any() and (s.sdf[far] > 0).all()
    boxed = sample_sdf(mesh, preset_config("pifu", points=4000, margin=0.05), seed=1).attrs
    assert np.allclose(boxed["bounds_min"], v.min(0) - 0.05 * 1.0, atol=1e-6) and boxed["uniform_region"] == "box"


def test_sdf_is_negative_inside_and_matches_the_sphere():
    s = sample_sdf(sphere(subdivisions=5), preset_config("pifu", points=3000), seed=0)
    truth = analytic(s.points)
    clear = np.abs(truth) > 2e-3
    assert np.array_equal(s.sdf[clear] < 0, truth[clear] < 0)
    assert np.array_equal(s.occupancy, (s.sdf < 0).astype(np.uint8))
    assert np.abs(s.sdf - truth).max() < 2e-3  # the polyhedron is within 2 mm of the sphere


def test_deepsdf_variances_are_converted_to_metres_for_the_mesh_at_hand():
    mesh = sphere(radius=0.8, subdivisions=5)
    s = sample_sdf(mesh, preset_config("deepsdf", points=60000), seed=0)
    center, radius = mesh.bounding_sphere(1.03)
    assert np.allclose(center, CENTER, atol=1e-6)
    assert radius == pytest.approx(0.8 * 1.03, rel=1e-5)
    expected = np.sqrt([0.005, 0.0005]) * radius
    assert np.allclose(s.attrs["sigmas_m"], expected)
    n1, n2 = s.attrs["n_near"]
    assert s.attrs["n_uniform"] == round(60000 * 3 / 50) and n1 + n2 == 60000 - s.attrs["n_uniform"]
    # on a large sphere the signed distance of a Gaussian offset is its normal component: std = sigma
    assert np.std(s.sdf[:n1]) == pytest.approx(expected[0], rel=0.05)
    assert np.std(s.sdf[n1 : n1 + n2]) == pytest.approx(expected[1], rel=0.05)
    uniform = s.points[n1 + n2 :]
    assert (np.abs(uniform - center) <= radius + 1e-6).all()  # DeepSDF's unit cube, in metres


def test_osa_surface_points_carry_sdf_zero_normals_and_colours():
    base = sphere()
    colors = np.where((base.vertices[:, 1] > CENTER[1])[:, None], [255, 0, 0], [0, 0, 255]).astype(np.uint8)
    mesh = sphere(vertex_colors=colors)
    s = sample_sdf(mesh, preset_config("osa", points=20000), seed=0)
    n = s.attrs["n_surface"]
    assert n == 10000
    assert (s.sdf[:n] == 0).all()
    radial = (s.points[:n] - CENTER) / np.linalg.norm(s.points[:n] - CENTER, axis=1, keepdims=True)
    assert (np.sum(s.normals[:n] * radial, axis=1) > 0.99).all()
    top = s.points[:n, 1] > CENTER[1] + 0.1
    assert (s.colors[:n][top] == [255, 0, 0]).all()
    far = s.points[n + sum(s.attrs["n_near"]) :]
    assert (np.linalg.norm(far - CENTER, axis=1) <= 0.5 + 1e-5).all()  # mesh-to-sdf's unit ball


def test_colours_come_from_the_texture_at_the_surface_uv(textured_sphere):
    rng = np.random.default_rng(0)
    surface = sample_surface(textured_sphere, 500, rng)
    from avatarkit.geometry.surface import interpolate, surface_colors

    uv = interpolate(textured_sphere.uvs, textured_sphere.face_uvs, surface.face, surface.bary)
    got = surface_colors(textured_sphere, surface.face, surface.bary)
    assert np.array_equal(got, sample_texture(textured_sphere.texture, uv))
    # a texel centre returns that texel exactly (row 0 is v = 1)
    tex = textured_sphere.texture
    h, w = tex.shape[:2]
    uv = np.array([[(3 + 0.5) / w, 1 - (5 + 0.5) / h]])
    assert np.array_equal(sample_texture(tex, uv)[0], tex[5, 3])


def test_same_seed_same_points_other_seed_other_points():
    mesh = sphere(subdivisions=2)
    config = preset_config("deepsdf", points=2000)
    a, b, c = (sample_sdf(mesh, config, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.points, b.points) and np.array_equal(a.sdf, b.sdf)
    assert not np.array_equal(a.points, c.points)


def test_custom_flags_change_the_recipe_and_the_recorded_preset():
    config = preset_config("pifu", sigmas=[0.01, 0.002], uniform_fraction=0.5)
    assert config.preset == "custom (from pifu)" and config.sigma_frame == "m"
    s = sample_sdf(sphere(), config, seed=0)
    assert s.attrs["sigmas_m"].tolist() == [0.01, 0.002]
    bounds = (0.0, 0.9, -0.3, 0.3, 1.2, 0.0)
    s = sample_sdf(sphere(), preset_config("deepsdf", points=1000, bounds=bounds), seed=0)
    uniform = s.points[-s.attrs["n_uniform"] :]
    assert (uniform >= np.array(bounds[:3]) - 1e-6).all() and (uniform <= np.array(bounds[3:]) + 1e-6).all()


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"points": 0}, "--points"),
        ({"sigmas": [-0.01]}, "--sigma"),
        ({"uniform_fraction": 1.5}, "--uniform-fraction"),
        ({"bounds": (5.0, 5.0, 5.0, 6.0, 6.0, 6.0)}, "do not overlap"),
        ({"bounds": (1.0, 0.0, 0.0, 0.0, 1.0, 1.0)}, "min < max"),
    ],
)
def test_bad_recipes_are_refused(changes, needle):
    with pytest.raises(OptionError, match=needle):
        sample_sdf(sphere(subdivisions=1), preset_config("pifu", **changes))


def test_degenerate_meshes_are_refused():
    flat = Mesh(np.zeros((3, 3)), [[0, 1, 2]])
    with pytest.raises(MeshError):
        sample_sdf(flat, PRESETS["pifu"])
    with pytest.raises(MeshError, match="colours"):
        sample_sdf(sphere(subdivisions=1), preset_config("pifu", points=10, colors=True))


def test_zero_area_faces_among_good_ones_are_harmless():
    mesh = sphere(subdivisions=3)
    faces = np.vstack([mesh.faces, [[0, 0, 1], [2, 2, 2]]])
    s = sample_sdf(Mesh(mesh.vertices, faces), preset_config("pifu", points=2000), seed=0)
    truth = analytic(s.points)
    clear = np.abs(truth) > 5e-3
    assert np.array_equal(s.sdf[clear] < 0, truth[clear] < 0)


@pytest.mark.slow
def test_mesh_to_sdf_backend_gives_that_package_s_values_on_our_points():
    mesh = sphere(subdivisions=3)
    s = sample_sdf(mesh, preset_config("pifu", points=2000, backend="mesh-to-sdf"), seed=0)
    assert s.attrs["backend"] == "mesh-to-sdf" and s.attrs["sign"].startswith("mesh-to-sdf")
    truth = analytic(s.points)
    assert np.abs(s.sdf - truth).max() < 5e-3  # its distances are to a dense point cloud of the surface
    assert np.mean((s.sdf < 0) != (truth < 0)) < 0.02
