"""`pix2color evaluate`: PSNR / SSIM / colourfulness / FID / KID of a model against the grayscale baseline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pix2color.cli import (
    ArgumentParser,
    RawHelpFormatter,
    add_feature_options,
    command,
    inception_features,
    positive_int,
    seed_number,
)
from pix2color.colorizing.loading import load_generator
from pix2color.evaluation import evaluate
from pix2color.outputs import write_output
from pix2color.quiet import import_quietly

PROG = "pix2color evaluate"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=evaluate.__doc__, formatter_class=RawHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder or .keras generator")
    parser.add_argument("--data", default="sample", help="sample, coco-val, coco-test or a folder of images")
    parser.add_argument("--coco-dir", default=None, help="with coco-val / coco-test: the official COCO folders")
    parser.add_argument("--tfds-data-dir", default=None, help="with coco-val / coco-test: tensorflow-datasets' data_dir")
    parser.add_argument("--batch-size", type=positive_int, default=evaluate.REPORT_BATCH,
                        help="images per batch; the report's protocol averages per-batch means over batches of 4")
    parser.add_argument("--modes", default=",".join(evaluate.SYSTEMS), help="comma-separated: deterministic, paper, "
                        "grayscale")
    parser.add_argument("--limit", type=positive_int, default=None, help="the first N images only (default: all)")
    parser.add_argument("--out", default=None,
                        help="where to write evaluation.md/.csv (default: the run folder, or . for a file)")
    add_feature_options(parser)
    parser.add_argument("--seed", type=seed_number, default=0, help="for the paper mode's dropout")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation.md / .csv in --out")
    parser.add_argument("--verbose", type=int, choices=(0, 1), default=1, help="1: a progress bar")
    return parser


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    systems = tuple(s for s in args.modes.split(",") if s)
    unknown = set(systems) - set(evaluate.SYSTEMS)
    if unknown or not systems:
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}" if unknown else "--modes: none given")
    out = Path(args.out) if args.out else (Path(args.model) if Path(args.model).is_dir() else Path("."))
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out}: is a file, not a folder")
    targets = [out / "evaluation.md", out / "evaluation.csv"]
    existing = [str(path) for path in targets if os.path.lexists(path)]
    if existing and not args.overwrite:
        parser.error(f"{existing[0]} exists (an earlier evaluation?): --overwrite replaces it, or choose another --out")

    if not os.path.lexists(args.model):
        parser.error(f"--model {args.model}: no such file or folder")

    import_quietly()
    return _evaluate_and_write(args, systems, out, targets)


def _evaluate_and_write(args, systems: tuple[str, ...], out: Path, targets: list[Path]) -> int:
    """Evaluate --model on --data, print the table and write it to `targets`; the exit status: 2 for a
    model or images that cannot be used, 1 for an output that cannot be written. Called once the options
    are checked: TensorFlow must be imported already (`import_quietly`)."""
    import keras

    from pix2color.data import DataError  # pix2color.data loads TensorFlow: not before the options are checked

    said = []  # said after the features' line: the first line says which weights FID / KID use
    try:
        generator = load_generator(args.model, log=said.append)
        images, names = evaluate.images_for(args.data, args.coco_dir, args.tfds_data_dir, args.limit)
    except (DataError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if not args.no_fid and len(names) < 4:
        print(f"{PROG}: error: FID and KID need 4 images or more ({len(names)} here); --no-fid leaves them out",
              file=sys.stderr)
        return 2
    features = None if args.no_fid else inception_features(args.feature_weights, PROG)
    print("\n".join(said))
    keras.utils.set_random_seed(args.seed)  # after the features: their random weights are seeded on their own
    size = int(generator.input_shape[1])
    print(f"Evaluating {len(names)} images at {size} x {size} px, the model's size (photos are squashed to it, "
          "as in training)")
    try:
        result = evaluate.evaluate_generator(generator, images, names, args.batch_size, systems, args.verbose,
                                             features)
    except (DataError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    table = result.markdown(f"{args.model} on {args.data}")
    try:
        for path, text in zip(targets, (table, result.csv_text())):
            write_output(path, lambda handle, text=text: handle.write(text.encode()), args.overwrite)
    except OSError as error:
        print(f"{PROG}: error: cannot write {error.filename or out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(table)
    print(f"wrote {out / 'evaluation.md'} and {out / 'evaluation.csv'}")
    return 0
