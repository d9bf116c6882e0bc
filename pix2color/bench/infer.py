"""`bench infer`: per generator and export format, file size, latency and accuracy; with
`--precision bfloat16` (or float16) also the Keras and SavedModel generator computing in it."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from pix2color.bench.timing import interleaved_medians, median_seconds
from pix2color.colorizing.loading import load_generator
from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.data import load_image_set
from pix2color.evaluation import metrics
from pix2color.export import folder, savedmodel, tflite
from pix2color.export.litert_runner import LiteColorizer
from pix2color.networks import build_named_generator
from pix2color.networks.cpu_layers import fast_layers
from pix2color.photos import read_image
from pix2color.training.precision import computing_in


def bench_infer(model: str | None, image_size: int, repeats: int, images: int, workdir: str | None,
                generators: tuple[str, ...] = ("unet",), precision: str = "float32") -> list[dict]:
    """Per generator and format: file size, latency at S x S and for a 12 MP photo, PSNR change vs
    float32; with `precision` bfloat16 or float16, also the Keras and SavedModel generator in it."""
    work = Path(workdir or tempfile.mkdtemp(prefix="pix2color-bench-"))
    if model:
        subjects = [(Path(model).name, load_generator(model))]
    else:
        print("no --model: untrained generators (sizes and latencies are real; PSNR changes only "
              "measure numerical drift)")
        subjects = [(kind, build_named_generator(kind, image_size, encoder_weights="none")) for kind in generators]
    photos = [read_image(p) for p in load_image_set("sample", verbose=0).val[:images]]
    big = np.asarray(Image.fromarray(photos[0]).resize((4000, 3000), Image.Resampling.BICUBIC))
    rows = []
    for label, generator in subjects:
        rows += bench_infer_generator(label, generator, work / label, photos, big, repeats, precision)
    return rows


def size_mb(path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def exported_networks(generator, work: Path, precision: str = "float32") -> tuple[dict, object]:
    """Format -> (file, batched lightness -> ab) for the generator in Keras (its stock layers and
    `cpu_layers.fast_layers`), as a SavedModel and as each TFLite variant, exported into `work`, and
    with `precision` other than float32 the same Keras and SavedModel forms of a copy computing in
    that precision (`networks_computing_in`); and the loaded float32 SavedModel."""
    work.mkdir(parents=True, exist_ok=True)
    keras_file = work / "generator.keras"
    generator.save(keras_file)
    folder.export(str(keras_file), str(work), modes=("deterministic",), log=lambda *_: None)
    saved = tf.saved_model.load(str(work / "savedmodel"))
    networks = keras_and_savedmodel(generator, keras_file, work / "savedmodel", saved,
                                    ("keras", "keras fast layers", "savedmodel"))
    for variant in tflite.TFLITE_VARIANTS:
        path = work / "tflite" / f"generator_deterministic_{variant}.tflite"
        networks[f"tflite {variant}"] = (path, LiteColorizer(path)._run)
    if precision != "float32":
        networks.update(networks_computing_in(generator, precision, work))
    return networks, saved


def networks_computing_in(generator, precision: str, work: Path) -> dict:
    """Format -> (file, batched lightness -> ab) for a copy of the generator computing in
    `precision` (its variables and output float32): Keras, stock and fast layers, and its
    SavedModel, written into `work`."""
    low = computing_in(generator, precision)
    keras_file = work / f"generator_{precision}.keras"
    low.save(keras_file)
    saved_path = savedmodel.export_savedmodel(low, work / f"savedmodel_{precision}", overwrite=True)
    return keras_and_savedmodel(low, keras_file, saved_path, tf.saved_model.load(str(saved_path)),
                                (f"keras {precision}", f"keras fast {precision}", f"savedmodel {precision}"))


def keras_and_savedmodel(generator, keras_file: Path, saved_path: Path, saved, names: tuple) -> dict:
    """The generator's stock and fast layers, and its loaded SavedModel's raw signature, under
    `names`: format -> (file, batched lightness -> ab)."""
    fast = fast_layers(generator)
    stock_ab = tf.function(lambda x: generator(x, training=False))
    fast_ab = tf.function(lambda x: fast(x, training=False))
    stock_name, fast_name, saved_name = names
    return {
        stock_name: (keras_file, lambda x: stock_ab(tf.constant(x)).numpy()),
        fast_name: (keras_file, lambda x: fast_ab(tf.constant(x)).numpy()),
        saved_name: (saved_path, lambda x: saved.signatures["ab"](lightness=tf.constant(x))["ab"].numpy()),
    }


def bench_infer_generator(label: str, generator, work: Path, photos: list, big, repeats: int,
                          precision: str = "float32") -> list[dict]:
    size = int(generator.input_shape[1])
    networks, saved = exported_networks(generator, work, precision)
    lightness = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 1)).astype(np.float32)
    truth = np.stack(photos).astype(np.float32)
    outputs = {name: np.stack(FullResolutionColorizer(predict, size).colorize_batch(photos)).astype(np.float32)
               for name, (_, predict) in networks.items()}
    latencies = interleaved_medians({name: lambda predict=predict: predict(lightness)
                                     for name, (_, predict) in networks.items()}, repeats)
    rows = []
    for name, (path, predict) in networks.items():
        recipe = FullResolutionColorizer(predict, size)
        rows.append({
            "generator": label,
            "format": name,
            "size_mb": size_mb(path),
            "latency_s": latencies[name],
            "photo_12mp_s": median_seconds(lambda: recipe.colorize(big), 1),
            "psnr": float(np.mean(metrics.psnr(truth, outputs[name]).numpy())),
            # the drift from the float32 file's colours, in 8-bit levels (mean over pixels and channels)
            "levels_from_float32": float(np.abs(outputs[name] - outputs["tflite float32"]).mean()),
        })
    started = time.perf_counter()
    saved.signatures["serving_default"](image=tf.constant(big))
    serving_first = time.perf_counter() - started
    serving = median_seconds(lambda: saved.signatures["serving_default"](image=tf.constant(big)), 1)
    print_table(label, generator, size, rows, repeats, len(photos))
    print(f"SavedModel serving signature, 12 MP in-graph: {serving:.2f} s (first call {serving_first:.2f} s)")
    return rows


def print_table(label: str, generator, size: int, rows: list[dict], repeats: int, photos: int) -> None:
    reference_psnr = next(row["psnr"] for row in rows if row["format"] == "tflite float32")
    parameters = sum(int(np.prod(v.shape)) for v in generator.trainable_weights)
    print(f"\n{label}: {parameters / 1e6:.1f} M parameters, {size}x{size}; latency: median of {repeats} network calls "
          f"on one image, formats in turn; 12 MP: 4000x3000 photo end to end (full-resolution recipe, numpy + network); PSNR: peak 256 "
          f"on {photos} sample photos, against the originals; levels from float32: mean |output - TFLite "
          "float32's output| in 8-bit levels")
    print(f"{'format':<22}{'size MB':>9}{'latency s':>11}{'12 MP s':>9}{'PSNR dB':>9}{'vs float32':>12}"
          f"{'levels from float32':>21}")
    for row in rows:
        print(f"{row['format']:<22}{row['size_mb']:>9.1f}{row['latency_s']:>11.3f}{row['photo_12mp_s']:>9.2f}"
              f"{row['psnr']:>9.2f}{row['psnr'] - reference_psnr:>+12.3f}{row['levels_from_float32']:>21.2f}")
