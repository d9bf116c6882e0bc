"""`pix2color colorize`: colorize photos and videos at their original resolution.

    pix2color colorize photo.jpg old_photos/ "scans/*.png" -o colorized/ --model runs/pix2color
    pix2color colorize home_movie.mp4 -o colorized/ --model runs/pix2color [--stabilise off]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from pix2color.cli import ArgumentParser, HelpFormatter, command, int_in, positive_int, stabiliser_strength
from pix2color.colorizing.files import (
    OUTPUT_FORMATS,
    colorize_files,
    colorize_videos,
    expand_inputs,
    plan,
    split_photos_and_videos,
)
from pix2color.colorizing.loading import MODES, load_network
from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.colorizing.stabilise import DEFAULT_STRENGTH, Stabiliser
from pix2color.colorizing.video import DEFAULT_CRF, VIDEO_FORMATS, check_codec
from pix2color.errors import ModelError
from pix2color.outputs import check_output_folder, quoted, summary
from pix2color.photos import DEFAULT_MAX_PIXELS
from pix2color.quiet import import_quietly

PROG = "pix2color colorize"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Colorize photos and videos at their original resolution.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", help="photos, videos, folders (searched recursively) or globs")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--model", default="runs/pix2color", help="run folder, .keras generator or SavedModel")
    parser.add_argument("--mode", choices=MODES, default="deterministic",
                        help="deterministic: reproducible colours; paper: dropout and batch statistics as the report")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images or video frames per network call")
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
    video.add_argument("--crf", type=int_in(0, 63), default=DEFAULT_CRF,
                       help="quality for x264/x265/VP9/AV1, 0..63: lower is better")
    video.add_argument("--stabilise", choices=("on", "off"), default="on",
                       help="keep colours steady from frame to frame (off: every frame on its own)")
    video.add_argument("--strength", type=stabiliser_strength, default=DEFAULT_STRENGTH,
                       help="stabiliser: weight of the previous frame's colours where they still fit, in [0, 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that exist (an input is never replaced: it gets NAME_colorized.EXT)")
    parser.add_argument("--verbose", type=int, choices=(0, 1), default=1, help="1: progress bars")
    return parser


def option_problem(args: argparse.Namespace) -> str | None:
    """The first option out of its range, or an output folder that cannot be written, in one
    line; None when all is well. Checked before TensorFlow loads: a mistake costs no wait."""
    checks = [
        (args.batch_size >= 1, f"--batch-size must be at least 1 (got {args.batch_size})"),
        (1 <= args.quality <= 100, f"--quality must be in 1..100 (got {args.quality})"),
        (args.max_pixels >= 1, f"--max-pixels must be at least 1 (got {args.max_pixels})"),
    ]
    problem = next((message for fine, message in checks if not fine), None)
    try:
        check_output_folder(args.out)
    except ValueError as error:
        problem = problem or str(error)
    return problem


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 when nothing failed (outputs that exist are skipped, and said so), 1 when
    some files failed (or a video ended early), 2 for nothing to do, a bad model, a bad option or
    an output folder that cannot be written."""
    args = build_parser().parse_args(argv)
    problem = option_problem(args)
    if problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    files, unreadable = expand_inputs(args.inputs, args.out)  # before TensorFlow loads: a mistake costs no wait
    if not files:
        why = f" ({'; '.join(unreadable)})" if unreadable else ""
        print(f"{PROG}: error: no input photos or videos{why}", file=sys.stderr)
        return 2
    if not os.path.lexists(args.model):
        print(f"{PROG}: error: --model {quoted(args.model)}: no such file or folder", file=sys.stderr)
        return 2
    import_quietly()
    return _run(args, files, unreadable)


def _say(prefix: str) -> Callable[[str], None]:
    return lambda message: print(f"{prefix}: {message}", file=sys.stderr)


def _run(args: argparse.Namespace, files: list, unreadable: list[str]) -> int:
    for line in unreadable:
        _say("error")(line)
    photos, videos = split_photos_and_videos(files)
    try:
        codec = check_codec(args.codec, args.video_format) if videos else None
        network = load_network(args.model, args.mode, log=print)
    except (ValueError, OSError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    recipe = FullResolutionColorizer(network.predict_ab, network.image_size)
    photos, videos = plan(photos, videos, args.out, args.image_format, args.video_format, args.compare, args.overwrite)
    for item in photos + videos:
        for line in item.renamed:
            _say("note")(line)
        for line in item.skipped:
            _say("skipped")(line)
    try:
        reports = _colorize_everything(args, photos, videos, recipe, codec)
    except ModelError as error:  # damaged weights met in a batch (paper mode, or inputs unlike the load's probe)
        print(f"{PROG}: error: {quoted(args.model)}: {error}", file=sys.stderr)
        return 2
    for line in reports[0].notes:
        _say("note")(line)
    if reports[0].alpha_lost:
        lost = reports[0].alpha_lost
        _say("note")(f"{len(lost)} input{'s' if len(lost) > 1 else ''} with transparency ({quoted(lost[0])}"
                     f"{', ...' if len(lost) > 1 else ''}) written where transparency cannot be kept (JPEG): their "
                     "transparent parts are white; --format png or webp keeps it")
    skipped = sum(item.target is None for item in photos + videos) + sum(len(r.skipped) for r in reports)
    failed = len(unreadable) + sum(len(r.failed) for r in reports)
    print(summary(sum(len(r.written) for r in reports), skipped, failed, args.out)
          + (f"; {len(reports[0].compare_failed)} comparison images not written" if reports[0].compare_failed else ""))
    return 1 if failed or reports[0].compare_failed else 0


def _colorize_everything(args: argparse.Namespace, photos: list, videos: list, recipe, codec) -> list:
    """Colorize the planned photos, then the videos: their reports."""
    import keras
    from tqdm import tqdm

    todo = [item for item in photos if item.target is not None]
    progress = keras.utils.Progbar(len(todo), verbose=args.verbose, unit_name="image")
    below_the_bar = "\n" if args.verbose else ""  # the bar's line ends with no newline
    reports = [colorize_files(todo, recipe, args.batch_size, args.quality, args.overwrite, args.max_pixels,
                              on_error=lambda message: print(f"{below_the_bar}error: {message}", file=sys.stderr),
                              on_skip=_say("skipped"), on_progress=progress.add)]
    reports.append(colorize_videos(
        videos, recipe, args.batch_size, codec, args.crf,
        (lambda: Stabiliser(args.strength)) if args.stabilise == "on" else None, args.overwrite,
        on_error=_say("error"), on_note=_say("note"), on_skip=_say("skipped"),
        progress=lambda name, total: tqdm(total=total, desc=quoted(name), unit="frame", disable=not args.verbose,
                                          dynamic_ncols=True),
    ))
    return reports
