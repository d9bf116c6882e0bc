"""`pix2color evaluate`: PSNR / SSIM / colourfulness of a model against the grayscale baseline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pix2color import evaluate
from pix2color.quiet import import_quietly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pix2color evaluate", description=evaluate.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder or .keras generator")
    parser.add_argument("--data", default="sample", help="sample, coco-val, coco-test or a folder of images")
    parser.add_argument("--coco-dir", default=None)
    parser.add_argument("--tfds-data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=evaluate.REPORT_BATCH, help="the report's batch is 4")
    parser.add_argument("--modes", default=",".join(evaluate.SYSTEMS), help="deterministic, paper, grayscale")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--out", default=None, help="where to write evaluation.md/.csv (default: the run folder or .)")
    parser.add_argument("--seed", type=int, default=0, help="for the paper mode's dropout")
    parser.add_argument("--verbose", type=int, choices=(0, 1), default=1)
    args = parser.parse_args(argv)

    import_quietly()
    import keras

    from pix2color.data import DataError
    from pix2color.loading import load_generator

    systems = tuple(s for s in args.modes.split(",") if s)
    unknown = set(systems) - set(evaluate.SYSTEMS)
    if unknown:
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}")
    keras.utils.set_random_seed(args.seed)
    try:
        generator = load_generator(args.model)
        images, names = evaluate.images_for(args.data, args.coco_dir, args.tfds_data_dir, args.limit)
    except (DataError, ValueError, OSError) as error:
        print(f"pix2color evaluate: error: {error}", file=sys.stderr)
        return 2
    result = evaluate.evaluate_generator(generator, images, names, args.batch_size, systems, args.verbose)
    out = Path(args.out) if args.out else (Path(args.model) if Path(args.model).is_dir() else Path("."))
    out.mkdir(parents=True, exist_ok=True)
    table = result.markdown(f"{args.model} on {args.data}")
    (out / "evaluation.md").write_text(table)
    result.write_csv(out / "evaluation.csv")
    print(table)
    print(f"wrote {out / 'evaluation.md'} and {out / 'evaluation.csv'}")
    return 0

