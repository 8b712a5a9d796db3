"""--protocol geopifu against a plain numpy re-implementation of Geo-PIFu's evaluation code path
(``main_eval_prepare_iccv.py``: ``read_and_canonize_gt_mesh``, ``voxelization_normalization``,
``compute_point_based_metrics`` with chrdiller's ChamferDistance, ``render_front_normals``,
``get_front_normals_n_mask``, ``compute_normal_errors``), written here from its code, with its own
camera (its frame: y down, z away from the camera; u = f x + c) and a z-buffer rasterizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from helpers import assert_clean_failure, invoke

from avatarkit.evaluate.chamfer import PROTOCOLS, evaluate
from avatarkit.io.hdf5 import write_artifact
from avatarkit.structures import Mesh

# Constants.py
DIM_W, DIM_H = 128, 192
MARGIN = 0.15
THRESH_H = 0.5 * (1 - MARGIN)
THRESH_WD = 0.5 * DIM_W / DIM_H * (1 - MARGIN)
TO_ITS_FRAME = np.diag([1.0, -1.0, -1.0])  # our world (Y up, facing +Z) -> its front camera's axes


def _ellipsoid(axes, centre, subdivisions, noise=0.0, seed=0, normals=False):
    sphere = trimesh.creation.icosphere(subdivisions)
    v = sphere.vertices * np.asarray(axes) + np.asarray(centre)
    if noise:
        v = v + np.random.default_rng(seed).normal(0, noise, v.shape)
    vn = None
    if normals:  # the exact ellipsoid normals: the ground truth's own (DeepHuman's obj carries vn)
        g = (v - np.asarray(centre)) / np.asarray(axes) ** 2
        vn = (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(np.float32)
    return Mesh(v.astype(np.float32), sphere.faces.astype(np.int32), vertex_normals=vn)


@pytest.fixture(scope="module")
def pair():
    gt = _ellipsoid((0.22, 0.85, 0.14), (0.05, 0.95, 0.02), 3, normals=True)
    pred = _ellipsoid((0.24, 0.8, 0.15), (0.07, 0.93, 0.0), 2, noise=0.004, seed=1)
    return pred, gt


def voxelization_normalization(verts):
    mean = np.mean(verts, axis=0, keepdims=True)
    v = verts - mean
    lo, hi = v.min(axis=0), v.max(axis=0)
    assert np.all(lo < 0) and np.all(hi > 0)
    scale = np.min(
        [THRESH_WD / abs(lo[0]), THRESH_H / abs(lo[1]), THRESH_WD / abs(lo[2]),
         THRESH_WD / hi[0], THRESH_H / hi[1], THRESH_WD / hi[2]]
    )  # fmt: skip
    return v * scale, mean, scale


def chamfer_distance(xyz1, xyz2):
    """chrdiller's nnsearch: float32 coordinates, squared distances, no square root, both ways."""
    a, b = xyz1.astype(np.float32), xyz2.astype(np.float32)
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1, dtype=np.float32)
    return d.min(axis=1), d.min(axis=0)


def vert_normals(v, f):
    """opendr's VertNormals: unnormalised face normals (area-weighted) summed per vertex."""
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for corner in range(3):
        np.add.at(vn, f[:, corner], fn)
    return vn / np.linalg.norm(vn, axis=1, keepdims=True)


