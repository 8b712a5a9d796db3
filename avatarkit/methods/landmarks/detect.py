"""Face landmark detectors behind :class:`~avatarkit.structures.detection.LandmarkDetector`:
the built-in network (weights shipped in ``weights/``), a ``train landmarks`` run, or MediaPipe.

The network's detection of one photo (:class:`NetworkDetector`):

1. the photo letterboxed (grey bands) into the box network's square: face centres (peaks of
   its heatmap, at most :data:`CANDIDATES`, score at least ``box_threshold``; none: no face)
   and sizes;
2. per candidate, an upright crop of :data:`~.scenes.CROP_SIDE` face sizes around the centre
   through the point network: 68 points;
3. :data:`REFINE` times, a crop centred, scaled and turned by those points (the eye line
   level) through the point network and through it again flipped (the points averaged with the
   mirror permutation), giving the points, their confidences and the face's presence score;
4. the candidate with the highest product of box and presence scores, if its presence is at
   least ``presence_threshold``; else no face.

torch is imported when a detector is loaded, not with this module. On the CPU a detection runs
on one thread (:data:`THREADS`): these networks are too small for more to help, and on a
machine shared with other jobs two OpenMP threads made a detection 60 times slower (2.4 s
against 38 ms).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.errors import InputError, OptionError
from avatarkit.methods.landmarks import scenes as S
from avatarkit.structures.detection import FaceDetection, LandmarkDetector

if TYPE_CHECKING:
    from avatarkit.methods.landmarks.config import LandmarksConfig

WEIGHTS = Path(__file__).parent / "weights"
"""The shipped detector: ``detector.npz`` (float16 tensors) and ``detector.json`` (the config,
seed, command and measured accuracy)."""
CANDIDATES = 3
"""Face centres of the box network tried per photo, best first."""
REFINE = 2
"""Passes of the point network on crops aligned to its previous points."""
SIZE_STEP = 1.25
"""Largest change of the face size from one pass to the next (a factor)."""
THREADS = 1
"""torch's CPU threads during a detection (restored after)."""


def load_detector(
    spec: str | Path | None = None, device: str = "cpu", model_file: Path | None = None
) -> LandmarkDetector:
    """A landmark detector: None or ``builtin`` the shipped network, ``mediapipe`` MediaPipe's
    face landmarker (``model_file``: its ``.task`` file), anything else a ``train landmarks`` run
    folder or checkpoint.

    Raises:
        OptionError: ``mediapipe`` without ``model_file``; a run of another method.
        InputError: a path that is not a run, or unreadable weights.
    """
    if spec is None or str(spec) == "builtin":
        return load_builtin(device)
    if str(spec) == "mediapipe":
        if model_file is None:
            raise OptionError("--detector mediapipe needs --detector-model FILE")
        from avatarkit.methods.landmarks.mediapipe import MediaPipeDetector

        return MediaPipeDetector(model_file)
    return load_run(Path(spec), device)


def load_builtin(device: str = "cpu", weights: Path = WEIGHTS) -> NetworkDetector:
    """The detector shipped in ``weights`` (``detector.npz`` and ``detector.json``)."""
    import torch

    from avatarkit.methods.configs import from_dict
    from avatarkit.methods.landmarks.config import LandmarksConfig
    from avatarkit.methods.landmarks.model import LandmarkNet

    npz, info = weights / "detector.npz", weights / "detector.json"
    if not npz.is_file() or not info.is_file():
        raise InputError("the built-in landmark detector's weights are missing (reinstall avatarkit)", weights)
    config = from_dict(LandmarksConfig, json.loads(info.read_text())["config"])
    model = LandmarkNet(config)
    with np.load(npz) as arrays:
        state = {name: torch.from_numpy(arrays[name].astype(np.float32)) for name in arrays.files}
    for name, value in model.state_dict().items():  # integer buffers (BN's batch counts) keep their type
        if name in state:
            state[name] = state[name].to(value.dtype)
    model.load_state_dict(state)
    return NetworkDetector(model.to(device).eval(), config, device, "builtin")


