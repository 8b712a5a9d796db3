"""PIFu's training config: every field is an option of ``avatarkit train pifu`` and is saved
in every checkpoint. ``default`` is the paper's network (Saito et al. 2019, ``lib/options.py``);
``small`` is a CPU-sized one for the demo and the tests."""

from __future__ import annotations

import dataclasses

from avatarkit.errors import OptionError
from avatarkit.methods.configs import TrainConfig, at_least_one


@dataclasses.dataclass(frozen=True)
class PifuConfig(TrainConfig):
    """PIFu: a stacked-hourglass image encoder and a pixel-aligned occupancy MLP."""

    stacks: int = 4
    """Hourglass stacks; each one's features are supervised (PIFu's num_stack)."""
    channels: int = 256
    """Feature channels of the hourglasses (PIFu's hourglass_dim)."""
    hourglass_depth: int = 2
    """Downsamplings inside each hourglass (PIFu's num_hourglass)."""
    stem_channels: int = 64
    """Channels of the stride-4 stem before the hourglasses (PIFu: 64, then 128)."""
    mlp: tuple[int, ...] = (1024, 512, 256, 128)
    """Hidden widths of the occupancy MLP; its input is channels + 1 (the depth), its output 1 (PIFu's 257-1024-512-256-128-1)."""
    image_size: int = 512
    """Side of the square image the network sees; views are resized to it and cameras scaled (PIFu's loadSize)."""
    depth_scale: float = 0.8
    """Metres of camera depth, from the view's target, that map to 1 in the depth feature (PIFu's z_size for a 1.8 m subject)."""
    mask_input: bool = True
    """Multiply the image by its mask, as PIFu does (reconstruct then needs a mask)."""
    points: int = 5000
    """Points drawn from a subject's samples file each step (PIFu's num_sample_inout)."""
    balance: bool = True
    """PIFu's balanced draw: at most half of the points inside, the rest outside."""
    flip: bool = True
    """Random horizontal flips of image and camera together (PIFu's random_flip)."""
    scale_jitter: float = 0.1
    """Random zoom of image and camera together, 1 +- this (PIFu's random_scale: 0.1)."""
    shift_jitter: float = 0.02
    """Random shift of image and camera together, up to this share of the image side (PIFu's random_trans)."""
    brightness: float = 0.2
    """Colour jitter: brightness factor 1 +- this (PIFu's aug_bri)."""
    contrast: float = 0.2
    """Colour jitter: contrast factor 1 +- this (PIFu's aug_con)."""
    saturation: float = 0.05
    """Colour jitter: saturation factor 1 +- this (PIFu's aug_sat)."""
    hue: float = 0.05
    """Colour jitter: hue shift up to this many turns (PIFu's aug_hue)."""
    blur: float = 0.0
    """Gaussian blur with a random sigma up to this many pixels (PIFu's aug_blur)."""
    background_dir: str | None = None
    """Folder of images; each training view gets a random crop of one behind the subject (matters with --no-mask-input)."""
    val_resolution: int = 128
    """Grid resolution of validation meshes (a power of two)."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "stacks", "channels", "hourglass_depth", "stem_channels", "image_size", "points")
        if not self.mlp or min(self.mlp) < 1:
            raise OptionError(f"--mlp takes positive widths, got {self.mlp}")
        if self.image_size % 4:
            raise OptionError(f"--image-size must be a multiple of 4 (the encoder's stride), got {self.image_size}")
        if not self.depth_scale > 0:
            raise OptionError(f"--depth-scale must be positive, got {self.depth_scale}")
        if not 0 <= self.scale_jitter < 1 or not 0 <= self.shift_jitter < 0.5:
            raise OptionError("--scale-jitter must be in [0, 1) and --shift-jitter in [0, 0.5)")
        if self.val_resolution < 8 or self.val_resolution & (self.val_resolution - 1):
            raise OptionError(f"--val-resolution must be a power of two of at least 8, got {self.val_resolution}")


PRESETS: dict[str, PifuConfig] = {
    "default": PifuConfig(),
    "small": PifuConfig(
        stacks=2,
        channels=64,
        hourglass_depth=2,
        stem_channels=32,
        mlp=(256, 128, 64),
        image_size=256,
        points=2048,
        batch_size=4,
        optimizer="adam",
        lr=1e-3,
        depth_scale=0.25,  # a sharper depth feature learns depth sooner (measured: docs/benchmarks.md)
        max_steps=2000,
        val_every=250,
        mesh_every=1000,
        checkpoint_every=250,
        log_every=25,
        image_every=250,
        val_resolution=64,
    ),
}
"""Named starting points for ``--config``; options given on the command line change them."""
