"""A run's checkpoints: finding them, restoring the newest that restores, passing over damaged
ones, and writing one whole or not at all.

    checkpoints/ckpt-N.index + ckpt-N.data-*   the state after N steps (G, D, both optimizers,
                                              the epoch, the step and G's random states)
    checkpoints/checkpoint                    TensorFlow's list of them (a damaged one is set
                                              aside as checkpoint.damaged: they are found by
                                              their files)

`callbacks.TrainingCheckpoint` is the Keras callback that saves one at each epoch's end (and every
N steps) and restores a run with these functions; `run` clears what an interrupted write left.
TensorFlow is imported inside the functions: the command line says what a stopped run holds
(`what_is_saved`) without its start-up.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

from pix2color.errors import OutputError, RunError, first_line
from pix2color.training.run_folder import (
    CHECKPOINT_FILE,
    CHECKPOINTS,
    DAMAGED_STATE,
    PARTIAL_CHECKPOINT,
    PARTIAL_CHECKPOINT_PART,
    is_remote,
)

# --------------------------------------------------------------------------- finding them


def checkpoint_steps(directory: str | os.PathLike) -> list[int]:
    """Steps of the checkpoints whose files are in `directory` (a run's checkpoints/), newest first.

    Found by their files, not by the `checkpoint` state file, which names only the ones it
    knows and none at all once the newest one's index file is gone.
    """
    steps = {int(match.group(1)) for match in map(CHECKPOINT_FILE.match, _listdir(directory)) if match}
    return sorted(steps, reverse=True)


def _listdir(directory) -> list[str]:
    """The names in a local folder or a gs:// one (TensorFlow's file system); [] if it is not there."""
    if is_remote(directory):
        import tensorflow as tf

        return [name.rstrip("/") for name in tf.io.gfile.listdir(directory)] if tf.io.gfile.isdir(directory) else []
    return os.listdir(directory) if os.path.isdir(directory) else []


def checkpoints_of(folder: str | os.PathLike) -> str:
    """A run folder's checkpoint directory (a local path or a gs:// URL)."""
    return f"{str(folder).rstrip('/')}/{CHECKPOINTS}" if is_remote(folder) else str(Path(folder) / CHECKPOINTS)


def what_is_saved(folder: str | os.PathLike) -> str:
    """One clause on what a resume of `folder` would start from."""
    steps = checkpoint_steps(checkpoints_of(folder))
    if not steps:
        return "no checkpoint was written yet: running the same command again starts from the beginning"
    return (f"the newest checkpoint is {Path(folder) / CHECKPOINTS / f'ckpt-{steps[0]}'} (step {steps[0]}): "
            "run the same command again to resume from it")


# --------------------------------------------------------------------------- restoring the newest that restores


def restore_newest(checkpoint, directory: str | os.PathLike, whole: bool = True, log=print) -> int | None:
    """Restore the newest checkpoint in `directory` that restores; returns its step (None: none there).

    A newest checkpoint that is damaged (a file missing, truncated or overwritten) is passed
    over for the one before it, saying which and why (`log`). Every object of `checkpoint` must
    be in the file; `whole=False`: the file may hold more (a generator read from a training
    checkpoint).
    Raises `RunError` if checkpoints are there but none restores.
    """
    failures, mismatched = [], 0
    for step in checkpoint_steps(directory):
        prefix = f"{str(directory).rstrip('/')}/ckpt-{step}"
        problem = _restore_problem(checkpoint, prefix, whole)
        if problem is None:
            if failures:
                log(f"note: {'; '.join(failures)}; using ckpt-{step} (step {step}) instead")
            return step
        failures.append(f"ckpt-{step} cannot be restored ({problem})")
        mismatched += problem.startswith(_OTHER_NETWORK)
    if not failures:
        return None
    if mismatched == len(failures):
        raise RunError(f"the checkpoints in {directory} hold a network of other settings than these ({_OTHER_NETWORK} "
                       "--image-size, --generator or --patch-size): rerun with the flags the run was started with, or "
                       "choose a new --out")
    raise RunError(f"no checkpoint in {directory} can be restored: {'; '.join(failures)}")


_OTHER_NETWORK = "another network:"


def _restore_problem(checkpoint, prefix: str, whole: bool) -> str | None:
    """Why `checkpoint` cannot be restored from `prefix`, in plain words; None once it is restored."""
    import tensorflow as tf

    if not tf.io.gfile.exists(prefix + ".index"):
        return "its index file is missing"
    if not tf.io.gfile.glob(prefix + ".data-*"):
        return "its data file is missing"
    return _attempt_restore(checkpoint, prefix, whole)


def _attempt_restore(checkpoint, prefix: str, whole: bool) -> str | None:
    try:
        status = checkpoint.restore(prefix)
        status.assert_existing_objects_matched()  # every weight asked for is in the file
        if not whole:
            status.expect_partial()  # the file's other objects (D, optimizers) are not wanted
        return None
    except (ValueError, AssertionError) as error:  # shapes, or objects, that are not this network's
        return f"{_OTHER_NETWORK} {first_line(error)}"
    except Exception as error:  # noqa: BLE001 - a damaged file raises OpError, IndexError, ...
        message = str(error)
        if "Read less bytes" in message:
            return "its data file is truncated"
        if "checksum" in message:
            return "its data file is damaged (checksum mismatch)"
        if "sstable" in message:
            return "its index file is damaged"
        return first_line(error)


# --------------------------------------------------------------------------- passing over damaged ones


def remove_partial_checkpoints(directory: str | os.PathLike) -> list[str]:
    """Delete what an interrupted checkpoint write left in `directory` (`ckpt-N_temp/` holding only
    TensorFlow's part files); returns their names. Only ever call it holding the run's lock: no
    other process may be writing one. (Local folders only: a gs:// bucket keeps them.)"""
    directory = Path(directory)
    if is_remote(directory) or not directory.is_dir():
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        path = directory / name
        if not PARTIAL_CHECKPOINT.match(name) or path.is_symlink():
            continue
        if path.is_dir() and all(PARTIAL_CHECKPOINT_PART.match(part) for part in os.listdir(path)):
            shutil.rmtree(path)
            removed.append(name)
        elif path.is_file():
            path.unlink()
            removed.append(name)
    return removed


def set_aside_damaged_state(directory: str | os.PathLike) -> str | None:
    """Move a `checkpoint` state file TensorFlow cannot read to checkpoint.damaged (the checkpoints
    themselves are found by their files); returns a line saying so, or None. Hold the lock."""
    import tensorflow as tf

    state = Path(directory) / "checkpoint"
    if is_remote(directory) or not state.is_file():
        return None
    try:
        tf.train.get_checkpoint_state(str(directory))
        return None
    except Exception as error:  # noqa: BLE001 - a damaged text proto raises several kinds
        os.replace(state, state.with_name(DAMAGED_STATE))
        reason = first_line(error, 120)
        return f"Moved {state} to {DAMAGED_STATE}: TensorFlow cannot read it ({reason}); the checkpoints are found by their files"

# --------------------------------------------------------------------------- writing one


def write(manager, step: int, newest: str | None) -> str:
    """Write the checkpoint of `step` with `manager` (a `tf.train.CheckpointManager`); returns its path.

    The manager writes the files first and replaces its `checkpoint` list after, so a process
    killed mid-write leaves the previous checkpoint the newest usable one. A write that fails (a
    full disk) removes its partial files and raises `OutputError` saying what is kept (`newest`).
    """
    import tensorflow as tf

    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as error:
        for partial in glob.glob(os.path.join(manager.directory, f"ckpt-{step}[._]*")):
            if os.path.isdir(partial):
                tf.io.gfile.rmtree(partial)
            else:
                os.remove(partial)
        kept = f"the newest checkpoint, {newest}, is intact" if newest else "no checkpoint was written before"
        reason = getattr(error, "strerror", None) or _os_reason(getattr(error, "message", str(error)))
        raise OutputError(f"could not write the checkpoint of step {step} to {manager.directory}: "
                          f"{reason} ({kept})") from None


def _os_reason(message: str) -> str:
    """'{{function_node ...}} /path/file.tempstate123; No space left on device [Op:SaveV2]' -> the
    operating system's words ('No space left on device')."""
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return re.sub(r"\s*\[Op:\w+\]$", "", first_line).rsplit("; ", 1)[-1]
