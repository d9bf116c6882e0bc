"""A training run's folder: who may write it, what it holds, and how to tell its files apart.

    run.json             the settings the run was started with
    .pix2color.lock      held (an OS file lock) while a trainer uses the folder
    checkpoints/         ckpt-N.index + ckpt-N.data-*: the state after N steps (`training.checkpoints`)
    generator.keras      the trained generator, and generator.json: the step it was saved at

This module imports no TensorFlow: the command line uses it to say what an interrupted run
left behind, and the data loader to leave run folders out of a photo folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pix2color.config import RUN_DEFINING, OutputError, RunError, TrainConfig, flag_of
from pix2color.outputs import write_json_atomically
from pix2color.training.precision import recorded_precision

# TensorFlow is imported inside the functions that need it (gs:// folders, checkpoints): the poll
# server and the commands' argument checks read run folders without its start-up.

RUN_JSON = "run.json"
LOCK_FILE = ".pix2color.lock"
CHECKPOINTS = "checkpoints"
GENERATOR = "generator.keras"
GENERATOR_RECORD = "generator.json"
POLL_DATABASE = "poll.sqlite"  # a Turing-test poll folder (pix2color.poll)

CHECKPOINT_FILE = re.compile(r"^ckpt-(\d+)\.(index|data-\d+-of-\d+)$")
PARTIAL_CHECKPOINT = re.compile(r"^ckpt-\d+_temp")
DAMAGED_STATE = "checkpoint.damaged"  # a `checkpoint` state file TensorFlow could not read, set aside
PARTIAL_CHECKPOINT_PART = re.compile(r"^part-\d+-of-\d+(\.index|\.data-\d+-of-\d+)(\.tempstate\d+)?$")
# Everything a run writes into its folder (and a run's checkpoints/ folder); nothing else is ever touched.
BEST = "best"  # best/generator.keras: the generator of the epoch with the best --keep-best measure
RUN_ENTRIES = {RUN_JSON, LOCK_FILE, CHECKPOINTS, GENERATOR, GENERATOR_RECORD, BEST, "history.csv", "losses.png", "logs",
               "plots", "samples", "scan_cache", "workers", "evaluation.md", "evaluation.csv"}
PARTIAL_GENERATOR = f".partial-{GENERATOR}"  # generator.keras while it is written (Keras wants the suffix)
DESKTOP_FILES = {".DS_Store", "Thumbs.db", "desktop.ini", ".directory"}  # a file browser's, in any folder it shows


def is_remote(folder: str | os.PathLike) -> bool:
    """A URL such as gs://bucket/run: TensorFlow writes it, the OS cannot lock it."""
    return "://" in str(folder)


# --------------------------------------------------------------------------- the lock


