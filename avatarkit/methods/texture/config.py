"""``train texture``'s config (Sample&Refine: Cha et al., Eurographics 2023). Every field is an
option and all are saved in every checkpoint; ``texture_size`` and ``uv_layout`` are derived
from the data when a run starts. ``default`` follows the seed's networks at full width;
``small`` is sized for a CPU (about 10-15 minutes of two shared cores shows a real gain, see
``docs/training.md``); ``tiny`` is for smoke tests.
"""

from __future__ import annotations

import dataclasses

from avatarkit.errors import OptionError
from avatarkit.methods.configs import TrainConfig, at_least_one, derived

STAGES = ("sampler", "refiner", "both")


@dataclasses.dataclass(frozen=True)
class TextureConfig(TrainConfig):
    """SamplerNet (where, in the visible texture, each texel is sampled from) and RefinerNet
    (the sampled texture made sharp and whole), trained on UV-space pairs: partial textures
    from single views, and the full texture they come from."""

    max_steps: int = 100_000
    """Optimisation steps in all (one step = a batch of partial textures)."""
    batch_size: int = 4
    """Partial textures per step on each process."""
    lr: float = 2e-4
    """Learning rate (the discriminator's too)."""
    optimizer: str = "adam"
    """rmsprop or adam."""
    val_every: int = 1000
    """Steps between validations on the held-out subjects' partial textures."""
    mesh_every: int = 0
    """Unused (no meshes): validations are all alike."""
    stage: str = "both"
    """sampler: SamplerNet alone; refiner: RefinerNet on a trained SamplerNet (--sampler-run, kept frozen); both: the two at once, RefinerNet on SamplerNet's current output (not back-propagated into it)."""
    sampler_run: str | None = None
    """A texture run (folder or checkpoint) whose trained SamplerNet --stage refiner starts from and keeps frozen."""
    width: int = 64
    """Channels of the first level of both U-Nets (doubled per level, up to 8 times)."""
    depth: int = 5
    """Down-samplings of both U-Nets (the texture side must be a multiple of 2 to this power)."""
    disc_width: int = 64
    """Channels of the patch discriminator's first layer (three stride-2 layers)."""
    l1_weight: float = 1.0
    """Weight of the L1 colour loss (SamplerNet's sampled and RefinerNet's refined texture against the full one)."""
    ssim_weight: float = 1.0
    """Weight of 1 - SSIM (11-texel Gaussian window) of both outputs against the full texture."""
    adv_weight: float = 0.01
    """Weight of RefinerNet's adversarial term (least-squares GAN against the patch discriminator trained alongside; 0: none)."""
    sampler_blurs: tuple[int, ...] = (4, 16)
    """SamplerNet's colour loss is also taken on the partial and full textures box-blurred over these many texels, sampled at the same offsets: a texel's gradient then reaches that far (a sampled texture's own gradient only reaches the next texel, and none inside a flat hole)."""
    smooth_weight: float = 0.01
    """Weight of the total variation of SamplerNet's sampling offsets (neighbouring texels sample nearby)."""
    feather: int = 2
    """Texels over which completion blends from the observed texture into the generated one, inside the visibility boundary."""
    color_augment: bool = True
    """Each training pair's colour channels permuted and scaled at random, the same for input and target."""
    val_items: int = 16
    """Held-out partial textures scored at each validation (subjects in turn, one view each, the view closest to the front first)."""
    texture_size: int = derived(0)
    """Side of the run's textures, texels (from the data)."""
    uv_layout: str = derived("")
    """The UV layout of the run's textures (``unwrap-uv``'s fingerprint; empty for folder data, whose layout is not recorded)."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "width", "depth", "disc_width", "val_items")
        if self.stage not in STAGES:
            raise OptionError(f"--stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.depth > 8:
            raise OptionError(f"--depth must be at most 8, got {self.depth}")
        for name in ("l1_weight", "ssim_weight", "adv_weight", "smooth_weight"):
            if not getattr(self, name) >= 0:
                raise OptionError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")
        if any(b < 2 for b in self.sampler_blurs):
            raise OptionError(f"--sampler-blurs are box widths of 2 texels or more, got {self.sampler_blurs}")
        if self.feather < 0:
            raise OptionError(f"--feather must be 0 or more texels, got {self.feather}")
        if self.texture_size and self.texture_size % 2**self.depth:
            raise OptionError(
                f"the textures are {self.texture_size} texels across, not a multiple of 2^{self.depth} (--depth "
                f"{self.depth}): give a smaller --depth or unwrap-uv --size a multiple of {2**self.depth}"
            )


PRESETS = {
    "default": TextureConfig(),
    "small": TextureConfig(
        width=16,
        depth=4,
        disc_width=16,
        batch_size=4,
        lr=1e-3,
        max_steps=4000,
        lr_decay_at=(0.7, 0.9),
        val_every=100,
        checkpoint_every=100,
        log_every=10,
        image_every=100,
    ),
    "tiny": TextureConfig(
        width=4,
        depth=2,
        disc_width=4,
        batch_size=2,
        lr=1e-3,
        max_steps=3,
        val_every=3,
        checkpoint_every=3,
        val_items=2,
    ),
}
"""Named starting configs (``--config``)."""
