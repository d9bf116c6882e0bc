"""`pix2color plots RUN`: the report's figures 7-11 for a run folder."""

from __future__ import annotations

import argparse
import sys

from pix2color import plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pix2color plots", description="Figures of a training run, like the report's.")
    parser.add_argument("run", help="run folder (holding history.csv)")
    args = parser.parse_args(argv)
    try:
        for path in plots.run_figures(args.run):
            print(f"wrote {path}")
    except FileNotFoundError as error:
        print(f"pix2color plots: error: {error}", file=sys.stderr)
        return 2
    return 0

