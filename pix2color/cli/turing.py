"""`pix2color turing`: build a Turing-test poll, and count its results.

    pix2color turing build --model runs/pix2color --photos photos/ --pairs 20 --out poll
    pix2color serve --poll poll --host 0.0.0.0
    pix2color turing results poll [--complete-only] [--min-seconds 1] [--exclude-constant] [--exclude 3,17]
                                  [--csv results.csv] [--answers answers.csv] [--png results.png] [--overwrite]
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from pix2color.cli import (
    ArgumentParser,
    HelpFormatter,
    RawHelpFormatter,
    command,
    int_in,
    non_negative_float,
    positive_int,
    seed_number,
)
from pix2color.colorizing.loading import MODES
from pix2color.outputs import OutputExists, exists_message, write_output
from pix2color.poll.statistics import FAST_FLOOR, RESAMPLES, Rules, results, write_answers_csv
from pix2color.poll.storage import PROTOCOLS, Poll, PollError, check_poll_folder, poll_of
from pix2color.quiet import import_quietly

PROG = "pix2color turing"
MAX_RESAMPLES = 100_000  # beyond, the intervals change in their fourth decimal and the memory grows to gigabytes
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
                       help="report: one colour version per trial, 'original or colorized?'; "
                            "2afc: both side by side, 'which is real?'")
    build.add_argument("--mode", choices=MODES, default="deterministic", help="the model's inference mode")
    build.add_argument("--seed", type=seed_number, default=0, help="which photos, and each participant's order")
    build.add_argument("--max-side", type=int_in(MIN_SIDE), default=768,
                       help=f"larger photos are scaled down to this (at least {MIN_SIDE})")
    counts = commands.add_parser("results", help="the confusion matrix, rates, intervals and per-pair table",
                                 formatter_class=HelpFormatter,
                                 description="Every answer counts unless a rule below leaves some out; how many "
                                             "participants each rule concerns is printed either way, and with a "
                                             "rule on, the tables are printed for every participant and after it.")
    counts.add_argument("poll", help="the poll folder")
    counts.add_argument("--complete-only", action="store_true", help="leave out participants who stopped part-way")
    counts.add_argument("--min-seconds", type=non_negative_float, default=None, metavar="S",
                        help="leave out participants whose median time per answer is under S seconds (without it, "
                             f"those under {FAST_FLOOR:g} s are counted but kept)")
    counts.add_argument("--exclude-constant", action="store_true",
                        help="leave out participants who gave the same answer to every trial (2afc: the same side)")
    counts.add_argument("--exclude", default="", help="pair numbers to leave out, e.g. 3,17")
    counts.add_argument("--bootstrap", type=int_in(1, MAX_RESAMPLES), default=RESAMPLES, metavar="N",
                        help=f"resamples of the participants for the bootstrap intervals (at most {MAX_RESAMPLES:,})")
    counts.add_argument("--seed", type=seed_number, default=0, help="the bootstrap's seed")
    counts.add_argument("--csv", default=None, help="write one row per pair here")
    counts.add_argument("--answers", default=None, help="write one row per answer here (participants numbered)")
    counts.add_argument("--png", default=None, help="write a bar chart per pair here")
    counts.add_argument("--overwrite", action="store_true",
                        help="replace --csv, --answers and --png files that exist (never a file of a poll)")
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
    from pix2color.poll.build import build_poll

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
    rules = Rules(args.complete_only, args.min_seconds, args.exclude_constant, excluded)
    try:
        poll = Poll(args.poll)
        counted = results(poll, rules, resamples=args.bootstrap, seed=args.seed)
    except PollError as error:
        prefix = "--exclude " if excluded and "no such pair" in str(error) else ""
        print(f"{PROG} results: error: {prefix}{error}", file=sys.stderr)
        return 2
    print(counted.report())
    outputs = [(args.csv, _csv_writer(counted)), (args.answers, _answers_writer(poll, rules)),
               (args.png, _chart_writer(counted))]
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
    """Why --csv, --answers or --png may not be written, in one line (None if they may): a file of
    a poll is never replaced, another existing file only with --overwrite, a folder never."""
    given = [(flag, path) for flag, path in (("--csv", args.csv), ("--answers", args.answers), ("--png", args.png))
             if path]
    for index, (flag, path) in enumerate(given):
        same = next((other for other, named in given[:index] if os.path.realpath(named) == os.path.realpath(path)), None)
        if same:
            return f"{same} and {flag} name the same file ({path})"
        poll = poll_of(path)
        if poll is not None:
            return f"{flag} {path}: a file of the poll {poll}; it is never replaced, give another name"
        replaceable = os.path.isfile(path) or os.path.islink(path)  # a file, or a symlink (replaced itself)
        if os.path.isdir(path) or (os.path.lexists(path) and not (args.overwrite and replaceable)):
            return f"{flag} {exists_message(Path(path))}"
    return None


def _text_writer(write_text):
    """A `write_output` writer from a function that writes CSV text into a text file."""
    def write(handle):
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        write_text(text)
        text.detach()  # flushed; `handle` stays open

    return write


def _answers_writer(poll, rules):
    return _text_writer(lambda text: write_answers_csv(poll, rules, text))


def _csv_writer(counted):
    return _text_writer(counted.write_csv)


def _chart_writer(counted):
    def write(handle):
        from pix2color.poll import chart  # matplotlib takes a second to load: only for a chart

        chart.turing_chart(counted, handle)

    return write
