"""Geo-PIFu's evaluation (``main_eval_prepare_iccv.py`` and ``main_eval_metrics_iccv.py`` of
github.com/simpleig/Geo-PIFu), reproduced: the four numbers of its README's table.

Its steps, for one prediction and its ground truth:

1. **Normalisation** (``voxelization_normalization``): the ground truth's vertices minus their
   *mean*, scaled by the largest factor that keeps them inside its box of height 1 with a 15%
   margin: ``min(threshWD / |min x|, threshH / |min y|, threshWD / |min z|, threshWD / max x,
   threshH / max y, threshWD / max z)`` with ``threshH = 0.5 * 0.85`` and ``threshWD = 0.5 *
   128 / 192 * 0.85``. Its predictions are made in that box already (the network's frame), so
   ours (world metres) are moved by the ground truth's mean and scale.
2. **Point metrics** (``compute_point_based_metrics``, chrdiller's ``ChamferDistance``): squared
   distances from every *vertex* to the nearest *vertex* of the other mesh (no square root, no
   surface points), both ways; ``chamfer`` = the mean of the two mean squared distances, ``psd``
   (its "PSD", ``estV_2_gtM_dis``) = the mean squared distance from the predicted vertices to
   the nearest ground-truth vertex; both x 1e4.
3. **Normal metrics** (``render_front_normals``, ``get_front_normals_n_mask``,
   ``compute_normal_errors``): both meshes' normals rendered from the front view, orthographic,
   256 x 384 pixels, 384 pixels per box height, the image centre at the ground truth's vertex
   mean; per pixel the unit normal interpolated from the vertex normals (the prediction's
   recomputed, area-weighted, as its ``--compute_vn`` does; the ground truth's own), 0 off the
   prediction's silhouette. Over the ground truth's mask only: ``normal_cos`` = the mean of
   ``1 - n_pred . n_gt`` and ``normal_l2`` = the mean of ``|n_pred - n_gt|`` (not squared); a
   ground-truth pixel the prediction misses counts 1 in both.

Both renders are ours (:func:`avatarkit.render.render.render`), where Geo-PIFu renders with
opendr and reads the ground truth's normals back from JPEG files rendered at 1024 x 1536 and
resized; ``docs/evaluation.md`` lists what that changes.
"""

from __future__ import annotations

import numpy as np

from avatarkit.structures import Cameras, Mesh, Metrics

SCALE = 1e4
"""Geo-PIFu's factor on its squared distances (``scale=10000.``)."""
MARGIN = 0.15
"""``consts.meshNormMargin``: the mesh fills 85% of its box."""
DIM_W, DIM_H = 128, 192
"""``consts.dim_w``, ``consts.dim_h``: its box is 128 x 192 x 128 voxels of 1/192."""
THRESH_H = 0.5 * (1 - MARGIN)
"""``consts.threshH``: half the box's height, less the margin."""
THRESH_WD = 0.5 * DIM_W / DIM_H * (1 - MARGIN)
"""``consts.threshWD``: half its width and depth, less the margin."""
NORMAL_WIDTH, NORMAL_HEIGHT = 2 * DIM_W, 2 * DIM_H
"""The normal maps' size: its evaluation camera's frustum, 256 x 384 pixels."""
NORMAL_FOCAL = 2 * DIM_H
"""Pixels per unit of its box (``f = consts.dim_h * 2``)."""
FRONT_YAW = 0.0
"""The view the normals are compared in: the subject's front (yaw 0, on +Z), view 0 of
``render --preset geopifu``."""
UNITS = "1e-4 box^2"
"""What ``chamfer``, ``psd`` and ``gt_to_pred`` count: squared lengths in Geo-PIFu's box (height
1), times 1e4; the normal errors have no units."""
KEYS = ("chamfer", "psd", "gt_to_pred", "normal_cos", "normal_l2")


