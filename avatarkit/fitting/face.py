"""A parametric face model fitted to photos of a face (the core of the planned ``track-face``).

The energy is metrical-tracker's and photometric_optimization's (Zielonka et al. 2022; Feng's
DECA tooling), on any :class:`~avatarkit.parametric.face.FaceModel` (Anny's head or FLAME):

- **landmarks**: the model's iBUG-68 points projected by each frame's camera against the given
  2D points, each weighted by its confidence, under a robust penalty (Geman-McClure by default)
  whose scale is a share of the face's size in the image; the far side's jaw points of a
  turned head (iBUG annotates the silhouette, the model's jaw points are fixed on the skin) are
  dropped when the ray caster finds them hidden;
- **photometric**: the head rendered through :mod:`avatarkit.render.differentiable` (visibility
  by the ray caster without gradients, barycentrics and interpolation in torch with them),
  shaded by second-order spherical harmonics (9 x 3 per frame, in the camera's axes) times an
  albedo, against the photo's pixels of the model's face region (and of the mask when given),
  robust (Charbonnier) in sRGB, coarse to fine over an image pyramid;
- **silhouette** (masks given): every projected vertex inside the mask (its outside distance
  transform) and every mask contour pixel near a projected vertex;
- **priors** on every parameter: the model's Gaussians (:meth:`FaceModel.prior`) on identity,
  expression, neck and jaw (the parameters are optimised whitened, as offsets from the mean in
  standard deviations), a log-normal prior on the focal length around the given one, the
  albedo's smoothness over the mesh's edges and its closeness to the mean skin colour;
- **temporal smoothness** of expression and head pose between consecutive frames of a sequence.

**Albedo**: a mean skin colour per person (3 linear RGB values, solved in closed form with the
lighting from the landmark fit's shading) times a per-vertex factor ``exp(d)`` (``d`` (V, 3),
0 at the start) held smooth over the mesh's edges and near 0: a model-free albedo that lips,
brows and eyes can darken, without an albedo model that would tie the fit to one dataset's
skin. It is the person's (shared across frames when ``same_person``).

**Stages** (each frame's camera fixed in the world; the head moves in it):

1. rigid initialisation per frame: the model's mean landmarks put in front of the camera by
   robust least squares (scipy's ``least_squares``, several starting yaws, the best kept;
   the jaw line left out);
2. landmarks and priors: first rotation, translation and focal only (``rigid_steps``), then
   identity, expression, neck and jaw too (``landmark_steps``), Adam;
3. photometric (when images are given and ``photometric_steps``): lighting and albedo solved
   in closed form on the landmark fit, then everything together at each ``pyramid`` level, coarse
   to fine, ``photometric_steps`` each. Visibility is found once per step without gradients.

Head pose is optimised in each camera's frame (rotation after the frontal turn, translation
of the model's pivot), the focal length as a log factor shared by the frames whose
intrinsics are the same (one camera filming, or one photo each). The result gives it back in
the world frame as the model's own ``rotation`` and ``translation`` groups.

``docs/face_fit.md`` has the measured figures. This module imports no torch at import time.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.errors import InputError, OptionError
from avatarkit.structures import Cameras, Mesh

if TYPE_CHECKING:
    import torch

    from avatarkit.fitting.progress import Reporter
    from avatarkit.parametric.face import FaceModel

FOCAL_MODES = ("given", "optimise")
"""``given``: the cameras' K are right; ``optimise``: they are a first guess (fx = fy scaled)."""
LANDMARK_LOSSES = ("gm", "huber", "l2")
"""Robust penalties of the landmark term: Geman-McClure, Huber, plain squares."""
JAW = tuple(range(17))
"""The iBUG-68 jaw line (the face's outline, which annotators put on the silhouette)."""
FRONTAL = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))
"""The model's axes (+X its left, +Y up, +Z forward) in a camera looking at its face (OpenCV)."""
FACE_REGION_RADIUS = 0.095
"""The photometric term's region: the model's skin within this many metres of the nose tip
facing forward (H3DS's face region on the neutral head)."""
PRIOR_GROUPS = ("identity", "expression", "neck", "jaw")
"""The groups fitted whitened under the model's prior, where the model has them."""
LR_SCALES = {"rotation": 0.2, "translation": 0.02, "focal": 0.2, "sh": 1.0, "albedo": 0.5}
"""Each group's step size as a multiple of :attr:`FaceFitConfig.lr` (the whitened groups: 1):
radians, metres, log focal, SH radiance, log albedo per unit."""
STAGES = ("rigid", "landmarks", "photometric")
PHOTOMETRIC_COST = 3
"""A photometric step's time in landmark steps (about 50 against 17 ms on a 2-core CPU): how a
time budget is shared between the stages."""


