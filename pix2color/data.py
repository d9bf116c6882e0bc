"""Input pipelines: which images to use (sample set, folder), and `tf.data` datasets of Lab pairs.

Two steps, so that bad files never reach training:

1. `load_image_set` lists the images, decodes each once (in parallel, in `tf.data`) to find
   the unreadable, too-small and grayscale ones, and splits the rest into train / validation
   deterministically (by photo id for the sample set, by a hash of the relative path for a
   folder). Skipped files are reported by name and reason.
2. `make_train_dataset` / `make_eval_dataset` turn a list of good files into batches of
   ``(lightness, ab)`` in network units (see `pix2color.color`).

The training stream is a pure function of (files, seed, position): pass p over the data is a
permutation seeded by (seed, p), and image i's flip is seeded by (seed, i). A resumed run asks
for the stream from its global step and sees exactly the batches it had not seen yet.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from pix2color import color

AUTOTUNE = tf.data.AUTOTUNE
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
GRAYSCALE_CHROMA = 2.0  # mean Lab chroma below this = a grayscale photo (colour photos: > 3.9)
MIN_IMAGE_SIDE = 16  # smaller images carry no usable colour information
DEFAULT_VAL_FRACTION = 0.1
SCAN_SIZE = 64  # images are shrunk to this for the grayscale test


class DataError(ValueError):
    """The requested data cannot be used; the message says why, in one line."""


def sample_photos_dir() -> Path:
    """The built-in sample set: 201 colour photos shipped inside the package."""
    return Path(__file__).resolve().parent / "sample_photos"


# --------------------------------------------------------------------------- decoding


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG/PNG/BMP/GIF (first frame)/WebP bytes -> uint8 RGB (H, W, 3).

    Grayscale is replicated to 3 channels, alpha is dropped, 16-bit PNGs are scaled to 8 bits,
    CMYK JPEGs are converted to RGB by the decoder.
    """
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize_rgb(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 RGB (H, W, 3) -> float RGB (S, S, 3) in [0, 1], squashed like the reference code."""
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.image.resize(image, [image_size, image_size], method="bicubic", antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)


def load_rgb(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """Image file -> float RGB (S, S, 3) in [0, 1]."""
    return resize_rgb(decode_image(tf.io.read_file(path)), image_size)


# --------------------------------------------------------------------------- which images


@dataclass
class ImageSet:
    """The images of one data source, split and vetted."""

    source: str
    train: list[str]
    val: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason it cannot be used
    grayscale: list[str] = field(default_factory=list)  # readable but without colour

    def summary(self) -> str:
        """Human-readable report: counts, then every skipped file with its reason."""
        lines = [
            f"{self.source}: {len(self.train)} training and {len(self.val)} validation images; "
            f"{len(self.grayscale)} grayscale left out; {len(self.skipped)} unusable files skipped"
        ]
        for path, reason in sorted(self.skipped.items()):
            lines.append(f"  skipped {path}: {reason}")
        return "\n".join(lines)


@dataclass
class ScanReport:
    """What decoding every file once found."""

    good: list[str]
    skipped: dict[str, str]
    grayscale: list[str]


def list_image_files(folder: str | os.PathLike) -> list[str]:
    """All files under `folder` (recursive) whose extension is an image format, sorted."""
    root = Path(folder)
    return sorted(
        str(path)
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
    )


def _probe(index: tf.Tensor, path: tf.Tensor):
    image = decode_image(tf.io.read_file(path))
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    chroma = color.mean_chroma(resize_rgb(image, SCAN_SIZE))
    return index, height, width, chroma


def _decode_error(path: str) -> str:
    """The decoder's own one-line reason why `path` cannot be read."""
    try:
        decode_image(tf.io.read_file(path))
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error))
        return message.strip().splitlines()[0] if message.strip() else type(error).__name__
    return "could not be decoded in the pipeline"


def scan_images(
    paths: list[str],
    min_side: int = MIN_IMAGE_SIDE,
    grayscale_chroma: float = GRAYSCALE_CHROMA,
    verbose: int = 1,
) -> ScanReport:
    """Decode each file once, in parallel, and sort it into good / skipped / grayscale."""
    dataset = (
        tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), paths))
        .map(_probe, num_parallel_calls=AUTOTUNE, deterministic=False)
        .ignore_errors()
    )
    progress = keras.utils.Progbar(len(paths), verbose=verbose, unit_name="image") if verbose and paths else None
    found: dict[int, tuple[int, int, float]] = {}
    for index, height, width, chroma in dataset.as_numpy_iterator():
        found[int(index)] = (int(height), int(width), float(chroma))
        if progress is not None:
            progress.add(1)
    good, grayscale, skipped = [], [], {}
    for index, path in enumerate(paths):
        if index not in found:
            skipped[path] = _decode_error(path)
            continue
        height, width, chroma = found[index]
        if min(height, width) < min_side:
            skipped[path] = f"too small ({width}x{height} px; need at least {min_side} px a side)"
        elif chroma < grayscale_chroma:
            grayscale.append(path)
        else:
            good.append(path)
    if progress is not None and len(found) < len(paths):
        progress.update(len(paths), finalize=True)
    return ScanReport(good, skipped, grayscale)