class RunLock:
    """An exclusive OS lock (`flock`) on a run folder, held while one trainer uses it.

    The kernel releases it when the process ends, however it ends (SIGKILL and power loss
    included), so a stale lock never blocks a resume. The lock file names its holder, so a
    second trainer can say which process has the folder. (The `filelock` package truncates the
    file before it knows it has the lock, which would erase that name.)
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._descriptor: int | None = None
        self.created_folder = False  # this lock made the folder: it may remove it if left empty

    def acquire(self) -> bool:
        """Take the lock; False where the filesystem cannot lock (the run is then unguarded).

        Raises `RunError` naming the other process if another trainer holds the folder, and
        `OutputError` if the folder cannot be written.
        """
        import fcntl

        try:
            self.created_folder = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"cannot write to --out {self.folder}: {error.strerror or error}") from None
        while True:
            try:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise OutputError(f"cannot write to --out {self.folder}: {error.strerror or error}") from None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self.holder()
                os.close(descriptor)
                raise RunError(f"{self.folder} is in use by another training ({holder}); wait for it to end, "
                               "or choose another --out") from None
            except OSError as error:
                os.close(descriptor)
                if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    return False
                raise OutputError(f"cannot lock --out {self.folder}: {error.strerror or error}") from None
            if self._still_named(descriptor):
                break
            os.close(descriptor)  # its holder removed the file as we opened it: lock the new one
        self._descriptor = descriptor
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "command": " ".join(sys.argv)}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(owner) + "\n").encode(), 0)
        return True

    def _still_named(self, descriptor: int) -> bool:
        """The locked file is the one the lock's path names (not one unlinked since it was opened)."""
        try:
            return os.path.samestat(os.fstat(descriptor), os.stat(self.path))
        except OSError:
            return False

    def holder(self) -> str:
        """Who holds the lock, in words, from what the holder wrote into the lock file."""
        try:
            owner = json.loads(self.path.read_text())
            return f"process {owner['pid']} on {owner['host']}, since {owner['since']}: {owner['command']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that has not yet written its name"

    def release(self) -> None:
        """Remove the lock file and unlock (a folder this lock created and nothing else was
        written to goes too: a run that stopped before its first write leaves nothing behind).
        A process killed while holding it leaves the file, unlocked: the next trainer takes it."""
        if self._descriptor is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: a trainer that opened it now finds it unlinked
        if self.created_folder and not os.listdir(self.folder):
            self.folder.rmdir()
        os.close(self._descriptor)  # closing the descriptor releases the flock
        self._descriptor = None


@contextlib.contextmanager
def locked(folder: str | os.PathLike, log=print):
    """Hold `folder`'s lock for the block; where it cannot be locked (gs://, some network
    filesystems), say once that the run is unguarded and go on."""
    if is_remote(folder):
        log(f"note: {folder} cannot be locked (not a local folder): a second trainer on it would not be detected")
        yield
        return
    lock = RunLock(folder)
    if not lock.acquire():
        log(f"note: the filesystem of {folder} cannot lock files: a second trainer on it would not be detected")
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------- run.json


def read_run_json(folder: str | os.PathLike) -> dict | None:
    """The settings a run was started with, or None if the folder has no run.json.

    Raises `RunError` naming the file if it is not a pix2color run record (damaged, empty, a
    list, ...): such a folder is not resumed or read as if it were one.
    """
    path = Path(folder) / RUN_JSON
    if is_remote(folder):
        import tensorflow as tf

        if not tf.io.gfile.exists(str(path)):
            return None
        text = tf.io.gfile.GFile(str(path)).read()
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise RunError(f"{path} cannot be read: {getattr(error, 'strerror', None) or error}") from None
    try:
        settings = json.loads(text)
    except ValueError as error:
        raise RunError(f"{path} is damaged (not JSON: {error}); move it away to resume from the checkpoints "
                       "with the flags the run was started with") from None
    if not isinstance(settings, dict) or "image_size" not in settings:
        raise RunError(f"{path} is not a pix2color run record (no settings in it); move it away to resume from "
                       "the checkpoints with the flags the run was started with")
    settings["precision"] = recorded_precision(settings)  # also where run.json says `mixed_precision` instead
    return settings


def changed_settings(saved: dict, settings: dict, keys=RUN_DEFINING) -> list[str]:
    """The run-defining flags whose values differ, as '--flag OLD (now NEW)'. A setting a run.json
    does not hold (a run started before the flag existed) is the flag's default."""
    defaults = asdict(TrainConfig())
    recorded = {key: saved.get(key, defaults.get(key)) for key in keys}
    return [f"{flag_of(key)} {recorded[key]!r} (now {settings[key]!r})"
            for key in keys if key in settings and recorded[key] != settings[key]]


# --------------------------------------------------------------------------- what is whose


