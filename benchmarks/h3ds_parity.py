"""Check ``evaluate-chamfer --protocol h3ds`` against the h3ds package itself.

The h3ds package pins old libraries (numpy < 2, opencv), so it runs in its own
environment, on a case this script writes from ours:

    python benchmarks/h3ds_parity.py ours case.npz          # in avatarkit's environment
    pip install h3ds "numpy<2" rtree                         # in a separate environment
    python benchmarks/h3ds_parity.py reference case.npz     # there

Both print gt_to_pred and pred_to_gt (mm) for the full head and the face region. The case:
two different synthetic heads, the prediction moved by a similarity (3% larger, rotated,
shifted) with 0.5 mm noise; the "face" region is the front half of the ground truth.
"""

from __future__ import annotations

import sys

import numpy as np

NAMES = ("right_eye", "left_eye", "nose_tip", "nose_base", "right_lips", "left_lips")


def ours(path: str) -> None:
    from scipy.spatial.transform import Rotation

    from avatarkit.evaluate.h3ds import evaluate_h3ds
    from avatarkit.structures import Mesh
    from avatarkit.synth.generate import HumanGenerator, SynthConfig

    gt = HumanGenerator(SynthConfig(part="head", seed=0)).subject(0)
    other = HumanGenerator(SynthConfig(part="head", seed=7)).subject(1)
    rot = Rotation.from_rotvec([0.05, 0.12, -0.03]).as_matrix()
    noise = np.random.default_rng(0).normal(0, 0.0005, other.vertices.shape)
    pv = (other.vertices.astype(float) * 1.03) @ rot.T + np.array([0.01, -0.02, 0.015]) + noise
    lg, lp = gt.landmark_ids(), other.landmark_ids()
    front = np.flatnonzero(gt.vertices[:, 2] > np.median(gt.vertices[:, 2]))
    np.savez(path, gv=gt.vertices, gf=gt.faces, pv=pv, pf=other.faces, front=front,
             lg=[lg[n] for n in NAMES], lp=[lp[n] for n in NAMES])  # fmt: skip
    for region in (None, "face"):
        m, _ = evaluate_h3ds(Mesh(pv, other.faces), gt, {n: lp[n] for n in NAMES}, {n: lg[n] for n in NAMES},
                             front, region)  # fmt: skip
        print(
            f"avatarkit {region or 'full'}: gt_to_pred {m.values['gt_to_pred']:.6f} pred_to_gt {m.values['pred_to_gt']:.6f}"
        )


def reference(path: str) -> None:
    from h3ds.mesh import Mesh
    from h3ds.numeric import perform_alignment, perform_icp, transform_mesh, unidirectional_chamfer_distance

    d = np.load(path)

    def mesh(v, f):
        m = Mesh()
        m.vertices, m.faces = np.asarray(v, float) * 1000.0, np.asarray(f)  # H3DS works in mm
        return m

    gt, pred = mesh(d["gv"], d["gf"]), mesh(d["pv"], d["pf"])
    lg = {n: int(i) for n, i in zip(NAMES, d["lg"], strict=True)}
    lp = {n: int(i) for n, i in zip(NAMES, d["lp"], strict=True)}
    for region in (None, "face"):  # the steps of H3DS.evaluate_scene, with the package's functions
        aligned, _ = perform_alignment(pred, gt, lp, lg)
        _, t_icp = perform_icp(gt, aligned, d["front"])
        aligned = transform_mesh(aligned, np.linalg.inv(t_icp))
        target = gt.cut(d["front"]) if region else gt
        a = unidirectional_chamfer_distance(target.vertices, aligned.vertices).mean()
        b = unidirectional_chamfer_distance(aligned.vertices, target.vertices).mean()
        print(f"h3ds {region or 'full'}: gt_to_pred {a:.6f} pred_to_gt {b:.6f}")


if __name__ == "__main__":
    {"ours": ours, "reference": reference}[sys.argv[1]](sys.argv[2])
