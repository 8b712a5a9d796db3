"""The official H3DS evaluation (``h3ds`` package 0.4.0, ``H3DS.evaluate_scene``), reproduced.

Its steps, in millimetres as the dataset is:

1. coarse alignment of the prediction to the ground truth: Procrustes on the six landmarks
   (``trimesh.registration.procrustes`` with ``reflection=False``; scale and translation
   allowed);
2. fine alignment: ICP (``trimesh.registration.icp`` with its defaults: 20 iterations,
   threshold 1e-5, and *its* Procrustes defaults, which allow scale **and reflection**) of
   the ground truth's ``face`` region vertices to all predicted vertices; the prediction is
   moved by the inverse;
3. with ``region="face"`` the ground truth is cut to the region's vertices;
4. nearest-**vertex** distances (a k-d tree), ground truth to prediction and back; their
   means in mm are ``gt_to_pred`` and ``pred_to_gt``.

The same library calls are made with the same arguments, so the numbers match that code.
The region is H3DS's region file, else the ground-truth mesh file's own ``/regions/face``
(``synth`` writes it); without either, ICP uses every ground-truth vertex (the package always
has one).
Without landmarks on both meshes step 1 is skipped with a warning, as the package does.
Vertex indices (landmark and region files) count the vertices as the file lists them:
:func:`load_h3ds_mesh` keeps that order where our mesh reader would weld duplicates.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarkitWarning, OptionError
from avatarkit.structures import Mesh, Metrics

H3DS_LANDMARKS = ("right_eye", "left_eye", "nose_tip", "nose_base", "right_lips", "left_lips")
MM = 1000.0


def load_h3ds_mesh(path: str | Path, units: str | None = None, up: str = "y", units_flag: str = "--units") -> Mesh:
    """A mesh for the h3ds protocol, its vertices in the file's order.

    Our reader welds vertices that share a position (UV seams); H3DS's own reader keeps
    every ``v`` line, and its landmark and region files index those lines. Where welding
    changed the count, the file is read again in its own order (same units and axes).
    """
    from avatarkit.io.formats import is_hdf5
    from avatarkit.io.meshfile import UP_TO_Y, load_pair_member
    from avatarkit.io.units import METRES_PER_UNIT

    mesh = load_pair_member(path, units, up, units_flag)
    if is_hdf5(path):
        return mesh
    import trimesh

    raw = trimesh.load(path, process=False, maintain_order=True, force="mesh")
    if len(raw.vertices) == len(mesh.vertices):
        return mesh
    warnings.warn(
        f"{path}: {len(raw.vertices)} vertices as listed, {len(mesh.vertices)} once duplicates are welded; the "
        "h3ds protocol counts them as listed (as H3DS's reader does), so landmark and region indices must too",
        AvatarkitWarning,
        stacklevel=2,
    )
    v = np.asarray(raw.vertices, dtype=np.float64) * METRES_PER_UNIT[units or "m"] @ UP_TO_Y[up].T
    return Mesh(v.astype(np.float32), np.asarray(raw.faces, dtype=np.int32))


def failed_h3ds_metrics() -> Metrics:
    """The metrics of an empty prediction: infinite distances."""
    return Metrics(dict.fromkeys(("gt_to_pred", "pred_to_gt", "chamfer"), float("inf")), "mm", "h3ds")


def evaluate_h3ds(
    pred: Mesh,
    gt: Mesh,
    landmarks_pred: dict[str, int] | None,
    landmarks_gt: dict[str, int] | None,
    region_gt: np.ndarray | None = None,
    region: str | None = None,
) -> tuple[Metrics, Mesh]:
    """H3DS's evaluation of ``pred`` against ``gt`` (both metres); returns the metrics (mm)
    and the aligned prediction (metres).

    Raises:
        OptionError: landmark names that do not match, ``region`` without a region file.
        InputError: landmark or region indices outside the meshes.
    """
    import trimesh
    from scipy.spatial import cKDTree

    from avatarkit.io.landmarks import check_vertex_ids
    from avatarkit.io.meshfile import check_sizes

    check_sizes(pred, gt, "--input-units")
    vp = pred.vertices.astype(np.float64) * MM
    vg = gt.vertices.astype(np.float64) * MM
    if region is not None and region_gt is None:
        raise OptionError(
            "--region face needs the ground truth's face region: a region file (--gt-region), or a mesh .h5 "
            "with /regions/face"
        )
    if region_gt is not None:
        check_vertex_ids(region_gt, len(vg), None, "ground-truth region index")
    coarse = np.eye(4)
    if landmarks_pred and landmarks_gt:
        missing = sorted(set(landmarks_gt) - set(landmarks_pred))
        if missing:
            raise OptionError(
                f"landmark names do not match: the prediction lacks {', '.join(missing)} "
                f"(it has {', '.join(sorted(landmarks_pred)) or 'none'})"
            )
        names = list(landmarks_gt)
        ip = np.array([landmarks_pred[n] for n in names])
        ig = np.array([landmarks_gt[n] for n in names])
        for which, ids, count in (("prediction", ip, len(vp)), ("ground truth", ig, len(vg))):
            check_vertex_ids(ids, count, None, f"{which} landmark")
        coarse, _, _ = trimesh.registration.procrustes(vp[ip], vg[ig], reflection=False)
        vp = trimesh.transform_points(vp, coarse)
    else:
        which = "either mesh" if not (landmarks_pred or landmarks_gt) else "the prediction"
        which = "the ground truth" if landmarks_pred and not landmarks_gt else which
        warnings.warn(
            f"no landmarks on {which}: the landmark alignment is skipped and ICP starts from the meshes as "
            "they are (--landmarks-pred, --landmarks-gt)",
            AvatarkitWarning,
            stacklevel=2,
        )
    source = vg if region_gt is None else vg[region_gt]
    fine, _, _ = trimesh.registration.icp(source, vp)
    to_gt = np.linalg.inv(fine)
    vp = trimesh.transform_points(vp, to_gt)
    vg_eval = vg if region is None else vg[region_gt]
    gt_to_pred, _ = cKDTree(vp, leafsize=10).query(vg_eval, k=1)
    pred_to_gt, _ = cKDTree(vg_eval, leafsize=10).query(vp, k=1)
    values = {
        "gt_to_pred": float(gt_to_pred.mean()),
        "pred_to_gt": float(pred_to_gt.mean()),
        "chamfer": float(0.5 * (gt_to_pred.mean() + pred_to_gt.mean())),
    }
    metrics = Metrics(
        values,
        "mm",
        "h3ds",
        {"gt_to_pred": gt_to_pred.astype(np.float32), "pred_to_gt": pred_to_gt.astype(np.float32)},
    )
    aligned = Mesh(vp / MM, pred.faces)
    return metrics, aligned
