"""PIFu's training config: every field is an option of ``avatarkit train pifu`` and is saved
in every checkpoint. ``default`` is the paper's network (Saito et al. 2019, ``lib/options.py``);
``small`` is a CPU-sized one for the demo and the tests."""

from __future__ import annotations

import dataclasses

from avatarkit.errors import OptionError
from avatarkit.methods.configs import ImageDataConfig, at_least_one


@dataclasses.dataclass(frozen=True)
class PifuConfig(ImageDataConfig):
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
    depth_scale: float = 0.8
    """Metres of camera depth, from the view's target, that map to 1 in the depth feature (PIFu's z_size for a 1.8 m subject)."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "stacks", "channels", "hourglass_depth", "stem_channels")
        if not self.mlp or min(self.mlp) < 1:
            raise OptionError(f"--mlp takes positive widths, got {self.mlp}")
        if not self.depth_scale > 0:
            raise OptionError(f"--depth-scale must be positive, got {self.depth_scale}")


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
        mesh_every=250,  # each validation meshes a held-out person: best.pt is the lowest chamfer
        checkpoint_every=250,
        log_every=25,
        image_every=250,
        val_resolution=64,
    ),
}
"""Named starting points for ``--config``; options given on the command line change them."""
