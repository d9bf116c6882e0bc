"""`pix2color ablation`: train and evaluate the report's Table II configurations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pix2color.cli import (
    ArgumentParser,
    RawHelpFormatter,
    add_feature_options,
    command,
    inception_features,
    positive_int,
    refused,
    seed_number,
)
from pix2color.config import RunError, TrainConfig
from pix2color.errors import Pix2colorError
from pix2color.evaluation import ablation
from pix2color.training.precision import PRECISIONS

PROG = "pix2color ablation"


def comma_list(parse_one):
    """An argparse type: one value or several, comma-separated, each read by `parse_one`."""

    def parse(text: str) -> list:
        values = [parse_one(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError("none given")
        if len(set(values)) < len(values):
            raise argparse.ArgumentTypeError(f"{text!r} names one value twice")
        return values

    return parse


def precision_name(text: str) -> str:
    if text not in PRECISIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(PRECISIONS)}")
    return text


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=ablation.__doc__, formatter_class=RawHelpFormatter)
    parser.add_argument("--data", default="sample", help="sample, coco or a folder of images")
    parser.add_argument("--out", default="runs/ablation", help="one run folder per configuration inside it")
    parser.add_argument("--configs", default=",".join(ablation.CONFIGURATIONS),
                        help=f"Table II rows to run, from {', '.join(ablation.CONFIGURATIONS)} (p: pretrained ResNet-18)")
    parser.add_argument("--steps", type=positive_int, default=200, help="training steps per epoch of each configuration")
    parser.add_argument("--epochs", type=positive_int, default=1, help="epochs of --steps steps each")
    parser.add_argument("--image-size", type=positive_int, default=64, help="a power of two >= 32")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="images per step")
    parser.add_argument("--seed", type=comma_list(seed_number), default=[42],
                        help="weights, data order, flips and dropout; several, comma-separated: each configuration "
                             "is trained once per seed, and the table gives the mean over seeds and the spread")
    parser.add_argument("--precision", type=comma_list(precision_name), default=["float32"],
                        help=f"{', '.join(PRECISIONS)} (see pix2color train --help); several, comma-separated: each "
                             "configuration is trained in each, and the table gives each one's difference from float32")
    parser.add_argument("--coco-dir", default=None, help="with --data coco: the official COCO folders")
    parser.add_argument("--encoder-weights", default="imagenet",
                        help="for the pretrained rows: imagenet, none, or a keras-hub preset folder / .weights.h5")
    add_feature_options(parser)
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="as for train")
    return parser


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config_ids = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in config_ids if c not in ablation.CONFIGURATIONS]
    if unknown or not config_ids:
        parser.error(f"--configs: unknown configuration {', '.join(unknown)}" if unknown else "--configs: none given")
    base = TrainConfig(data=args.data, epochs=args.epochs, steps_per_epoch=args.steps, image_size=args.image_size,
                       batch_size=args.batch_size, seed=args.seed[0], coco_dir=args.coco_dir, verbose=args.verbose,
                       encoder_weights=args.encoder_weights, precision=args.precision[0])
    try:
        base.validate()
    except RunError as error:
        parser.error(str(error))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out}: is a file, not a folder")

    from pix2color.quiet import import_quietly

    import_quietly()
    features = None if args.no_fid else inception_features(args.feature_weights, PROG)
    try:
        out.mkdir(parents=True, exist_ok=True)
        rows = ablation.run_ablation(base, config_ids, out, precisions=args.precision, seeds=args.seed,
                                     features=features)
    except Pix2colorError as error:
        return refused(PROG, error)
    except OSError as error:
        print(f"{PROG}: error: cannot write {error.filename or out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print((out / "ablation.md").read_text())
    print(f"wrote {out / 'ablation.md'}, {out / 'ablation.csv'} and {out / 'ablation.png'}")
    return 0 if rows else 1
