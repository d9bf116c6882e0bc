"""`pix2color turing`: build a Turing-test poll, and count its results.

    pix2color turing build --model runs/pix2color --photos photos/ --pairs 20 --out poll
    pix2color serve --poll poll --host 0.0.0.0
    pix2color turing results poll [--exclude 3,17] [--csv results.csv] [--png results.png]
"""

from __future__ import annotations

import os
import sys

from pix2color.cli import ArgumentParser, HelpFormatter, RawHelpFormatter, command, positive_int
from pix2color.loading import MODES
from pix2color.turing import PROTOCOLS, Poll, PollError, results

PROG = "pix2color turing"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=RawHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="pick photos, colorize them and write a poll folder",
                                formatter_class=HelpFormatter)
    build.add_argument("--model", required=True, help="run folder, .keras generator or SavedModel")
    build.add_argument("--photos", required=True, help="a folder of colour photos (searched recursively)")
    build.add_argument("--pairs", type=positive_int, default=20, help="the report asked about 20 pairs")
    build.add_argument("--out", required=True, help="the poll folder to write")
    build.add_argument("--protocol", choices=PROTOCOLS, default="report",
                       help="report: one colour version per trial, 'original or generated?'; "
                            "2afc: both side by side, 'which is real?'")
    build.add_argument("--mode", choices=MODES, default="deterministic", help="the model's inference mode")
    build.add_argument("--seed", type=int, default=0, help="which photos, and each participant's order")
    build.add_argument("--max-side", type=positive_int, default=768, help="larger photos are scaled down to this")
    counts = commands.add_parser("results", help="the confusion matrix, rates and per-pair table",
                                 formatter_class=HelpFormatter)
    counts.add_argument("poll", help="the poll folder")
    counts.add_argument("--exclude", default="", help="pair numbers to leave out, e.g. 3,17")
    counts.add_argument("--csv", default=None, help="write one row per pair here")
    counts.add_argument("--png", default=None, help="write a bar chart per pair here")
    return parser


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _build(args) if args.command == "build" else _results(args)


def _build(args) -> int:
    from pix2color.turing import check_poll_folder

    try:
        check_poll_folder(args.out)  # before TensorFlow loads: a mistake costs no wait
        if not os.path.isdir(args.photos):
            raise PollError(f"--photos {args.photos}: not a folder")
    except PollError as error:
        print(f"{PROG} build: error: {error}", file=sys.stderr)
        return 2
    from pix2color.quiet import import_quietly

    import_quietly()
    from pix2color.turing import build_poll

    try:
        folder = build_poll(args.model, args.photos, args.out, args.pairs, args.protocol, args.mode, args.seed,
                            args.max_side)
    except (ValueError, OSError) as error:  # PollError, and a model that cannot be loaded
        print(f"{PROG} build: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote the poll to {folder}; serve it with: pix2color serve --poll {folder}")
    return 0


def _results(args) -> int:
    try:
        excluded = tuple(int(p) for p in args.exclude.split(",") if p.strip())
    except ValueError:
        print(f"{PROG} results: error: --exclude takes pair numbers separated by commas", file=sys.stderr)
        return 2
    try:
        counted = results(Poll(args.poll), excluded)
    except PollError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(counted.report())
    try:
        if args.csv:
            counted.write_csv(args.csv)
            print(f"wrote {args.csv}")
        if args.png:
            from pix2color import plots

            plots.turing_chart(counted, args.png)
            print(f"wrote {args.png}")
    except OSError as error:
        print(f"{PROG}: error: cannot write {error.filename}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
