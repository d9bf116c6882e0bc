"""Loading a trained generator: from a run folder, a `.keras` file, or an exported SavedModel.

Every command that uses a trained model (colorize, evaluate, export, ablation, the benchmarks)
loads it here, in one of two inference modes:

- deterministic: BatchNorm moving statistics, no dropout; the same photo always gets the same
  colours, whatever else is in the batch (the default for using the model);
- paper: the report's test-time behaviour, dropout on and BatchNorm statistics of the current
  batch (use it to compare with the report's numbers).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pix2color.config import unet_depth
from pix2color.errors import first_line
from pix2color.outputs import quoted
from pix2color.training import run_folder
from pix2color.training.checkpoints import checkpoint_steps, restore_newest

# Keras, TensorFlow and the networks are imported inside the functions that need them: commands check
# their arguments and paths before paying for TensorFlow's start-up.

MODES = ("deterministic", "paper")


def load_generator(model: str | os.PathLike, log=None):
    """A trained generator from a run folder, a `.keras` file, or a run's last checkpoint.

    Returns a Keras model mapping normalised lightness (N, S, S, 1) to ab (N, S, S, 2). From a
    run folder it takes whichever is newer, generator.keras or the newest checkpoint that
    restores (a run resumed after it finished writes checkpoints past its generator.keras);
    `log`, if given, is told which one ("model: ...").
    """
    path = Path(model)
    if not path.exists():
        raise ValueError(f"{quoted(model)}: no such file or folder")
    if path.is_dir() and (path / "saved_model.pb").exists():
        raise ValueError(f"{quoted(path)} is a SavedModel; this needs a run folder or a .keras generator")
    if path.is_dir():
        if not any((path / name).exists() for name in (run_folder.RUN_JSON, run_folder.GENERATOR,
                                                       run_folder.CHECKPOINTS)):
            raise ValueError(f"{quoted(model)}: not a run folder (no run.json, generator.keras or checkpoints/), a .keras "
                             "generator or a SavedModel")
        return _generator_from_run(path, log or (lambda message: None))
    if path.suffix == ".keras":
        generator = read_keras_generator(path)
        if log:
            log(f"model: {path}")
        return generator
    raise ValueError(f"{quoted(model)}: not a run folder, a .keras generator or a SavedModel")


def read_keras_generator(path: Path):
    """A `.keras` generator file, its layers computing in float32, or `ValueError` saying in plain
    words why it cannot be read."""
    import keras

    import pix2color.networks  # noqa: F401 - registers the networks' own layers for loading
    from pix2color.training.precision import float32_layers

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{quoted(path)}: not a Keras model file (a .keras file is a zip archive; this one is damaged "
                         "or something else)")
    try:
        model = keras.models.load_model(path)
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds for a file it cannot rebuild
        reason = first_line(error, 200)
        raise ValueError(f"{quoted(path)}: cannot be read as a pix2color generator ({reason})") from None
    check_generator(model, path)
    return float32_layers(model)  # a file saved with 16-bit layers computes in float32 too


def check_generator(model, name) -> None:
    """`ValueError` unless `model` maps lightness (N, S, S, 1) to ab (N, S, S, 2), S a power of two >= 32:
    any other Keras model fails later, deep inside, with a message about tensors."""
    inputs, outputs = model.inputs, model.outputs
    shapes = ([tuple(tensor.shape) for tensor in inputs], [tuple(tensor.shape) for tensor in outputs])
    fits = len(inputs) == 1 and len(outputs) == 1
    if fits:
        (_, height, width, channels), output = shapes[0][0], shapes[1][0]
        fits = (height == width and channels == 1 and isinstance(height, int) and output[1:] == (height, width, 2))
    try:
        fits = fits and unet_depth(height) > 0
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: not a pix2color generator (it maps {', '.join(map(str, shapes[0]))} to "
                         f"{', '.join(map(str, shapes[1]))}; a generator maps (None, S, S, 1) to (None, S, S, 2))")


def _generator_from_run(run: Path, log):
    """The newer of the run's generator.keras and its newest restorable checkpoint (either one
    if the other cannot be read)."""
    keras_file = run / run_folder.GENERATOR
    checkpoints = run / run_folder.CHECKPOINTS
    steps = checkpoint_steps(checkpoints)
    record = run_folder.read_generator_record(run)
    readable = keras_file.exists()
    if readable and _keras_file_is_newer(keras_file, record, checkpoints, steps):
        try:
            generator = read_keras_generator(keras_file)
        except ValueError as error:
            if not steps:
                raise
            log(f"note: {error}; using the newest checkpoint instead")
            readable = False
        else:
            log(f"model: {keras_file}" + (f" (step {record.steps})" if record else
                                          f" (saved after the newest checkpoint, ckpt-{steps[0]})" if steps else ""))
            return generator
    generator, step = _generator_from_checkpoint(run, log)
    if readable and record is not None and step <= record.steps:  # the newer checkpoints were damaged
        log(f"model: {keras_file} (step {record.steps})")
        return read_keras_generator(keras_file)
    newer = f", newer than {keras_file.name}" + (f" of step {record.steps}" if record else "") if keras_file.exists() else ""
    log(f"model: {checkpoints / f'ckpt-{step}'} (step {step}{newer})")
    return generator


def _keras_file_is_newer(keras_file: Path, record, checkpoints: Path, steps: list[int]) -> bool:
    """generator.keras holds at least the newest checkpoint's step (by its record; for runs without
    one, by the files' times)."""
    if not steps:
        return True
    if record is not None:
        return record.steps >= steps[0]
    return keras_file.stat().st_mtime >= _newest_checkpoint_time(checkpoints, steps[0])


