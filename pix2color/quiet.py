"""TensorFlow without its start-up noise, for the commands and notebooks.

TensorFlow's native libraries print CPU feature lists, oneDNN notices and absl lines at import
whatever TF_CPP_MIN_LOG_LEVEL says; Grappler logs a harmless "remapper failed" error for R1's
double-backprop graph. `import_quietly` keeps that out of the user's terminal (set
TF_CPP_MIN_LOG_LEVEL=0 to see everything) and replays anything else native code printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# Lines TensorFlow's native libraries print at import whatever TF_CPP_MIN_LOG_LEVEL says.
_IMPORT_NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cpu_feature_guard|rebuild TensorFlow|cudart_stub|cuda drivers"
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


def import_quietly() -> None:
    """Import TensorFlow and tensorflow-io's colour ops without their start-up noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads
    with quiet_native_stderr():
        import tensorflow  # noqa: F401

        import pix2color.color  # noqa: F401
