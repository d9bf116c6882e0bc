"""TensorFlow without its start-up noise, for the commands and notebooks.

TensorFlow's native libraries print CPU feature lists, oneDNN notices and absl lines at import
whatever TF_CPP_MIN_LOG_LEVEL says; Grappler logs a harmless "remapper failed" error for R1's
double-backprop graph. `import_quietly` keeps that out of the user's terminal (set
TF_CPP_MIN_LOG_LEVEL=0 to see everything) and replays anything else native code printed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import sys
import tempfile
import threading

# Lines TensorFlow's native libraries print at import whatever TF_CPP_MIN_LOG_LEVEL says.
_IMPORT_NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cpu_feature_guard|rebuild TensorFlow|cudart_stub|cuda drivers"
)


# What native image decoders print about files the commands already report in plain words.
_DECODER_NOISE = re.compile(
    r"jpeg_mem\.cc|Premature end of JPEG|Corrupt JPEG data|Input file read error|Unsupported marker type|"
    r"Invalid JPEG file structure|Bogus marker length|Not a JPEG file|Invalid SOS parameters|libpng warning"
)


@contextlib.contextmanager
def quiet_native_stderr():
    """Hold back what native code writes to stderr; replay it, less known start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _IMPORT_NOISE.search(line)))


@contextlib.contextmanager
def ctrl_c_after():
    """Hold a Ctrl-C (SIGINT) back until the block is done, then raise KeyboardInterrupt.

    For TensorFlow's import: its native modules run Python code through pybind11, where a
    KeyboardInterrupt can be swallowed (the import goes on) or leave CPython's "unhandled
    Ctrl-C" mark, which kills the process with SIGINT at exit even after the command caught it.
    Outside the main thread (where Python cannot install handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def import_quietly() -> None:
    """Import TensorFlow and tensorflow-io's colour ops without their start-up noise, and keep
    image decoders' warnings out of the terminal from then on (`filter_decoder_warnings`).
    A Ctrl-C during the import stops the command once the import is done (`ctrl_c_after`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads
    with ctrl_c_after(), quiet_native_stderr():  # local: these imports are the noise being quieted
        import tensorflow

        import pix2color.color  # noqa: F401
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3":  # its Python side too: e.g. the values a checkpoint
        tensorflow.get_logger().setLevel("ERROR")  # passed over for a damaged one did not restore
    filter_decoder_warnings()


_filtering = False


def filter_decoder_warnings() -> None:
    """From now on, drop the decoder warnings native code writes to stderr (libjpeg's "Premature
    end of JPEG data" for a file the command then skips or reports by name); every other line
    goes through unchanged, in order. For command-line processes: does nothing when stderr is not
    the process's own (under pytest's capture, in notebooks)."""
    global _filtering
    try:
        if _filtering or sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):
        return
    _filtering = True
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with open(read_end, "rb") as lines, open(terminal, "wb", buffering=0, closefd=False) as out:
            for line in lines:
                if not _DECODER_NOISE.search(line.decode("utf-8", "replace")):
                    out.write(line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def stop():  # at exit: send EOF to the thread and let it write what is left
        sys.stderr.flush()
        os.dup2(terminal, 2)
        thread.join(timeout=5)

    atexit.register(stop)
