"""``train landmarks``'s config: every field is an option and all are saved in every checkpoint
(the shipped weights' JSON holds them too). ``default`` is the one the shipped weights were
trained with on a 2-core CPU (``docs/landmarks.md``); ``tiny`` is for smoke tests.
"""

from __future__ import annotations

import dataclasses

from avatarkit.errors import OptionError
from avatarkit.methods.configs import TrainConfig, at_least_one


@dataclasses.dataclass(frozen=True)
class LandmarksConfig(TrainConfig):
    """A face box network and a 68-point network, trained on synthetic faces this run renders
    (Anny's head: random identity, expression, head pose, skin, light, focal length)."""

    max_steps: int = 20_000
    """Optimisation steps in all (one step = a batch of photos for the box network and one of crops for the point network)."""
    batch_size: int = 24
    """Photos (and as many face crops) per step."""
    lr: float = 2e-3
    """Learning rate."""
    optimizer: str = "adam"
    """rmsprop or adam."""
    lr_decay_at: tuple[float, ...] = (0.7, 0.9)
    """Fractions of max_steps (or of max_time) at which the learning rate is multiplied by lr_decay."""
    val_every: int = 250
    """Steps between validations on the held-out faces."""
    mesh_every: int = 0
    """Unused (no meshes): validations are all alike."""
    checkpoint_every: int = 250
    """Steps between checkpoints."""
    log_every: int = 25
    """Steps between TensorBoard scalars."""
    image_every: int = 500
    """Steps between TensorBoard grids of the training inputs."""
    faces: int = 600
    """Synthetic subjects rendered for training (views photos each), once: the pool is kept under --data and reused."""
    val_faces: int = 32
    """Held-out synthetic subjects (drawn apart from the training ones) rendered for validation."""
    views: int = 8
    """Photos per subject (portrait rig: head pose, focal length and light drawn per photo)."""
    render_size: int = 256
    """Height of the rendered photos, pixels (the width is 3/4 of it)."""
    pool_crop: int = 160
    """Side of the square kept around each rendered face, pixels."""
    crop_size: int = 96
    """Side of the face crop the point network reads (its heatmaps are a quarter of it)."""
    scene_size: int = 96
    """Side of the square (letterboxed photo) the box network reads."""
    width: int = 20
    """Channels of the point network's first stage (then 2, 3, 4, 4 times it)."""
    box_width: int = 12
    """Channels of the box network's first stage."""
    negatives: float = 0.2
    """Share of the point network's crops that show no face (background only), for the presence score."""
    empty_scenes: float = 0.15
    """Share of the box network's photos without a face."""
    rotation: float = 50.0
    """Largest in-plane rotation of a training face, degrees."""
    heatmap_weight: float = 0.02
    """Weight of the heatmaps' cross-entropy against a one-cell Gaussian at each true point (beside the L1 on coordinates)."""
    box_weight: float = 1.0
    """Weight of the box network's loss (focal loss on centres, L1 on log size and offset)."""
    presence_weight: float = 0.2
    """Weight of the presence score's binary cross-entropy."""
    val_crops: int = 384
    """Held-out crops and photos drawn (fixed) for each validation."""
    box_threshold: float = 0.2
    """Detection: least box-network centre score for a candidate face (none: no face)."""
    presence_threshold: float = 0.9
    """Detection: least presence score of a face's refined crop to report it."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "faces", "val_faces", "views", "width", "box_width", "val_crops")
        for name in ("crop_size", "scene_size"):
            if getattr(self, name) < 32 or getattr(self, name) % 32:
                raise OptionError(f"--{name.replace('_', '-')} must be a multiple of 32, got {getattr(self, name)}")
        if self.render_size < 32 or self.pool_crop < 32:
            raise OptionError("--render-size and --pool-crop must be at least 32 pixels")
        for name in ("negatives", "empty_scenes", "box_threshold", "presence_threshold"):
            if not 0 <= getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.rotation <= 180:
            raise OptionError(f"--rotation must be 0 to 180 degrees, got {self.rotation}")


PRESETS = {
    "default": LandmarksConfig(),
    "small": LandmarksConfig(faces=200, width=16, box_width=8, batch_size=16),
    "tiny": LandmarksConfig(
        faces=2,
        val_faces=1,
        views=2,
        render_size=128,
        pool_crop=96,
        crop_size=64,
        scene_size=64,
        width=8,
        box_width=8,
        batch_size=4,
        max_steps=3,
        val_every=3,
        checkpoint_every=3,
        val_crops=8,
    ),
}
"""Named starting configs (``--config``)."""
