"""Export a trained generator to a SavedModel (for serving) and to TFLite (for phones).

    pix2color export --model runs/pix2color --out exported --formats savedmodel,tflite

SavedModel signatures (weights stored once, shared by both modes):
    serving_default / colorize        image uint8 (H, W, C), C in 1..4, any size
                                      -> colorized uint8 (H, W, 3), same size (full-res recipe)
    colorize_paper                    the same in the report's test-time mode
    ab / ab_paper                     lightness float32 (N, S, S, 1) -> ab float32 (N, S, S, 2)

TFLite files `generator_{mode}_{variant}.tflite`, built-in ops only (no Flex), float I/O:
    input lightness float32 (1, S, S, 1) in [-1, 1] -> output ab float32 (1, S, S, 2)
    variants: float32, float16 (weights), int8 (full-integer, calibrated on the sample photos),
    dynamic (int8 weights, float activations; on CPUs slower than int8, see docs/performance.md).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from pix2color.loading import MODES, load_generator
from pix2color.outputs import write_output

# TensorFlow and the networks are imported inside the functions that need them: `pix2color export`
# checks its arguments and paths before paying for TensorFlow's start-up.

TFLITE_VARIANTS = ("float32", "float16", "int8", "dynamic")
FORMATS = ("savedmodel", "tflite")
CALIBRATION_IMAGES = 64


def _import_tf():
    import tensorflow as tf

    return tf


def draw_afresh_in_every_process():
    """Called first in every function traced for export: its random ops (the paper mode's dropout
    masks and noise) get no seed, so each process that loads the file draws its own. Otherwise a
    global seed set in the exporting process (a notebook that trained, then exported) would be
    baked into the ops, and every phone would draw the same masks in the same order. Under op
    determinism TensorFlow requires seeds, so the exporting process's are kept."""
    tf = _import_tf()
    # TensorFlow has a public setter of op determinism but no public getter (checked with 2.21).
    from tensorflow.python.framework.config import is_op_determinism_enabled

    if not is_op_determinism_enabled():
        tf.compat.v1.get_default_graph().seed = None  # the graph being traced, not the process


