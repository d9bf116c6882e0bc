"""`pix2color turing`: build a Turing-test poll, and count its results.

    pix2color turing build --model runs/pix2color --photos photos/ --pairs 20 --out poll
    pix2color serve --poll poll --host 0.0.0.0
    pix2color turing results poll [--exclude 3,17] [--csv results.csv] [--png results.png] [--overwrite]
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from pix2color.cli import ArgumentParser, HelpFormatter, RawHelpFormatter, command, int_in, positive_int, seed_number
from pix2color.loading import MODES
from pix2color.outputs import OutputExists, exists_message, write_output
from pix2color.quiet import import_quietly
from pix2color.turing import PROTOCOLS, Poll, PollError, build_poll, check_poll_folder, poll_of, results

PROG = "pix2color turing"
MIN_SIDE = 16  # smaller photos carry no colour a participant could judge (the training data's minimum too)


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
    build.add_argument("--seed", type=seed_number, default=0, help="which photos, and each participant's order")
    build.add_argument("--max-side", type=int_in(MIN_SIDE), default=768,
                       help=f"larger photos are scaled down to this (at least {MIN_SIDE})")
    counts = commands.add_parser("results", help="the confusion matrix, rates and per-pair table",
                                 formatter_class=HelpFormatter)
    counts.add_argument("poll", help="the poll folder")
    counts.add_argument("--exclude", default="", help="pair numbers to leave out, e.g. 3,17")
    counts.add_argument("--csv", default=None, help="write one row per pair here")
    counts.add_argument("--png", default=None, help="write a bar chart per pair here")
    counts.add_argument("--overwrite", action="store_true",
                        help="replace --csv and --png files that exist (never a file of a poll)")
    return parser


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _build(args) if args.command == "build" else _results(args)


def _build(args) -> int:
    try:
        check_poll_folder(args.out)  # before TensorFlow loads: a mistake costs no wait
        if not os.path.isdir(args.photos):
            raise PollError(f"--photos {args.photos}: not a folder")
    except PollError as error:
        print(f"{PROG} build: error: {error}", file=sys.stderr)
        return 2
    import_quietly()
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
    problem = _output_problem(args)
    if problem:
        print(f"{PROG} results: error: {problem}", file=sys.stderr)
        return 2
    try:
        counted = results(Poll(args.poll), excluded)
    except PollError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(counted.report())
    outputs = [(args.csv, _csv_writer(counted)), (args.png, _chart_writer(counted))]
    for path, write in [(Path(path), write) for path, write in outputs if path]:
        try:
            write_output(path, write, args.overwrite)
        except OutputExists:
            print(f"{PROG} results: error: {exists_message(path)}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"{PROG} results: error: cannot write {path}: {error.strerror or error}", file=sys.stderr)
            return 1
        print(f"wrote {path}")
    return 0


def _output_problem(args) -> str | None:
    """Why --csv or --png may not be written, in one line (None if they may): a file of a poll
    is never replaced, another existing file only with --overwrite, a folder never."""
    given = [(flag, path) for flag, path in (("--csv", args.csv), ("--png", args.png)) if path]
    if len(given) == 2 and os.path.realpath(args.csv) == os.path.realpath(args.png):
        return f"--csv and --png name the same file ({args.csv})"
    for flag, path in given:
        poll = poll_of(path)
        if poll is not None:
            return f"{flag} {path}: a file of the poll {poll}; it is never replaced, give another name"
        if os.path.isdir(path) or (os.path.lexists(path) and not args.overwrite):
            return f"{flag} {exists_message(Path(path))}"
    return None


def _csv_writer(counted):
    def write(handle):
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        counted.write_csv(text)
        text.detach()  # flushed; `handle` stays open

    return write


def _chart_writer(counted):
    def write(handle):
        from pix2color import plots  # matplotlib takes a second to load: only for a chart

        plots.turing_chart(counted, handle)

    return write