def rasterize(v, f, vn, width=2 * DIM_W, height=2 * DIM_H, focal=2.0 * DIM_H):
    """Its orthographic camera (t = (0, 0, 2), f = 384, c at the image centre; pixel centres at
    integer coordinates, so c = (127.5, 191.5)) with a z-buffer: per pixel the nearest face's
    barycentric interpolation of the vertex normals, made unit, and the mask."""
    u = focal * v[:, 0] + (width - 1) / 2
    w = focal * v[:, 1] + (height - 1) / 2
    depth = v[:, 2] + 2.0
    zbuf = np.full((height, width), np.inf)
    normal = np.zeros((height, width, 3))
    for tri in f:
        x, y, z = u[tri], w[tri], depth[tri]
        x0, x1 = max(int(np.ceil(x.min())), 0), min(int(np.floor(x.max())), width - 1)
        y0, y1 = max(int(np.ceil(y.min())), 0), min(int(np.floor(y.max())), height - 1)
        if x0 > x1 or y0 > y1:
            continue
        px, py = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
        det = (y[1] - y[2]) * (x[0] - x[2]) + (x[2] - x[1]) * (y[0] - y[2])
        if abs(det) < 1e-12:
            continue
        b0 = ((y[1] - y[2]) * (px - x[2]) + (x[2] - x[1]) * (py - y[2])) / det
        b1 = ((y[2] - y[0]) * (px - x[2]) + (x[0] - x[2]) * (py - y[2])) / det
        b2 = 1 - b0 - b1
        inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
        zz = b0 * z[0] + b1 * z[1] + b2 * z[2]
        closer = inside & (zz < zbuf[py, px])
        if not closer.any():
            continue
        rows, cols = py[closer], px[closer]
        zbuf[rows, cols] = zz[closer]
        n = b0[closer, None] * vn[tri[0]] + b1[closer, None] * vn[tri[1]] + b2[closer, None] * vn[tri[2]]
        normal[rows, cols] = n / np.linalg.norm(n, axis=1, keepdims=True)
    mask = np.isfinite(zbuf)
    return normal * mask[..., None], mask


def compute_normal_errors(nml_refi, nml_gt, msk):
    msk = msk[..., None].astype(np.float32)
    msk_sum = np.sum(msk)
    cos_error = np.sum(msk * (1 - np.sum(nml_refi * nml_gt, axis=-1, keepdims=True))) / msk_sum
    l2_error = np.sum(msk * np.linalg.norm(nml_refi - nml_gt, axis=-1, keepdims=True)) / msk_sum
    return float(cos_error), float(l2_error)


def geopifu_reference(pred: Mesh, gt: Mesh) -> dict:
    """Geo-PIFu's evaluation of one frame, its code path step by step."""
    # read_and_canonize_gt_mesh: the ground truth in its front camera's axes, then normalised
    gt_v = gt.vertices.astype(np.float64) @ TO_ITS_FRAME.T
    gt_vn = gt.vertex_normals.astype(np.float64) @ TO_ITS_FRAME.T
    gt_n, mean, scale = voxelization_normalization(gt_v)
    # its prediction is made in that box; ours is in the world: the same mean and scale move it
    est_v = (pred.vertices.astype(np.float64) @ TO_ITS_FRAME.T - mean) * scale
    # compute_point_based_metrics
    dist_left2right, dist_right2left = chamfer_distance(gt_n, est_v)
    gt_2_est = float(np.mean(dist_left2right))
    est_2_gt = float(np.mean(dist_right2left))
    # render_front_normals (--compute_vn) and the ground truth's normal map and mask
    est_normal, _ = rasterize(est_v, pred.faces, vert_normals(est_v, pred.faces))
    gt_normal, gt_mask = rasterize(gt_n, gt.faces, gt_vn)
    cos, l2 = compute_normal_errors(est_normal, gt_normal, gt_mask)
    return {
        "chamfer": (gt_2_est + est_2_gt) / 2 * 10000.0,
        "psd": est_2_gt * 10000.0,
        "gt_to_pred": gt_2_est * 10000.0,
        "normal_cos": cos,
        "normal_l2": l2,
    }


