"""voxelize pinned on analytic shapes: voxel centres, signs, holes, overlaps, shells, grids."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from avatarkit.errors import OptionError, ResourceError
from avatarkit.geometry.sdf import MeshDistance
from avatarkit.geometry.voxelize import Grid, check_memory, is_closed, plan_grid, voxelize
from avatarkit.io.voxel_export import read_binvox, write_binvox, write_npy
from avatarkit.structures import Mesh

rng = np.random.default_rng(0)


def centers(voxels):
    return voxels.centers().reshape(-1, 3)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_sphere_voxels_are_the_centres_inside():
    s = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
    mesh = Mesh(s.vertices + np.array([0.2, 1.0, 0.0]), s.faces)
    v = voxelize(mesh, plan_grid(mesh, resolution=48))
    r = np.linalg.norm(centers(v) - [0.2, 1.0, 0.0], axis=1).reshape(v.occupancy.shape)
    clear = np.abs(r - 0.5) > 2e-3
    assert np.array_equal(v.occupancy[clear], r[clear] < 0.5)
    assert v.attrs["method"].startswith("scanline winding")


def test_box_grid_and_centre_convention():
    box = trimesh.creation.box(extents=(0.4, 0.6, 0.2))
    mesh = Mesh(box.vertices, box.faces)
    grid = Grid(origin=np.array([-0.335, -0.415, -0.175]), pitch=0.02, shape=(33, 41, 17))  # no centre on a face
    v = voxelize(mesh, grid)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij"), -1)
    c = grid.origin + (idx + 0.5) * grid.pitch  # voxel (i, j, k) is x, y, z; centre at origin + (index + 0.5) pitch
    inside = (np.abs(c) < [0.2, 0.3, 0.1]).all(-1)
    assert np.array_equal(v.occupancy, inside)
    assert np.allclose(v.centers(), c)
    # one voxel centre inside a tiny box: exactly that voxel, at the index the convention gives
    tiny = trimesh.creation.box(extents=(0.01, 0.01, 0.01))
    tiny.apply_translation(grid.origin + (np.array([4, 7, 2]) + 0.5) * grid.pitch)
    one = voxelize(Mesh(tiny.vertices, tiny.faces), grid).occupancy
    assert np.argwhere(one).tolist() == [[4, 7, 2]]


def test_torus_hole_stays_empty():
    t = trimesh.creation.torus(major_radius=0.3, minor_radius=0.1, major_sections=96, minor_sections=48)
    mesh = Mesh(t.vertices, t.faces)
    v = voxelize(mesh, plan_grid(mesh, resolution=64))
    c = centers(v)
    ring = np.sqrt(c[:, 0] ** 2 + c[:, 1] ** 2) - 0.3
    d = (np.sqrt(ring**2 + c[:, 2] ** 2) - 0.1).reshape(v.occupancy.shape)
    clear = np.abs(d) > 2e-3
    assert np.array_equal(v.occupancy[clear], d[clear] < 0)


@pytest.mark.parametrize("resolution", [40, 64])
def test_mesh_with_holes_uses_winding_numbers_and_matches_the_closed_mesh(resolution):
    s = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    keep = np.ones(len(s.faces), bool)
    keep[rng.choice(len(keep), size=len(keep) // 50, replace=False)] = False  # 2% of faces removed
    closed, holed = Mesh(s.vertices, s.faces), Mesh(s.vertices, s.faces[keep])
    assert is_closed(closed.faces) and not is_closed(holed.faces)
    grid = plan_grid(closed, resolution=resolution)
    a, b = voxelize(closed, grid), voxelize(holed, grid)
    assert b.attrs["method"].startswith("hierarchical")
    assert iou(a.occupancy, b.occupancy) >= 0.999
    # the hierarchy equals the per-voxel winding number everywhere
    md = MeshDistance(holed.vertices, holed.faces)
    reference = (md.query(centers(b)).sdf < 0).reshape(grid.shape)
    assert np.array_equal(b.occupancy, reference)


def test_overlapping_parts_union_with_winding_and_carve_with_parity():
    a = trimesh.creation.box(extents=(0.4, 0.2, 0.2))
    b = trimesh.creation.box(extents=(0.2, 0.4, 0.2))
    both = Mesh(np.vstack([a.vertices, b.vertices]), np.vstack([a.faces, b.faces + len(a.vertices)]))
    grid = Grid(origin=np.array([-0.315, -0.315, -0.135]), pitch=0.02, shape=(31, 31, 13))
    winding = voxelize(both, grid, "winding").occupancy
    parity = voxelize(both, grid, "parity").occupancy
    c = Grid.centers(grid, np.argwhere(np.ones(grid.shape, bool))).reshape(*grid.shape, 3)
    in_a = (np.abs(c) < [0.2, 0.1, 0.1]).all(-1)
    in_b = (np.abs(c) < [0.1, 0.2, 0.1]).all(-1)
    assert np.array_equal(winding, in_a | in_b)
    assert np.array_equal(parity, in_a ^ in_b)


def test_surface_shell_holds_every_voxel_the_surface_touches():
    s = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    mesh = Mesh(s.vertices, s.faces)
    grid = plan_grid(mesh, resolution=32)
    solid = voxelize(mesh, grid).occupancy
    shell = voxelize(mesh, grid, surface=True).occupancy
    assert (shell >= solid).all()
    pts, _ = trimesh.sample.sample_surface(s, 20000, seed=0)
    idx = np.floor((pts - grid.origin) / grid.pitch).astype(int)
    assert shell[idx[:, 0], idx[:, 1], idx[:, 2]].all()
    # and nothing farther from the surface than a voxel's half diagonal
    extra = np.argwhere(shell & ~solid)
    d = np.abs(np.linalg.norm(grid.centers(extra), axis=1) - 0.5)
    assert d.max() <= np.sqrt(3) / 2 * grid.pitch + 1e-3


def test_resolution_pitch_bounds_and_geopifu_grids():
    s = trimesh.creation.box(extents=(0.5, 1.8, 0.3))
    mesh = Mesh(s.vertices + np.array([0, 0.9, 0]), s.faces)
    g = plan_grid(mesh, resolution=100, margin=0.0)
    assert g.shape == (28, 100, 17) and g.pitch == pytest.approx(0.018)
    g = plan_grid(mesh, pitch=0.05, bounds=(-1, 0, -1, 1, 2, 1))
    assert g.shape == (40, 40, 40) and np.allclose(g.origin, [-1, 0, -1])
    g = plan_grid(mesh, preset="geopifu")
    assert g.shape == (128, 192, 128)
    assert g.pitch == pytest.approx(1.8 / (192 * 0.85))  # height binds: 85% of 192 voxels
    center = g.origin + 0.5 * np.array(g.shape) * g.pitch
    assert np.allclose(center, [0, 0.9, 0])
    # Geo-PIFu centres on the vertex mean, not the box's middle, and fits the farther side
    cone = trimesh.creation.cone(radius=0.3, height=1.5, sections=64)  # most vertices at its base
    mesh = Mesh(np.asarray(cone.vertices)[:, [0, 2, 1]], cone.faces[:, [0, 2, 1]])
    g = plan_grid(mesh, preset="geopifu")
    center = g.origin + 0.5 * np.array(g.shape) * g.pitch
    mean = mesh.vertices.mean(axis=0)
    assert np.allclose(center, mean, atol=1e-6) and mean[1] < 0.1  # the mean sits near the base
    top = mesh.vertices[:, 1].max() - mean[1]  # the apex, far above the mean, binds
    assert g.pitch == pytest.approx(top / (0.5 * 192 * 0.85))
    for kwargs, needle in [
        ({}, "one of --resolution and --pitch"),
        ({"resolution": 10, "pitch": 0.1}, "one of"),
        ({"resolution": 0}, "at least 1"),
        ({"pitch": -1.0}, "positive"),
        ({"resolution": 10, "bounds": (5, 5, 5, 6, 6, 6)}, "do not overlap"),
        ({"preset": "geopifu", "resolution": 10}, "fixes the grid"),
    ]:
        with pytest.raises(OptionError, match=needle):
            plan_grid(mesh, **kwargs)


def test_memory_is_estimated_and_refused_with_the_number():
    grid = Grid(np.zeros(3), 0.001, (2048, 2048, 2048))
    with pytest.raises(ResourceError, match=r"2048 x 2048 x 2048 grid needs about 32\.0 GiB"):
        check_memory(grid, 8 * 2**30)
    check_memory(Grid(np.zeros(3), 0.01, (64, 64, 64)), 8 * 2**30)


def test_binvox_and_npy_exports_round_trip(tmp_path):
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    mesh = Mesh(s.vertices, s.faces)
    v = voxelize(mesh, plan_grid(mesh, resolution=20, margin=0.3))
    write_binvox(tmp_path / "v.binvox", v)
    back = read_binvox(tmp_path / "v.binvox")
    assert np.array_equal(back.occupancy, v.occupancy)
    assert np.allclose(back.origin, v.origin) and back.pitch == pytest.approx(v.pitch)
    write_npy(tmp_path / "v.npy", v)
    assert np.array_equal(np.load(tmp_path / "v.npy"), v.occupancy)
    # long runs are split at 255
    big = type(v)(np.ones((30, 30, 30), bool), np.zeros(3), 0.1)
    write_binvox(tmp_path / "big.binvox", big)
    assert read_binvox(tmp_path / "big.binvox").occupancy.all()
