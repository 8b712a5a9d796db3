"""Geo-PIFu's training config: every field is an option of ``avatarkit train geopifu`` and is
saved in every checkpoint. The query network's fields are PIFu's (:class:`PifuConfig`); the
coarse volume network's and the stages' are Geo-PIFu's own. ``default`` is Geo-PIFu's code
(``geopifu/lib/options.py``, ``lib/model/VrnNet.py``, ``HGPIFuNet.py`` and the README's
training commands); ``small`` is a CPU-sized one."""

from __future__ import annotations

import dataclasses

from avatarkit.errors import OptionError
from avatarkit.methods.configs import at_least_one
from avatarkit.methods.pifu.config import PRESETS as PIFU_PRESETS
from avatarkit.methods.pifu.config import PifuConfig

STAGES = ("coarse", "query", "both")


@dataclasses.dataclass(frozen=True)
class GeoPifuConfig(PifuConfig):
    """Geo-PIFu: a coarse occupancy volume network (stage 1) and PIFu's query network fed with
    the volume's latent 3D features (stage 2)."""

    stage: str = "both"
    """What the run trains: coarse (the volume network, on the voxels files), query (the query network, on the samples, beside a trained volume network: --coarse-run or a resumed run that trained it), both (coarse for coarse_share of max_steps, or of max_time when that comes first, then query)."""
    coarse_run: str | None = None
    """A geopifu run (folder or checkpoint) whose trained volume network the query stage starts from (Geo-PIFu's --deepVoxelsDir from test_shape_coarse)."""
    coarse_share: float = 0.45
    """Share of max_steps (or of max_time, whichever ends first) spent on the coarse stage with --stage both (Geo-PIFu: 30 epochs at batch 30, then 45 at batch 36)."""
    coarse_lr_decay_at: tuple[float, ...] = (0.27, 0.77)
    """Fractions of the coarse stage's steps at which its learning rate is multiplied by lr_decay (Geo-PIFu's --schedule 8 23 of 30 epochs); lr_decay_at is the query stage's, counted from its own start."""
    finetune_coarse: bool = False
    """Let the query loss train the volume network too (Geo-PIFu keeps it fixed: its latent voxels are precomputed)."""
    grid: tuple[int, ...] = (128, 192, 128)
    """Voxels (x, y, z) of the occupancy volume and of the voxels files (voxelize --preset geopifu; Geo-PIFu's 128 x 192 x 128); each a multiple of 16, x at most y."""
    volume_channels: int = 8
    """Channels of the latent 3D volume (Geo-PIFu's c_len_deepvoxels); the latent volume is grid / 4."""
    coarse_upsample: int = 4
    """The occupancy head upsamples the latent volume (grid / 4) by this: 4 predicts at the grid (Geo-PIFu), 2 at half of it (8 times fewer voxels: a CPU), 1 at the latent's."""
    coarse_stacks: int = 4
    """Hourglass stacks of the volume network, each supervised (Geo-PIFu's vrn_num_modules)."""
    coarse_channels: int = 256
    """Channels of the volume network's hourglasses (Geo-PIFu: 256)."""
    coarse_hourglass_depth: int = 2
    """Downsamplings inside each of its hourglasses (Geo-PIFu's vrn_num_hourglass)."""
    coarse_stem_channels: int = 64
    """Channels of its stride-8 stem (Geo-PIFu: 64, then 128)."""
    coarse_weight: float = 1000.0
    """Factor of the volume's cross-entropy (Geo-PIFu's weight_occu)."""
    inside_weight: float = 0.7
    """Weight of the inside voxels in the volume's cross-entropy, outside ones 1 - this (Geo-PIFu's w)."""
    displacement: float = 0.0722
    """Offset, in the latent volume's [-1, 1] units, of the six extra samples around each point along +-x, +-y, +-z (Geo-PIFu's multiRanges_deepVoxels: 7 x volume_channels features; 0 samples the point alone)."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "volume_channels", "coarse_stacks", "coarse_channels", "coarse_hourglass_depth")
        at_least_one(self, "coarse_stem_channels")
        if self.stage not in STAGES:
            raise OptionError(f"--stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if len(self.grid) != 3 or any(g < 16 or g % 16 for g in self.grid) or self.grid[0] > self.grid[1]:
            raise OptionError(f"--grid takes x,y,z voxels, each a multiple of 16, x at most y; got {self.grid}")
        if self.coarse_upsample not in (1, 2, 4):
            raise OptionError(f"--coarse-upsample must be 1, 2 or 4, got {self.coarse_upsample}")
        if not 0 < self.coarse_share < 1:
            raise OptionError(f"--coarse-share must be in (0, 1), got {self.coarse_share}")
        if not 0 < self.inside_weight < 1 or not self.coarse_weight > 0:
            raise OptionError("--inside-weight must be in (0, 1) and --coarse-weight positive")
        if any(not 0 < f <= 1 for f in self.coarse_lr_decay_at):
            raise OptionError(f"--coarse-lr-decay-at takes fractions in (0, 1], got {self.coarse_lr_decay_at}")
        if self.displacement < 0:
            raise OptionError(f"--displacement must be 0 or more, got {self.displacement}")

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(Z, Y, X) voxels of the latent volume: the grid / 4, depth first."""
        x, y, z = self.grid
        return z // 4, y // 4, x // 4

    @property
    def output_grid(self) -> tuple[int, int, int]:
        """(X, Y, Z) voxels of the predicted occupancy volume: the grid, or a coarser one with
        ``coarse_upsample`` below 4 (the same box)."""
        x, y, z = (g * self.coarse_upsample // 4 for g in self.grid)
        return x, y, z

    def coarse_steps(self) -> int:
        """Steps of the coarse stage: all of them, none, or coarse_share of max_steps."""
        if self.stage == "coarse":
            return self.max_steps
        if self.stage == "query":
            return 0
        return max(1, min(self.max_steps - 1, round(self.coarse_share * self.max_steps)))


COARSE_FIELDS = (
    "grid", "volume_channels", "coarse_upsample", "coarse_stacks", "coarse_channels", "coarse_hourglass_depth", "coarse_stem_channels",
)  # fmt: skip
"""The fields that shape the volume network: a --coarse-run must have the same."""

PRESETS: dict[str, GeoPifuConfig] = {
    "default": GeoPifuConfig(
        # Geo-PIFu trains without PIFu's augmentations (its aug_* are 0, no --random_flip/scale/trans)
        flip=False,
        scale_jitter=0.0,
        shift_jitter=0.0,
        brightness=0.0,
        contrast=0.0,
        saturation=0.0,
        hue=0.0,
        lr_decay_at=(0.18, 0.51, 0.89),  # the query stage: --schedule 8 23 40 of 45 epochs (train_query)
    ),
    "small": GeoPifuConfig(
        **{f.name: getattr(PIFU_PRESETS["small"], f.name) for f in dataclasses.fields(PifuConfig)},
        coarse_lr_decay_at=(0.6, 0.8),  # each stage decays as PIFu's small run does
        volume_channels=4,
        coarse_upsample=2,  # predicts 64 x 96 x 64: at the full grid its head was 9/10 of a CPU step (13 of 14 s)
        coarse_stacks=2,
        coarse_channels=64,
        coarse_stem_channels=32,
    ),
}
"""Named starting points for ``--config``; options given on the command line change them.
``small`` is PIFu's ``small`` with a volume network of the same width that predicts at half the
grid's resolution, supervised by the full grid's files (so ``voxelize --preset geopifu`` files
train it)."""