def normalisation(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """Geo-PIFu's ``voxelization_normalization`` of ``vertices`` (N, 3): the (3,) float64 mean it
    subtracts and the scale it multiplies by (box units per metre here). The thresholds of x and
    z are equal and y's are symmetric, so the scale is the same in its frame (y down, z away
    from the camera, any of its four yaws) as in ours."""
    v = np.asarray(vertices, dtype=np.float64)
    mean = v.mean(axis=0)
    centred = v - mean
    lo, hi = centred.min(axis=0), centred.max(axis=0)
    thresh = np.array([THRESH_WD, THRESH_H, THRESH_WD])
    with np.errstate(divide="ignore"):
        scale = float(np.min(np.concatenate([thresh / np.abs(lo), thresh / hi])))
    if not (np.isfinite(scale) and scale > 0):
        from avatarkit.errors import MeshError

        raise MeshError(
            "the ground truth has no extent on some axis around its vertex mean (Geo-PIFu normalises by it)"
        )
    return mean, scale


def front_camera(mean: np.ndarray, scale: float, yaw: float = FRONT_YAW) -> Cameras:
    """Geo-PIFu's evaluation camera in our world: orthographic, 256 x 384 pixels, 384 pixels per
    box height (``384 * scale`` per metre), the image centre on ``mean``, looking at the subject
    from ``yaw``. Its box (width 2/3, height 1) spans the image edge to edge (OpenCV pixel
    centres: ``c = (127.5, 191.5)`` where opendr's ``c`` is (128, 192))."""
    from avatarkit.render.rigs import direction, look_at

    f = NORMAL_FOCAL * scale
    k = np.array([[f, 0, (NORMAL_WIDTH - 1) / 2], [0, f, (NORMAL_HEIGHT - 1) / 2], [0, 0, 1]])
    mean = np.asarray(mean, dtype=np.float64)
    pose = look_at(mean + (2.0 / scale) * direction(yaw, 0.0), mean)  # 2 box units away, as its t = (0, 0, 2)
    return Cameras(k[None], pose[None], "orthographic", NORMAL_WIDTH, NORMAL_HEIGHT, mean[None])


def front_normals(mesh: Mesh, camera: Cameras, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float64 unit normals (world frame; 0 off the mesh) and (H, W) bool mask of
    ``mesh`` seen by ``camera`` (one view), by our renderer."""
    from avatarkit.render.render import RenderConfig, render

    views = render(mesh, camera, RenderConfig(), device=device)
    assert views.normal is not None  # render always writes normals
    mask = views.mask[0] > 0
    normal = np.asarray(views.normal[0], dtype=np.float64) * mask[..., None]
    return normal, mask


def normal_errors(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Geo-PIFu's ``compute_normal_errors``: over the ground truth's ``mask``, the mean of
    ``1 - pred . gt`` and of ``|pred - gt|`` (L2 norm per pixel, not squared)."""
    m = mask.astype(np.float64)
    count = m.sum()
    if not count > 0:
        return float("nan"), float("nan")
    cos = float((m * (1.0 - np.sum(pred * gt, axis=-1))).sum() / count)
    l2 = float((m * np.linalg.norm(pred - gt, axis=-1)).sum() / count)
    return cos, l2


def evaluate_geopifu(pred: Mesh, gt: Mesh, protocol, device: str = "cpu") -> Metrics:
    """Geo-PIFu's four numbers (and ``gt_to_pred``, the other half of its chamfer) of ``pred``
    against ``gt``, both in world metres and the same frame; see the module docstring."""
    from avatarkit.evaluate.chamfer import nearest

    mean, scale = normalisation(gt.vertices)
    vp = (pred.vertices.astype(np.float64) - mean) * scale
    vg = (gt.vertices.astype(np.float64) - mean) * scale
    d_pg, _ = nearest(vp, vg)
    d_gp, _ = nearest(vg, vp)
    pred_to_gt, gt_to_pred = d_pg**2 * SCALE, d_gp**2 * SCALE
    camera = front_camera(mean, scale)
    n_gt, mask = front_normals(gt, camera, device)
    # its --compute_vn: the prediction's vertex normals recomputed (area-weighted), never its own
    n_pred, _ = front_normals(Mesh(pred.vertices, pred.faces), camera, device)
    cos, l2 = normal_errors(n_pred, n_gt, mask)
    values = {
        "chamfer": float(0.5 * (pred_to_gt.mean() + gt_to_pred.mean())),
        "psd": float(pred_to_gt.mean()),
        "gt_to_pred": float(gt_to_pred.mean()),
        "normal_cos": cos,
        "normal_l2": l2,
    }
    per_point = {
        "pred_points": pred.vertices.astype(np.float32),
        "pred_to_gt": pred_to_gt.astype(np.float32),
        "gt_points": gt.vertices.astype(np.float32),
        "gt_to_pred": gt_to_pred.astype(np.float32),
    }
    metrics = Metrics(values, protocol.units, protocol.name, per_point)
    metrics.values["n_samples"] = len(pred.vertices)  # every vertex (as h3ds), an int: left out of summaries
    return metrics


def failed_geopifu_metrics(protocol) -> Metrics:
    """An empty prediction: infinite distances; the normal errors are those Geo-PIFu's code gives
    a render with nothing in it (every ground-truth pixel counts 1)."""
    values = dict.fromkeys(("chamfer", "psd", "gt_to_pred"), float("inf"))
    values |= {"normal_cos": 1.0, "normal_l2": 1.0}
    return Metrics(values, protocol.units, protocol.name)
