"""`pix2color colorize`: colorize photos and videos at their original resolution.

    pix2color colorize photo.jpg old_photos/ "scans/*.png" -o colorized/ --model runs/pix2color
    pix2color colorize home_movie.mp4 -o colorized/ --model runs/pix2color [--stabilise off]
"""

from __future__ import annotations

import argparse
import sys

from pix2color.colorize import OUTPUT_FORMATS
from pix2color.lite import DEFAULT_MAX_PIXELS
from pix2color.loading import MODES
from pix2color.quiet import import_quietly
from pix2color.stabilise import DEFAULT_STRENGTH
from pix2color.video import DEFAULT_CRF, VIDEO_FORMATS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pix2color colorize",
        description="Colorize photos and videos at their original resolution.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", help="photos, videos, folders (searched recursively) or globs")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--model", default="runs/pix2color", help="run folder, .keras generator or SavedModel")
    parser.add_argument("--mode", choices=MODES, default="deterministic",
                        help="deterministic: reproducible colours; paper: dropout and batch statistics as the report")
    parser.add_argument("--batch-size", type=int, default=8, help="images or video frames per network call")
    parser.add_argument("--format", dest="image_format", choices=("same", *OUTPUT_FORMATS), default="same",
                        help="output format; 'same' keeps jpg/png/webp and writes png otherwise")
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality")
    parser.add_argument("--compare", action="store_true",
                        help="also write NAME_compare.jpg: grayscale | colorized | input")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse images larger than this many pixels")
    video = parser.add_argument_group("videos")
    video.add_argument("--video-format", choices=tuple(VIDEO_FORMATS), default="mp4", help="output container")
    video.add_argument("--codec", default=None,
                       help="FFmpeg video encoder (default: libx264, i.e. H.264; libvpx-vp9 for webm)")
    video.add_argument("--crf", type=int, default=DEFAULT_CRF, help="quality for x264/x265/VP9/AV1: lower is better")
    video.add_argument("--stabilise", choices=("on", "off"), default="on",
                       help="keep colours steady from frame to frame (off: every frame on its own)")
    video.add_argument("--strength", type=float, default=DEFAULT_STRENGTH,
                       help="stabiliser: weight of the previous frame's colours where they still fit, in [0, 1)")
    parser.add_argument("--verbose", type=int, choices=(0, 1), default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 all colorized, 1 some files failed (or a video ended early), 2 nothing to do,
    a bad model or a bad option."""
    args = build_parser().parse_args(argv)
    import_quietly()
    import keras
    from tqdm import tqdm

    from pix2color.colorize import (FullResolutionColorizer, colorize_files, colorize_videos, expand_inputs,
                                    split_photos_and_videos)
    from pix2color.loading import load_network
    from pix2color.stabilise import Stabiliser
    from pix2color.video import check_codec

    if not 0.0 <= args.strength < 1.0:
        print(f"pix2color colorize: error: --strength must be in [0, 1) (got {args.strength})", file=sys.stderr)
        return 2
    files, missing = expand_inputs(args.inputs)
    for item in missing:
        print(f"error: {item}: no such file or no match", file=sys.stderr)
    if not files:
        print("pix2color colorize: error: no input photos or videos", file=sys.stderr)
        return 2
    photos, videos = split_photos_and_videos(files)
    try:
        codec = check_codec(args.codec, args.video_format) if videos else None
        network = load_network(args.model, args.mode)
    except (ValueError, OSError) as error:
        print(f"pix2color colorize: error: {error}", file=sys.stderr)
        return 2
    recipe = FullResolutionColorizer(network.predict_ab, network.image_size)
    written, failed = 0, len(missing)
    if photos:
        progress = keras.utils.Progbar(len(photos), verbose=args.verbose, unit_name="image")
        report = colorize_files(
            photos, args.out, recipe, args.batch_size, args.image_format, args.quality, args.compare,
            args.max_pixels, on_error=lambda message: print(f"\nerror: {message}", file=sys.stderr),
            on_progress=progress.add,
        )
        written, failed = written + len(report.written), failed + len(report.failed)
    if videos:
        report = colorize_videos(
            videos, args.out, recipe, args.batch_size, args.video_format, codec, args.crf,
            (lambda: Stabiliser(args.strength)) if args.stabilise == "on" else None,
            on_error=lambda message: print(f"error: {message}", file=sys.stderr),
            on_note=lambda message: print(f"note: {message}", file=sys.stderr),
            progress=lambda name, total: tqdm(total=total, desc=name, unit="frame", disable=not args.verbose,
                                              dynamic_ncols=True),
        )
        written, failed = written + len(report.written), failed + len(report.failed)
    print(f"{written} colorized into {args.out}, {failed} failed")
    return 1 if failed else 0
