"""`pix2color plots RUN`: the report's figures 7-11 for a run folder."""

from __future__ import annotations

import sys

from pix2color.cli import ArgumentParser, HelpFormatter, command

PROG = "pix2color plots"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description="Figures of a training run, like the report's.",
                            formatter_class=HelpFormatter)
    parser.add_argument("run", help="run folder (holding history.csv)")
    return parser


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pix2color.training import plots, run_folder

    try:
        if run_folder.read_run_json(args.run) is None:  # the figures go into the run folder: only a run's
            print(f"{PROG}: error: {args.run}: not a pix2color run folder (no run.json)", file=sys.stderr)
            return 2
        for path in plots.run_figures(args.run):
            print(f"wrote {path}")
    except (FileNotFoundError, plots.HistoryError, run_folder.RunError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: cannot write {error.filename or args.run}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
