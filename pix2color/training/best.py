"""Which generator to keep: the epoch with the best validation measure, and when to stop.

The report stopped at 15 epochs by hand: validation SSIM was no guide and L1 overfits.
`--keep-best METRIC` keeps, in RUN/best/generator.keras, the generator of the epoch whose
validation METRIC is best (its epoch and value in run.json and best/generator.json), and
`--early-stop PATIENCE` ends the run after PATIENCE epochs without a better one:

    val_l1, val_psnr, val_ssim       Keras' own validation logs (the generator in deterministic mode)
    val_colourfulness_gap            |mean colourfulness of the originals - of the outputs| (`ValidationMeasures`)
    val_fid, val_kid                 FID and KID of the outputs against the originals (`--val-fid`)

`KeepBest` decides as Keras' callbacks do: it saves when `ModelCheckpoint(monitor, mode,
save_best_only=True)` would (a strictly better value; the first epoch always), and stops when
`EarlyStopping(monitor, mode, patience)` would (tests/training/test_best.py compares them). Unlike
them it survives a resume: the best so far comes from run.json, and the epochs since it from
the epochs done, so a resumed run keeps and stops exactly as the run left alone would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2color.training import run_folder

# --keep-best METRIC -> (the log it reads, whether smaller is better)
MONITORED = {
    "val_l1": ("val_gen_l1_loss", True),
    "val_psnr": ("val_psnr", False),
    "val_ssim": ("val_ssim", False),
    "val_colourfulness_gap": ("val_colourfulness_gap", True),
    "val_fid": ("val_fid", True),
    "val_kid": ("val_kid", True),
}


@dataclass
class Best:
    """The epoch kept: `epoch` counts epochs done (1 = after the first), `steps` the steps done."""

    metric: str
    epoch: int
    value: float
    steps: int

    @classmethod
    def of_run(cls, folder) -> Best | None:
        found = run_folder.read_best(folder)
        return None if found is None else cls(str(found["metric"]), int(found["epoch"]), float(found["value"]),
                                              int(found["steps"]))

    def text(self) -> str:
        return f"{self.metric} {self.value:.6g} at epoch {self.epoch}"


def is_better(metric: str, value: float, best: Best | None) -> bool:
    """Strictly better than the best so far (any finite value is, when there is none)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    smaller = MONITORED[metric][1]
    return value < best.value if smaller else value > best.value


def stopped_early(best: Best | None, patience: int | None, epochs_done: int) -> bool:
    """`EarlyStopping`'s rule: `patience` epochs done since the best one."""
    return bool(patience) and best is not None and epochs_done - best.epoch >= patience


class KeepBest(keras.callbacks.Callback):
    """After every epoch: keep the generator if `metric` improved (RUN/best/, run.json), and stop
    the run after `patience` epochs without improvement. Place it before the checkpoint callback:
    the best generator is on disk before the run's checkpoint moves past its epoch."""

    def __init__(self, out: Path, generator: keras.Model, metric: str, settings: dict, best: Best | None = None,
                 patience: int | None = None, steps=lambda: 0, write: bool = True, log=print):
        super().__init__()
        self.out, self.generator, self.metric, self.settings = Path(out), generator, metric, settings
        self.best, self.patience, self.steps, self.write, self.log = best, patience, steps, write, log
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        name = MONITORED[self.metric][0]
        value = (logs or {}).get(name)
        if value is None:
            raise KeyError(f"--keep-best {self.metric}: the epoch's logs hold no {name}")
        value = float(value)
        if is_better(self.metric, value, self.best):
            self.best = Best(self.metric, epoch + 1, value, self.steps())
            if self.write:
                run_folder.save_generator(self.generator, self.out / run_folder.BEST, self.best.steps, epoch + 1,
                                          self.metric, value)
                run_folder.write_run_json(self.out, self.settings, asdict(self.best))
            self.log(f"\nBest so far: {self.best.text()}, kept in {self.out / run_folder.BEST}")
        elif stopped_early(self.best, self.patience, epoch + 1):
            self.model.stop_training = True
            self.stopped = True
            epochs = f"{self.patience} epoch" + ("s" if self.patience > 1 else "")
            self.log(f"\nStopping early: no better {self.metric} for {epochs} (best: {self.best.text()})")


class ValidationMeasures(keras.callbacks.Callback):
    """After every epoch, measures the generator (deterministic mode) on the validation images as a
    whole and adds to the epoch's logs, before `KeepBest` and the history read them:
    `val_colourfulness_gap` and, with `features` (`InceptionFeatures`), `val_fid` and `val_kid`."""

    def __init__(self, generator: keras.Model, dataset: tf.data.Dataset, features=None):
        super().__init__()
        self.generator, self.dataset, self.features = generator, dataset, features
        self._truth = None  # the originals' colourfulness and features, measured once

    def on_epoch_end(self, epoch, logs=None):
        from pix2color.evaluation import distances, metrics

        truth_measures, outputs = [], []
        for lightness, ab in self.dataset:
            output = metrics.to_uint8_values(lightness, self.generator(lightness, training=False))
            outputs.append(self._measure(output))
            if self._truth is None:
                truth_measures.append(self._measure(metrics.to_uint8_values(lightness, ab)))
        if self._truth is None:
            self._truth = [np.concatenate(parts) for parts in zip(*truth_measures)]
        measured = [np.concatenate(parts) for parts in zip(*outputs)]
        logs = logs if logs is not None else {}
        logs["val_colourfulness_gap"] = float(abs(self._truth[0].mean() - measured[0].mean()))
        if self.features is not None:
            found = distances.to_originals(measured[1], self._truth[1])
            logs["val_fid"], logs["val_kid"] = found["fid"], found["kid"]

    def _measure(self, rgb) -> tuple[np.ndarray, ...]:
        from pix2color.evaluation import metrics

        colourfulness = metrics.colourfulness(rgb).numpy()
        return (colourfulness,) if self.features is None else (colourfulness, self.features(rgb))
