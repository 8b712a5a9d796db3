"""Surface-to-surface metrics between a predicted and a ground-truth mesh (the core of
``avatarkit evaluate-chamfer``; the ``h3ds`` protocol lives in ``avatarkit.evaluate.h3ds``,
``geopifu`` in ``avatarkit.evaluate.geopifu``). Every choice is documented in ``docs/evaluation.md``.

Both surfaces are sampled area-uniformly (``samples`` points each, seeded). Then, in
metres:

- ``accuracy``: mean distance from each predicted sample to the nearest ground-truth sample;
- ``completeness``: the same from ground truth to prediction;
- ``chamfer_l1``: their mean; ``chamfer_l2``: the mean of the two mean squared distances;
- ``p2s``: mean exact distance from the ground-truth samples to the predicted *surface*
  (closest point on its triangles, not on its samples);
- ``normal_consistency``: mean absolute cosine between each sample's normal and its nearest
  neighbour's, over both directions;
- ``fscore@tau``: harmonic mean of precision (share of predicted samples within tau of the
  ground truth) and recall (share of ground-truth samples within tau of the prediction);
- ``hausdorff``: the larger of the two largest nearest-neighbour distances.

Nearest neighbours come from a k-d tree over Morton-ordered points, queried on every core.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from avatarkit.errors import OptionError
from avatarkit.geometry.surface import sample_surface, surface_normals
from avatarkit.io.meshfile import check_sizes
from avatarkit.io.units import UNIT_NAMES, per_metre
from avatarkit.structures import Mesh, Metrics


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A named evaluation recipe.

    Attributes:
        measures: ``surface`` (accuracy, completeness, chamfer, P2S, normal consistency,
            F-scores, Hausdorff), ``p2s-from-gt`` (ICON's two numbers), ``p2s-from-pred``
            (PIFuHD's two numbers) or ``geopifu`` (Geo-PIFu's four, every vertex, in its box).
        samples: points sampled on each surface.
        units: the units numbers are reported in.
        taus: F-score thresholds, metres.
        source: where the recipe comes from.
    """

    name: str
    samples: int = 100_000
    units: str = "m"
    taus: tuple[float, ...] = (0.005, 0.01, 0.02)
    source: str = "avatarkit default (docs/evaluation.md)"
    measures: str = "surface"


PROTOCOLS = {
    "default": Protocol("default"),
    "pifuhd": Protocol(
        "pifuhd",
        samples=10_000,
        units="cm",
        taus=(),
        source="PIFuHD, lib/evaluator.py MeshEvaluator.get_chamfer_dist and get_surface_dist: 10k samples, "
        "point-to-surface both ways, P2S from the prediction, x100",
        measures="p2s-from-pred",
    ),
    "icon": Protocol(
        "icon",
        samples=1000,
        units="cm",
        taus=(),
        source="ICON, Evaluator.calculate_chamfer_p2s: 1k samples, point-to-surface both ways, x100",
        measures="p2s-from-gt",
    ),
    "geopifu": Protocol(
        "geopifu",
        units="1e-4 box^2",
        taus=(),
        source="Geo-PIFu, main_eval_prepare_iccv.py: every vertex, squared nearest-vertex distances in its "
        "normalised box x1e4 (chamfer, psd), front-view normal cosine and L2 over the ground truth's mask",
        measures="geopifu",
    ),
}


def evaluate(pred: Mesh, gt: Mesh, protocol: Protocol = PROTOCOLS["default"], seed: int = 0, device="cpu") -> Metrics:
    """The metrics ``protocol`` measures (see :class:`Protocol`) of ``pred`` against ``gt``."""
    if protocol.measures == "p2s-from-gt":
        return evaluate_icon(pred, gt, protocol, seed, device)
    if protocol.measures == "p2s-from-pred":
        return evaluate_pifuhd(pred, gt, protocol, seed, device)
    if protocol.measures == "geopifu":
        from avatarkit.evaluate.geopifu import evaluate_geopifu

        return evaluate_geopifu(pred, gt, protocol, device)
    return evaluate_meshes(pred, gt, protocol, seed, device)


def evaluate_icon(pred: Mesh, gt: Mesh, protocol: Protocol = PROTOCOLS["icon"], seed: int = 0, device="cpu"):
    """ICON's two numbers (``Evaluator.calculate_chamfer_p2s``): ``p2s``, the mean distance
    from ``samples`` ground-truth samples to the predicted surface, and ``chamfer``, the mean
    of that and the distance from as many predicted samples to the ground-truth surface;
    both x100 (centimetres for metre meshes)."""
    return _point_to_surface(pred, gt, protocol, seed, device, p2s_from="gt")


def evaluate_pifuhd(pred: Mesh, gt: Mesh, protocol: Protocol = PROTOCOLS["pifuhd"], seed: int = 0, device="cpu"):
    """PIFuHD's two numbers (``MeshEvaluator`` in its ``lib/evaluator.py``): ``p2s``, the mean
    distance from ``samples`` *predicted* samples to the ground-truth surface, and ``chamfer``,
    the mean of that and the distance from as many ground-truth samples to the predicted
    surface; x100 (centimetres for metre meshes)."""
    return _point_to_surface(pred, gt, protocol, seed, device, p2s_from="pred")


