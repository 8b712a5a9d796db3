"""Phorhum's training config: every field is an option of ``avatarkit train phorhum`` and is
saved in every checkpoint. ``default`` is sized as Phorhum's networks are described (a
feature network G, an 8 x 512 geometry/colour MLP f, a 3 x 256 shading MLP s, 32 x 32
rendering patches); ``small`` is a CPU-sized one for the demo, the tests and the benchmark.

The loss weights' defaults are this implementation's (Phorhum's paper lists its terms; its
weights were not at hand when this was written): each is an option, and ``docs/phorhum.md``
says which are unverified."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from avatarkit.errors import OptionError
from avatarkit.methods.configs import ImageDataConfig, at_least_one

LOSS_WEIGHTS = (
    "w_surface", "w_sdf", "w_normal", "w_label", "w_eikonal", "w_albedo", "w_render", "w_mask", "w_projection",
)  # fmt: skip
"""The config fields that weigh the loss terms (``docs/phorhum.md``)."""


@dataclasses.dataclass(frozen=True)
class PhorhumConfig(ImageDataConfig):
    """Phorhum: a feature network G over the image, an MLP f from pixel-aligned features and
    Fourier features of the point to a signed distance and an albedo, and a shading network s
    from the surface normal and the image's illumination code."""

    ABSENT: ClassVar[dict[str, Any]] = {"albedo_prior": False, "sphere_init": 0.0}
    """What a run stored before these fields existed was trained with (``configs.from_dict``)."""

    mask_input: bool = False
    """Multiply the image by its mask (Phorhum needs no matting: off)."""
    balance: bool = False
    """PIFu's balanced draw; off: points drawn as the samples file mixes them (osa: half on the surface)."""
    stacks: int = 2
    """Hourglass stacks of the feature network G; the last one's features are f's."""
    channels: int = 256
    """Feature channels of G (the pixel-aligned feature's size)."""
    hourglass_depth: int = 2
    """Downsamplings inside each hourglass of G."""
    stem_channels: int = 64
    """Channels of G's stride-4 stem."""
    fourier: int = 6
    """Fourier frequencies of the point (in the view's frame, from its target, divided by depth_scale): sin and cos of 2^k pi x, k < fourier."""
    mlp: tuple[int, ...] = (512, 512, 512, 512, 512, 512, 512, 512)
    """Hidden widths of f; its input joins again at the middle layer (a skip, as IDR's and Phorhum's)."""
    albedo_prior: bool = True
    """f's albedo is a change of the colour seen at the point's pixel (its logits are added to that colour's logit): the albedo starts as the photo and f learns the shading and the unseen side to take off (off: f's albedo alone, as Phorhum's)."""
    sphere_init: float = 0.9
    """IDR's geometric initialisation of f's distance: a sphere of this many metres about the view's target (enclosing the subject: training carves it), space beyond it starting outside (0: PyTorch's initialisation)."""
    head_lr_scale: float = 10.0
    """Learning-rate multiple of f's output layer (distance and albedo logits): at Adam's step size the albedo otherwise stays near grey for hundreds of steps (docs/phorhum.md)."""
    illumination: int = 16
    """Size of the per-image illumination code (from G's last feature map, pooled)."""
    shading_mlp: tuple[int, ...] = (256, 256, 256)
    """Hidden widths of the shading network s (input: normal in the camera frame and the illumination code)."""
    depth_scale: float = 1.0
    """Metres of camera depth (and of x and y), from the view's target, that map to 1 in f's point features. The Fourier features' longest period is 2 such units: at 1 m it spans the traced depth (--trace-depth 1.0 either side), so no two depths along a ray share features (0.25 m, PIFu's small value, repeated every 0.5 m: 8.57 cm chamfer against 7.93-8.05 at 1 m, docs/benchmarks.md)."""
    label_sharpness: float = 100.0
    """k of the sign classification: inside probability sigmoid(-k d), d in metres."""
    w_surface: float = 1.0
    """Weight of |d| on surface points."""
    w_sdf: float = 1.0
    """Weight of |d - true distance| on near and far points."""
    w_normal: float = 0.1
    """Weight of |grad d / |grad d| - true normal| on surface points."""
    w_label: float = 0.2
    """Weight of the sign classification (binary cross-entropy of sigmoid(-k d) against inside)."""
    w_eikonal: float = 0.1
    """Weight of the eikonal term (|grad d| - 1)^2 on every point."""
    w_albedo: float = 1.0
    """Weight of |albedo - true colour| on surface points (needs samples with colours: sample-sdf --preset osa)."""
    w_render: float = 1.0
    """Weight of the rendering loss: |albedo x shading - pixel| on image patches, where the traced ray meets the surface."""
    w_mask: float = 0.1
    """Weight of the patches' mask loss: sigmoid(-k min d along the ray) against the pixel's mask."""
    w_projection: float = 0.5
    """Weight of OSA's surface-projection loss: a near point moved by -d along the predicted normal lands where the true distance and normal move it."""
    far_share: float = 0.25
    """Share of each draw taken from the points farther than 2 cm from the surface (osa files hold 3% of them, mesh-to-sdf's mix): they keep surfaces from forming away from the body (0: the file's own mix)."""
    patches: int = 2
    """Image patches per item for the rendering loss (0: no rendering loss)."""
    patch_size: int = 32
    """Side of a rendering patch, pixels of the network's input."""
    trace_steps: int = 24
    """Sphere-tracing steps per patch ray."""
    trace_depth: float = 1.0
    """Rays are traced from this many metres in front of the view's target to as far behind it (more than --sphere-init: a ray must start outside the starting sphere)."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "stacks", "channels", "hourglass_depth", "stem_channels", "illumination")
        at_least_one(self, "patch_size", "trace_steps")
        if not self.mlp or min(self.mlp) < 1 or not self.shading_mlp or min(self.shading_mlp) < 1:
            raise OptionError(f"--mlp and --shading-mlp take positive widths, got {self.mlp} and {self.shading_mlp}")
        if self.fourier < 0 or self.patches < 0:
            raise OptionError(f"--fourier and --patches must be 0 or more, got {self.fourier} and {self.patches}")
        if not 0 <= self.sphere_init < self.trace_depth:
            raise OptionError(
                f"--sphere-init must be 0 or more metres and less than --trace-depth ({self.trace_depth}: rays must "
                f"start outside the starting sphere), got {self.sphere_init}"
            )
        if not 0 <= self.far_share <= 1:
            raise OptionError(f"--far-share must be in [0, 1], got {self.far_share}")
        if self.patch_size > self.image_size:
            raise OptionError(f"--patch-size {self.patch_size} is larger than --image-size {self.image_size}")
        for name in ("depth_scale", "label_sharpness", "trace_depth", "head_lr_scale"):
            if not getattr(self, name) > 0:
                raise OptionError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in LOSS_WEIGHTS:
            if not getattr(self, name) >= 0:
                raise OptionError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")

    @property
    def needs_colors(self) -> bool:
        """Whether the samples must have colours (the albedo loss is on)."""
        return self.w_albedo > 0

    @property
    def needs_normals(self) -> bool:
        """Whether the samples must have normals (the normal or surface-projection loss is on)."""
        return self.w_normal > 0 or self.w_projection > 0


PRESETS: dict[str, PhorhumConfig] = {
    "default": PhorhumConfig(),
    "small": PhorhumConfig(
        stacks=1,
        channels=32,
        hourglass_depth=2,
        stem_channels=16,
        fourier=4,
        mlp=(128, 128, 128, 128),
        illumination=8,
        shading_mlp=(64, 64),
        image_size=128,
        points=2048,
        batch_size=4,
        optimizer="adam",
        lr=5e-4,
        patches=2,
        patch_size=8,
        trace_steps=16,
        max_steps=2000,
        val_every=250,
        mesh_every=250,
        checkpoint_every=250,
        log_every=25,
        image_every=250,
        val_resolution=64,
    ),
}
"""Named starting points for ``--config``; options given on the command line change them."""