@dataclasses.dataclass(frozen=True)
class FaceFitConfig:
    """How :func:`fit_face` fits (defaults: metrical-tracker's scheme, weights tuned on
    ``benchmarks/bench_face.py``'s synthetic faces)."""

    rigid_steps: int = 30
    """Stage 2a: steps moving rotation, translation and focal only."""
    landmark_steps: int = 120
    """Stage 2b: steps of landmarks and priors over every group."""
    photometric_steps: int = 50
    """Stage 3: steps at each pyramid level (0: no photometric stage)."""
    pyramid: tuple[int, ...] = (4, 2)
    """Stage 3's image pyramid, coarse to fine: each level's downsampling factor."""
    photometric_lr: float = 0.3
    """Stage 3's step size, a share of ``lr`` (it refines a fit already in place)."""
    raster_every: int = 3
    """Stage 3 finds visibility (which triangle each pixel sees) every this many steps; the
    barycentrics follow the vertices at every step."""
    lr: float = 0.05
    """Adam's step in the whitened groups (standard deviations); the others scale it
    (rotation 0.2 rad per unit, translation 0.1 m, focal 0.2 in log, lighting 1, albedo 0.5)."""
    focal: str = "given"
    """``given`` or ``optimise`` (the cameras' K are a guess; :data:`FOCAL_MODES`)."""
    focal_std: float = 0.3
    """Prior on the log focal length around the given one (``optimise``)."""
    landmark_loss: str = "gm"
    """``gm`` (Geman-McClure), ``huber`` or ``l2`` (:data:`LANDMARK_LOSSES`)."""
    landmark_noise: float = 0.02
    """The landmark term's unit, share of the face's size in the image (the diagonal of the
    given landmarks' box; 0.01 is 2 px on a 200 px face): a residual of this size costs as much
    as one standard deviation of a prior."""
    landmark_scale: float = 0.04
    """The robust penalty's scale, share of the face's size: residuals beyond it count less
    (Geman-McClure saturates, Huber grows linearly)."""
    hidden_jaw_weight: float = 0.0
    """Weight of a jaw point the ray caster finds hidden (the far side of a turned head)."""
    identity_weight: float = 1.0
    """Multiplies the identity prior's negative log-density."""
    expression_weight: float = 1.0
    """Multiplies the expression prior's (per frame)."""
    pose_weight: float = 1.0
    """Multiplies the neck's and jaw's priors (per frame)."""
    photometric_weight: float = 8000.0
    """The photometric term: this times the mean Charbonnier distance of the face's pixels
    (sRGB, 0 to 1), per frame."""
    silhouette_weight: float = 50.0
    """The silhouette term (masks given): this times the mean squared distances, in shares of
    the face's size, per frame."""
    albedo_smooth_weight: float = 100.0
    """The albedo factor's smoothness: this times the mean squared log difference over edges."""
    albedo_weight: float = 1e4
    """The albedo factor's closeness to 1: this times its mean squared log."""
    temporal_weight: float = 100.0
    """Smoothness between consecutive frames (``sequence``): this times the mean squared change
    of the whitened expression and of the head's rotation (radians) and translation (decimetres)."""
    time_budget: float = 0.0
    """Seconds for the whole fit (0: no limit): stages end early in proportion to their steps,
    and the step size decays on time as on steps."""
    threads: int = 1
    """CPU threads torch may use during the fit (0: leave torch's setting): the tensors are small
    (a few thousand vertices), and on a busy 2-core machine two threads ran the landmark stage
    ten times slower than one. Restored afterwards."""
    accept_error: float = 0.03
    """A frame is ``converged`` when its mean landmark residual over the points used is at most
    this share of the face's size (and at least half the points were used)."""

    def check(self) -> None:
        if self.focal not in FOCAL_MODES:
            raise OptionError(f"--focal must be one of {', '.join(FOCAL_MODES)}, got {self.focal!r}")
        if self.landmark_loss not in LANDMARK_LOSSES:
            raise OptionError(
                f"--landmark-loss must be one of {', '.join(LANDMARK_LOSSES)}, got {self.landmark_loss!r}"
            )
        if min(self.rigid_steps, self.landmark_steps, self.photometric_steps) < 0:
            raise OptionError("step counts must be 0 or more")
        if self.threads < 0:
            raise OptionError(f"threads must be 0 or more, got {self.threads}")
        if self.raster_every < 1:
            raise OptionError(f"raster_every must be at least 1, got {self.raster_every}")
        if not self.pyramid or any(int(s) != s or s < 1 for s in self.pyramid):
            raise OptionError(f"the pyramid's factors must be whole numbers of at least 1, got {self.pyramid}")
        positive = ("lr", "photometric_lr", "focal_std", "landmark_noise", "landmark_scale", "accept_error")
        for name in positive:
            if not getattr(self, name) > 0:
                raise OptionError(f"{name} must be positive, got {getattr(self, name)}")
        weights = (
            "hidden_jaw_weight", "identity_weight", "expression_weight", "pose_weight", "photometric_weight",
            "silhouette_weight", "albedo_smooth_weight", "albedo_weight", "temporal_weight", "time_budget",
        )  # fmt: skip
        for name in weights:
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise OptionError(f"{name} must be 0 or more, got {value}")


@dataclasses.dataclass
class FaceFit:
    """A face model fitted to N frames.

    Attributes:
        groups: the model's groups per frame, (N, *shape) float32, in the **world** frame:
            ``model(**groups)`` gives :attr:`vertices` (identity repeated when shared).
        identity: (I,) the shared identity, or (N, I) one per frame (not ``same_person``).
        cameras: the frames' cameras, K with the fitted focal length.
        vertices: (N, V, 3) float32 metres, world frame; triangles in :attr:`faces`.
        faces: (F, 3) int64, the model's.
        landmarks2d: (N, 68, 2) the fitted iBUG-68 points projected, pixels.
        landmark_residual_px: (N, 68) their distances to the given points, pixels.
        landmark_used: (N, 68) bool: points with a confidence above 0 that were not dropped as
            hidden jaw points at the end.
        landmark_error_px: (N,) mean of :attr:`landmark_residual_px` over the points used.
        face_size_px: (N,) the given landmarks' box diagonal, pixels (the robust scales' unit).
        photometric_residual: (N,) mean absolute sRGB difference (0 to 1) over the face
            region's pixels at full resolution, with the fitted lighting and albedo; None
            without a photometric stage.
        shading_residual: (N,) the same with lighting solved in closed form under one uniform
            albedo on the final geometry (comparable between fits with and without a
            photometric stage); None without images.
        mask_iou: (N,) intersection over union of the rendered head and the given mask; None
            without masks.
        sh: (N, 9, 3) SH radiance per frame, in each camera's axes (OpenCV); None without a
            photometric stage.
        albedo: (V, 3) or (N, V, 3) float32 sRGB 0 to 1 per vertex; None without one.
        converged: (N,) bool: the landmarks are met (:attr:`FaceFitConfig.accept_error`).
        stopped: ``done``, ``time`` (the budget ran out) or ``interrupted`` (Ctrl-C, SIGTERM).
        seconds: wall time of the fit; ``stage_seconds`` per stage.
        history: logged scalars (``stage``, ``step``, ``loss`` and the terms), every 10 steps.
    """

    groups: dict[str, np.ndarray]
    identity: np.ndarray
    cameras: Cameras
    vertices: np.ndarray
    faces: np.ndarray
    landmarks2d: np.ndarray
    landmark_residual_px: np.ndarray
    landmark_used: np.ndarray
    landmark_error_px: np.ndarray
    face_size_px: np.ndarray
    photometric_residual: np.ndarray | None
    shading_residual: np.ndarray | None
    mask_iou: np.ndarray | None
    sh: np.ndarray | None
    albedo: np.ndarray | None
    converged: np.ndarray
    stopped: str
    seconds: float
    stage_seconds: dict[str, float]
    history: list[dict[str, float]]

    def mesh(self, frame: int = 0) -> Mesh:
        """Frame ``frame``'s head as a :class:`Mesh` (world frame, metres), with the fitted
        albedo as vertex colours when there is one."""
        colors = None
        if self.albedo is not None:
            albedo = self.albedo if self.albedo.ndim == 2 else self.albedo[frame]
            colors = np.rint(np.clip(albedo, 0, 1) * 255).astype(np.uint8)
        return Mesh(self.vertices[frame], self.faces, vertex_colors=colors)


# ----------------------------------------------------------------------------- inputs


@dataclasses.dataclass
class _Inputs:
    images: np.ndarray | None  # (N, H, W, 3) float32 sRGB 0..1
    masks: np.ndarray | None  # (N, H, W) bool
    points: np.ndarray  # (N, 68, 2) float64 px
    confidence: np.ndarray  # (N, 68) float64 0..1
    cameras: Cameras
    face_size: np.ndarray  # (N,) px


