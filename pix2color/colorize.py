"""Colorize photos at their full resolution with a trained generator.

    pix2color colorize photo.jpg old_photos/ "scans/*.png" -o colorized/ --model runs/pix2color
    python -m pix2color.colorize ...   (the same)

The network sees the photo's lightness resized to its training size S; the predicted ab is
upsampled to the photo's size and recombined with the photo's own full-resolution L, so edges
stay as sharp as the original (the recipe lives in `pix2color.lite`, shared with the TFLite path).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2color.lite import DEFAULT_MAX_PIXELS, FullResolutionColorizer, ImageError, read_image

MODES = ("deterministic", "paper")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")  # Pillow reads TIFF too
OUTPUT_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}


def load_generator(model: str | os.PathLike):
    """A trained generator from a run folder, a `.keras` file, or a run's last checkpoint.

    Returns a Keras model mapping normalised lightness (N, S, S, 1) to ab (N, S, S, 2).
    """
    import keras

    from pix2color import models

    path = Path(model)
    if path.is_dir() and (path / "saved_model.pb").exists():
        raise ValueError(f"{path} is a SavedModel: use load_network() for it")
    if path.is_dir() and (path / "generator.keras").exists():
        path = path / "generator.keras"
    elif path.is_dir() and (path / "run.json").exists():
        return _generator_from_checkpoint(path)
    if path.suffix == ".keras" and path.is_file():
        return keras.models.load_model(path, custom_objects={"ChannelDropout": models.ChannelDropout})
    raise ValueError(f"{model}: not a run folder, a .keras generator or a SavedModel")


def _generator_from_checkpoint(run: Path):
    """An interrupted run has no generator.keras yet: rebuild G and load the last checkpoint."""
    import tensorflow as tf

    from pix2color import models

    settings = json.loads((run / "run.json").read_text())
    generator = models.build_generator(settings["image_size"], dropout=not settings.get("l1_only", False))
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


# --------------------------------------------------------------------------- the command


def expand_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Files, folders (recursive) and globs -> [(file, path relative to its input)], unmatched."""
    from pix2color.data import list_image_files

    found, missing = [], []
    for item in inputs:
        matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) else [item]
        matches = [match for match in matches if os.path.exists(match)]
        if not matches:
            missing.append(item)
        for match in matches:
            path = Path(match)
            if path.is_dir():
                files = [Path(p) for p in list_image_files(path, IMAGE_SUFFIXES)]
                found += [(p, p.relative_to(path)) for p in files]
            else:
                found.append((path, Path(path.name)))
    return found, missing


def output_path(out: Path, relative: Path, image_format: str) -> Path:
    suffix = relative.suffix.lower().lstrip(".")
    if image_format == "same":
        image_format = {"jpeg": "jpg"}.get(suffix, suffix) if suffix in ("jpg", "jpeg", "png", "webp") else "png"
    return out / relative.with_suffix(f".{image_format}")


def save_image(rgb: np.ndarray, path: Path, quality: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image_format = OUTPUT_FORMATS[path.suffix.lstrip(".")]
    options = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    Image.fromarray(rgb).save(path, image_format, **options)


def side_by_side(*images: np.ndarray) -> np.ndarray:
    return np.concatenate(images, axis=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pix2color colorize",
        description="Colorize photos at their original resolution.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or globs")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--model", default="runs/pix2color", help="run folder, .keras generator or SavedModel")
    parser.add_argument("--mode", choices=MODES, default="deterministic",
                        help="deterministic: reproducible colours; paper: dropout and batch statistics as the report")
    parser.add_argument("--batch-size", type=int, default=8, help="images per network call")
    parser.add_argument("--format", dest="image_format", choices=("same", *OUTPUT_FORMATS), default="same",
                        help="output format; 'same' keeps jpg/png/webp and writes png otherwise")
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality")
    parser.add_argument("--compare", action="store_true",
                        help="also write NAME_compare.jpg: grayscale | colorized | input")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse images larger than this many pixels")
    parser.add_argument("--verbose", type=int, choices=(0, 1), default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 all colorized, 1 some files failed, 2 nothing to do or a bad model."""
    args = build_parser().parse_args(argv)
    from pix2color.cli import import_quietly

    import_quietly()
    import keras

    files, missing = expand_inputs(args.inputs)
    for item in missing:
        print(f"error: {item}: no such file or no match", file=sys.stderr)
    if not files:
        print("pix2color colorize: error: no input images", file=sys.stderr)
        return 2
    try:
        network = load_network(args.model, args.mode)
    except (ValueError, OSError) as error:
        print(f"pix2color colorize: error: {error}", file=sys.stderr)
        return 2
    recipe = FullResolutionColorizer(network.predict_ab, network.image_size)
    out = Path(args.out)
    failed = len(missing)
    progress = keras.utils.Progbar(len(files), verbose=args.verbose, unit_name="image")
    for start in range(0, len(files), args.batch_size):
        batch, images = [], []
        for path, relative in files[start : start + args.batch_size]:
            try:
                images.append(read_image(path, args.max_pixels))
                batch.append((path, relative))
            except ImageError as error:
                print(f"\nerror: {error}", file=sys.stderr)
                failed += 1
        if images:
            for (path, relative), image, result in zip(batch, images, recipe.colorize_batch(images)):
                target = output_path(out, relative, args.image_format)
                save_image(result, target, args.quality)
                if args.compare:
                    gray = recipe.finish(recipe.prepare(image)[0], np.zeros((1, 1, 2), np.float32))  # a = b = 0
                    save_image(side_by_side(gray, result, image), target.with_name(f"{target.stem}_compare.jpg"), args.quality)
        progress.add(len(files[start : start + args.batch_size]))
    done = len(files) + len(missing) - failed
    print(f"{done} colorized into {out}, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