def test_matches_a_reimplementation_of_geopifus_code(pair):
    pred, gt = pair
    ours = evaluate(pred, gt, PROTOCOLS["geopifu"]).values
    ref = geopifu_reference(pred, gt)
    for key in ("chamfer", "psd", "gt_to_pred"):
        assert ours[key] == pytest.approx(ref[key], rel=1e-5), key
    assert ref["chamfer"] > 1.0  # not a trivial agreement: the meshes differ by centimetres
    # the normal maps: the same pixels, the same interpolated normals
    assert ours["normal_cos"] == pytest.approx(ref["normal_cos"], abs=1e-6)
    assert ours["normal_l2"] == pytest.approx(ref["normal_l2"], abs=1e-6)
    assert ours["n_samples"] == len(pred.vertices)


def test_identical_meshes_score_zero_and_a_shift_scores_more(pair):
    # without normals of its own: the prediction's are always recomputed (its --compute_vn), the
    # ground truth's are its own, so a mesh with normals would differ from itself by their difference
    gt = Mesh(pair[1].vertices, pair[1].faces)
    same = evaluate(gt, gt, PROTOCOLS["geopifu"]).values
    assert same["chamfer"] == 0 and same["psd"] == 0
    assert same["normal_cos"] < 1e-6 and same["normal_l2"] < 1e-4
    shifted = Mesh(gt.vertices + np.float32([0.01, 0.0, 0.0]), gt.faces)
    moved = evaluate(shifted, gt, PROTOCOLS["geopifu"]).values
    farther = evaluate(
        Mesh(gt.vertices + np.float32([0.03, 0.0, 0.0]), gt.faces),
        gt,
        PROTOCOLS["geopifu"],
    ).values
    assert 0 < moved["chamfer"] < farther["chamfer"] and 0 < moved["psd"] < farther["psd"]
    assert 0 < moved["normal_cos"] < farther["normal_cos"]
    # a whole-voxel shift: 1 cm is (scale x 0.01)^2 x 1e4 of the box, squared, for every vertex
    # whose nearest neighbour is its own copy (most of them on a fine mesh)
    from avatarkit.evaluate.geopifu import normalisation

    _, scale = normalisation(gt.vertices)
    assert moved["chamfer"] <= (scale * 0.01) ** 2 * 1e4 * 1.0001


def test_scale_is_the_ground_truths_and_predictions_follow_it(pair):
    """Scaling both meshes (metres to centimetres, say) leaves every number unchanged: they are in
    the ground truth's normalised box."""
    pred, gt = pair
    a = evaluate(pred, gt, PROTOCOLS["geopifu"]).values
    big = evaluate(
        Mesh(pred.vertices * 3, pred.faces), Mesh(gt.vertices * 3, gt.faces, vertex_normals=gt.vertex_normals),
        PROTOCOLS["geopifu"],
    ).values  # fmt: skip
    for key in ("chamfer", "psd", "gt_to_pred"):
        assert big[key] == pytest.approx(a[key], rel=1e-4)
    assert big["normal_cos"] == pytest.approx(a["normal_cos"], abs=1e-4)


def test_cli_json_keys_and_refusals(pair, tmp_path):
    pred, gt = pair
    p = write_artifact(tmp_path / "pred.h5", pred)
    g = write_artifact(tmp_path / "gt.h5", gt)
    r = invoke("evaluate-chamfer", p, g, "--protocol", "geopifu", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert {"chamfer", "psd", "gt_to_pred", "normal_cos", "normal_l2"} <= set(row)
    assert row["protocol"] == "geopifu" and row["units"] == "1e-4 box^2" and row["n_samples"] == len(pred.vertices)
    assert row["chamfer"] == pytest.approx(geopifu_reference(pred, gt)["chamfer"], rel=1e-5)
    r = invoke("evaluate-chamfer", p, g, "--protocol", "geopifu")  # the human line
    assert r.exit_code == 0 and "psd" in r.stderr + r.stdout and "normal_cos" in r.stderr + r.stdout
    for extra in (["--samples", 10], ["--units", "cm"], ["--tau", 0.01]):
        assert_clean_failure(invoke("evaluate-chamfer", p, g, "--protocol", "geopifu", *extra), "geopifu")