def _point_to_surface(pred: Mesh, gt: Mesh, protocol: Protocol, seed: int, device, p2s_from: str) -> Metrics:
    """Samples on each surface, exact distances to the other *surface*, both ways."""
    from avatarkit.geometry.sdf import MeshDistance

    check_sizes(pred, gt, "--input-units")
    rng = np.random.default_rng(seed)
    sg = sample_surface(gt, protocol.samples, rng).points
    sp = sample_surface(pred, protocol.samples, rng).points
    gt_to_pred = np.abs(MeshDistance(pred.vertices, pred.faces, device).query(sg, "normal").sdf)
    pred_to_gt = np.abs(MeshDistance(gt.vertices, gt.faces, device).query(sp, "normal").sdf)
    scale = per_metre(protocol.units)
    p2s = gt_to_pred if p2s_from == "gt" else pred_to_gt
    values = {
        "p2s": float(p2s.mean() * scale),
        "chamfer": float(0.5 * (gt_to_pred.mean() + pred_to_gt.mean()) * scale),
    }
    per_point = {
        "gt_points": sg,
        "gt_to_pred": (gt_to_pred * scale).astype(np.float32),
        "pred_points": sp,
        "pred_to_gt": (pred_to_gt * scale).astype(np.float32),
    }
    return Metrics(values, protocol.units, protocol.name, per_point)


def evaluate_meshes(
    pred: Mesh,
    gt: Mesh,
    protocol: Protocol = PROTOCOLS["default"],
    seed: int = 0,
    device: str = "cpu",
) -> Metrics:
    """Metrics of ``pred`` against ``gt`` (both metres, same frame); see the module docstring.

    Warns (:class:`AvatarkitWarning`) when the two sizes differ by 10x or more: a likely
    units mistake.
    """
    from avatarkit.geometry.sdf import MeshDistance

    if protocol.samples < 1:
        raise OptionError(f"--samples must be positive, got {protocol.samples}")
    if protocol.units not in UNIT_NAMES:
        raise OptionError(f"--units must be one of {', '.join(UNIT_NAMES)}, got {protocol.units!r}")
    check_sizes(pred, gt, "--input-units")
    rng = np.random.default_rng(seed)
    sp = sample_surface(pred, protocol.samples, rng)
    sg = sample_surface(gt, protocol.samples, rng)
    np_, ng = surface_normals(pred, sp.face, sp.bary), surface_normals(gt, sg.face, sg.bary)
    d_pg, i_pg = nearest(sp.points, sg.points)
    d_gp, i_gp = nearest(sg.points, sp.points)
    p2s = np.abs(MeshDistance(pred.vertices, pred.faces, device).query(sg.points, "normal").sdf)
    normal_consistency = 0.5 * (
        np.abs(np.sum(np_ * ng[i_pg], axis=1)).mean() + np.abs(np.sum(ng * np_[i_gp], axis=1)).mean()
    )
    scale = per_metre(protocol.units)
    values = {
        "accuracy": d_pg.mean() * scale,
        "completeness": d_gp.mean() * scale,
        "chamfer_l1": 0.5 * (d_pg.mean() + d_gp.mean()) * scale,
        "chamfer_l2": 0.5 * ((d_pg**2).mean() + (d_gp**2).mean()) * scale**2,
        "p2s": p2s.mean() * scale,
        "normal_consistency": float(normal_consistency),
        "hausdorff": max(d_pg.max(), d_gp.max()) * scale,
    }
    for tau in protocol.taus:
        precision, recall = (d_pg <= tau).mean(), (d_gp <= tau).mean()
        f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        values[f"fscore@{_tau_name(tau, protocol.units)}"] = float(f)
    values = {k: float(v) for k, v in values.items()}
    per_point = {
        "pred_points": sp.points,
        "accuracy": (d_pg * scale).astype(np.float32),
        "gt_points": sg.points,
        "completeness": (d_gp * scale).astype(np.float32),
        "p2s": (p2s * scale).astype(np.float32),
    }
    return Metrics(values, protocol.units, protocol.name, per_point)


def failed_metrics(protocol: Protocol) -> Metrics:
    """The metrics of an empty prediction: every distance infinite, every score 0."""
    if protocol.measures == "geopifu":
        from avatarkit.evaluate.geopifu import failed_geopifu_metrics

        return failed_geopifu_metrics(protocol)
    if protocol.measures != "surface":
        return Metrics(dict.fromkeys(("p2s", "chamfer"), float("inf")), protocol.units, protocol.name)
    values = dict.fromkeys(("accuracy", "completeness", "chamfer_l1", "chamfer_l2", "p2s", "hausdorff"), float("inf"))
    values["normal_consistency"] = 0.0
    for tau in protocol.taus:
        values[f"fscore@{_tau_name(tau, protocol.units)}"] = 0.0
    return Metrics(values, protocol.units, protocol.name)


def nearest(query: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to, and index of, the nearest of ``points`` for every ``query`` point."""
    from scipy.spatial import cKDTree

    from avatarkit.backends.warp import cpu_threads
    from avatarkit.geometry.sdf import morton_order

    # Morton order makes neighbouring queries walk the same tree nodes (2 to 3x faster here)
    order_p = morton_order(points)
    tree = cKDTree(points[order_p], balanced_tree=False, compact_nodes=False)
    order_q = morton_order(query)
    d, i = tree.query(query[order_q], k=1, workers=cpu_threads())
    dist = np.empty(len(query))
    index = np.empty(len(query), dtype=np.int64)
    dist[order_q], index[order_q] = d, order_p[i]
    return dist, index


def _tau_name(tau: float, units: str) -> str:
    return f"{tau * per_metre(units):g}{units}"