def _in_validation(key: str, val_fraction: float) -> bool:
    """Deterministic split: the same key lands on the same side on every machine and run."""
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 0x100000000 < val_fraction


def _split(scan: ScanReport, keys: dict[str, str], val_fraction: float, source: str) -> ImageSet:
    train = [path for path in scan.good if not _in_validation(keys[path], val_fraction)]
    val = [path for path in scan.good if _in_validation(keys[path], val_fraction)]
    return ImageSet(source, train, val, scan.skipped, scan.grayscale)


def sample_image_set(val_fraction: float = DEFAULT_VAL_FRACTION, verbose: int = 1) -> ImageSet:
    """The built-in sample photos, split by `photo_id` so crops of one photo stay together."""
    folder = sample_photos_dir()
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        photo_ids = {str(folder / row["file"]): row["photo_id"] for row in csv.DictReader(handle)}
    scan = scan_images(sorted(photo_ids), verbose=verbose)
    return _split(scan, photo_ids, val_fraction, "built-in sample photos")


def folder_image_set(
    folder: str | os.PathLike, val_fraction: float = DEFAULT_VAL_FRACTION, verbose: int = 1
) -> ImageSet:
    """Every image under `folder`, split by a hash of its path relative to the folder."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"--data {folder}: no such folder")
    if not root.is_dir():
        raise DataError(f"--data {folder}: not a folder (give a folder of images, 'sample' or 'coco')")
    paths = list_image_files(root)
    if not paths:
        raise DataError(
            f"--data {folder}: no image files found (looked recursively for {', '.join(IMAGE_EXTENSIONS)})"
        )
    keys = {path: Path(path).relative_to(root).as_posix() for path in paths}
    return _split(scan_images(paths, verbose=verbose), keys, val_fraction, str(folder))


def load_image_set(
    data: str, val_fraction: float = DEFAULT_VAL_FRACTION, verbose: int = 1
) -> ImageSet:
    """`--data` value ('sample', 'coco' or a folder) -> vetted, split `ImageSet`."""
    if data == "sample":
        image_set = sample_image_set(val_fraction, verbose)
    elif data == "coco":
        raise DataError(
            "--data coco is not available yet (COCO 2017 input is tracked in issue #3); "
            "train on --data sample or --data PATH_TO_A_FOLDER_OF_IMAGES instead"
        )
    else:
        image_set = folder_image_set(data, val_fraction, verbose)
    if not image_set.train:
        raise DataError(
            f"--data {data}: no usable colour training images ({len(image_set.skipped)} unusable, "
            f"{len(image_set.grayscale)} grayscale, {len(image_set.val)} in the validation split)"
        )
    return image_set


# --------------------------------------------------------------------------- tf.data pipelines


def to_model_pair(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """float RGB (S, S, 3) -> (lightness (S, S, 1), ab (S, S, 2)) in network units."""
    return color.rgb_to_model_inputs(rgb)


def make_train_dataset(
    paths: list[str], image_size: int, batch_size: int, seed: int = 42, start_step: int = 0
) -> tf.data.Dataset:
    """Endless, deterministic stream of training batches, starting at global step `start_step`.

    Each pass over the files is a permutation seeded by (seed, pass); each image is flipped
    left-right with probability 1/2, seeded by (seed, its position in the stream).
    """
    if not paths:
        raise DataError("no training images")
    files = tf.constant(sorted(paths))
    count = len(paths)
    start_index = start_step * batch_size
    first_pass, offset = divmod(start_index, count)

    def one_pass(pass_index):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count), seed=tf.stack([tf.cast(seed, tf.int64), pass_index])
        )
        return tf.data.Dataset.from_tensor_slices(tf.gather(files, order))

    def load(position, path):
        rgb = load_rgb(path, image_size)
        flip = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), position]))
        rgb = tf.cond(flip < 0.5, lambda: tf.image.flip_left_right(rgb), lambda: rgb)
        return to_model_pair(rgb)

    return (
        tf.data.Dataset.counter(start=first_pass)
        .flat_map(one_pass)
        .skip(offset)
        .enumerate(start=start_index)
        .map(load, num_parallel_calls=AUTOTUNE)
        .ignore_errors(log_warning=True)  # a file that broke after the scan must not end a run
        .batch(batch_size, drop_remainder=True)
        .prefetch(AUTOTUNE)
    )


def make_eval_dataset(paths: list[str], image_size: int, batch_size: int) -> tf.data.Dataset:
    """Validation / test batches: every file once, in sorted order, no augmentation."""
    return (
        tf.data.Dataset.from_tensor_slices(sorted(paths))
        .map(lambda path: to_model_pair(load_rgb(path, image_size)), num_parallel_calls=AUTOTUNE)
        .batch(batch_size)
        .prefetch(AUTOTUNE)
    )