def load_run(run: Path, device: str = "cpu") -> NetworkDetector:
    """The network of a ``train landmarks`` run folder or checkpoint."""
    from avatarkit.methods.registry import load_trained

    if not run.exists():
        raise InputError("no such detector: not builtin, mediapipe, nor a train landmarks run folder", run)
    trained = load_trained(run, device, meshes=False)
    if trained.spec.name != "landmarks":
        raise OptionError(
            f"--detector {run}: a {trained.spec.name} run, not a landmark detector (give a `train landmarks` run)"
        )
    return NetworkDetector(trained.model, trained.config, device, str(run))


def export_weights(
    run: Path, weights: Path, extra: dict[str, Any] | None = None, thresholds: dict[str, float] | None = None
) -> Path:
    """Write a run's network as the shipped detector: ``detector.npz`` (float16, BN batch counts
    dropped) and ``detector.json`` (the config, with ``thresholds``: detection thresholds
    chosen after training, e.g. ``{"presence_threshold": 0.9}``, and ``extra``). Returns the npz
    path."""
    from avatarkit.io.atomic import atomic_path
    from avatarkit.methods.configs import replace, to_dict
    from avatarkit.methods.registry import load_trained

    trained = load_trained(run, "cpu", meshes=False)
    if thresholds:
        unknown = set(thresholds) - {"box_threshold", "presence_threshold"}
        if unknown:
            raise OptionError(f"not detection thresholds: {', '.join(sorted(unknown))}")
        trained.config = replace(trained.config, **thresholds)
    arrays = {
        name: value.detach().cpu().numpy().astype(np.float16)
        for name, value in trained.model.state_dict().items()
        if not name.endswith("num_batches_tracked")
    }
    weights.mkdir(parents=True, exist_ok=True)
    with atomic_path(weights / "detector.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    info = {"config": to_dict(trained.config), "step": trained.step, **(extra or {})}
    with atomic_path(weights / "detector.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return weights / "detector.npz"


class NetworkDetector:
    """A :class:`~avatarkit.structures.detection.LandmarkDetector` over a ``LandmarkNet``."""

    def __init__(self, model: Any, config: LandmarksConfig, device: str, name: str) -> None:
        self.model, self.config, self.device, self.name = model.eval(), config, device, name

    def detect(self, image: np.ndarray) -> FaceDetection | None:
        """The most confident face in ``image`` ((H, W, 3) uint8), or None."""
        import torch

        image = check_image(image)
        threads = torch.get_num_threads()
        try:
            if self.device == "cpu" or str(self.device).startswith("cpu"):
                torch.set_num_threads(THREADS)
            with torch.inference_mode():
                best, rank = None, -1.0
                for centre, size, box_score in self._candidates(image):
                    found = self._refine(image, centre, size)
                    if found.score * box_score > rank:
                        best, rank = found, found.score * box_score
        finally:
            torch.set_num_threads(threads)
        if best is None or best.score < self.config.presence_threshold:
            return None
        return best

    # ------------------------------------------------------------------ passes

    def _candidates(self, image: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
        """Face centres (image pixels), sizes (RMS radii, pixels) and scores from the box network."""
        import torch

        from avatarkit.methods.landmarks.model import STRIDE

        side = self.config.scene_size
        h, w = image.shape[:2]
        scale = side / max(h, w)
        matrix = np.array([[scale, 0, 0], [0, scale, 0]], np.float64)
        matrix[:, 2] = (scale - 1) / 2 + np.array([(side - w * scale) / 2, (side - h * scale) / 2])
        square = warp(image, matrix, side)
        out = self.model.box(self._tensor(square[None]))[0].float().cpu()
        heat = torch.sigmoid(out[0])
        peaks = heat * (heat == torch.nn.functional.max_pool2d(heat[None], 3, 1, 1)[0])
        scores, flat = peaks.reshape(-1).topk(CANDIDATES)
        g = heat.shape[-1]
        found: list[tuple[np.ndarray, float, float]] = []
        for score, index in zip(scores.tolist(), flat.tolist(), strict=True):
            if score < self.config.box_threshold:
                break
            iy, ix = divmod(index, g)
            at = (
                np.array([(ix + float(out[2, iy, ix])) * STRIDE, (iy + float(out[3, iy, ix])) * STRIDE])
                + (STRIDE - 1) / 2
            )
            centre = (at - matrix[:, 2]) / scale
            found.append((centre, float(np.exp(float(out[1, iy, ix]))) * side / scale, score))
        return found

    def _points(self, image: np.ndarray, matrices: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The point network on crops of ``image`` through ``matrices``, each also flipped:
        (N, 68, 2) image pixels, (N, 68) confidences, (N,) presence probabilities."""
        import torch

        from avatarkit.methods.landmarks.model import soft_argmax

        size = self.config.crop_size
        crops = np.stack([warp(image, m, size) for m in matrices])
        both = np.concatenate([crops, crops[:, :, ::-1]])
        logits, presence = self.model.points(self._tensor(both))
        out_points, _, out_confidence = soft_argmax(logits)
        points = out_points.cpu().numpy().astype(np.float64)
        confidence = out_confidence.cpu().numpy().astype(np.float64)
        n = len(matrices)
        flipped = S.flip_points(points[n:], size)
        crop_points = 0.5 * (points[:n] + flipped)
        conf = 0.5 * (confidence[:n] + confidence[n:][:, S.MIRROR])
        prob = torch.sigmoid(presence.float()).cpu().numpy()
        present = 0.5 * (prob[:n] + prob[n:])
        image_points = np.stack([S.apply(S.invert(m), p) for m, p in zip(matrices, crop_points, strict=True)])
        return image_points, conf, present

    def _refine(self, image: np.ndarray, centre: np.ndarray, size: float) -> FaceDetection:
        crop = self.config.crop_size
        matrix = S.crop_matrix(centre, S.CROP_SIDE * size, 0.0, crop)
        points, confidence, present = self._points(image, [matrix])
        for _ in range(REFINE):
            c, s, angle = S.face_frame(points[0])
            # points pulled together (a soft-argmax on a face it does not see well) would shrink
            # the next crop, and the next: the size moves by a quarter at most per pass
            size = float(np.clip(s, size / SIZE_STEP, size * SIZE_STEP))
            points, confidence, present = self._points(image, [S.crop_matrix(c, S.CROP_SIDE * size, angle, crop)])
        p, conf = points[0], confidence[0].copy()
        h, w = image.shape[:2]
        outside = (p[:, 0] < -0.5) | (p[:, 1] < -0.5) | (p[:, 0] > w - 0.5) | (p[:, 1] > h - 0.5)
        conf[outside] = 0.0
        box = np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()])
        return FaceDetection(points=p, confidence=np.clip(conf, 0, 1), box=box, score=float(present[0]))

    def _tensor(self, images: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        return x.permute(0, 3, 1, 2).float() / 255


def check_image(image: Any) -> np.ndarray:
    """``image`` as (H, W, 3) uint8 (greyscale and RGBA accepted), or :class:`InputError`."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 8:
        raise InputError(f"a detector takes an (H, W, 3) image of at least 8 x 8 pixels, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"a detector takes uint8 pixels, got {image.dtype}")
    return np.ascontiguousarray(image[..., :3])


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """A ``size`` square of ``image`` through the affine ``matrix`` (image to square pixels),
    area-averaged when it shrinks the image (a pyramid step first), the grey pad outside."""
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.7:  # shrink with INTER_AREA first, to a scale near the crop's
        factor = min(1.0, scale * 1.25)
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / w, small.shape[0] / h
        # small pixel u maps to image pixel (u + 0.5) / f - 0.5
        back = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        matrix = matrix @ back
        image = small
    pad = (S.PAD_VALUE,) * 3
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=pad)
