"""`pix2color train` / `pix2color-train` / `python train.py`: train or resume a colorizer."""

from __future__ import annotations

from pix2color.cli import (
    ArgumentParser,
    HelpFormatter,
    add_feature_options,
    command,
    non_negative_float,
    positive_float,
    positive_int,
    refused,
    seed_number,
)
from pix2color.config import GENERATORS, KEEP_BEST, STRATEGIES, TrainConfig
from pix2color.errors import Pix2colorError
from pix2color.training.precision import PRECISIONS

PROG = "pix2color-train"


def build_parser() -> ArgumentParser:
    defaults = TrainConfig()
    parser = ArgumentParser(
        prog=PROG,
        description="Train the pix2color colorizer (pix2pix U-Net + PatchGAN with R1). "
        "The defaults are the report's final model; re-running the same command resumes.",
        formatter_class=HelpFormatter,
    )
    add = parser.add_argument
    add("--data", default=defaults.data,
        help="'coco' (COCO 2017), 'sample' (the built-in sample photos) or a folder of images")
    add("--out", default=defaults.out, help="run folder: checkpoints, logs, plots, generator.keras")
    add("--epochs", type=positive_int, default=defaults.epochs, help="epochs to train in all (raise it to train on)")
    add("--batch-size", type=positive_int, default=defaults.batch_size,
        help="the global batch (split over replicas)")
    add("--image-size", type=positive_int, default=defaults.image_size,
        help="S: images are squashed to S x S; a power of two >= 32")
    add("--lambda-l1", type=non_negative_float, default=defaults.lambda_l1, help="weight of the L1 loss")
    add("--gamma", dest="r1_gamma", type=non_negative_float, default=defaults.r1_gamma,
        help="R1 weight; 0 turns R1 off")
    add("--r1-every", type=positive_int, default=defaults.r1_every,
        help="lazy R1: penalise every k-th step with gamma*k (1 = every step, as the report)")
    add("--label-smoothing", action="store_true", help="one-sided label smoothing (real label 0.9)")
    add("--gan-only", action="store_true", help="adversarial loss only (lambda = 0)")
    add("--l1-only", action="store_true", help="L1 loss only: no discriminator, no dropout")
    add("--lr", type=positive_float, default=defaults.lr, help="Adam learning rate (G and D)")
    add("--beta1", type=float, default=defaults.beta1, help="Adam's beta 1")
    add("--beta2", type=float, default=defaults.beta2, help="Adam's beta 2")
    add("--seed", type=seed_number, default=defaults.seed, help="weights, data order and flips")
    add("--patch-size", type=int, default=defaults.patch_size, help="PatchGAN receptive field: 1, 16, 34, 70, 142 or 286")
    add("--generator", default=defaults.generator, choices=GENERATORS,
        help="unet: the report's U-Net; resnet18: its pretrained variant, a U-Net on an ImageNet ResNet-18 encoder")
    add("--encoder-weights", default=defaults.encoder_weights,
        help="with --generator resnet18: imagenet (keras-hub's resnet_18_imagenet, downloaded once), none "
             "(random), or a local keras-hub preset folder or .weights.h5 file")
    add("--steps-per-epoch", type=positive_int, default=None, help="default: one pass over the training images")
    add("--validation-steps", type=positive_int, default=None, help="default: the whole validation split")
    add("--val-fraction", type=float, default=defaults.val_fraction,
        help="share of photos (sample set) or files (folder) held out for validation; 0: none")
    add("--checkpoint-every", type=positive_int, default=defaults.checkpoint_every,
        help="steps between checkpoints (one is also written after every epoch)")
    add("--jit-compile", action="store_true", help="compile the train step with XLA")
    add("--deterministic-ops", action="store_true",
        help="TensorFlow op determinism, one op at a time, no arithmetic rewrites of the traced step: identical "
             "runs, and a resumed run's weights equal the uninterrupted run's bit for bit (slower; without it runs "
             "differ by float rounding)")
    add("--coco-dir", default=None,
        help="with --data coco: a folder with train2017/, unlabeled2017/, val2017/, test2017/ "
        "(default: $COCO_DIR or ./coco if present, else tensorflow-datasets)")
    add("--tfds-data-dir", default=None, help="with --data coco: tensorflow-datasets data_dir")
    add("--download", action="store_true", help="with --data coco: let tensorflow-datasets download COCO")
    add("--strategy", default=defaults.strategy, choices=STRATEGIES,
        help="tf.distribute strategy; --batch-size is the global batch (multiworker: one process per machine, "
             "TF_CONFIG set, --out on a shared filesystem; auto picks it when TF_CONFIG names several workers)")
    add("--precision", default=defaults.precision, choices=PRECISIONS,
        help="float32 (the report's); bfloat16: layers compute in bfloat16, variables, losses and BatchNorm "
             "statistics stay float32 (CPUs with AVX512_BF16 or AMX, TPUs, GPUs of compute capability >= 8.0); "
             "float16: the same with loss scaling (older GPUs); auto: the fastest of these the hardware has. "
             "The saved generator is float32 whatever the choice")
    add("--mixed-precision", dest="precision", action="store_const", const="float16",
        help="the same as --precision float16")
    add("--keep-best", default=None, choices=KEEP_BEST, metavar="METRIC",
        help=f"keep the generator of the epoch with the best validation METRIC in OUT/best/ ({', '.join(KEEP_BEST)}; "
             "val_fid / val_kid need --val-fid)")
    add("--early-stop", type=positive_int, default=None, metavar="PATIENCE",
        help="with --keep-best: stop after PATIENCE epochs without a better METRIC")
    add("--val-fid", action="store_true",
        help="FID and KID of the validation images after every epoch (Inception-v3; in history.csv)")
    add_feature_options(parser, skip=None)
    add("--verbose", type=int, choices=(0, 1, 2), default=None,
        help="0 silent, 1 progress bar (the default), 2 one line per epoch")
    return parser


def _what_a_resume_finds(argv) -> str:
    """After Ctrl-C: what the run folder holds, so the user knows what re-running will do."""
    from pix2color.training.checkpoints import what_is_saved

    try:
        args, _ = build_parser().parse_known_args(argv)
        return what_is_saved(args.out)
    except (SystemExit, OSError):
        return ""


@command(PROG, interrupted=_what_a_resume_finds)
def main(argv: list[str] | None = None) -> int:
    """`pix2color-train` / `python train.py`."""
    args = build_parser().parse_args(argv)
    options = vars(args)
    if options["verbose"] is None:
        options["verbose"] = "auto"
    config = TrainConfig(**options)
    try:
        config.validate()  # bad values are refused before TensorFlow starts
    except Pix2colorError as error:
        return refused(PROG, error)

    from pix2color.quiet import import_quietly

    import_quietly()
    from pix2color.training.run import train

    try:
        result = train(config)
    except Pix2colorError as error:  # 130 / 143 after SIGINT / SIGTERM, 1 for a failure, 2 for a refusal
        return refused(PROG, error)
    print(f"Done: {result.epochs_done} epochs, {result.steps_done} steps; run folder {result.out}")
    return 0
