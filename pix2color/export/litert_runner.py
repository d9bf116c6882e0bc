"""Colorize photos with an exported `.tflite` generator: LiteRT, numpy and Pillow only.

    python colorize_tflite.py generator_deterministic_float32.tflite photo.jpg -o colorized/

This module imports no TensorFlow, so it runs where TensorFlow cannot (phones, small boards, a
slim container). `pix2color export` writes it, with the modules it imports, as one file beside
the `.tflite` files (`colorize_tflite.py`, made by `pix2color.export.one_file`): it reads
photos, colorizes them at full resolution and names and writes its outputs with the same code as
`pix2color colorize`. With pix2color installed, `python -m pix2color.export.litert_runner` is the
same command.

Tensor contract of pix2color's `.tflite` files (see `pix2color.export.tflite`):
    input  "lightness": float32 (1, S, S, 1), L / 50 - 1, in [-1, 1]
    output "ab":        float32 (1, S, S, 2), (a, b) / 110, in [-1, 1]
S is the model's image size (256 for the report's model); CIE Lab, D65, 2 degree observer.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.errors import ImageError, ModelError, OutputExists, first_line
from pix2color.outputs import (
    Planned,
    Wanted,
    _path_key,
    check_output_folder,
    exists_message,
    plan_outputs,
    quoted,
    summary,
    write_output,
)
from pix2color.photos import DEFAULT_MAX_PIXELS, read_image

MAX_THREADS = 256  # LiteRT crashes (SIGSEGV) when asked for 100,000


class LiteColorizer(FullResolutionColorizer):
    """The recipe with a pix2color `.tflite` generator run by LiteRT."""

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None):
        if num_threads is not None and not 1 <= num_threads <= MAX_THREADS:
            raise ValueError(f"threads must be in 1..{MAX_THREADS} (got {num_threads})")
        self.interpreter = _interpreter(model_path, num_threads)
        self.input, self.output = _generator_tensors(self.interpreter, model_path)
        super().__init__(self._run, int(self.input["shape"][1]))
        probe = self._run(np.zeros((1, *self.input["shape"][1:]), np.float32))
        if not np.isfinite(probe).all():
            raise ModelError(f"{quoted(model_path)}: its output is not finite (NaN or infinite): a damaged model")

    def _run(self, lightness: np.ndarray) -> np.ndarray:
        """The .tflite file takes one image at a time: (N, S, S, 1) -> (N, S, S, 2)."""
        results = []
        for image in lightness:
            self.interpreter.set_tensor(self.input["index"], image[None].astype(np.float32))
            self.interpreter.invoke()
            results.append(self.interpreter.get_tensor(self.output["index"])[0].copy())
        return np.stack(results)


def _generator_tensors(interpreter, model_path) -> tuple[dict, dict]:
    """The input and output of a pix2color generator (the tensor contract in this module's
    docstring), or `ModelError` naming what the file has instead."""
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) == 1 and len(outputs) == 1:
        shape_in, shape_out = tuple(inputs[0]["shape"]), tuple(outputs[0]["shape"])
        size = shape_in[1] if len(shape_in) == 4 else 0
        if (shape_in == (1, size, size, 1) and shape_out == (1, size, size, 2) and size >= 8
                and inputs[0]["dtype"] == np.float32 and outputs[0]["dtype"] == np.float32):
            return inputs[0], outputs[0]
    def described(tensors) -> str:
        return ", ".join(f"{np.dtype(tensor['dtype']).name} {tuple(int(n) for n in tensor['shape'])}" for tensor in tensors)

    found = f"input {described(inputs)}; output {described(outputs)}"
    raise ModelError(f"{quoted(model_path)}: not a pix2color generator (float32 (1, S, S, 1) in, (1, S, S, 2) out; "
                     f"it has {found})")


def _interpreter(model_path: str | os.PathLike, num_threads: int | None):
    """A LiteRT interpreter with its tensors allocated, or `ModelError` in plain words (LiteRT's
    own messages say "model allocation is null/empty" for a missing file and for a folder)."""
    from ai_edge_litert.interpreter import Interpreter

    if os.path.isdir(model_path):
        raise ModelError(f"{quoted(model_path)}: is a folder, not a .tflite file")
    if not os.path.exists(model_path):
        raise ModelError(f"{quoted(model_path)}: no such file")
    try:
        with _without_delegate_notice():
            interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads or os.cpu_count())
            interpreter.allocate_tensors()
    except Exception as error:  # noqa: BLE001 - LiteRT raises ValueError or RuntimeError for bad files
        raise ModelError(f"{quoted(model_path)}: not a LiteRT (.tflite) model ({first_line(error)})") from None
    return interpreter


_DELEGATE_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


_STDERR_SWAP = threading.Lock()  # file descriptor 2 is the process's: one swap at a time


@contextlib.contextmanager
def _without_delegate_notice():
    """LiteRT's C++ side prints _DELEGATE_NOTICE on stderr for every model it loads, and no
    setting (TF_CPP_MIN_LOG_LEVEL included) turns it off: stderr's file descriptor is caught while
    the model loads, and every other line is passed on after."""
    with _STDERR_SWAP:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no stderr to filter (closed: sys.stderr is None)
            yield
            return
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                if sys.stderr is not None:
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().splitlines(keepends=True) if line.rstrip() != _DELEGATE_NOTICE]
            if kept:
                os.write(2, b"".join(kept))


def save_png(rgb: np.ndarray, path: Path, overwrite: bool = False) -> None:
    write_output(path, lambda handle: Image.fromarray(rgb).save(handle, "PNG"), overwrite)


# --------------------------------------------------------------------------- the command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line; the usage is in --help
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Colorize photos with a pix2color .tflite file (no TensorFlow). OUT/NAME.png for each "
                    "photo; an input is never written (NAME_colorized.png instead), two inputs never share "
                    "an output (NAME-2.png), an existing file is skipped unless --overwrite.")
    parser.add_argument("model", help="a pix2color .tflite generator")
    parser.add_argument("inputs", nargs="+", help="image files")
    parser.add_argument("-o", "--out", default="colorized", help="output folder (default: colorized)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images larger than this (default: {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--threads", type=int, default=None, help=f"LiteRT's threads, 1..{MAX_THREADS} (default: its own)")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never an input)")
    return parser


def _check_options(args: argparse.Namespace) -> None:
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise ValueError(f"--threads must be in 1..{MAX_THREADS} (got {args.threads})")
    if args.max_pixels < 1:
        raise ValueError(f"--max-pixels must be at least 1 (got {args.max_pixels})")
    check_output_folder(args.out)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Exit status: 0 when nothing failed (an output that exists is skipped, and said so), 1 when
    some photos could not be colorized or written, 2 for a bad model, option or output folder, or
    LiteRT missing; 130 after Ctrl-C (the photos finished so far are kept, whole)."""
    parser = _parser(prog)
    try:
        return _main(parser, parser.parse_args(argv))
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout is gone (`| head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        _check_options(args)
        colorizer = LiteColorizer(args.model, args.threads)
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as missing:  # LiteRT is imported only now: a missing one is said, not a traceback
        print(f"{parser.prog}: error: LiteRT is not installed ({missing}): pip install ai-edge-litert", file=sys.stderr)
        return 2
    inputs = {}
    for path in map(Path, args.inputs):
        inputs.setdefault(_path_key(path), path)  # a file named twice (or through a link) is colorized once
    wanted = [Wanted(path, Path(path.stem + ".png")) for path in inputs.values()]
    counts = [0, 0, 0]  # written, skipped, failed
    for planned in plan_outputs(wanted, args.out, args.overwrite):
        try:
            counts[_colorize_one(colorizer, planned, args)] += 1
        except ModelError as error:  # an output that is not finite for this photo: the model is damaged
            print(f"{parser.prog}: error: {quoted(args.model)}: {error}", file=sys.stderr)
            return 2
    print(summary(*counts))
    return 1 if counts[2] else 0


def _colorize_one(colorizer: LiteColorizer, planned: Planned, args: argparse.Namespace) -> int:
    """Colorize one planned photo, saying what happened: 0 written, 1 skipped, 2 failed."""
    for line in planned.renamed:
        print(f"note: {line}", file=sys.stderr)
    for line in planned.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if planned.target is None:
        return 1
    try:
        save_png(colorizer.colorize(read_image(planned.source, args.max_pixels)), planned.target, args.overwrite)
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OutputExists:
        print(f"skipped: {exists_message(planned.target)}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {quoted(planned.source)}: could not write {quoted(planned.target)}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    print(f"{quoted(planned.source)} -> {quoted(planned.target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m pix2color.export.litert_runner"))