def foreign_entries(folder: str | os.PathLike) -> list[str]:
    """What in `folder` a pix2color run did not write (sorted); [] for a run folder or a new one.

    A folder with a valid run.json is a run's; so is one holding only what a run writes (a run
    stopped before its run.json). Its checkpoints/ may hold only checkpoints.
    """
    folder = Path(folder)
    if is_remote(folder) or not folder.is_dir():
        return []
    try:
        if read_run_json(folder) is not None:
            return []
    except RunError:
        pass
    names = os.listdir(folder)
    foreign = [name for name in names if name not in RUN_ENTRIES and name != PARTIAL_GENERATOR
               and name not in DESKTOP_FILES and not name.startswith("._")]
    if CHECKPOINTS in names and (folder / CHECKPOINTS).is_dir():
        foreign += [f"{CHECKPOINTS}/{name}" for name in os.listdir(folder / CHECKPOINTS)
                    if not (CHECKPOINT_FILE.match(name) or PARTIAL_CHECKPOINT.match(name)
                            or name in ("checkpoint", DAMAGED_STATE))]
    return sorted(foreign)


# --------------------------------------------------------------------------- the generator file


@dataclass
class GeneratorRecord:
    """When generator.keras was saved: after `steps` training steps (`epochs` epochs); for
    best/generator.keras also the measure it was kept by and its value."""

    steps: int
    epochs: int
    metric: str | None = None
    value: float | None = None


def write_generator_record(folder: str | os.PathLike, steps: int, epochs: int, metric: str | None = None,
                           value: float | None = None) -> None:
    kept = {} if metric is None else {"metric": metric, "value": value}
    write_json_atomically(Path(folder) / GENERATOR_RECORD, {"steps": steps, "epochs": epochs, **kept}, indent=2)


def read_generator_record(folder: str | os.PathLike) -> GeneratorRecord | None:
    """The step generator.keras was saved at; None for runs that did not record it."""
    try:
        record = json.loads((Path(folder) / GENERATOR_RECORD).read_text())
        value = record.get("value")
        return GeneratorRecord(int(record["steps"]), int(record["epochs"]), record.get("metric"),
                               None if value is None else float(value))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save_generator(generator, folder: str | os.PathLike, steps: int, epochs: int, metric: str | None = None,
                   value: float | None = None) -> Path:
    """`folder`/generator.keras, replaced whole (a kill mid-write leaves the previous file), then the
    step it holds (generator.json), which `loading` compares with the newest checkpoint. Its layers
    compute in float32 whatever the run trained in (`precision.float32_layers`)."""
    from pix2color.training.precision import float32_layers  # Keras: only when a generator is saved

    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    partial = folder / PARTIAL_GENERATOR
    float32_layers(generator).save(partial)
    os.replace(partial, folder / GENERATOR)
    write_generator_record(folder, steps, epochs, metric, value)
    return folder / GENERATOR


def read_best(folder: str | os.PathLike) -> dict | None:
    """The best epoch a run has kept, as run.json records it: {metric, epoch, value, steps}."""
    settings = read_run_json(folder) or {}
    best = settings.get("best")
    return best if isinstance(best, dict) and {"metric", "epoch", "value", "steps"} <= set(best) else None


def write_run_json(folder: str | os.PathLike, settings: dict, best: dict | None = None) -> None:
    """run.json: the settings, and the best epoch kept so far, if any."""
    write_json_atomically(Path(folder) / RUN_JSON, {**settings, **({"best": best} if best else {})}, indent=2)


# --------------------------------------------------------------------------- telling folders apart


def is_run_or_poll_folder(folder: str | os.PathLike) -> str | None:
    """'a pix2color run folder' / 'a pix2color poll folder' if `folder` holds one, else None.

    Such folders are left out of training and evaluation data: their sample grids and plots
    are pictures pix2color drew, not photos.
    """
    folder = Path(folder)
    if (folder / LOCK_FILE).exists():
        return "a pix2color run folder"
    try:
        if "image_size" in json.loads((folder / RUN_JSON).read_text()):
            return "a pix2color run folder"
    except (OSError, ValueError, TypeError):
        pass
    if (folder / POLL_DATABASE).exists():
        return "a pix2color poll folder"
    return None
