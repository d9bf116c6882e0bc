"""Helpers that several test files call: commands as users run them, their one-line errors, a
server for a test, files compared before and after. (conftest.py holds the fixtures, the shared
runs and the helpers those use.)

Imported as `from helpers import name`, in every folder of tests/, as conftest is.
"""

import contextlib
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from conftest import ROOT, sample_photo_paths

# --------------------------------------------------------------------------- commands and what they print


def run_cli(*args, timeout=600, **environment):
    """`python -m pix2color.cli ARGS` (each made a string) run from the repository root, its output
    captured as text; `environment`: variables added to this process's environment for it."""
    return subprocess.run([sys.executable, "-m", "pix2color.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**os.environ, **environment} if environment else None)


def colorize(*args, timeout=600):
    """`pix2color colorize ARGS --verbose 0` in its own process."""
    return run_cli("colorize", *args, "--verbose", "0", timeout=timeout)


def one_line(stderr: str) -> str:
    """The one non-empty line of a command's stderr, which must hold no traceback."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


# --------------------------------------------------------------------------- files


def file_hashes(folder: Path) -> dict[str, str]:
    """Each file below `folder` (its path relative to it) and the SHA-256 of its bytes."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def sample_photo_folder(folder: Path, count: int) -> Path:
    """`folder`, made, holding copies of `count` sample photos named p0.jpg, p1.jpg, ..."""
    folder.mkdir()
    for index, path in enumerate(sample_photo_paths(count)):
        shutil.copy(path, folder / f"p{index}.jpg")
    return folder


def history_column(out: Path, name: str, kind=float) -> list:
    """The column `name` of a run's history.csv, each value made a `kind`."""
    with open(out / "history.csv", newline="") as handle:
        return [kind(row[name]) for row in csv.DictReader(handle)]


def png_bytes(image, image_format: str = "PNG") -> bytes:
    """A Pillow image encoded as a file of `image_format` would hold it."""
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def poll_column(folder: Path, column: str) -> list:
    """The column `column` of a poll folder's pairs, in the table's order."""
    from pix2color.poll import storage

    with contextlib.closing(storage.connect(folder / storage.DATABASE)) as database:
        return [row[0] for row in database.execute(f"SELECT {column} FROM pairs")]


# --------------------------------------------------------------------------- networks and exports


def trainable_count(model) -> int:
    """How many trainable parameters `model` has."""
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def op_names(path) -> set[str]:
    """The operators of a .tflite file, as LiteRT names them."""
    from ai_edge_litert.interpreter import Interpreter

    return {op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()}


# --------------------------------------------------------------------------- the web app on a real server


@contextlib.contextmanager
def serving(app, head_timeout: float = 30.0):
    """`app` on a real server in a thread of this process, on a free loopback port, as
    `pix2color serve` runs it (uvicorn with `server_config`: `head_timeout` is the seconds a
    connection may take to send a request head), without the TensorFlow a `serve` process
    starts; yields its port. Fails if the server has not started within 30 s."""
    import uvicorn

    from pix2color.bench.local_server import free_port
    from pix2color.web.server import server_config

    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=free_port(), head_timeout=head_timeout))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        yield server.config.port
    finally:
        server.should_exit = True
        thread.join(30)
