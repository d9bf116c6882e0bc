"""The command line: `pix2color COMMAND ...`, one module per command, each thin.

A command parses its flags, calls the library, and turns the library's known errors into one
line and an exit status. The library never imports this package.
"""

from __future__ import annotations

import importlib
import os
import sys

# Before TensorFlow loads (see pix2color.quiet). Set it to 0 to see everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

COMMANDS = {
    "train": "train or resume a colorizer",
    "colorize": "colorize photos at full resolution",
    "export": "export to SavedModel and TFLite",
    "evaluate": "PSNR/SSIM/colourfulness vs the grayscale baseline",
    "ablation": "train and evaluate the report's Table II configurations",
    "plots": "figures of a run, like the report's",
    "serve": "the colorize page and API, and the Turing-test poll, in a browser",
    "turing": "build a Turing-test poll and count its results",
}


def main(argv: list[str] | None = None) -> int:
    """`pix2color COMMAND ...`: one entry point for every command (pix2color.cli.COMMAND.main)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<10} {help_text}" for name, help_text in COMMANDS.items()]
        print("usage: pix2color COMMAND [options]   (pix2color COMMAND --help for its options)\n\ncommands:")
        print("\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\npix2color: error: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    return importlib.import_module(f"pix2color.cli.{argv[0]}").main(argv[1:])
