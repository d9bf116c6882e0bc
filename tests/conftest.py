"""Shared fixtures: small image folders the tests make, and quiet TensorFlow."""

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402
from PIL import Image  # noqa: E402

from pix2color import outputs  # noqa: E402
from pix2color.data import sample_photos_dir  # noqa: E402
from pix2color.training import checkpoints  # noqa: E402

# `--reach`: the fast tier must call into every module (tests/reach.py); pytester runs a tiny suite
# under it (tests/test_reach.py).
pytest_plugins = ["reach", "pytester"]


def sample_photo_paths(count: int) -> list[str]:
    """`count` sample photos from different source photos (the 'view' crops)."""
    return sorted(str(p) for p in sample_photos_dir().glob("*__view.jpg"))[:count]


@pytest.fixture(scope="session")
def messy_folder(tmp_path_factory):
    """A folder of 6 good colour photos plus every kind of troublesome file.

    Good but unusual: a CMYK JPEG, a 16-bit PNG, an RGBA PNG (in a subfolder), a WebP, a GIF.
    Bad: a corrupt, a truncated and a garbled JPEG, an empty file, a text file named x.jpg, a 1x1 image. Grayscale: one photo.
    """
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("messy")
    photos = sample_photo_paths(10)
    for index, path in enumerate(photos[:6]):
        shutil.copy(path, folder / f"good_{index}.jpg")
    rgb = np.asarray(Image.open(photos[6]).convert("RGB"))
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    tf.io.write_file(str(folder / "deep16.png"), tf.io.encode_png(rgb.astype(np.uint16) * 257))
    (folder / "nested").mkdir()
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 200, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(folder / "nested" / "alpha.png")
    Image.fromarray(np.asarray(Image.open(photos[7]).convert("RGB"))).save(folder / "photo.webp")
    Image.fromarray(np.asarray(Image.open(photos[8]).convert("RGB"))).save(folder / "anim.gif")
    Image.open(photos[9]).convert("L").save(folder / "gray.jpg")
    Image.new("RGB", (1, 1), (200, 30, 30)).save(folder / "tiny.png")
    (folder / "x.jpg").write_text("this is not an image\n")
    data = open(photos[0], "rb").read()
    (folder / "corrupt.jpg").write_bytes(data[:600] + b"\x00garbage" * 40)
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    garbled = bytearray(open(photos[1], "rb").read())  # libjpeg prints "Corrupt JPEG data: ..." for it
    garbled[len(garbled) // 2 : len(garbled) // 2 + 40 : 7] = b"\xff" * len(range(0, 40, 7))
    (folder / "garbled.jpg").write_bytes(bytes(garbled))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image extension: ignored\n")
    return folder


MESSY_BAD = {"x.jpg", "corrupt.jpg", "truncated.jpg", "garbled.jpg", "empty.png", "tiny.png"}
MESSY_GOOD = {
    *(f"good_{i}.jpg" for i in range(6)), "cmyk.jpg", "deep16.png", "alpha.png", "photo.webp", "anim.gif",
}


def made_once(config, tmp_path_factory, name: str, make) -> Path:
    """The folder `name`, filled by `make(folder)` once for the whole run and shared by xdist's
    workers (pytest-xdist's recipe: a file lock in the folder the workers' temp folders share).
    Tests read it; one that changes files copies it first."""
    if not hasattr(config, "workerinput"):  # not an xdist worker (the environment may say otherwise: a nested run)
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # this run's, above each worker's own
    folder, made = shared / name, shared / f"{name}.made"
    with FileLock(str(shared / f"{name}.lock")):
        if not made.exists():  # no worker made it, or one failed half-way
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            made.touch()
    return folder


ROOT = Path(__file__).resolve().parents[1]
SMALL_RUN = ["--image-size", "32", "--batch-size", "4", "--verbose", "2"]


def train_command(out, *args, data="sample") -> list[str]:
    """`python train.py` on `data` (the sample photos unless given) at 32 px, as a user types it;
    `args` come last, so they override these (argparse keeps a flag's last value)."""
    return [sys.executable, str(ROOT / "train.py"), "--data", str(data), *SMALL_RUN, "--out", str(out), *args]


def run_command(command, timeout=600) -> subprocess.CompletedProcess:
    """`command` run from the repository root, its output captured as text."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def train_in_subprocess(out, *args, data="sample", timeout=900) -> subprocess.CompletedProcess:
    """`train_command` run to its end."""
    return run_command(train_command(out, *args, data=data), timeout=timeout)


def latest_checkpoint_step(out: Path) -> int:
    """The step of the run's latest checkpoint, as its `checkpoint` state file names it (-1: none yet)."""
    state = out / "checkpoints" / "checkpoint"
    if not state.exists():
        return -1
    match = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', state.read_text(), re.M)
    return int(match.group(1)) if match else -1


def linked_copy(folder: Path, to: Path) -> Path:
    """A copy of a shared run whose files are hard links: instant, for a command that must change
    nothing (the test checks it did not, with `file_states`)."""
    shutil.copytree(folder, to, copy_function=os.link)
    return to


def file_states(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Each file's inode, size and modification time: what a command that writes nothing leaves as it was."""
    return {str(path.relative_to(folder)): (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def made_run(config, tmp_path_factory, name: str, *args) -> Path:
    """A run of `train_in_subprocess(*args)`, made once for all workers, with its output kept in
    stdout.txt and stderr.txt beside it."""
    def train_it(folder):
        result = train_in_subprocess(folder / "run", *args)
        (folder / "stdout.txt").write_text(result.stdout)
        (folder / "stderr.txt").write_text(result.stderr)
        assert result.returncode == 0, result.stderr[-2000:]

    return made_once(config, tmp_path_factory, name, train_it) / "run"


@pytest.fixture(scope="session")
def finished_run(pytestconfig, tmp_path_factory):
    """A finished 32 px run: 1 epoch of 4 steps, checkpoints at steps 2 and 4, generator.keras of
    step 4. Tests that change it copy it."""
    run = made_run(pytestconfig, tmp_path_factory, "finished", "--epochs", "1", "--steps-per-epoch", "4",
                   "--checkpoint-every", "2")
    assert checkpoints.checkpoint_steps(run / "checkpoints") == [4, 2]
    return run


# The seeded, deterministic 2-epoch runs that test_stopping's kill tests resume to: bfloat16 is
# emulated, slowly, on CPUs without it, hence its shorter epochs.
SEEDED_STEPS_PER_EPOCH = {"float32": 12, "bfloat16": 4}


def seeded_run_args(precision: str) -> list[str]:
    return ["--epochs", "2", "--steps-per-epoch", str(SEEDED_STEPS_PER_EPOCH[precision]), "--checkpoint-every", "2",
            "--seed", "7", "--deterministic-ops", "--precision", precision]


@pytest.fixture(scope="session")
def seeded_run(pytestconfig, tmp_path_factory):
    """`seeded_run(precision)`: the uninterrupted run of `seeded_run_args(precision)`, trained once
    for the whole test run (also read by test_training's artifact test and test_precision)."""
    made = {}

    def run_in(precision: str) -> Path:
        if precision not in made:
            made[precision] = made_run(pytestconfig, tmp_path_factory, f"seeded_{precision}",
                                       *seeded_run_args(precision))
        return made[precision]

    return run_in


@pytest.fixture(scope="session")
def small_generator_file(pytestconfig, tmp_path_factory):
    """A small (base 16 filters) 32 px generator saved as .keras: fast to export and run."""
    from pix2color.networks import build_generator

    folder = made_once(pytestconfig, tmp_path_factory, "model", lambda folder: build_generator(32, base_filters=16).save(
        folder / "generator.keras"))
    return folder / "generator.keras"


def export_small_generator(small_generator_file, out, **choices):
    """`pix2color export` of the small generator (`choices`: folder.export's formats, variants, modes)."""
    from pix2color.export import folder

    folder.export(str(small_generator_file), str(out), log=lambda *_: None, **choices)
    return out


@pytest.fixture(scope="session")
def exported(pytestconfig, small_generator_file, tmp_path_factory):
    """The small generator's SavedModel and its deterministic float32 and int8 TFLite files: what
    colorize, the device runner and the notebooks' tests run."""
    return made_once(pytestconfig, tmp_path_factory, "exported", lambda folder: export_small_generator(
        small_generator_file, folder, variants=("float32", "int8"), modes=("deterministic",)))


@pytest.fixture(scope="session")
def exported_every_variant(pytestconfig, small_generator_file, tmp_path_factory):
    """`pix2color export` with its defaults: SavedModel and every TFLite variant of both modes."""
    return made_once(pytestconfig, tmp_path_factory, "exported_all",
                     lambda folder: export_small_generator(small_generator_file, folder))


class FullDisk:
    """A file handle on a full disk: `write` raises ENOSPC, or (`silent`) says it wrote everything
    and writes half, as an encoder that ignores the errors of its writes."""

    def __init__(self, handle, silent):
        self.handle, self.silent = handle, silent

    def write(self, data):
        data = bytes(data)
        if not self.silent:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.handle.write(data[: len(data) // 2])
        return len(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.handle.close()


def on_a_full_disk(monkeypatch, silent=False):
    """Files that `pix2color.outputs` opens for writing from now on are on a full disk."""
    def opened(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)
        return FullDisk(handle, silent) if set(mode) & set("wxa") else handle

    monkeypatch.setattr(outputs, "open", opened, raising=False)


# --------------------------------------------------------------------------- the web app and the poll


def local_client(app, **options):
    """A test client whose requests are addressed to localhost, as a browser on this machine's are."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://localhost:8000", **options)


def tiny_poll(folder, protocol="report", pairs=4, source_names=None):
    """A poll of `pairs` random pictures (the colorization: the original halved), written to `folder`."""
    from pix2color.poll import storage

    rng = np.random.default_rng(0)
    images = []
    for index in range(pairs):
        original = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        generated = (original // 2).astype(np.uint8)
        gray = np.repeat(original.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
        name = (source_names or {}).get(index, f"photo{index}.jpg")
        images.append(storage.PollImages(name, gray, original, generated))
    return storage.write_poll(folder, images, protocol, seed=7)
