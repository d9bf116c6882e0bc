"""`pix2color colorize`: colorize photos at their original resolution.

    pix2color colorize photo.jpg old_photos/ "scans/*.png" -o colorized/ --model runs/pix2color
"""

from __future__ import annotations

import argparse
import sys

from pix2color.colorize import OUTPUT_FORMATS
from pix2color.lite import DEFAULT_MAX_PIXELS
from pix2color.loading import MODES
from pix2color.quiet import import_quietly


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pix2color colorize",
        description="Colorize photos at their original resolution.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or globs")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--model", default="runs/pix2color", help="run folder, .keras generator or SavedModel")
    parser.add_argument("--mode", choices=MODES, default="deterministic",
                        help="deterministic: reproducible colours; paper: dropout and batch statistics as the report")
    parser.add_argument("--batch-size", type=int, default=8, help="images per network call")
    parser.add_argument("--format", dest="image_format", choices=("same", *OUTPUT_FORMATS), default="same",
                        help="output format; 'same' keeps jpg/png/webp and writes png otherwise")
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality")
    parser.add_argument("--compare", action="store_true",
                        help="also write NAME_compare.jpg: grayscale | colorized | input")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse images larger than this many pixels")
    parser.add_argument("--verbose", type=int, choices=(0, 1), default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 all colorized, 1 some files failed, 2 nothing to do or a bad model."""
    args = build_parser().parse_args(argv)
    import_quietly()
    import keras

    from pix2color.colorize import FullResolutionColorizer, colorize_files, expand_inputs
    from pix2color.loading import load_network

    files, missing = expand_inputs(args.inputs)
    for item in missing:
        print(f"error: {item}: no such file or no match", file=sys.stderr)
    if not files:
        print("pix2color colorize: error: no input images", file=sys.stderr)
        return 2
    try:
        network = load_network(args.model, args.mode)
    except (ValueError, OSError) as error:
        print(f"pix2color colorize: error: {error}", file=sys.stderr)
        return 2
    progress = keras.utils.Progbar(len(files), verbose=args.verbose, unit_name="image")
    report = colorize_files(
        files, args.out, FullResolutionColorizer(network.predict_ab, network.image_size), args.batch_size,
        args.image_format, args.quality, args.compare, args.max_pixels,
        on_error=lambda message: print(f"\nerror: {message}", file=sys.stderr), on_progress=progress.add,
    )
    failed = len(report.failed) + len(missing)
    print(f"{len(report.written)} colorized into {args.out}, {failed} failed")
    return 1 if failed else 0
