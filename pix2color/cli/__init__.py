"""The command line: `pix2color COMMAND ...`, one module per command, each thin.

A command parses its flags, calls the library, and turns the library's known errors into one
line and an exit status. The library never imports this package. Every command's `main` is
wrapped by `command`, so that no command ends in a traceback for Ctrl-C or a closed pipe, and
builds its parser without importing TensorFlow, so `--help` and bad flags answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import signal
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


def command(prog: str, interrupted=None):
    """Wrap a command's `main(argv) -> status`: Ctrl-C becomes one line and status 130 (`interrupted(argv)`,
    if given, returns what to say, e.g. what a resume would start from); a reader that closes
    the pipe (`| head`) ends the command quietly. A command started with SIGINT ignored (a shell
    script's `cmd &`) still stops on `kill -INT`, as `train` does."""

    def wrap(main):
        @functools.wraps(main)
        def run(argv: list[str] | None = None) -> int:
            if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
                with contextlib.suppress(ValueError):  # ValueError: not the main thread
                    signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                status = main(argv)
                sys.stdout.flush()
                return status
            except KeyboardInterrupt:
                detail = interrupted(argv) if interrupted else ""
                print(f"{prog}: interrupted{'; ' + detail if detail else ''}", file=sys.stderr)
                return 130
            except BrokenPipeError:
                # The reader is gone (`| head`): send what is left of stdout nowhere, say nothing,
                # and exit as a program killed by SIGPIPE would (128 + 13).
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 141

        return run

    return wrap


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose refusals are one line (the usage is in --help)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, once, and only where there is one to show."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action)


class RawHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """`HelpFormatter` that keeps the description's line breaks (usage examples)."""


def int_in(low: int, high: int | None = None):
    """An argparse type: a whole number in low..high (at least `low` without `high`)."""
    wanted = f"a whole number in {low}..{high}" if high is not None else f"a whole number of at least {low}"

    def parse(text: str) -> int:
        return _number(text, int, lambda value: low <= value and (high is None or value <= high), wanted)

    return parse


port_number = int_in(0, 65535)  # 0: any free port
seed_number = int_in(0, 2**32 - 1)  # what Keras and NumPy accept


positive_int = int_in(1)
non_negative_int = int_in(0)


def positive_float(text: str) -> float:
    return _number(text, float, lambda value: value > 0, "a number greater than 0")


def non_negative_float(text: str) -> float:
    return _number(text, float, lambda value: value >= 0, "a number >= 0")


def stabiliser_strength(text: str) -> float:
    """How much of the previous frame's colour the video stabiliser keeps: below 1, or it never moves."""
    return _number(text, float, lambda value: 0.0 <= value < 1.0, "a number in [0, 1)")


def _number(text: str, kind, valid, wanted: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
    if not valid(value) or value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        raise argparse.ArgumentTypeError(f"{text} is not {wanted}")
    return value


def refused(prog: str, error: BaseException) -> int:
    """Say `error` in one line ("PROG: error: ...", or "PROG: ..." for a stop a user asked for) and
    return the command's exit status (`pix2color.errors.exit_status`: one place decides)."""
    from pix2color.errors import StopRequested, exit_status

    print(f"{prog}: {'' if isinstance(error, StopRequested) else 'error: '}{error}", file=sys.stderr)
    return exit_status(error)


def add_feature_options(parser: argparse.ArgumentParser, skip: str | None = "--no-fid") -> None:
    """--feature-weights (FID / KID's Inception-v3) and, unless `skip` is None, the flag that leaves them out."""
    parser.add_argument("--feature-weights", default="imagenet", metavar="WEIGHTS",
                        help="FID / KID's Inception-v3: imagenet (Keras downloads them once, 87 MB), the path of a "
                             "local copy, or none (random weights: checks the pipeline offline, measures nothing)")
    if skip:
        parser.add_argument(skip, action="store_true", help="leave FID and KID out")


def inception_features(weights: str, prog: str):
    """The `InceptionFeatures` of --feature-weights, said in one line; or the one line saying what
    to fetch, or to pass --no-fid, and its exit status (SystemExit). TensorFlow must be imported
    already (`import_quietly`)."""
    from pix2color.evaluation.inception import FeatureWeightsError, InceptionFeatures

    try:
        features = InceptionFeatures(weights)
    except FeatureWeightsError as error:
        raise SystemExit(refused(prog, FeatureWeightsError(f"{error}; or leave FID / KID out with --no-fid"))) from None
    print(features.description, flush=True)
    return features


@command("pix2color")
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