def check_inputs(images, masks, landmarks2d, cameras: Cameras, confidence=None) -> _Inputs:
    """The inputs of :func:`fit_face`, checked and converted; raises :class:`InputError` with one
    line naming the problem (shapes, NaN, counts that do not match, empty masks)."""
    points = np.asarray(landmarks2d, dtype=np.float64) if landmarks2d is not None else None
    if points is None or points.ndim != 3 or points.shape[1] != 68 or points.shape[2] not in (2, 3):
        shape = None if points is None else points.shape
        raise InputError(f"landmarks must be (frames, 68, 2) pixels, or (frames, 68, 3) with a confidence, got {shape}")
    n = len(points)
    if n == 0:
        raise InputError("no frames: the landmarks are empty")
    if points.shape[2] == 3:
        if confidence is not None:
            raise InputError("confidence given twice: as the landmarks' third column and as an argument")
        points, confidence = points[..., :2], points[..., 2]
    confidence = np.ones((n, 68)) if confidence is None else np.asarray(confidence, dtype=np.float64)
    if confidence.shape != (n, 68):
        raise InputError(f"confidence must be (frames, 68) = ({n}, 68), got {confidence.shape}")
    if not np.isfinite(points).all():
        bad = np.argwhere(~np.isfinite(points))[0]
        raise InputError(f"landmark {bad[1]} of frame {bad[0]} is not finite (NaN or infinite)")
    if not (np.isfinite(confidence).all() and (confidence >= 0).all() and (confidence <= 1).all()):
        raise InputError("landmark confidences must be finite and between 0 and 1")
    if not isinstance(cameras, Cameras):
        raise InputError(f"cameras must be avatarkit Cameras, got {type(cameras).__name__}")
    if len(cameras) != n:
        raise InputError(f"{len(cameras)} cameras for {n} frames of landmarks: one camera per frame")
    if cameras.projection != "perspective":
        raise InputError("face fitting takes perspective cameras")
    cameras.validate()
    h, w = cameras.height, cameras.width
    use = confidence > 0
    for i in range(n):
        if use[i].sum() < 6:
            raise InputError(f"frame {i} has fewer than 6 landmarks with a confidence above 0")
    face_size = np.array([float(np.linalg.norm(np.ptp(points[i][use[i]], axis=0))) for i in range(n)], dtype=np.float64)
    if not (face_size > 1).all():
        raise InputError(f"the landmarks of frame {int(np.argmin(face_size))} are all at one point")
    out_images = None
    if images is not None:
        array = np.asarray(images)
        if array.ndim != 4 or array.shape[-1] != 3:
            raise InputError(f"images must be (frames, height, width, 3), got {array.shape}")
        if len(array) != n:
            raise InputError(f"{len(array)} images for {n} frames of landmarks")
        if array.shape[1:3] != (h, w):
            raise InputError(f"images of {array.shape[2]} x {array.shape[1]} pixels for cameras of {w} x {h}")
        if array.dtype == np.uint8:
            out_images = array.astype(np.float32) / 255
        else:
            out_images = array.astype(np.float32)
            if not np.isfinite(out_images).all() or out_images.min() < 0 or out_images.max() > 1:
                raise InputError("float images must be finite and between 0 and 1 (or give uint8)")
    out_masks = None
    if masks is not None:
        array = np.asarray(masks)
        if array.ndim == 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.shape != (n, h, w):
            raise InputError(f"masks must be (frames, height, width) = ({n}, {h}, {w}), got {array.shape}")
        out_masks = array > (127 if array.dtype == np.uint8 else 0.5)
        empty = [i for i in range(n) if not out_masks[i].any()]
        if empty:
            raise InputError(f"the mask of frame {empty[0]} is empty")
    return _Inputs(out_images, out_masks, points, confidence, cameras, face_size)


# ----------------------------------------------------------------------------- the fit


def fit_face(
    images,
    masks,
    landmarks2d,
    cameras: Cameras,
    model: FaceModel,
    same_person: bool = True,
    device: str = "cpu",
    config: FaceFitConfig = FaceFitConfig(),
    confidence=None,
    sequence: bool = False,
    reporter: Reporter | None = None,
) -> FaceFit:
    """Fit ``model`` to N frames of a face; see the module docstring.

    Args:
        images: (N, H, W, 3) uint8 sRGB (or float 0..1), or None (landmarks only).
        masks: (N, H, W) the head's silhouette (bool, or uint8 0/255), or None.
        landmarks2d: (N, 68, 2) iBUG-68 points in pixels (OpenCV: integer coordinates are pixel
            centres), or (N, 68, 3) with a confidence (0 .. 1, 0 = missing) as the third column.
        cameras: N perspective cameras (H x W images), each frame's K (known, or a guess with
            ``config.focal = "optimise"``) and world_to_cam.
        model: the face model (:func:`~avatarkit.parametric.face.load_face_model`), on ``device``.
        same_person: one identity (and albedo) for every frame; else one per frame.
        device: ``cpu`` or ``cuda[:N]``: where the fit runs (the model must be there).
        config: :class:`FaceFitConfig`.
        confidence: (N, 68) confidences, when ``landmarks2d`` has no third column.
        sequence: the frames are consecutive (a video): adds the temporal smoothness term.
        reporter: progress (:class:`~avatarkit.fitting.progress.Reporter`).

    Raises:
        InputError: inputs of the wrong shape, with NaN, or counts that do not match.
        OptionError: a bad config, a model without iBUG-68 landmarks, or a loss that is not finite.
    """
    import torch

    from avatarkit.fitting.progress import Reporter, StopRequest

    config.check()
    data = check_inputs(images, masks, landmarks2d, cameras, confidence)
    if "ibug68" not in getattr(model, "embeddings", {}):
        raise OptionError("the face model has no iBUG-68 landmarks (a FLAME model needs its landmark embedding)")
    here, there = model.faces.device, torch.device(device)
    if here.type != there.type or (None not in (here.index, there.index) and here.index != there.index):
        raise OptionError(f"the face model is on {here}, the fit on {device}: load it with device={device!r}")
    started = time.perf_counter()
    reporter = reporter or Reporter()
    problem = _Problem(model, data, same_person, sequence, config, torch.device(device))
    photometric = data.images is not None and config.photometric_steps > 0
    steps = config.rigid_steps + config.landmark_steps + photometric * config.photometric_steps * len(config.pyramid)
    clock = _Clock(started, config, config.rigid_steps + config.landmark_steps)
    if photometric:
        clock.total += PHOTOMETRIC_COST * config.photometric_steps * len(config.pyramid)
    reporter.start(steps, 0)
    stage_seconds: dict[str, float] = {}
    stopped = "done"
    threads = torch.get_num_threads()
    if config.threads and torch.device(device).type == "cpu":
        torch.set_num_threads(config.threads)
    try:
        with StopRequest() as stop:
            t = time.perf_counter()
            problem.initialise_rigid()
            stage_seconds["init"] = time.perf_counter() - t
            t = time.perf_counter()
            stopped = problem.run_landmarks(clock, reporter, stop)
            stage_seconds["landmarks"] = time.perf_counter() - t
            if photometric and stopped != "interrupted":
                t = time.perf_counter()
                got = problem.run_photometric(clock, reporter, stop)
                stopped = got if got != "done" else stopped
                stage_seconds["photometric"] = time.perf_counter() - t
        t = time.perf_counter()
        fit = problem.result(stopped, photometric)
        stage_seconds["result"] = time.perf_counter() - t
    finally:
        reporter.close()
        torch.set_num_threads(threads)
    fit.seconds = time.perf_counter() - started
    fit.stage_seconds = stage_seconds
    return fit