def _newest_checkpoint_time(checkpoints: Path, step: int) -> float:
    return max(path.stat().st_mtime for path in checkpoints.glob(f"ckpt-{step}.*"))


def _generator_from_checkpoint(run: Path, log):
    """Rebuild G as run.json describes it and restore it from the newest checkpoint that restores."""
    import tensorflow as tf

    from pix2color.networks import build_named_generator

    settings = run_folder.read_run_json(run)
    if settings is None:
        raise ValueError(f"{run}: its checkpoints cannot be read without its run.json (the settings that say "
                         "which network they hold)")
    generator = build_named_generator(
        settings.get("generator", "unet"), settings["image_size"], dropout=not settings.get("l1_only", False)
    )
    step = restore_newest(tf.train.Checkpoint(generator=generator), run / run_folder.CHECKPOINTS,
                                     whole=False, log=log)
    if step is None:
        raise ValueError(f"{run}: a run folder without checkpoints or generator.keras")
    return generator, step


@dataclass
class Network:
    """What the recipe needs from a model: a batched lightness -> ab function and S."""

    predict_ab: object
    image_size: int


def load_network(model: str | os.PathLike, mode: str = "deterministic", log=None) -> Network:
    """A run folder, `.keras` file or pix2color SavedModel -> `Network` in the chosen mode.

    deterministic: BatchNorm moving statistics, no dropout: the same photo always gets the same
    colours, whatever else is in the batch. paper: the report's test-time behaviour, dropout on
    and BatchNorm statistics of the current batch.
    """
    import tensorflow as tf

    from pix2color.networks.common import all_finite
    from pix2color.networks.cpu_layers import fast_layers
    from pix2color.networks.paper_mode import paper_mode_generator

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} (got {mode!r})")
    path = Path(model)
    if path.is_dir() and (path / "saved_model.pb").exists():
        if log:
            log(f"model: {path}")
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as error:  # noqa: BLE001 - TensorFlow raises several kinds for a damaged SavedModel
            reason = first_line(error, 200)
            raise ValueError(f"{quoted(path)}: cannot be read as a SavedModel ({reason})") from None
        if not {"ab", "ab_paper"} <= set(loaded.signatures):
            raise ValueError(f"{quoted(path)}: not a SavedModel exported by pix2color (no 'ab' signature)")
        signature = loaded.signatures["ab" if mode == "deterministic" else "ab_paper"]
        size = int(signature.structured_input_signature[1]["lightness"].shape[1])
        output_name = next(iter(signature.structured_outputs))

        def predict_saved(lightness):
            return signature(lightness=tf.constant(lightness, tf.float32))[output_name].numpy()

        return Network(predict_saved, size)

    generator = load_generator(model, log)
    if not all_finite(generator.weights):  # said at once, naming the file; the recipe checks every output too
        raise ValueError(f"{quoted(model)}: its weights are not finite (NaN or infinite): a damaged model")
    network = fast_layers(generator if mode == "deterministic" else paper_mode_generator(generator))

    @tf.function(reduce_retracing=True)
    def predict(lightness):
        return network(lightness, training=False)

    return Network(lambda lightness: predict(tf.constant(lightness, tf.float32)).numpy(), int(generator.input_shape[1]))
