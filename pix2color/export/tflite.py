"""The TFLite export: `generator_{mode}_{variant}.tflite` files with built-in ops only (no Flex)
and float I/O, and the device's one-file runner beside them.

    input lightness float32 (1, S, S, 1) in [-1, 1] -> output ab float32 (1, S, S, 2)
    variants: float32, float16 (weights), int8 (full-integer, calibrated on the sample photos),
    dynamic (int8 weights, float activations; on CPUs slower than int8, see docs/performance.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from pix2color.colorizing.loading import MODES
from pix2color.export.one_file import DEVICE_RUNNER, device_runner, refuse_to_replace_unsigned
from pix2color.export.savedmodel import _import_tf, draw_afresh_in_every_process
from pix2color.outputs import write_output

TFLITE_VARIANTS = ("float32", "float16", "int8", "dynamic")
CALIBRATION_IMAGES = 64


def calibration_lightness(image_size: int, count: int = CALIBRATION_IMAGES):
    """Normalised lightness of sample photos (training split), for int8 calibration."""
    from pix2color.data import load_image_set, make_eval_dataset

    image_set = load_image_set("sample", verbose=0)
    files = image_set.train[:: max(1, len(image_set.train) // count)][:count]
    return np.concatenate([l.numpy() for l, _ in make_eval_dataset(files, image_size, 16)])


def tflite_model(network, image_size: int, variant: str, calibration: np.ndarray | None = None) -> bytes:
    """Convert `network` (lightness -> ab) to a TFLite flatbuffer with built-in ops only."""
    tf = _import_tf()
    from pix2color.export.tflite_layers import litert_generator

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
    from pix2color.networks.paper_mode import paper_mode_generator

    size = int(generator.input_shape[1])
    out_dir = Path(out_dir)
    refuse_to_replace_unsigned(out_dir / DEVICE_RUNNER)  # before any work, --overwrite or not
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