class _Clock:
    """Work done, counted in landmark steps (a photometric step counts :data:`PHOTOMETRIC_COST`),
    and the time budget: each stage may use the budget's share of its work."""

    def __init__(self, started: float, config: FaceFitConfig, total: int) -> None:
        self.started, self.budget, self.total, self.done = started, config.time_budget, max(total, 1), 0
        self.steps = 0

    def fraction(self) -> float:
        """The share of the budget spent (0 without one)."""
        return (time.perf_counter() - self.started) / self.budget if self.budget else 0.0

    def over(self, stage_end: float) -> bool:
        """Whether the budget's share up to work ``stage_end`` (of all the work) is spent."""
        return bool(self.budget) and self.fraction() >= stage_end / self.total


def _robust(squared: torch.Tensor, scale2: float, kind: str) -> torch.Tensor:
    """The landmark penalty of squared residuals: about ``squared`` when small."""
    import torch

    if kind == "gm":
        return squared * scale2 / (squared + scale2)
    if kind == "huber":
        r = squared.clamp(min=1e-12).sqrt()
        s = math.sqrt(scale2)
        return torch.where(r <= s, squared, 2 * s * r - scale2)
    return squared


def _srgb(linear: torch.Tensor) -> torch.Tensor:
    import torch

    c = linear.clamp(min=1e-6)
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def _linear(srgb: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


class _Problem:
    """The parameters, the observations and the energy of one fit (torch, on one device)."""

    def __init__(
        self,
        model: FaceModel,
        data: _Inputs,
        same_person: bool,
        sequence: bool,
        config: FaceFitConfig,
        device: torch.device,
    ) -> None:
        import torch

        self.model, self.data, self.config, self.device = model, data, config, device
        self.same_person, self.sequence = same_person, sequence and len(data.points) > 1
        self.n = n = len(data.points)
        dtype = model.zero_parameters(1)["rotation"].dtype  # the model's (float32 for Anny)
        self.dtype = dtype
        shapes = model.parameter_shapes()
        prior = model.prior()
        self.prior = {
            g: (p.mean.to(device, dtype), p.std.to(device, dtype)) for g, p in prior.items() if g in PRIOR_GROUPS
        }
        self.prior_groups = [g for g in PRIOR_GROUPS if g in shapes and g in self.prior]
        self.faces = model.faces.to(device)
        self.faces_np = model.faces.detach().cpu().numpy()
        emb = model.embeddings["ibug68"]
        self.lmk_faces = emb.face_index
        self.lmk_vertices = torch.as_tensor(emb.vertex_index, device=device)
        self.lmk_bary = torch.as_tensor(emb.bary, dtype=dtype, device=device)
        # the observations
        self.points = torch.as_tensor(data.points, dtype=dtype, device=device)
        self.conf = torch.as_tensor(data.confidence, dtype=dtype, device=device)
        self.face_size = torch.as_tensor(data.face_size, dtype=dtype, device=device)
        self.visible = torch.ones(n, 68, dtype=dtype, device=device)
        k = data.cameras.K
        self.K = torch.as_tensor(k, dtype=dtype, device=device)
        # frames with the same intrinsics share a focal factor
        keys = [tuple(np.round(k[i].reshape(-1), 6)) for i in range(n)]
        unique = list(dict.fromkeys(keys))
        self.focal_group = torch.as_tensor([unique.index(key) for key in keys], device=device)
        # the parameters (whitened prior groups; pose in each camera's frame)
        ident = 1 if same_person else n

        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, dtype=dtype, device=device)

        self.params: dict[str, torch.Tensor] = {}
        for g in self.prior_groups:
            self.params[g] = zeros(ident if g == "identity" else n, *shapes[g])
        self.params["rotation"] = zeros(n, 3)
        self.params["translation"] = zeros(n, 3)
        self.params["focal"] = zeros(len(unique))
        self.frontal = torch.tensor(FRONTAL, dtype=dtype, device=device)
        self.history: list[dict[str, float]] = []
        self.step = 0
        with torch.no_grad():
            neutral = model(**{g: v[:1] * 0 + self.prior[g][0] for g, v in self._groups().items()})
        self.mean_landmarks = (neutral.landmarks68[0] - neutral.pivot[0]).cpu().numpy().astype(np.float64)
        self.face_triangles = _face_region(neutral.vertices[0].cpu().numpy(), self.faces_np, neutral.h3ds[0, 2])
        self.appearance: dict[str, torch.Tensor] | None = None

    # --------------------------------------------------------------- geometry

    def _groups(self) -> dict[str, torch.Tensor]:
        """The model's groups from the whitened parameters (pose left out: it is applied after)."""
        return {g: self.prior[g][0] + self.prior[g][1] * self.params[g] for g in self.prior_groups}

    def geometry(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (N, V, 3) and iBUG-68 points (N, 68, 3) in each camera's frame, metres."""
        from avatarkit.parametric.base import axis_angle_to_matrix

        groups = self._groups()
        if "identity" in groups and groups["identity"].shape[0] == 1 and self.n > 1:
            groups["identity"] = groups["identity"].expand(self.n, -1)
        out = self.model(**groups)
        rotation = axis_angle_to_matrix(self.params["rotation"]) @ self.frontal  # (N, 3, 3)
        shift = self.params["translation"][:, None]
        pivot = out.pivot[:, None]
        vertices = (out.vertices - pivot) @ rotation.transpose(1, 2) + shift
        landmarks = (vertices[:, self.lmk_vertices] * self.lmk_bary[..., None]).sum(-2)
        return vertices, landmarks

    def focal_factor(self) -> torch.Tensor:
        """(N,) each frame's focal length over the given one."""
        return self.params["focal"][self.focal_group].exp()

    def project(self, points: torch.Tensor, k: torch.Tensor | None = None) -> torch.Tensor:
        """Pixels (N, P, 2) of camera-frame points (N, P, 3) (intrinsics ``k``, the given K by
        default, with the focal factor)."""
        import torch

        k = self.K if k is None else k
        f = self.focal_factor()[:, None]
        z = points[..., 2].clamp(min=1e-4)
        u = k[:, None, 0, 0] * f * points[..., 0] / z + k[:, None, 0, 2]
        v = k[:, None, 1, 1] * f * points[..., 1] / z + k[:, None, 1, 2]
        return torch.stack((u, v), -1)

    # --------------------------------------------------------------- stage 1

    def initialise_rigid(self) -> None:
        """Each frame's head pose from the model's mean landmarks (robust least squares, several
        starting yaws; the jaw line left out)."""
        import torch
        from scipy.optimize import least_squares
        from scipy.spatial.transform import Rotation

        frontal = np.asarray(FRONTAL)
        rotations, translations = [], []
        for i in range(self.n):
            use = self.data.confidence[i] > 0
            use[list(JAW)] = False
            if use.sum() < 6:
                use = self.data.confidence[i] > 0
            model = self.mean_landmarks[use]
            target = self.data.points[i][use]
            weight = np.sqrt(self.data.confidence[i][use])[:, None]
            k = self.data.cameras.K[i]
            f = np.array([k[0, 0], k[1, 1]])
            c = np.array([k[0, 2], k[1, 2]])
            size = self.data.face_size[i]
            spread3 = np.sqrt(((model[:, :2] - model[:, :2].mean(0)) ** 2).sum(1).mean())
            spread2 = np.sqrt(((target - target.mean(0)) ** 2).sum(1).mean())
            depth = f.mean() * spread3 / max(spread2, 1e-9)

            def residuals(x: np.ndarray, model=model, target=target, weight=weight, f=f, c=c, size=size):
                r = Rotation.from_rotvec(x[:3]).as_matrix() @ frontal
                p = model @ r.T + x[3:]
                uv = f * p[:, :2] / np.maximum(p[:, 2:], 1e-4) + c
                return (weight * (uv - target) / size).reshape(-1)

            best = None
            for yaw in (-60.0, -30.0, 0.0, 30.0, 60.0):
                start = np.zeros(6)
                start[:3] = [0.0, math.radians(yaw), 0.0]
                r0 = Rotation.from_rotvec(start[:3]).as_matrix() @ frontal
                centre = (model @ r0.T).mean(0)
                start[3:5] = (target.mean(0) - c) * depth / f - centre[:2]
                start[5] = depth - centre[2]
                solved = least_squares(
                    residuals, start, loss="soft_l1", f_scale=self.config.landmark_scale, max_nfev=200
                )
                if best is None or solved.cost < best.cost:
                    best = solved
            assert best is not None
            rotations.append(best.x[:3])
            translations.append(best.x[3:])
        with torch.no_grad():
            self.params["rotation"].copy_(torch.as_tensor(np.array(rotations), dtype=self.dtype))
            self.params["translation"].copy_(torch.as_tensor(np.array(translations), dtype=self.dtype))

    # --------------------------------------------------------------- stage 2

    def landmark_energy(self, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The landmark term (a sum over frames) and the residuals (N, 68) in pixels."""
        uv = self.project(landmarks)
        diff = uv - self.points
        squared = (diff**2).sum(-1)
        size2 = self.face_size[:, None] ** 2
        scale2 = self.config.landmark_scale**2
        penalty = _robust(squared / size2, scale2, self.config.landmark_loss)
        weight = self.conf * self.visible
        energy = (weight * penalty).sum() / self.config.landmark_noise**2
        return energy, squared.detach().sqrt()

    def prior_energy(self) -> torch.Tensor:
        """The priors' negative log-densities, weighted (whitened groups: sums of squares)."""
        c = self.config
        total = self.params["rotation"].new_zeros(())
        weights = {"identity": c.identity_weight, "expression": c.expression_weight}
        for g in self.prior_groups:
            total = total + weights.get(g, c.pose_weight) * (self.params[g] ** 2).sum()
        if c.focal == "optimise":
            total = total + ((self.params["focal"] / c.focal_std) ** 2).sum()
        if self.sequence and c.temporal_weight > 0:
            for g, unit in (("expression", 1.0), ("rotation", 1.0), ("translation", 0.1)):
                if g in self.params:
                    step = (self.params[g][1:] - self.params[g][:-1]) / unit
                    total = total + c.temporal_weight * (step**2).sum(-1).mean() * (self.n - 1)
        return total

    def update_visibility(self, vertices: torch.Tensor, landmarks: torch.Tensor) -> None:
        """Drop (weight ``hidden_jaw_weight``) the jaw points the ray caster finds hidden or
        facing away: the far side of a turned head, where iBUG's points slide onto the cheek's
        silhouette while the model's stay on the skin."""
        import torch

        from avatarkit.render.differentiable import rasterize

        jaw = list(JAW)
        with torch.no_grad():
            uv = self.project(landmarks).cpu().numpy()
            z = landmarks[..., 2].cpu().numpy()
            corners = vertices[:, self.faces[torch.as_tensor(self.lmk_faces, device=self.device)]]  # (N, 68, 3, 3)
            normal = torch.linalg.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0])
            facing = (normal * landmarks).sum(-1) / (normal.norm(dim=-1) * landmarks.norm(dim=-1) + 1e-12)
            facing = facing.cpu().numpy()
            scaled = vertices.clone()
            f = self.focal_factor()[:, None]
            scaled[..., :2] = scaled[..., :2] * f[..., None]
            visible = np.ones((self.n, 68))
            for i in range(self.n):
                factor = max(1, round(self.data.cameras.height / 128))
                cam = _level_camera(self.data.cameras.K[i], self.data.cameras.width, self.data.cameras.height, factor)
                fragments = rasterize(scaled[i], self.faces, cam, str(self.device))
                depth = fragments.depth[0].cpu().numpy()
                h, w = depth.shape
                for j in jaw:
                    col = round(float(uv[i, j, 0] + 0.5) / factor - 0.5)
                    row = round(float(uv[i, j, 1] + 0.5) / factor - 0.5)
                    hidden = facing[i, j] > 0.2  # turned well away from the camera
                    if 0 <= row < h and 0 <= col < w:
                        window = depth[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2]
                        seen = window[window > 0]
                        # hidden behind the cheek: what the camera sees there is well in front of it
                        hidden = hidden or (len(seen) == window.size and seen.max() < z[i, j] - 0.01)
                    visible[i, j] = self.config.hidden_jaw_weight if hidden else 1.0
            self.visible = torch.as_tensor(visible, dtype=self.dtype, device=self.device)

    def run_landmarks(self, clock: _Clock, reporter: Reporter, stop: Any) -> str:
        """Stage 2: rigid (and focal) from landmarks, then every group with its prior."""
        c = self.config
        rigid = ["rotation", "translation"] + (["focal"] if c.focal == "optimise" else [])
        first = self._adam(rigid, c.rigid_steps, "rigid", clock, reporter, stop)
        if first == "interrupted":
            return first
        second = self._adam(self.prior_groups + rigid, c.landmark_steps, "landmarks", clock, reporter, stop)
        return second if second != "done" else first

    def run_photometric(self, clock: _Clock, reporter: Reporter, stop: Any) -> str:
        """Stage 3: lighting and albedo solved on the landmark fit, then everything together,
        coarse to fine (one optimiser across the levels)."""
        c = self.config
        rigid = ["rotation", "translation"] + (["focal"] if c.focal == "optimise" else [])
        steps = c.photometric_steps * len(c.pyramid)
        return self._adam(self.prior_groups + rigid, steps, "photometric", clock, reporter, stop, photometric=True)

    def _adam(
        self,
        names: list[str],
        steps: int,
        stage: str,
        clock: _Clock,
        reporter: Reporter,
        stop: Any,
        photometric: bool = False,
    ) -> str:
        """``steps`` Adam steps on the groups ``names`` (with the lighting and albedo, and the
        pyramid's levels in turn, when ``photometric``); the step size halves at 50 % and again
        at 75 % of the steps (or of the budget's share)."""
        import torch

        from avatarkit.fitting.optim import StepSchedule

        if steps == 0:
            return "done"
        c = self.config
        groups: list[dict[str, Any]] = []
        for name in names:
            self.params[name].requires_grad_(True)
            groups.append({"params": [self.params[name]], "lr_scale": LR_SCALES.get(name, 1.0)})
        level = None
        if photometric:
            with torch.no_grad():
                level = _Level(self, self.geometry()[0], c.pyramid[0])
                self.appearance = self.solve_appearance(self.geometry()[0], level)
            for name in ("sh", "albedo"):
                self.appearance[name].requires_grad_(True)
                groups.append({"params": [self.appearance[name]], "lr_scale": LR_SCALES[name]})
        lr = c.lr * (c.photometric_lr if photometric else 1.0)
        optimizer = torch.optim.Adam(groups, lr=lr)
        schedule = StepSchedule(lr, steps, (0.5, 0.75), 0.5)
        cost = PHOTOMETRIC_COST if photometric else 1
        status = "done"
        stage_end = clock.done + cost * steps
        stage_start_fraction = clock.fraction()
        share = cost * steps / clock.total
        for step in range(steps):
            if photometric and step and step % c.photometric_steps == 0:
                with torch.no_grad():
                    level = _Level(self, self.geometry()[0], c.pyramid[step // c.photometric_steps])
            time_fraction = 0.0
            if clock.budget:
                time_fraction = max(0.0, (clock.fraction() - stage_start_fraction) / max(share, 1e-9))
            schedule.apply(optimizer, step, time_fraction)
            optimizer.zero_grad(set_to_none=True)
            vertices, landmarks = self.geometry()
            if stage != "rigid" and (step % 25 == 0):
                self.update_visibility(vertices.detach(), landmarks.detach())
            lmk, _ = self.landmark_energy(landmarks)
            loss = lmk + self.prior_energy()
            logs = {"landmarks": float(lmk.detach())}
            if level is not None:
                photo, sil, albedo, parts = self.image_energy(vertices, level)
                loss = loss + photo + sil + albedo
                logs.update(parts)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise OptionError(f"the face fit's loss is not finite at {stage} step {step + 1} ({logs})")
            loss.backward()
            optimizer.step()
            clock.done += cost
            clock.steps += 1
            self.step += 1
            logs = {"loss": value, **logs}
            reporter.update(clock.steps, logs)
            if step % 10 == 0 or step == steps - 1:
                self.history.append({"stage": float(STAGES.index(stage)), "step": float(clock.steps), **logs})
            if stop.requested:
                status = "interrupted"
                break
            if clock.over(stage_end):
                status = "time"
                break
        for group in groups:
            for tensor in group["params"]:
                tensor.requires_grad_(False)
        return status

    # --------------------------------------------------------------- stage 3

    def shading(self, vertices: torch.Tensor, level: _Level, frame: int, albedo_log: torch.Tensor | None, sh):
        """The rendered face-region pixels of one frame: (predicted sRGB (P, 3), target (P, 3))
        or None when the frame's face is not seen."""
        import torch

        from avatarkit.render.differentiable import barycentrics, interpolate, rasterize
        from avatarkit.render.lighting import BAND, sh_basis

        scaled = level.render_space(vertices[frame], self.focal_factor()[frame])
        cam = level.cameras[frame]
        fragments = level.fragments[frame]
        if fragments is None or self.step % self.config.raster_every == 0:
            with torch.no_grad():
                fragments = rasterize(scaled.detach(), self.faces, cam, str(self.device))
            level.fragments[frame] = fragments
        bary = barycentrics(scaled, self.faces, fragments, cam)
        normals = _vertex_normals(vertices[frame], self.faces)
        select = level.select(frame, fragments.face[0])
        if not bool(select.any()):
            return None
        n = interpolate(normals, self.faces, fragments, bary)[0].reshape(-1, 3)[select]
        n = torch.nn.functional.normalize(n, dim=-1)
        band = torch.as_tensor(BAND, dtype=self.dtype, device=self.device)[:, None]
        shade = sh_basis(n) @ (band * sh) / math.pi
        assert self.appearance is not None
        base = self.appearance["base"][0 if self.appearance["base"].shape[0] == 1 else frame]
        albedo = base.expand(len(n), 3)
        if albedo_log is not None:
            albedo = albedo * interpolate(albedo_log, self.faces, fragments, bary)[0].reshape(-1, 3)[select].exp()
        predicted = _srgb(albedo * shade)
        return predicted, level.targets[frame][select], fragments

    def solve_appearance(self, vertices: torch.Tensor, level: _Level) -> dict[str, torch.Tensor]:
        """Lighting (per frame) and a uniform albedo in closed form on ``vertices`` (linear
        least squares of linear colours on the SH basis), and a zero albedo factor."""
        import torch

        sh, bases = self._closed_form(vertices, level)
        base = bases.mean(0, keepdim=True) if self.same_person else bases
        for i in range(self.n):  # the lighting under the (shared) base colour
            sh[i] = sh[i] * bases[i] / base[0 if len(base) == 1 else i]
        vertex_count = vertices.shape[1]
        albedo = torch.zeros((1 if self.same_person else self.n, vertex_count, 3), dtype=self.dtype, device=self.device)
        return {"sh": sh, "base": base, "albedo": albedo}

    def _closed_form(self, vertices: torch.Tensor, level: _Level) -> tuple[torch.Tensor, torch.Tensor]:
        """Per frame: SH (9, 3) and a uniform albedo (3,) explaining the face's linear colours."""
        import torch

        from avatarkit.render.differentiable import interpolate, rasterize
        from avatarkit.render.lighting import BAND, sh_basis

        sh = torch.zeros(self.n, 9, 3, dtype=self.dtype, device=self.device)
        sh[:, 0] = 1.0 / 0.282095  # a shading of 1 everywhere
        bases = torch.full((self.n, 3), 0.5, dtype=self.dtype, device=self.device)
        band = torch.as_tensor(BAND, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            for i in range(self.n):
                scaled = level.render_space(vertices[i], self.focal_factor()[i])
                fragments = rasterize(scaled, self.faces, level.cameras[i], str(self.device))
                select = level.select(i, fragments.face[0])
                if int(select.sum()) < 20:
                    continue
                normals = _vertex_normals(vertices[i], self.faces)
                n = interpolate(normals, self.faces, fragments)[0].reshape(-1, 3)[select]
                n = torch.nn.functional.normalize(n, dim=-1)
                basis = sh_basis(n) * band / math.pi  # (P, 9)
                colour = _linear(level.targets[i][select])  # (P, 3)
                gram = basis.T @ basis + 1e-4 * torch.eye(9, dtype=self.dtype, device=self.device) * len(basis)
                m = torch.linalg.solve(gram, basis.T @ colour)  # (9, 3): albedo times radiance
                albedo = (basis @ m).mean(0).clamp(min=1e-3)  # the mean shading is 1
                sh[i] = m / albedo
                bases[i] = albedo
        return sh, bases

    def image_energy(self, vertices: torch.Tensor, level: _Level):
        """The photometric, silhouette and albedo terms (sums over frames) and their logs."""
        c = self.config
        assert self.appearance is not None
        appearance = self.appearance
        photo = vertices.new_zeros(())
        silhouette = vertices.new_zeros(())
        for i in range(self.n):
            albedo_log = appearance["albedo"][0 if appearance["albedo"].shape[0] == 1 else i]
            out = self.shading(vertices, level, i, albedo_log, appearance["sh"][i])
            if out is not None:
                predicted, target, _ = out
                photo = photo + ((predicted - target) ** 2 + 1e-6).sqrt().mean()
            if level.outside is not None and c.silhouette_weight > 0:
                silhouette = silhouette + level.silhouette(self, vertices, i)
        log_albedo = appearance["albedo"]
        edges = level.edges
        smooth = ((log_albedo[:, edges[:, 0]] - log_albedo[:, edges[:, 1]]) ** 2).sum(-1).mean()
        magnitude = (log_albedo**2).sum(-1).mean()
        albedo = c.albedo_smooth_weight * smooth + c.albedo_weight * magnitude
        parts = {
            "photometric": float(photo.detach()) / self.n,
            "silhouette": float(silhouette.detach()) / self.n,
        }
        return c.photometric_weight * photo, c.silhouette_weight * silhouette, albedo, parts

    # --------------------------------------------------------------- result

    def result(self, stopped: str, photometric: bool) -> FaceFit:
        """The fit in the world frame, its residuals and its checks."""
        import torch
        from scipy.spatial.transform import Rotation

        from avatarkit.parametric.base import axis_angle_to_matrix

        with torch.no_grad():
            vertices, landmarks = self.geometry()
            self.update_visibility(vertices, landmarks)
            _, residual = self.landmark_energy(landmarks)
            uv = self.project(landmarks).cpu().numpy()
            groups = {g: v.cpu().numpy().astype(np.float32) for g, v in self._groups().items()}
            model_out = self.model(**{g: torch.as_tensor(v, device=self.device) for g, v in groups.items()})
            pivot0 = model_out.pivot.cpu().numpy().astype(np.float64)  # (N or 1, 3)
            rotation_cam = (axis_angle_to_matrix(self.params["rotation"]) @ self.frontal).cpu().numpy()
            translation_cam = self.params["translation"].cpu().numpy().astype(np.float64)
            factor = self.focal_factor().cpu().numpy().astype(np.float64)
        cams = self.data.cameras
        world_rot, world_shift = [], []
        for i in range(self.n):
            r_cw, t_cw = cams.world_to_cam[i, :3, :3], cams.world_to_cam[i, :3, 3]
            world_rot.append(Rotation.from_matrix(r_cw.T @ rotation_cam[i].astype(np.float64)).as_rotvec())
            p0 = pivot0[i if len(pivot0) > 1 else 0]
            world_shift.append(r_cw.T @ (translation_cam[i] - t_cw) - p0)
        identity = groups.get("identity", np.zeros((1, 0), np.float32))
        out_groups = {g: (np.repeat(v, self.n, 0) if len(v) == 1 and self.n > 1 else v) for g, v in groups.items()}
        out_groups["rotation"] = np.asarray(world_rot, dtype=np.float32)
        out_groups["translation"] = np.asarray(world_shift, dtype=np.float32)
        k = cams.K.copy()
        k[:, 0, 0] *= factor
        k[:, 1, 1] *= factor
        fitted_cameras = Cameras(k, cams.world_to_cam, "perspective", cams.width, cams.height, cams.target)
        with torch.no_grad():
            world = self.model(**{g: torch.as_tensor(v, device=self.device) for g, v in out_groups.items()})
        used = (self.data.confidence > 0) & (self.visible.cpu().numpy() > 0)
        residual_np = residual.cpu().numpy().astype(np.float64)
        error = np.array([r[u].mean() if u.any() else np.inf for r, u in zip(residual_np, used, strict=True)])
        converged = (error <= self.config.accept_error * self.data.face_size) & (used.sum(1) >= 34)
        photometric_residual = shading_residual = mask_iou = sh = albedo = None
        if self.data.images is not None:
            with torch.no_grad():
                level = _Level(self, vertices, 1)
                if photometric and self.appearance is not None:
                    photometric_residual = self._residuals(vertices, level, self.appearance, own=True)
                    sh = self.appearance["sh"].cpu().numpy()
                    linear = self.appearance["base"][:, None] * self.appearance["albedo"].exp()
                    albedo = _srgb(linear).cpu().numpy()
                    albedo = albedo[0] if self.same_person else albedo
                closed_sh, bases = self._closed_form(vertices, level)
                uniform = {"sh": closed_sh, "base": bases, "albedo": torch.zeros_like(vertices[:1])}
                shading_residual = self._residuals(vertices, level, uniform, own=False)
        if self.data.masks is not None:
            mask_iou = self._mask_iou(vertices)
        return FaceFit(
            groups=out_groups,
            identity=identity[0] if self.same_person else identity,
            cameras=fitted_cameras,
            vertices=world.vertices.cpu().numpy().astype(np.float32),
            faces=self.faces_np.astype(np.int64),
            landmarks2d=uv.astype(np.float32),
            landmark_residual_px=residual_np.astype(np.float32),
            landmark_used=used,
            landmark_error_px=error,
            face_size_px=self.data.face_size.copy(),
            photometric_residual=photometric_residual,
            shading_residual=shading_residual,
            mask_iou=mask_iou,
            sh=sh,
            albedo=albedo,
            converged=converged,
            stopped=stopped,
            seconds=0.0,
            stage_seconds={},
            history=self.history,
        )

    def _residuals(self, vertices, level: _Level, appearance: dict, own: bool) -> np.ndarray:
        """(N,) mean absolute sRGB difference over each frame's face pixels."""
        saved, self.appearance = self.appearance, appearance
        try:
            out = np.full(self.n, np.nan)
            for i in range(self.n):
                albedo_log = appearance["albedo"][0 if appearance["albedo"].shape[0] == 1 else i] if own else None
                got = self.shading(vertices, level, i, albedo_log, appearance["sh"][i])
                if got is not None:
                    out[i] = float((got[0] - got[1]).abs().mean())
            return out
        finally:
            self.appearance = saved

    def _mask_iou(self, vertices) -> np.ndarray:
        from avatarkit.render.differentiable import rasterize

        assert self.data.masks is not None
        out = np.zeros(self.n)
        cams = self.data.cameras
        for i in range(self.n):
            cam = _level_camera(cams.K[i], cams.width, cams.height, 1)
            scaled = vertices[i].clone()
            scaled[:, :2] = scaled[:, :2] * self.focal_factor()[i]
            seen = rasterize(scaled, self.faces, cam, str(self.device)).mask[0].cpu().numpy()
            given = self.data.masks[i]
            out[i] = (seen & given).sum() / max((seen | given).sum(), 1)
        return out


class _Level:
    """One pyramid level of stage 3: each frame's crop around the head, downsampled by
    ``factor``, its camera (identity pose: the head is in the camera's frame), the target
    pixels, the face region's triangles, and the silhouette's distance maps."""

    def __init__(self, problem: _Problem, vertices: torch.Tensor, factor: int) -> None:
        import torch
        from scipy.ndimage import binary_erosion, distance_transform_edt

        data, device = problem.data, problem.device
        assert data.images is not None
        self.factor = factor
        self.cameras: list[Cameras] = []
        self.targets: list[torch.Tensor] = []
        self.inside: list[torch.Tensor | None] = []
        self.outside: list[torch.Tensor] | None = [] if data.masks is not None else None
        self.contours: list[torch.Tensor] = []
        self.sizes: list[float] = []
        self.face_triangles = torch.as_tensor(problem.face_triangles, device=device)
        self.fragments: list[Any] = [None] * problem.n
        """Each frame's last visibility (:func:`~avatarkit.render.differentiable.rasterize`)."""
        faces = problem.faces_np
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        edges = np.unique(np.sort(edges, axis=1), axis=0)
        self.edges = torch.as_tensor(edges, device=device)
        h, w = data.cameras.height, data.cameras.width
        with torch.no_grad():
            uv = problem.project(vertices).cpu().numpy()
        for i in range(problem.n):
            lo = uv[i].min(0)
            hi = uv[i].max(0)
            if data.masks is not None:
                ys, xs = np.nonzero(data.masks[i])
                lo = np.minimum(lo, [xs.min(), ys.min()])
                hi = np.maximum(hi, [xs.max(), ys.max()])
            pad = 0.1 * data.face_size[i]
            x0 = int(np.clip(np.floor(lo[0] - pad), 0, w - 1)) // factor * factor
            y0 = int(np.clip(np.floor(lo[1] - pad), 0, h - 1)) // factor * factor
            x1 = int(np.clip(np.ceil(hi[0] + pad) + 1, x0 + factor, w))
            y1 = int(np.clip(np.ceil(hi[1] + pad) + 1, y0 + factor, h))
            cw, ch = max(1, (x1 - x0) // factor), max(1, (y1 - y0) // factor)
            x1, y1 = x0 + cw * factor, y0 + ch * factor
            k = data.cameras.K[i].copy()
            k[0, 2] -= x0
            k[1, 2] -= y0
            self.cameras.append(_level_camera(k, cw * factor, ch * factor, factor))
            image = torch.as_tensor(data.images[i, y0:y1, x0:x1], device=device).permute(2, 0, 1)[None]
            if factor > 1:
                image = torch.nn.functional.avg_pool2d(_linear(image), factor)
                image = _srgb(image)
            self.targets.append(image[0].permute(1, 2, 0).reshape(-1, 3))
            self.sizes.append(float(data.face_size[i]) / factor)
            if data.masks is not None:
                mask = data.masks[i, y0:y1, x0:x1].reshape(ch, factor, cw, factor).mean((1, 3)) > 0.5
                self.inside.append(torch.as_tensor(mask.reshape(-1), device=device))
                assert self.outside is not None
                self.outside.append(torch.as_tensor(distance_transform_edt(~mask), dtype=torch.float32, device=device))
                contour = mask & ~binary_erosion(mask)
                rows, cols = np.nonzero(contour)
                if len(rows) > 400:
                    pick = np.linspace(0, len(rows) - 1, 400).astype(int)
                    rows, cols = rows[pick], cols[pick]
                self.contours.append(torch.as_tensor(np.stack([cols, rows], 1), dtype=torch.float32, device=device))
            else:
                self.inside.append(None)

    def render_space(self, vertices: torch.Tensor, focal: torch.Tensor) -> torch.Tensor:
        """Camera-frame vertices with the focal factor folded into x and y (a linear map, so
        barycentrics are unchanged and the level's cameras keep the given K)."""
        import torch

        return vertices * torch.stack((focal, focal, focal.new_ones(())))

    def select(self, frame: int, face: torch.Tensor) -> torch.Tensor:
        """(H * W,) bool: pixels that see the face region (and are in the mask)."""
        flat = face.reshape(-1)
        select = (flat >= 0) & self.face_triangles[flat.clamp(min=0)]
        inside = self.inside[frame]
        return select & inside if inside is not None else select

    def silhouette(self, problem: _Problem, vertices: torch.Tensor, frame: int) -> torch.Tensor:
        """Every projected vertex inside the mask, every contour pixel near a projected vertex:
        mean squared distances in shares of the face's size."""
        import torch

        assert self.outside is not None
        cam = self.cameras[frame]
        k = torch.as_tensor(cam.K[0], dtype=vertices.dtype, device=vertices.device)
        scaled = self.render_space(vertices[frame], problem.focal_factor()[frame])
        z = scaled[:, 2].clamp(min=1e-4)
        uv = torch.stack((k[0, 0] * scaled[:, 0] / z + k[0, 2], k[1, 1] * scaled[:, 1] / z + k[1, 2]), -1)
        field = self.outside[frame]
        h, w = field.shape
        grid = torch.stack(((uv[:, 0] + 0.5) / w * 2 - 1, (uv[:, 1] + 0.5) / h * 2 - 1), -1)
        out = torch.nn.functional.grid_sample(
            field[None, None], grid[None, :, None], mode="bilinear", padding_mode="border", align_corners=False
        )[0, 0, :, 0]
        size = self.sizes[frame]
        inside = ((out / size) ** 2).mean()
        contour = self.contours[frame]
        gap = torch.cdist(contour, uv).min(1).values
        cover = ((gap / size) ** 2).mean()
        return inside + cover


def _level_camera(k: np.ndarray, width: int, height: int, factor: int) -> Cameras:
    """A camera at the origin looking down +Z (OpenCV) with intrinsics ``k`` for a
    ``width`` x ``height`` image, downsampled by ``factor`` (pixel centres to pixel centres)."""
    k = np.array(k, dtype=np.float64)
    if factor > 1:
        k[:2, :2] /= factor
        k[:2, 2] = (k[:2, 2] + 0.5) / factor - 0.5
    return Cameras(k[None], np.eye(4)[None], "perspective", max(1, width // factor), max(1, height // factor))


def _vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V, 3) area-weighted vertex normals (as ``render`` shades), differentiable."""
    import torch

    corners = vertices[faces]
    cross = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = torch.zeros_like(vertices)
    for corner in range(3):
        normals = normals.index_add(0, faces[:, corner], cross)
    return torch.nn.functional.normalize(normals, dim=-1)


def _face_region(vertices: np.ndarray, faces: np.ndarray, nose_tip) -> np.ndarray:
    """(F,) bool: triangles of the neutral head within :data:`FACE_REGION_RADIUS` of the nose tip
    whose normals face forward (+Z)."""
    nose = np.asarray(nose_tip.detach().cpu().numpy() if hasattr(nose_tip, "detach") else nose_tip)
    corners = vertices[faces]
    near = (np.linalg.norm(corners - nose, axis=-1) <= FACE_REGION_RADIUS).all(1)
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return near & (normal[:, 2] > 0)
