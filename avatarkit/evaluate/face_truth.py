"""Scoring a fitted face against a known head, as the NoW benchmark scores a face fit.

NoW (Sanyal et al. 2019, "Learning to Regress 3D Face Shape and Expression from an Image
without 3D Supervision"; its ``now_evaluation`` code) scores a predicted mesh against a scan:

1. **similarity from seven landmarks**: the eye corners (iBUG 36, 39, 42, 45), the nose tip
   (30) and the mouth corners (48, 54) of the prediction are put onto the scan's by
   Procrustes with a uniform scale (NoW's ``compute_rigid_alignment``: least-squares scale,
   as Umeyama's);
2. **rigid ICP**: the prediction is then moved rigidly (no scale) to minimise the squared
   distances from the scan's points to the predicted *surface* (NoW minimises that by
   Gauss-Newton in chumpy; here Gauss-Newton point-to-plane steps with exact closest points
   on the triangles);
3. **scan-to-mesh distances**: from every point of the scan's face region to the aligned
   predicted surface (closest point on its triangles), in millimetres. NoW reports the
   median, mean and standard deviation of these over all its scans' points pooled.

Here the "scan" is a synthetic head with known truth (``synth --part head``), its face
region ``/regions/face`` (H3DS's: skin within 95 mm of the nose tip facing forward), its
landmarks the face model's iBUG-68 embedding evaluated on the truth's vertices (the synthetic
heads share Anny's head topology). :func:`score_face` scores one face, :func:`summarise` pools
many; :func:`landmark_error_px` is the 2D error of projected landmarks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from avatarkit.errors import MeshError, OptionError

NOW_IBUG = (36, 39, 42, 45, 30, 48, 54)
"""The iBUG-68 indices of NoW's seven alignment landmarks: the eye corners (right eye's outer
and inner, left eye's inner and outer), the nose tip, the mouth corners."""
MM = 1000.0


@dataclasses.dataclass
class FaceScore:
    """One face scored against its truth.

    Attributes:
        distances: (R,) float64 mm: each truth face-region point's distance to the aligned
            prediction's surface.
        transform: (4, 4) the alignment moving the prediction onto the truth (similarity then
            rigid ICP; scale folded in).
        scale: the landmark similarity's uniform scale.
        icp_iterations: ICP iterations run.
    """

    distances: np.ndarray
    transform: np.ndarray
    scale: float
    icp_iterations: int

    @property
    def median(self) -> float:
        return float(np.median(self.distances))

    @property
    def mean(self) -> float:
        return float(self.distances.mean())

    @property
    def std(self) -> float:
        return float(self.distances.std())