def colorize_in_graph(network, image, image_size: int):
    """The full-resolution recipe as TensorFlow ops (for the SavedModel's serving signature).

    image: uint8 (H, W, C), C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA; alpha dropped).
    Mirrors `pix2color.photos.FullResolutionColorizer` (area-filtered L in, bilinear ab out).
    """
    tf = _import_tf()
    from pix2color import color

    channels = tf.shape(image)[-1]
    image = tf.cond(channels < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    lab = color.rgb_to_lab(tf.cast(image, tf.float32) / 255.0)
    lightness = lab[..., :1]  # (H, W, 1), full resolution
    small = tf.image.resize(lightness[None], [image_size, image_size], method="area") / 50.0 - 1.0
    ab_small = network(small, training=False)  # (1, S, S, 2)
    ab = tf.image.resize(ab_small * 110.0, tf.stack([height, width]), method="bilinear")[0]
    rgb = color.lab_to_rgb(tf.concat([lightness, ab], axis=-1))
    return tf.cast(tf.round(rgb * 255.0), tf.uint8)


SAVEDMODEL_FILES = {"saved_model.pb", "fingerprint.pb", "variables", "assets", "keras_metadata.pb"}


def not_an_export(folder: str | Path) -> list[str]:
    """What a folder holds that a SavedModel export does not write (`--overwrite` replaces a
    folder only when this is empty: it never removes a user's file)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return [folder.name]
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name not in SAVEDMODEL_FILES or entry.is_symlink():
            found.append(entry.name)
        elif entry.name == "variables" and entry.is_dir():
            found += [f"variables/{item.name}" for item in sorted(entry.iterdir())
                      if not (item.name == "variables.index" or item.name.startswith("variables.data-"))]
        elif entry.name == "assets" and entry.is_dir():
            found += [f"assets/{item.name}" for item in sorted(entry.iterdir())]
    return found


def export_savedmodel(generator, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write a SavedModel with whole-job and raw-network signatures, both inference modes.

    Written into a hidden temporary folder beside `out_dir` and renamed into place when whole;
    an existing `out_dir` is replaced only with `overwrite`, and only if it holds nothing but an
    export's files (`not_an_export`)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(errno.EEXIST, "exists (--overwrite replaces it)", str(out_dir))
    foreign = not_an_export(out_dir) if os.path.lexists(out_dir) else []
    if foreign:
        raise FileExistsError(errno.EEXIST, f"holds what no export writes ({', '.join(foreign[:3])}): left as it is, "
                                            "--overwrite or not", str(out_dir))
    tf = _import_tf()
    module, signatures = savedmodel_module(generator)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        tf.saved_model.save(module, str(partial), signatures=signatures)
        if out_dir.exists():  # overwrite: the old folder goes only once the new one is whole
            replaced = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            os.replace(out_dir, replaced / out_dir.name)
            os.replace(partial, out_dir)
            shutil.rmtree(replaced)
        else:
            os.replace(partial, out_dir)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return out_dir


def savedmodel_module(generator):
    """(a `tf.Module` holding the generator in both modes, its signatures): `colorize` /
    `colorize_paper` (a uint8 photo of any size in, colorized out) and `ab` / `ab_paper` (the
    raw network); the weights are stored once, shared by both modes."""
    tf = _import_tf()
    from pix2color.paper_mode import paper_mode_generator

    size = int(generator.input_shape[1])
    module = tf.Module()
    module.generator = generator
    module.paper_generator = paper_mode_generator(generator)
    image_spec = tf.TensorSpec([None, None, None], tf.uint8, name="image")
    lightness_spec = tf.TensorSpec([None, size, size, 1], tf.float32, name="lightness")

    def whole_job(network):
        def colorize(image):
            draw_afresh_in_every_process()
            return {"colorized": colorize_in_graph(network, image, size)}

        return tf.function(colorize, input_signature=[image_spec], autograph=False)

    def raw(network):
        def ab(lightness):
            draw_afresh_in_every_process()
            return {"ab": network(lightness, training=False)}

        return tf.function(ab, input_signature=[lightness_spec], autograph=False)

    module.colorize = whole_job(module.generator)
    module.colorize_paper = whole_job(module.paper_generator)
    module.ab = raw(module.generator)
    module.ab_paper = raw(module.paper_generator)
    return module, {
        "serving_default": module.colorize.get_concrete_function(),
        "colorize": module.colorize.get_concrete_function(),
        "colorize_paper": module.colorize_paper.get_concrete_function(),
        "ab": module.ab.get_concrete_function(),
        "ab_paper": module.ab_paper.get_concrete_function(),
    }


def calibration_lightness(image_size: int, count: int = CALIBRATION_IMAGES):
    """Normalised lightness of sample photos (training split), for int8 calibration."""
    from pix2color.data import load_image_set, make_eval_dataset

    image_set = load_image_set("sample", verbose=0)
    files = image_set.train[:: max(1, len(image_set.train) // count)][:count]
    return np.concatenate([l.numpy() for l, _ in make_eval_dataset(files, image_size, 16)])


def tflite_model(network, image_size: int, variant: str, calibration: np.ndarray | None = None) -> bytes:
    """Convert `network` (lightness -> ab) to a TFLite flatbuffer with built-in ops only."""
    tf = _import_tf()
    from pix2color.litert_graph import litert_generator

    if variant not in TFLITE_VARIANTS:
        raise ValueError(f"TFLite variant must be one of {TFLITE_VARIANTS} (got {variant!r})")
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    network = litert_generator(network, quantized=variant == "int8")

    def ab(lightness):
        draw_afresh_in_every_process()
        return {"ab": network(lightness, training=False)}

    function = tf.function(
        ab, input_signature=[tf.TensorSpec([1, image_size, image_size, 1], tf.float32, name="lightness")], autograph=False
    )
    # Freeze first: the converter does not fold Keras 3 variables itself and would leave
    # VAR_HANDLE/READ_VARIABLE ops (unusable for calibration, slower, bigger). TensorFlow's only
    # freezing function is private (tensorflow.python, checked with TensorFlow 2.21).
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], network)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.experimental_new_dynamic_range_quantizer = False  # the new one's files run far slower: docs/performance.md
    elif variant == "int8":
        if calibration is None:
            calibration = calibration_lightness(image_size)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": float I/O on purpose
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


def export_tflite(
    generator, out_dir: str | Path, variants=TFLITE_VARIANTS, modes=MODES, log=print, overwrite: bool = False
) -> list[Path]:
    """Write `generator_{mode}_{variant}.tflite` files, each whole or not at all, and the device's
    runner beside them (`DEVICE_RUNNER`); returns the .tflite files' paths. An existing file is
    replaced only with `overwrite`."""
    from pix2color.paper_mode import paper_mode_generator

    size = int(generator.input_shape[1])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    calibration = calibration_lightness(size) if "int8" in variants else None
    written = []
    for mode in modes:
        network = generator if mode == "deterministic" else paper_mode_generator(generator)
        for variant in variants:
            path = out_dir / f"generator_{mode}_{variant}.tflite"
            flatbuffer = tflite_model(network, size, variant, calibration)
            write_output(path, lambda handle: handle.write(flatbuffer), overwrite)
            log(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
            written.append(path)
    runner = out_dir / DEVICE_RUNNER
    write_output(runner, lambda handle: handle.write(device_runner()), overwrite)
    log(f"wrote {runner} (the device's runner: LiteRT, numpy and Pillow only; copy it with the .tflite files)")
    return written


DEVICE_RUNNER = "colorize_tflite.py"


def device_runner() -> bytes:
    """The source of `pix2color.lite`: one file that runs a `.tflite` generator with LiteRT, numpy
    and Pillow alone, written beside the exported files."""
    from pix2color import lite

    return Path(lite.__file__).read_bytes()


def export(model: str, out: str, formats=FORMATS, variants=TFLITE_VARIANTS, modes=MODES, log=print,
           overwrite: bool = False):
    """Library entry: load a generator (run folder or .keras) and write the requested formats."""
    return export_generator(load_generator(model), out, formats, variants, modes, log, overwrite)


def export_targets(out: str | Path, formats=FORMATS, variants=TFLITE_VARIANTS, modes=MODES) -> list[Path]:
    """The files and folders an export writes (to check, before any work, that none exists)."""
    out = Path(out)
    targets = [out / "savedmodel"] if "savedmodel" in formats else []
    if "tflite" in formats:
        targets += [out / "tflite" / f"generator_{mode}_{variant}.tflite" for mode in modes for variant in variants]
        targets.append(out / "tflite" / DEVICE_RUNNER)
    return targets


def export_generator(generator, out: str, formats=FORMATS, variants=TFLITE_VARIANTS, modes=MODES,
                     log=print, overwrite: bool = False) -> list[Path]:
    out_dir = Path(out)
    written = []
    if "savedmodel" in formats:
        written.append(export_savedmodel(generator, out_dir / "savedmodel", overwrite))
        log(f"wrote {written[-1]}")
    if "tflite" in formats:
        written += export_tflite(generator, out_dir / "tflite", variants, modes, log, overwrite)
    return written
