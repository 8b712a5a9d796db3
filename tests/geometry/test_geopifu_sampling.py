"""sample-sdf --preset geopifu as a Geo-PIFu user types it: its query points (prepare_shape_query.py)
around a slab whose distances are known in closed form: the sigma is 3.5 voxels of the grid
voxelize --preset geopifu makes, the uniform points fill that grid's box, and the labels are
balanced as Geo-PIFu balances them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from helpers import invoke
from scipy.stats import ks_2samp

from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.structures import Mesh

CENTRE = np.array([0.2, 0.85, -0.1])
EXTENTS = np.array([1.13, 1.7, 0.2])  # a person-sized slab: wide faces, so distances are mostly planar


def box_sdf(points):
    q = np.abs(points - CENTRE) - EXTENTS / 2
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


def geopifu_pitch():
    """Geo-PIFu's box is 192 voxels tall and 128 wide and deep, the mesh filling 85% of it (metres)."""
    return float(np.max(EXTENTS / (np.array([128, 192, 128]) * 0.85)))


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("geopifu_samples")
    box = trimesh.creation.box(extents=EXTENTS)
    mesh = write_artifact(folder / "slab.h5", Mesh((box.vertices + CENTRE).astype(np.float32), box.faces))
    r = invoke("sample-sdf", mesh, "-o", folder / "samples.h5", "--preset", "geopifu", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["written"][0]["points"] == 75_000  # 15 epochs of Geo-PIFu's 5000
    r = invoke("voxelize", mesh, "-o", folder / "voxels.h5", "--preset", "geopifu")
    assert r.exit_code == 0, r.output
    return read_artifact(folder / "samples.h5", "samples"), read_artifact(folder / "voxels.h5", "voxels")


def test_sigma_and_box_are_the_voxel_grids(sampled):
    samples, voxels = sampled
    a = samples.attrs
    assert a["preset"] == "geopifu" and a["sigma_frame"] == "voxel" and a["uniform_region"] == "geopifu-box"
    assert voxels.pitch == pytest.approx(geopifu_pitch(), rel=1e-6)
    assert np.allclose(a["sigmas_given"], [3.5]) and np.allclose(a["sigmas_m"], [3.5 * voxels.pitch], rtol=1e-6)
    top = voxels.origin + np.array(voxels.occupancy.shape) * voxels.pitch
    assert np.allclose(a["bounds_min"], voxels.origin, atol=1e-6) and np.allclose(a["bounds_max"], top, atol=1e-6)
    p = samples.points
    assert (p >= voxels.origin - 0.2).all() and (p <= top + 0.2).all()  # near points may stray past the box


def test_labels_balanced_and_exact(sampled):
    samples, _ = sampled
    assert samples.occupancy.sum() == 37_500  # Geo-PIFu keeps at most N/2 inside, fills with outside
    assert np.allclose(samples.sdf, box_sdf(samples.points.astype(np.float64)), atol=2e-5)


def test_distance_distribution_matches_the_sigma(sampled):
    """The inside points are a random subset of Geo-PIFu's inside candidates: 4N surface points
    moved by N(0, (3.5 voxels)^2) and N/4 uniform points in the box. Draw those candidates here
    (area-uniform on the slab's faces, closed-form distances) and compare the distributions of
    the distance to the surface; 20% more sigma is told apart."""
    samples, voxels = sampled
    rng = np.random.default_rng(7)
    sigma = 3.5 * geopifu_pitch()
    n = 400_000
    areas = np.array([EXTENTS[1] * EXTENTS[2], EXTENTS[0] * EXTENTS[2], EXTENTS[0] * EXTENTS[1]]).repeat(2)
    face = rng.choice(6, n, p=areas / areas.sum())
    axis, side = face // 2, np.where(face % 2 == 0, -1.0, 1.0)
    surface = CENTRE + (rng.random((n, 3)) - 0.5) * EXTENTS
    surface[np.arange(n), axis] = CENTRE[axis] + side * EXTENTS[axis] / 2
    top = voxels.origin + np.array(voxels.occupancy.shape) * voxels.pitch
    uniform = rng.uniform(voxels.origin, top, (n // 16, 3))

    def inside_distances(s):
        candidates = np.concatenate([surface + rng.normal(0, s, surface.shape), uniform])
        d = box_sdf(candidates)
        return -d[d < 0]

    ours = -samples.sdf[samples.sdf < 0].astype(np.float64)
    assert ks_2samp(ours, inside_distances(sigma)).pvalue > 1e-3
    assert ks_2samp(ours, inside_distances(1.2 * sigma)).pvalue < 1e-6
    # half-normal for a plane: median 0.674 sigma; the slab's edges only shorten inside distances
    assert 0.85 * 0.674 * sigma < np.median(ours) < 0.674 * sigma
