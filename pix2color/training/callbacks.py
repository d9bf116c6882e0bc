"""Keras callbacks of a training run: checkpoints that resume (saved and restored by
`pix2color.training.checkpoints`), loss plots and sample grids."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from pix2color import color
from pix2color.errors import NotFiniteError
from pix2color.networks.common import all_finite
from pix2color.training import checkpoints, plots, run_folder


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves G, D, both optimizers, the epoch and the global step; restores them on resume.

    Uses `tf.train.CheckpointManager`: the checkpoint files are written first and the
    `checkpoint` index file is replaced atomically afterwards, so a process killed in the
    middle of a save leaves the previous checkpoint as the latest usable one. A save refuses
    weights that are not finite, and a write that fails (a full disk) removes its partial files
    and raises `OutputError`, leaving the previous checkpoint the latest.

    The generator's random-number state (its dropout masks' and noise's seed generators) is part
    of the checkpoint, so a resumed run draws the same masks a run left alone would have.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        generator: keras.Model,
        g_optimizer: keras.optimizers.Optimizer,
        discriminator: keras.Model | None = None,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        every_steps: int | None = None,
        max_to_keep: int = 3,
        write: bool = True,
    ):
        """write=False: restore from `directory` and count, but never save (workers other than
        the chief of a multi-worker run)."""
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps_done")
        tracked = {"generator": generator, "g_optimizer": g_optimizer}
        if discriminator is not None:
            tracked.update(discriminator=discriminator, d_optimizer=d_optimizer)
        random_states = [v for v in generator.variables if "seed_generator_state" in v.path]
        self.checkpoint = tf.train.Checkpoint(epoch=self.epoch, step=self.step, random_states=random_states, **tracked)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep)
        self.newest: str | None = None  # the newest checkpoint known to restore: restored, or written here
        self.every_steps = every_steps
        self.write = write
        labels = {"generator": "generator's weights", "g_optimizer": "generator's optimizer state",
                  "discriminator": "discriminator's weights", "d_optimizer": "discriminator's optimizer state"}
        self._owners = {labels[name]: owner for name, owner in tracked.items()}

    def restore(self, log=print) -> tuple[int, int] | None:
        """Load the newest checkpoint that restores (a damaged newest one is passed over, and
        overwritten when its step is saved again): returns (epochs done, steps done) or None."""
        step = checkpoints.restore_newest(self.checkpoint, self.manager.directory, whole=True, log=log)
        if step is None:
            return None
        self.newest = f"{self.manager.directory}/ckpt-{step}"
        return int(self.epoch.numpy()), int(self.step.numpy())

    def save(self) -> str:
        """Write a checkpoint of the current step (refused if a weight is not finite); returns its path."""
        step = int(self.step.numpy())
        broken = self.not_finite()
        if broken:
            raise NotFiniteError(f"not finite: the {broken} after step {step}")
        self.newest = checkpoints.write(self.manager, step, self.newest)
        return self.newest

    def not_finite(self) -> str | None:
        """What holds a NaN or an infinity, if anything ("generator's weights", ...)."""
        return next((label for label, owner in self._owners.items() if not all_finite(owner.variables)), None)

    def on_train_batch_end(self, batch, logs=None):
        self.step.assign_add(1)
        # An epoch's last step is saved by on_epoch_end, with the epoch counted: a checkpoint of
        # it written here, before validation, would say "epoch not done" with all its steps done.
        last_of_epoch = batch + 1 == self.params.get("steps")
        if self.write and self.every_steps and int(self.step.numpy()) % self.every_steps == 0 and not last_of_epoch:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        if self.write:
            self.save()


class HistoryPlot(keras.callbacks.Callback):
    """Redraws the loss-curve figure from `history.csv` after every epoch.

    Place it after the `CSVLogger` that writes `history_csv`.
    """

    def __init__(self, history_csv: str | os.PathLike, out_png: str | os.PathLike):
        super().__init__()
        self.history_csv = history_csv
        self.out_png = out_png

    def on_epoch_end(self, epoch, logs=None):
        if os.path.exists(self.history_csv):
            plots.plot_history(self.history_csv, self.out_png, run_folder.read_best(os.path.dirname(self.history_csv)))


def colorize_batch(generator: keras.Model, lightness: tf.Tensor, training: bool = False):
    """Run G on a batch of lightness -> (gray RGB, generated RGB) as numpy floats in [0, 1]."""
    ab = generator(lightness, training=training)
    gray = color.model_outputs_to_rgb(lightness, tf.zeros_like(ab))
    return gray.numpy(), color.model_outputs_to_rgb(lightness, ab).numpy()


class SampleGrid(keras.callbacks.Callback):
    """After every epoch, writes `epoch_NNN.png`: gray | generated | original for fixed images."""

    def __init__(self, generator: keras.Model, lightness, ab, directory: str | os.PathLike):
        super().__init__()
        self.generator = generator
        self.lightness = tf.convert_to_tensor(lightness)
        self.original = color.model_outputs_to_rgb(self.lightness, ab).numpy()
        self.directory = directory

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        gray, generated = colorize_batch(self.generator, self.lightness)
        rows = list(zip(gray, generated, self.original))
        path = os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png")
        plots.sample_grid(rows, path, title=f"epoch {epoch + 1}")


def first_images(dataset: tf.data.Dataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` (lightness, ab) examples of a batched dataset, as two arrays."""
    lightness, ab = [], []
    for batch_lightness, batch_ab in dataset:
        lightness.append(batch_lightness.numpy())
        ab.append(batch_ab.numpy())
        if sum(len(item) for item in lightness) >= count:
            break
    return np.concatenate(lightness)[:count], np.concatenate(ab)[:count]
