"""`pix2color ablation`: train and evaluate the report's Table II configurations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pix2color import ablation
from pix2color.quiet import import_quietly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pix2color ablation", description=ablation.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--configs", default=",".join(ablation.CONFIGURATIONS),
                        help=f"Table II rows to run, from {', '.join(ablation.CONFIGURATIONS)} (p: pretrained ResNet-18)")
    parser.add_argument("--steps", type=int, default=200, help="training steps per configuration")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of --steps steps each")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--coco-dir", default=None)
    parser.add_argument("--encoder-weights", default="imagenet",
                        help="for the pretrained rows: imagenet, none, or a keras-hub preset folder / .weights.h5")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    args = parser.parse_args(argv)
    config_ids = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in config_ids if c not in ablation.CONFIGURATIONS]
    if unknown:
        parser.error(f"--configs: unknown configuration {', '.join(unknown)}")

    import_quietly()
    from pix2color.data import DataError
    from pix2color.resnet_unet import EncoderWeightsError
    from pix2color.stopping import RunError
    from pix2color.training import TrainConfig

    base = TrainConfig(data=args.data, epochs=args.epochs, steps_per_epoch=args.steps, image_size=args.image_size,
                       batch_size=args.batch_size, seed=args.seed, coco_dir=args.coco_dir, verbose=args.verbose,
                       encoder_weights=args.encoder_weights)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = ablation.run_ablation(base, config_ids, out)
    except (DataError, RunError, EncoderWeightsError) as error:
        print(f"pix2color ablation: error: {error}", file=sys.stderr)
        return 2
    print((out / "ablation.md").read_text())
    print(f"wrote {out / 'ablation.md'}, {out / 'ablation.csv'} and {out / 'ablation.png'}")
    return 0 if rows else 1

