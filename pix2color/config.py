"""The options of a training run, and the names they choose from.

This module imports no TensorFlow: the command line builds its help and checks its flags from
it in well under a second, and a bad flag is refused before TensorFlow starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pix2color.errors import OutputError, RunError  # noqa: F401 - the module's errors, importable from here too
from pix2color.training.precision import PRECISIONS

GENERATORS = ("unet", "resnet18")  # the report's U-Net; its pretrained ResNet-18 variant (report VI.C)
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PATCH_SIZES = {1: 0, 16: 1, 34: 2, 70: 3, 142: 4, 286: 5}  # PatchGAN receptive field -> pix2pix n_layers
DEFAULT_VAL_FRACTION = 0.1
# --keep-best: the validation measures a run can keep its best generator by (`training.best`).
KEEP_BEST = ("val_l1", "val_psnr", "val_ssim", "val_colourfulness_gap", "val_fid", "val_kid")

# Settings that define a run; resuming with different values would silently mix two runs.
RUN_DEFINING = (
    "data", "image_size", "batch_size", "steps_per_epoch", "lambda_l1", "r1_gamma", "r1_every",
    "label_smoothing", "gan_only", "l1_only", "lr", "beta1", "beta2", "seed", "patch_size",
    "val_fraction", "coco_dir", "precision", "generator", "encoder_weights", "keep_best", "val_fid", "feature_weights",
)


def flag_of(setting: str) -> str:
    """The command-line flag of a `TrainConfig` setting ("r1_gamma" -> "--gamma")."""
    return "--" + {"r1_gamma": "gamma"}.get(setting, setting).replace("_", "-")


def unet_depth(image_size: int) -> int:
    """Number of U-Net levels: log2(S), so the bottleneck is 1x1."""
    depth = int(round(math.log2(image_size))) if image_size > 0 else 0
    if image_size < 32 or 2**depth != image_size:
        raise ValueError(f"image size must be a power of two >= 32 (got {image_size})")
    return depth


@dataclass
class TrainConfig:
    """Every training option; the defaults are the report's final model."""

    data: str = "coco"
    out: str = "runs/pix2color"
    generator: str = "unet"  # or "resnet18": the report's pretrained variant
    encoder_weights: str = "imagenet"  # resnet18 only: imagenet, none, or a preset folder / .weights.h5
    epochs: int = 15
    batch_size: int = 4
    image_size: int = 256
    lambda_l1: float = 100.0
    r1_gamma: float = 0.001
    r1_every: int = 1
    label_smoothing: bool = False
    gan_only: bool = False
    l1_only: bool = False
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 42
    patch_size: int = 70
    steps_per_epoch: int | None = None  # default: one pass over the training images
    validation_steps: int | None = None  # default: the whole validation split
    val_fraction: float = DEFAULT_VAL_FRACTION
    checkpoint_every: int = 200  # steps; a checkpoint is also written after every epoch
    jit_compile: bool = False  # XLA: no faster on CPU, slow to compile; try it on GPUs
    verbose: int | str = "auto"
    coco_dir: str | None = None  # --data coco from the official folders instead of tfds
    tfds_data_dir: str | None = None
    download: bool = False  # let tensorflow-datasets download and prepare COCO (~40 GB)
    strategy: str = "auto"
    precision: str = "float32"  # the report's; bfloat16, float16, or auto (see `precision`)
    deterministic_ops: bool = False  # bit-identical runs and resumes (`use_deterministic_ops`); slower
    keep_best: str | None = None  # one of KEEP_BEST: keep the generator of the best epoch in best/
    early_stop: int | None = None  # stop after this many epochs without a better --keep-best measure
    val_fid: bool = False  # FID and KID on the validation images after every epoch (Inception-v3)
    feature_weights: str = "imagenet"  # with val_fid: Inception-v3's weights (imagenet, none or a file)

    def validate(self) -> None:
        """Refuse, in one line naming the flag, any value that cannot make a sensible run."""
        if not str(self.out).strip():
            raise RunError("--out is empty (an unset variable?): give the run folder")
        if self.gan_only and self.l1_only:
            raise RunError("--gan-only and --l1-only exclude each other")
        if self.jit_compile and self.deterministic_ops:  # Keras compiles no step with XLA under op determinism
            raise RunError("--jit-compile and --deterministic-ops exclude each other: under op determinism Keras "
                           "compiles no step with XLA")
        for name in ("epochs", "batch_size", "r1_every", "checkpoint_every", "steps_per_epoch", "validation_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RunError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if not 0 < self.lr < math.inf:
            raise RunError(f"--lr must be a number greater than 0 (got {self.lr:g})")
        for flag, value in (("--lambda-l1", self.lambda_l1), ("--gamma", self.r1_gamma)):
            if not 0 <= value < math.inf:
                raise RunError(f"{flag} must be a number >= 0 (got {value:g}; 0 turns it off)")
        if not 0 <= self.seed < 2**32:
            raise RunError(f"--seed must be in 0 .. {2**32 - 1} (got {self.seed})")
        for flag, value in (("--beta1", self.beta1), ("--beta2", self.beta2), ("--val-fraction", self.val_fraction)):
            if not 0 <= value < 1:
                raise RunError(f"{flag} must be in [0, 1) (got {value:g})")
        try:
            unet_depth(self.image_size)
        except ValueError as error:
            raise RunError(f"--image-size: {error}") from None
        if self.strategy not in STRATEGIES:
            raise RunError(f"--strategy must be one of {', '.join(STRATEGIES)}")
        if self.generator not in GENERATORS:
            raise RunError(f"--generator must be one of {', '.join(GENERATORS)}")
        if self.precision not in PRECISIONS:
            raise RunError(f"--precision must be one of {', '.join(PRECISIONS)} (got {self.precision})")
        if self.keep_best is not None and self.keep_best not in KEEP_BEST:
            raise RunError(f"--keep-best must be one of {', '.join(KEEP_BEST)} (got {self.keep_best})")
        if self.keep_best in ("val_fid", "val_kid") and not self.val_fid:
            raise RunError(f"--keep-best {self.keep_best} needs --val-fid (FID and KID of the validation images "
                           "after every epoch)")
        if self.feature_weights != "imagenet" and not self.val_fid:
            raise RunError("--feature-weights chooses the Inception-v3 weights of --val-fid; give both, or neither")
        if self.early_stop is not None and (self.early_stop < 1 or self.keep_best is None):
            raise RunError("--early-stop takes a number of epochs of at least 1, with --keep-best METRIC (the "
                           f"measure it waits to improve; one of {', '.join(KEEP_BEST)})")
        if self.patch_size not in PATCH_SIZES:
            raise RunError(f"--patch-size must be one of {', '.join(map(str, sorted(PATCH_SIZES)))}")

    @property
    def effective_lambda_l1(self) -> float:
        return 0.0 if self.gan_only else self.lambda_l1

    def run_defining(self) -> dict:
        """The settings a resume must match (`RUN_DEFINING`); --encoder-weights only matters for
        the ResNet-18 U-Net, --feature-weights only with --val-fid."""
        keys = [key for key in RUN_DEFINING if (key != "encoder_weights" or self.generator == "resnet18")
                and (key != "feature_weights" or self.val_fid)]
        return {key: getattr(self, key) for key in keys}
