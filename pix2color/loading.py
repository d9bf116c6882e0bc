"""Loading a trained generator: from a run folder, a `.keras` file, or an exported SavedModel.

Every command that uses a trained model (colorize, evaluate, export, ablation, the benchmarks)
loads it here, in one of two inference modes:

- deterministic: BatchNorm moving statistics, no dropout; the same photo always gets the same
  colours, whatever else is in the batch (the default for using the model);
- paper: the report's test-time behaviour, dropout on and BatchNorm statistics of the current
  batch (use it to compare with the report's numbers).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

MODES = ("deterministic", "paper")


def load_generator(model: str | os.PathLike):
    """A trained generator from a run folder, a `.keras` file, or a run's last checkpoint.

    Returns a Keras model mapping normalised lightness (N, S, S, 1) to ab (N, S, S, 2).
    """
    import keras

    from pix2color import models, resnet_unet  # noqa: F401 - their layers are registered for loading

    path = Path(model)
    if path.is_dir() and (path / "saved_model.pb").exists():
        raise ValueError(f"{path} is a SavedModel: use load_network() for it")
    if path.is_dir() and (path / "generator.keras").exists():
        path = path / "generator.keras"
    elif path.is_dir() and (path / "run.json").exists():
        return _generator_from_checkpoint(path)
    if path.suffix == ".keras" and path.is_file():
        return keras.models.load_model(path)
    raise ValueError(f"{model}: not a run folder, a .keras generator or a SavedModel")


def _generator_from_checkpoint(run: Path):
    """An interrupted run has no generator.keras yet: rebuild G and load the last checkpoint."""
    import tensorflow as tf

    from pix2color import models

    settings = json.loads((run / "run.json").read_text())
    generator = models.build_named_generator(
        settings.get("generator", "unet"), settings["image_size"], dropout=not settings.get("l1_only", False)
    )
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        raise ValueError(f"{run}: a run folder without checkpoints or generator.keras")
    tf.train.Checkpoint(generator=generator).restore(latest).expect_partial()
    return generator


@dataclass
class Network:
    """What the recipe needs from a model: a batched lightness -> ab function and S."""

    predict_ab: object
    image_size: int


def load_network(model: str | os.PathLike, mode: str = "deterministic") -> Network:
    """A run folder, `.keras` file or pix2color SavedModel -> `Network` in the chosen mode.

    deterministic: BatchNorm moving statistics, no dropout: the same photo always gets the same
    colours, whatever else is in the batch. paper: the report's test-time behaviour, dropout on
    and BatchNorm statistics of the current batch.
    """
    import tensorflow as tf

    from pix2color import models

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} (got {mode!r})")
    path = Path(model)
    if path.is_dir() and (path / "saved_model.pb").exists():
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["ab" if mode == "deterministic" else "ab_paper"]
        size = int(signature.structured_input_signature[1]["lightness"].shape[1])
        output_name = next(iter(signature.structured_outputs))

        def predict_saved(lightness):
            return signature(lightness=tf.constant(lightness, tf.float32))[output_name].numpy()

        return Network(predict_saved, size)

    generator = load_generator(model)
    network = generator if mode == "deterministic" else models.paper_mode_generator(generator)

    @tf.function(reduce_retracing=True)
    def predict(lightness):
        return network(lightness, training=False)

    return Network(lambda lightness: predict(tf.constant(lightness, tf.float32)).numpy(), int(generator.input_shape[1]))
