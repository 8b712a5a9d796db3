"""DeepSDF's training config: every field but ``shapes`` is an option of ``avatarkit train
deepsdf`` and all are saved in every checkpoint. ``default`` is the paper's (Park et al. 2019,
``examples/*/specs.json`` and ``train_deep_sdf.py``, ``reconstruct.py`` of
facebookresearch/DeepSDF); ``small`` trains on a 2-core CPU in a couple of minutes.

Every shape lives in its own unit sphere (:data:`SPHERE_SCALE`): a point ``x`` (world metres)
is ``(x - center) / radius`` with ``center`` the mesh's bounding-box midpoint and ``radius``
1.1 times the distance to its farthest vertex, the sphere ``avatarkit render --export idr``'s
``scale_mat`` maps to the unit sphere; distances are divided by ``radius``.
"""

from __future__ import annotations

import dataclasses

from avatarkit.errors import OptionError
from avatarkit.methods.configs import TrainConfig, at_least_one, derived

SPHERE_SCALE = 1.1
"""A shape's unit sphere is its bounding sphere (box midpoint, farthest vertex) times this: the
sphere of IDR's ``scale_mat`` as ``io.view_folders.export_views`` writes it
(``idr_scale_mat(*mesh.bounding_sphere(1.1))``)."""


@dataclasses.dataclass(frozen=True)
class DeepSDFConfig(TrainConfig):
    """DeepSDF: an auto-decoder (a latent code per training shape) and an MLP from code and
    point to signed distance (DeepSDF's names in brackets: ``specs.json`` unless said)."""

    latent_size: int = 256
    """Length of each shape's latent code (CodeLength)."""
    hidden: int = 512
    """Width of every hidden layer (NetworkSpecs.dims: 512)."""
    layers: int = 8
    """Hidden layers (NetworkSpecs.dims: eight of 512); the output layer comes after them."""
    latent_in: tuple[int, ...] = (4,)
    """Hidden layers whose input gets code and point concatenated again (NetworkSpecs.latent_in); the layer before gives hidden - latent_size - 3 features so the width stays hidden."""
    dropout: float = 0.2
    """Dropout probability after every hidden layer's ReLU while training (NetworkSpecs.dropout_prob)."""
    weight_norm: bool = True
    """Weight normalisation on every hidden layer (NetworkSpecs.weight_norm, norm_layers)."""
    points_per_shape: int = 16384
    """Points drawn per shape each step, half with sdf >= 0 and half < 0 (SamplesPerScene)."""
    clamp: float = 0.1
    """Predictions and targets are clamped to +- this (unit-sphere units) in the L1 loss (ClampingDistance)."""
    code_reg: float = 1e-4
    """Weight of the codes' norms in the loss (CodeRegularizationLambda; 0: none)."""
    code_reg_warmup: float = 100.0
    """Epochs over which code_reg ramps up from 1/this of its value (train_deep_sdf.py: min(1, epoch / 100)); an epoch is training shapes / batch_size steps."""
    code_bound: float = 1.0
    """Codes longer than this are scaled back to it at each step (CodeBound; 0: no bound)."""
    code_init_std: float = 1.0
    """Codes start from N(0, this / sqrt(latent_size)) (CodeInitStdDev)."""
    code_lr_scale: float = 2.0
    """The codes' learning rate is lr times this (LearningRateSchedule: 1e-3 for codes, 5e-4 for the decoder)."""
    fit_iterations: int = 800
    """Adam iterations fitting a code to a shape's points: held-out shapes in validation and reconstruct RUN samples.h5 (reconstruct.py --iters)."""
    fit_samples: int = 8000
    """Points per iteration of the code fit, half with sdf >= 0 (reconstruct.py: num_samples=8000)."""
    fit_lr: float = 5e-3
    """Learning rate of the code fit, divided by 10 half way (reconstruct.py: lr=5e-3)."""
    val_resolution: int = 128
    """Grid resolution of validation meshes (a power of two)."""
    val_meshes: int = 4
    """Held-out shapes meshed and scored (chamfer, P2S in cm) at each mesh validation."""
    shapes: int = derived(0)
    """Training shapes, one latent code each: set by the run from its data (not an option)."""

    def check(self) -> None:
        super().check()
        at_least_one(self, "latent_size", "hidden", "layers", "points_per_shape", "fit_iterations", "fit_samples")
        at_least_one(self, "val_meshes")
        bad = [i for i in self.latent_in if not 0 < i < self.layers]
        if bad:
            raise OptionError(
                f"--latent-in takes hidden layers 1 to {self.layers - 1} (after the first, before the output), got {bad}"
            )
        if self.latent_in and self.hidden <= self.latent_size + 3:
            raise OptionError(
                f"--hidden ({self.hidden}) must exceed --latent-size + 3 ({self.latent_size + 3}) when --latent-in "
                "feeds code and point to a layer again"
            )
        if not 0 <= self.dropout < 1:
            raise OptionError(f"--dropout must be in [0, 1), got {self.dropout}")
        for name in ("clamp", "code_init_std", "code_lr_scale", "fit_lr"):
            if not getattr(self, name) > 0:
                raise OptionError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("code_reg", "code_reg_warmup", "code_bound"):
            if not getattr(self, name) >= 0:
                raise OptionError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")
        if self.val_resolution < 8 or self.val_resolution & (self.val_resolution - 1):
            raise OptionError(f"--val-resolution must be a power of two of at least 8, got {self.val_resolution}")
        from avatarkit.reconstruct.extract import check_lattice_memory

        check_lattice_memory(self.val_resolution, option="--val-resolution")
        if self.shapes < 0:
            raise OptionError(f"the config's shapes must be 0 or more, got {self.shapes}")


PRESETS: dict[str, DeepSDFConfig] = {
    "default": DeepSDFConfig(
        batch_size=64,  # ScenesPerBatch
        lr=5e-4,  # LearningRateSchedule[0].Initial (the decoder); the codes' is code_lr_scale times it
        optimizer="adam",
        lr_decay_at=(0.25, 0.5, 0.75),  # halved every 500 of 2001 epochs
        lr_decay=0.5,
        max_steps=50_000,  # 2001 epochs of 1600 shapes in batches of 64; set it for your data
        amp=False,  # DeepSDF trains in float32: bfloat16 keeps 8 bits of a point's coordinates
    ),
    "small": DeepSDFConfig(
        latent_size=64,
        hidden=128,
        layers=4,
        latent_in=(2,),
        points_per_shape=2048,
        batch_size=4,
        lr=1e-3,
        optimizer="adam",
        lr_decay_at=(0.5, 0.75),
        lr_decay=0.5,
        max_steps=600,
        amp=False,
        fit_iterations=200,
        fit_samples=4096,
        val_every=200,
        mesh_every=200,
        checkpoint_every=200,
        log_every=25,
        image_every=200,
        val_resolution=64,
        val_meshes=2,
    ),
}
"""Named starting points for ``--config``; options given on the command line change them."""
