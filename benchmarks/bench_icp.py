"""icp-align against trimesh's ICP: recover random rigid and similarity transforms
(rotation 5-15 degrees, translation up to 5 cm, scale up to 10%) between two different
samplings (30k points each) of an Anny human. Error: the largest distance of any mesh
vertex from where the true transform puts it.

trimesh's ``registration.icp`` runs on the same target samples (its mesh-target mode needs
the optional rtree package), 50 iterations, with ``reflection=False`` and ``scale`` set as
for ours. (Its Procrustes defaults allow scale *and* reflection: left as they are, a rigid
problem gets a scaled answer.) Ours is given both meshes (exact closest points both ways);
one untimed alignment of each first loads warp's kernels (a once-per-process cost).

``people``: the same with scale between two *different* Anny people (subjects 0 and 1, no
landmarks, identity start): there is no exact answer, so the scale is reported beside the
ratio of their heights, and the coverage (share of target samples within 5% of its size of
the moved source). One-sided trimmed scale ICP shrinks the source onto part of the target.
"""

from __future__ import annotations

import time

import numpy as np
from common import anny_human, machine
from scipy.spatial.transform import Rotation

TRIALS = 3


def _transform(rng, scale: bool) -> np.ndarray:
    axis = rng.normal(size=3)
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(rng.uniform(5, 15))).as_matrix()
    if scale:
        m[:3, :3] *= rng.uniform(0.9, 1.1)
    m[:3, 3] = rng.uniform(-0.05, 0.05, 3)
    return m


def run() -> dict:
    import trimesh

    from avatarkit.geometry.align import coverage, default_max_distance, icp
    from avatarkit.geometry.surface import sample_surface, surface_normals
    from avatarkit.structures import Mesh

    human = anny_human()
    v = human.vertices.astype(np.float64)
    a = sample_surface(human, 30_000, np.random.default_rng(1))
    b = sample_surface(human, 30_000, np.random.default_rng(2))
    normals_a = surface_normals(human, a.face, a.bary)
    icp(a.points, b.points, scale=True, source_normals=normals_a, target_mesh=human, source_mesh=human)  # warm-up
    trimesh.registration.icp(a.points, b.points, max_iterations=1)
    result = {**machine(), "trials": TRIALS}
    for scale in (False, True):
        rng = np.random.default_rng(10 + scale)
        ours_t, ours_e, peer_t, peer_e = [], [], [], []
        for _ in range(TRIALS):
            m = _transform(rng, scale)
            target_mesh = Mesh(v @ m[:3, :3].T + m[:3, 3], human.faces)
            target = b.points @ m[:3, :3].T + m[:3, 3]
            t = time.perf_counter()
            r = icp(
                a.points,
                target,
                scale=scale,
                source_normals=normals_a,
                target_normals=surface_normals(target_mesh, b.face, b.bary),
                target_mesh=target_mesh,
                source_mesh=human,
            )
            ours_t.append(time.perf_counter() - t)
            ours_e.append(
                np.abs(v @ r.source_to_target[:3, :3].T + r.source_to_target[:3, 3] - target_mesh.vertices).max()
            )
            t = time.perf_counter()
            mt, _, _ = trimesh.registration.icp(a.points, target, scale=scale, reflection=False, max_iterations=50)
            peer_t.append(time.perf_counter() - t)
            peer_e.append(np.abs(v @ mt[:3, :3].T + mt[:3, 3] - target_mesh.vertices).max())
        kind = "similarity" if scale else "rigid"
        result[kind] = {
            "ours_max_error_mm": round(float(1000 * max(ours_e)), 5),
            "trimesh_max_error_mm": round(float(1000 * max(peer_e)), 3),
            "ours_s": round(float(np.mean(ours_t)), 3),
            "trimesh_s": round(float(np.mean(peer_t)), 3),
            "speedup_vs_trimesh": round(float(np.mean(peer_t) / np.mean(ours_t)), 1),
        }
    result["people"] = _people(a, normals_a, coverage, default_max_distance, icp, sample_surface, surface_normals)
    return result


def _people(a, normals_a, coverage, default_max_distance, icp, sample_surface, surface_normals) -> dict:
    import trimesh

    from avatarkit.synth.generate import HumanGenerator, SynthConfig

    human, other = anny_human(), HumanGenerator(SynthConfig(texture="clothes")).subject(1)
    b = sample_surface(other, 30_000, np.random.default_rng(2))
    reach = default_max_distance(b.points)
    t = time.perf_counter()
    r = icp(
        a.points,
        b.points,
        scale=True,
        source_normals=normals_a,
        target_normals=surface_normals(other, b.face, b.bary),
        target_mesh=other,
        source_mesh=human,
    )
    ours_t = time.perf_counter() - t
    t = time.perf_counter()
    mt, _, _ = trimesh.registration.icp(a.points, b.points, scale=True, reflection=False, max_iterations=50)
    peer_t = time.perf_counter() - t
    return {
        "height_ratio": round(float(np.ptp(other.vertices[:, 1]) / np.ptp(human.vertices[:, 1])), 4),
        "ours_scale": round(r.scale, 4),
        "ours_coverage": round(coverage(a.points, b.points, r.source_to_target, reach), 3),
        "ours_s": round(ours_t, 3),
        "trimesh_scale": round(float(np.cbrt(np.linalg.det(mt[:3, :3]))), 4),
        "trimesh_coverage": round(coverage(a.points, b.points, mt, reach), 3),
        "trimesh_s": round(peer_t, 3),
    }