def now_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 similarity putting landmarks ``source`` (L, 3) onto ``target`` (L, 3): NoW's
    Procrustes (``procrustes(target, source, scaling=True)``): the least-squares rotation and
    scale (``trace(S) |X| / |Y|``), a proper rotation."""
    x = np.asarray(target, dtype=np.float64)
    y = np.asarray(source, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[1] != 3 or len(x) < 3:
        raise OptionError(f"alignment needs at least 3 matching 3D points, got {y.shape} and {x.shape}")
    mx, my = x.mean(0), y.mean(0)
    x0, y0 = x - mx, y - my
    nx, ny = np.linalg.norm(x0), np.linalg.norm(y0)
    if not (nx > 0 and ny > 0):
        raise OptionError("alignment landmarks all at one point")
    u, s, vt = np.linalg.svd((x0 / nx).T @ (y0 / ny))
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    s[-1] *= d
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt  # y0 @ rotation.T ~ x0
    scale = s.sum() * nx / ny
    m = np.eye(4)
    m[:3, :3] = scale * rotation
    m[:3, 3] = mx - scale * rotation @ my
    return m


def rigid_icp(
    points: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    iterations: int = 30,
    tolerance: float = 1e-5,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, int]:
    """The rigid motion (4x4) of the mesh ``vertices``, ``faces`` that minimises the squared
    distances from ``points`` (P, 3) to its surface: point-to-plane Gauss-Newton steps on exact
    closest points (the mesh stays put and the points move by the inverse, so its BVH is built
    once); a step that does not lower the RMS distance is halved, up to six times. Stops when a
    step lowers it by less than ``tolerance`` of it.
    Returns the motion, the distances (P,) at it and the iterations run."""
    from scipy.spatial.transform import Rotation

    from avatarkit.geometry.sdf import MeshDistance
    from avatarkit.geometry.surface import face_areas_normals

    distance = MeshDistance(np.asarray(vertices, np.float32), np.asarray(faces), device)
    _, normals = face_areas_normals(np.asarray(vertices, np.float64), np.asarray(faces))
    p = np.asarray(points, dtype=np.float64)

    def gaps(m: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        moved = p @ m[:3, :3].T + m[:3, 3]
        hit = distance.query(moved, "normal")
        q = hit.closest.astype(np.float64)
        d = np.linalg.norm(q - moved, axis=1)
        return float(np.sqrt(np.mean(d**2))), d, moved, q, normals[hit.face].astype(np.float64)

    to_mesh = np.eye(4)  # moves the points into the mesh's place: the inverse of the mesh's motion
    rms, d, moved, q, n = gaps(to_mesh)
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 (the count is returned)
        # minimise sum ((x + w x x + t - q) . n)^2 over a small rotation w and a shift t
        a = np.concatenate([np.cross(moved, n), n], axis=1)
        step, *_ = np.linalg.lstsq(a, ((q - moved) * n).sum(1), rcond=None)
        for _ in range(6):  # halve a step that does not lower the RMS distance
            update = np.eye(4)
            update[:3, :3] = Rotation.from_rotvec(step[:3]).as_matrix()
            update[:3, 3] = step[3:]
            trial = gaps(update @ to_mesh)
            if trial[0] < rms:
                break
            step = step / 2
        if not trial[0] < rms:
            break
        gain = 1 - trial[0] / rms
        to_mesh = update @ to_mesh
        rms, d, moved, q, n = trial
        if gain < tolerance:
            break
    return np.linalg.inv(to_mesh), d, done


def score_face(
    pred_vertices: np.ndarray,
    faces: np.ndarray,
    pred_landmarks68: np.ndarray,
    true_vertices: np.ndarray,
    true_landmarks68: np.ndarray,
    region: np.ndarray,
    device: str = "cpu",
) -> FaceScore:
    """NoW's score of a predicted head (vertices (V, 3), metres, any frame; ``faces``; its 68
    iBUG points) against the truth (vertices (V', 3), its 68 points, ``region`` (R,) the truth's
    face-region vertex indices): see the module docstring. Distances in mm."""
    pred = np.asarray(pred_vertices, dtype=np.float64)
    truth = np.asarray(true_vertices, dtype=np.float64)
    region = np.asarray(region, dtype=np.int64)
    for name, v in (("predicted", pred), ("true", truth)):
        if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
            raise MeshError(f"the {name} vertices must be finite (V, 3), got {v.shape}")
    if len(region) == 0 or region.min() < 0 or region.max() >= len(truth):
        raise MeshError(f"the face region must index the truth's {len(truth)} vertices")
    index = list(NOW_IBUG)
    coarse = now_similarity(np.asarray(pred_landmarks68)[index], np.asarray(true_landmarks68)[index])
    scale = float(np.cbrt(np.linalg.det(coarse[:3, :3])))
    placed = pred @ coarse[:3, :3].T + coarse[:3, 3]
    fine, distances, iterations = rigid_icp(truth[region] * MM, placed * MM, faces, device=device)
    fine[:3, 3] /= MM
    return FaceScore(distances, fine @ coarse, scale, iterations)


def landmark_error_px(predicted: np.ndarray, truth: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """(N,) mean pixel distance between predicted and true 2D landmarks (N, L, 2), over the
    points ``use`` (N, L) bool marks (all by default)."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    distance = np.linalg.norm(predicted - truth, axis=-1)
    use = np.ones(distance.shape, bool) if use is None else np.asarray(use, bool)
    return np.array([d[u].mean() if u.any() else np.nan for d, u in zip(distance, use, strict=True)])


def summarise(scores: list[FaceScore]) -> dict[str, float]:
    """NoW's figures over many faces: ``median``, ``mean``, ``std`` (mm) of every face-region
    point's distance, pooled; and the spread of the per-face means (``face_mean_median``,
    ``face_mean_std``) and the number of faces."""
    if not scores:
        return {"faces": 0}
    pooled = np.concatenate([s.distances for s in scores])
    means = np.array([s.mean for s in scores])
    return {
        "faces": len(scores),
        "median": float(np.median(pooled)),
        "mean": float(pooled.mean()),
        "std": float(pooled.std()),
        "face_mean_median": float(np.median(means)),
        "face_mean_std": float(means.std()),
    }
