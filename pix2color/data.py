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
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import keras
import numpy as np
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


def encoded_to_rgb(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded image bytes (a file's content, a tfds record) -> float RGB (S, S, 3) in [0, 1]."""
    return resize_rgb(decode_image(encoded), image_size)


# --------------------------------------------------------------------------- which images


@dataclass
class TfdsSplit:
    """One split of a tensorflow-datasets image dataset, with the examples fit for use.

    Examples are addressed by their position in the split's stored order; `kept[i]` says
    whether example i is used (decodable, large enough, not grayscale).
    """

    name: str  # e.g. "coco/2017"
    split: str  # e.g. "train"
    data_dir: str | None
    kept: np.ndarray  # bool, one per example

    def __len__(self) -> int:
        return int(self.kept.sum())

    def encoded_images(self) -> tf.data.Dataset:
        """Every example's encoded image bytes, in stored order (not decoded: cheap to skip)."""
        return _tfds_encoded(self.name, self.split, self.data_dir)

    def kept_encoded_images(self) -> tf.data.Dataset:
        """The encoded bytes of the kept examples only, in stored order."""
        kept = tf.constant(self.kept)
        return self.encoded_images().enumerate().filter(lambda index, _: kept[index]).map(lambda _, encoded: encoded)


Images = Union[list, TfdsSplit]  # file paths, or a tfds split


@dataclass
class ImageSet:
    """The images of one data source, split and vetted."""

    source: str
    train: Images
    val: Images
    skipped: dict[str, str] = field(default_factory=dict)  # name -> reason it cannot be used
    grayscale: list[str] = field(default_factory=list)  # readable but without colour
    test: Images = field(default_factory=list)

    def summary(self) -> str:
        """Human-readable report: counts, then every skipped file with its reason."""
        test = f", {len(self.test)} test" if len(self.test) else ""
        lines = [
            f"{self.source}: {len(self.train)} training and {len(self.val)} validation images{test}; "
            f"{len(self.grayscale)} grayscale left out; {len(self.skipped)} unusable files skipped"
        ]
        for path, reason in sorted(self.skipped.items()):
            lines.append(f"  skipped {path}: {reason}")
        return "\n".join(lines)


@dataclass
class ScanReport:
    """What decoding every image once found."""

    good: list[str]
    skipped: dict[str, str]
    grayscale: list[str]


def list_image_files(folder: str | os.PathLike, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[str]:
    """All files under `folder` (recursive) whose extension is an image format, sorted."""
    root = Path(folder)
    return sorted(
        str(path)
        for path in root.rglob("*")
        if path.suffix.lower() in extensions and path.is_file()
    )


def _probe(index: tf.Tensor, encoded: tf.Tensor):
    image = decode_image(encoded)
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


def _probe_all(indexed_encoded: tf.data.Dataset, total: int, verbose: int) -> dict[int, tuple[int, int, float]]:
    """Decode (index, encoded bytes) pairs in parallel: index -> (height, width, chroma)."""
    dataset = indexed_encoded.map(_probe, num_parallel_calls=AUTOTUNE, deterministic=False).ignore_errors()
    progress = keras.utils.Progbar(total, verbose=verbose, unit_name="image") if verbose and total else None
    found: dict[int, tuple[int, int, float]] = {}
    for index, height, width, chroma in dataset.as_numpy_iterator():
        found[int(index)] = (int(height), int(width), float(chroma))
        if progress is not None:
            progress.add(1)
    if progress is not None and len(found) < total:
        progress.update(total, finalize=True)
    return found


def _verdict(probe: tuple[int, int, float] | None, min_side: int, grayscale_chroma: float) -> str:
    """'good', 'grayscale', or why the image is unusable."""
    if probe is None:
        return "undecodable"
    height, width, chroma = probe
    if min(height, width) < min_side:
        return f"too small ({width}x{height} px; need at least {min_side} px a side)"
    return "grayscale" if chroma < grayscale_chroma else "good"


def write_json_atomically(path: str | os.PathLike, value, indent: int | None = None) -> None:
    """Write `value` as JSON so that a reader (another worker, or the next run after this one was
    killed mid-write) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=indent) + "\n")
    os.replace(partial, path)


def _cache_key(path: str) -> list:
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def scan_images(
    paths: list[str],
    min_side: int = MIN_IMAGE_SIDE,
    grayscale_chroma: float = GRAYSCALE_CHROMA,
    verbose: int = 1,
    cache_file: str | os.PathLike | None = None,
) -> ScanReport:
    """Decode each file once, in parallel, and sort it into good / skipped / grayscale.

    With `cache_file`, results are kept (keyed by path, size and modification time) so a
    resumed run or a second run on the same folder does not decode everything again.
    """
    cache: dict[str, list] = {}
    if cache_file and Path(cache_file).exists():
        cache = json.loads(Path(cache_file).read_text())
    verdicts: dict[str, str] = {}
    todo = []
    for path in paths:
        entry = cache.get(path)
        if entry and entry[:2] == _cache_key(path):
            verdicts[path] = entry[2]
        else:
            todo.append(path)
    if todo:
        indexed = tf.data.Dataset.from_tensor_slices((tf.range(len(todo), dtype=tf.int64), todo))
        found = _probe_all(indexed.map(lambda i, p: (i, tf.io.read_file(p))), len(todo), verbose)
        for index, path in enumerate(todo):
            verdict = _verdict(found.get(index), min_side, grayscale_chroma)
            verdicts[path] = _decode_error(path) if verdict == "undecodable" else verdict
            cache[path] = [*_cache_key(path), verdicts[path]]
        if cache_file:
            write_json_atomically(cache_file, cache)
    good = [p for p in paths if verdicts[p] == "good"]
    grayscale = [p for p in paths if verdicts[p] == "grayscale"]
    skipped = {p: v for p, v in verdicts.items() if v not in ("good", "grayscale")}
    return ScanReport(good, skipped, grayscale)


def _in_validation(key: str, val_fraction: float) -> bool:
    """Deterministic split: the same key lands on the same side on every machine and run."""
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 0x100000000 < val_fraction


def _split(scan: ScanReport, keys: dict[str, str], val_fraction: float, source: str) -> ImageSet:
    train = [path for path in scan.good if not _in_validation(keys[path], val_fraction)]
    val = [path for path in scan.good if _in_validation(keys[path], val_fraction)]
    return ImageSet(source, train, val, scan.skipped, scan.grayscale)


def _cache_file(cache_dir, name: str) -> Path | None:
    return Path(cache_dir) / f"scan_{hashlib.sha1(name.encode()).hexdigest()[:12]}.json" if cache_dir else None


def sample_image_set(val_fraction: float = DEFAULT_VAL_FRACTION, verbose: int = 1, cache_dir=None) -> ImageSet:
    """The built-in sample photos, split by `photo_id` so crops of one photo stay together."""
    folder = sample_photos_dir()
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        photo_ids = {str(folder / row["file"]): row["photo_id"] for row in csv.DictReader(handle)}
    scan = scan_images(sorted(photo_ids), verbose=verbose, cache_file=_cache_file(cache_dir, str(folder)))
    return _split(scan, photo_ids, val_fraction, "built-in sample photos")


def folder_image_set(
    folder: str | os.PathLike, val_fraction: float = DEFAULT_VAL_FRACTION, verbose: int = 1, cache_dir=None
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
    scan = scan_images(paths, verbose=verbose, cache_file=_cache_file(cache_dir, str(root.resolve())))
    return _split(scan, keys, val_fraction, str(folder))


# --------------------------------------------------------------------------- COCO 2017

COCO_HELP = """COCO 2017 is not available here. Get it in one of two ways:
  1. A local folder (the report's 241k training images = train2017 + unlabeled2017):
       mkdir -p coco && cd coco
       wget http://images.cocodataset.org/zips/train2017.zip      # 18 GB, 118k images
       wget http://images.cocodataset.org/zips/unlabeled2017.zip  # 19 GB, 123k images
       wget http://images.cocodataset.org/zips/val2017.zip        #  1 GB,   5k images
       wget http://images.cocodataset.org/zips/test2017.zip       #  6 GB,  41k images
       for f in *.zip; do unzip -q "$f"; done
     giving coco/train2017/, coco/unlabeled2017/, coco/val2017/, coco/test2017/ (JPEG files);
     then train with: --data coco --coco-dir coco
  2. tensorflow-datasets' coco/2017 (train, validation, test; no unlabeled split):
       --data coco --tfds-data-dir DIR --download   (downloads and prepares about 40 GB once)
     or prepare it beforehand with `tfds build coco/2017 --data_dir DIR`.
Or train on the built-in sample photos (--data sample) or your own folder (--data PATH)."""


def coco_folder_image_set(coco_dir: str | os.PathLike, verbose: int = 1, cache_dir=None) -> ImageSet:
    """COCO 2017 from its official folders: train2017 + unlabeled2017 / val2017 / test2017."""
    root = Path(coco_dir)
    if not (root / "train2017").is_dir() or not (root / "val2017").is_dir():
        raise DataError(f"--coco-dir {coco_dir}: expected train2017/ and val2017/ inside it.\n{COCO_HELP}")
    splits = {}
    skipped, grayscale = {}, []
    for name, folders in (("train", ("train2017", "unlabeled2017")), ("val", ("val2017",)), ("test", ("test2017",))):
        paths = [p for folder in folders if (root / folder).is_dir() for p in list_image_files(root / folder)]
        scan = scan_images(paths, verbose=verbose, cache_file=_cache_file(cache_dir, f"{root.resolve()}:{name}"))
        splits[name] = scan.good
        skipped.update(scan.skipped)
        grayscale += scan.grayscale
    return ImageSet(f"COCO 2017 ({coco_dir})", splits["train"], splits["val"], skipped, grayscale, splits["test"])


def default_coco_dir() -> str | None:
    """A COCO folder found without flags: $COCO_DIR, else ./coco, if it has the official layout."""
    for candidate in (os.environ.get("COCO_DIR"), "coco"):
        if candidate and (Path(candidate) / "train2017").is_dir():
            return candidate
    return None


def _tfds_encoded(name: str, split: str, data_dir: str | None) -> tf.data.Dataset:
    import tensorflow_datasets as tfds

    decoders = tfds.decode.PartialDecoding({"image": True}, decoders={"image": tfds.decode.SkipDecoding()})
    builder = tfds.builder(name, data_dir=data_dir)
    dataset = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    return dataset.map(lambda example: example["image"], num_parallel_calls=AUTOTUNE)


def tfds_image_set(
    name: str = "coco/2017",
    data_dir: str | None = None,
    download: bool = False,
    verbose: int = 1,
    cache_dir=None,
) -> ImageSet:
    """A tensorflow-datasets image dataset (train / validation / test), vetted like a folder."""
    import tensorflow_datasets as tfds

    if download:
        tfds.builder(name, data_dir=data_dir).download_and_prepare()
    splits: dict[str, TfdsSplit] = {}
    grayscale: list[str] = []
    skipped: dict[str, str] = {}
    for ours, theirs in (("train", "train"), ("val", "validation"), ("test", "test")):
        try:
            encoded = _tfds_encoded(name, theirs, data_dir)
        except Exception as error:  # noqa: BLE001 - tfds raises several kinds for "not prepared"
            if ours == "test" and splits:
                continue
            raise DataError(f"{name} from tensorflow-datasets: {str(error).splitlines()[0]}\n{COCO_HELP}") from None
        cache_file = _cache_file(cache_dir, f"tfds:{name}:{theirs}:{data_dir}")
        if cache_file and cache_file.exists():
            verdicts = json.loads(cache_file.read_text())
        else:
            total = int(encoded.reduce(np.int64(0), lambda count, _: count + 1))
            found = _probe_all(encoded.enumerate(), total, verbose)
            verdicts = [_verdict(found.get(i), MIN_IMAGE_SIDE, GRAYSCALE_CHROMA) for i in range(total)]
            if cache_file:
                write_json_atomically(cache_file, verdicts)
        kept = np.array([verdict == "good" for verdict in verdicts], bool)
        for index, verdict in enumerate(verdicts):
            if verdict == "grayscale":
                grayscale.append(f"{name}:{theirs}[{index}]")
            elif verdict != "good":
                skipped[f"{name}:{theirs}[{index}]"] = verdict
        splits[ours] = TfdsSplit(name, theirs, data_dir, kept)
    return ImageSet(f"{name} (tensorflow-datasets)", splits["train"], splits["val"], skipped, grayscale,
                    splits.get("test", []))


def load_image_set(
    data: str,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    verbose: int = 1,
    cache_dir=None,
    coco_dir: str | None = None,
    tfds_data_dir: str | None = None,
    download: bool = False,
) -> ImageSet:
    """`--data` value ('sample', 'coco' or a folder) -> vetted, split `ImageSet`."""
    if data == "sample":
        image_set = sample_image_set(val_fraction, verbose, cache_dir)
    elif data == "coco":
        coco_dir = coco_dir or default_coco_dir()
        if coco_dir:
            image_set = coco_folder_image_set(coco_dir, verbose, cache_dir)
        else:
            image_set = tfds_image_set("coco/2017", tfds_data_dir, download, verbose, cache_dir)
    else:
        image_set = folder_image_set(data, val_fraction, verbose, cache_dir)
    if not len(image_set.train):
        raise DataError(
            f"--data {data}: no usable colour training images ({len(image_set.skipped)} unusable, "
            f"{len(image_set.grayscale)} grayscale, {len(image_set.val)} in the validation split)"
        )
    return image_set


# --------------------------------------------------------------------------- tf.data pipelines


def to_model_pair(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """float RGB (S, S, 3) -> (lightness (S, S, 1), ab (S, S, 2)) in network units."""
    return color.rgb_to_model_inputs(rgb)


TFDS_SHUFFLE_BUFFER = 2048  # encoded COCO images are ~160 kB: ~330 MB of buffer


def _pass_elements(images: Images, seed: int):
    """(one_pass(pass_index) -> dataset of items, item -> encoded bytes, items per pass)."""
    if isinstance(images, TfdsSplit):

        def one_pass(pass_index):
            return images.kept_encoded_images().shuffle(
                TFDS_SHUFFLE_BUFFER, seed=tf.cast(seed, tf.int64) * 1_000_003 + pass_index
            )

        return one_pass, tf.identity, len(images)

    files = tf.constant(sorted(images))
    count = len(images)

    def one_pass(pass_index):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count), seed=tf.stack([tf.cast(seed, tf.int64), pass_index])
        )
        return tf.data.Dataset.from_tensor_slices(tf.gather(files, order))

    return one_pass, tf.io.read_file, count


def make_train_dataset(
    images: Images,
    image_size: int,
    batch_size: int,
    seed: int = 42,
    start_step: int = 0,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Endless, deterministic stream of training batches, starting at global step `start_step`.

    Each pass over the files is a permutation seeded by (seed, pass) (for a tfds split: a
    shuffle buffer seeded so); each image is flipped left-right with probability 1/2, seeded by
    (seed, its position in the stream). Skipping to `start_step` reads no pixels for files.

    `batch_size` is the global batch. With an `input_context` (from
    `strategy.distribute_datasets_from_function`), this worker's pipeline keeps only its share of
    every global batch, before decoding, in per-replica batches: the replicas together see
    exactly the global batches of one device.
    """
    if not len(images):
        raise DataError("no training images")
    one_pass, to_encoded, count = _pass_elements(images, seed)
    start_index = start_step * batch_size
    first_pass, offset = divmod(start_index, count)

    def load(position, item):
        rgb = encoded_to_rgb(to_encoded(item), image_size)
        flip = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), position]))
        rgb = tf.cond(flip < 0.5, lambda: tf.image.flip_left_right(rgb), lambda: rgb)
        return to_model_pair(rgb)

    stream = tf.data.Dataset.counter(start=first_pass).flat_map(one_pass).skip(offset).enumerate(start=start_index)
    options = tf.data.Options()
    if input_context is None:
        # Distributed by Keras (MirroredStrategy): each replica takes its share of every batch.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    else:
        share = batch_size // input_context.num_input_pipelines  # this worker's part of a global batch
        pipeline = input_context.input_pipeline_id
        stream = stream.filter(lambda position, _: (position % batch_size) // share == pipeline)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return (
        stream.map(load, num_parallel_calls=AUTOTUNE)
        .ignore_errors(log_warning=True)  # a file that broke after the scan must not end a run
        .batch(batch_size, drop_remainder=True)
        .prefetch(AUTOTUNE)
        .with_options(options)
    )


def preview_images(images: Images, count: int) -> Images:
    """`count` images spread over a split (different photos, not 4 crops of one), for figures."""
    if isinstance(images, TfdsSplit):
        return images
    images = sorted(images)
    return images[:: max(1, len(images) // count)][:count]


def make_eval_dataset(images: Images, image_size: int, batch_size: int) -> tf.data.Dataset:
    """Validation / test batches: every image once, in a fixed order, no augmentation."""
    if isinstance(images, TfdsSplit):
        encoded = images.kept_encoded_images()
    else:
        encoded = tf.data.Dataset.from_tensor_slices(sorted(images)).map(tf.io.read_file)
    return (
        encoded.map(lambda data: to_model_pair(encoded_to_rgb(data, image_size)), num_parallel_calls=AUTOTUNE)
        .batch(batch_size)
        .prefetch(AUTOTUNE)
    )
