"""Where the images come from: the built-in sample set, a folder, COCO 2017 (official folders
or tensorflow-datasets), each vetted (see `images`) and split into train / validation (/ test).

Splits are deterministic: by photo id for the sample set (crops of one photo stay together),
by a hash of the relative path for a folder, by COCO's own splits for COCO.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
import tensorflow as tf

from pix2color.config import DEFAULT_VAL_FRACTION
from pix2color.data.images import (
    AUTOTUNE,
    GRAYSCALE_CHROMA,
    IMAGE_EXTENSIONS,
    MIN_IMAGE_SIDE,
    ScanReport,
    list_image_files,
    probe_all,
    scan_images,
    verdict_of,
)
from pix2color.errors import DataError, first_line  # noqa: F401 - the module's errors, importable from here too
from pix2color.outputs import quoted, write_json_atomically
from pix2color.training.run_folder import is_run_or_poll_folder


def sample_photos_dir() -> Path:
    """The built-in sample set: 201 colour photos shipped inside the package."""
    return Path(__file__).resolve().parents[1] / "sample_photos"


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
    left_out: dict[str, str] = field(default_factory=dict)  # folder inside the data -> why it was not searched

    def summary(self) -> str:
        """Human-readable report: counts, then every skipped file with its reason."""
        test = f", {len(self.test)} test" if len(self.test) else ""
        lines = [
            f"{self.source}: {len(self.train)} training and {len(self.val)} validation images{test}; "
            f"{len(self.grayscale)} grayscale left out; {len(self.skipped)} unusable files skipped"
        ]
        for folder, reason in sorted(self.left_out.items()):
            lines.append(f"  left out {quoted(folder)}: {reason}" + ("" if "symlink" in reason else ", not photos"))
        for path, reason in sorted(self.skipped.items()):
            lines.append(f"  skipped {quoted(path)}: {reason}")
        return "\n".join(lines)


def _in_validation(key: str, val_fraction: float) -> bool:
    """Deterministic split: the same key lands on the same side on every machine and run."""
    digest = hashlib.sha1(os.fsencode(key)).hexdigest()  # a name that is not UTF-8 too
    return int(digest[:8], 16) / 0x100000000 < val_fraction


def _split(scan: ScanReport, keys: dict[str, str], val_fraction: float, source: str) -> ImageSet:
    """Split by each photo's key; a photo with a colour profile is read from its sRGB copy."""
    train = [scan.read_from.get(path, path) for path in scan.good if not _in_validation(keys[path], val_fraction)]
    val = [scan.read_from.get(path, path) for path in scan.good if _in_validation(keys[path], val_fraction)]
    return ImageSet(source, train, val, scan.skipped, scan.grayscale)


def _cache_file(cache_dir, name: str) -> Path | None:
    return Path(cache_dir) / f"scan_{hashlib.sha1(os.fsencode(name)).hexdigest()[:12]}.json" if cache_dir else None


def sample_image_set(val_fraction: float = DEFAULT_VAL_FRACTION, verbose: int = 1, cache_dir=None) -> ImageSet:
    """The built-in sample photos, split by `photo_id` so crops of one photo stay together."""
    folder = sample_photos_dir()
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        photo_ids = {str(folder / row["file"]): row["photo_id"] for row in csv.DictReader(handle)}
    scan = scan_images(sorted(photo_ids), verbose=verbose, cache_file=_cache_file(cache_dir, str(folder)))
    return _split(scan, photo_ids, val_fraction, "built-in sample photos")


def folder_image_set(
    folder: str | os.PathLike, val_fraction: float = DEFAULT_VAL_FRACTION, verbose: int = 1, cache_dir=None,
    exclude: tuple = (),
) -> ImageSet:
    """Every image under `folder`, split by a hash of its path relative to the folder.

    Left out: the folders in `exclude` (a run's own --out) and every pix2color run or poll
    folder inside `folder`: their sample grids and plots are pictures pix2color drew.
    """
    root = Path(folder)
    if not root.exists():
        raise DataError(f"--data {folder}: no such folder")
    if not root.is_dir():
        raise DataError(f"--data {folder}: not a folder (give a folder of images, 'sample' or 'coco')")
    excluded = {Path(path).resolve() for path in exclude}
    left_out = {}

    def skip_folder(path: str) -> bool:
        reason = "this run's own folder" if Path(path).resolve() in excluded else is_run_or_poll_folder(path)
        if reason is None and os.path.islink(path) and os.path.isdir(path):
            reason = "a symlink to a folder, not searched"  # as `colorize` leaves them
        if reason:
            left_out[path] = reason
        return reason is not None

    if root.resolve() in excluded or is_run_or_poll_folder(root):
        raise DataError(f"--data {folder}: this is a pix2color run or poll folder, not a folder of photos")
    paths = list_image_files(root, skip_folder=skip_folder)
    if not paths:
        raise DataError(
            f"--data {folder}: no image files found (looked recursively for {', '.join(IMAGE_EXTENSIONS)})"
        )
    keys = {path: Path(path).relative_to(root).as_posix() for path in paths}
    scan = scan_images(paths, verbose=verbose, cache_file=_cache_file(cache_dir, str(root.resolve())))
    image_set = _split(scan, keys, val_fraction, str(folder))
    image_set.left_out = left_out
    return image_set


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
            raise DataError(f"{name} from tensorflow-datasets: {first_line(error, 500)}\n{COCO_HELP}") from None
        cache_file = _cache_file(cache_dir, f"tfds:{name}:{theirs}:{data_dir}")
        if cache_file and cache_file.exists():
            verdicts = json.loads(cache_file.read_text())
        else:
            total = int(encoded.reduce(np.int64(0), lambda count, _: count + 1))
            found = probe_all(encoded.enumerate(), total, verbose)
            verdicts = [verdict_of(found.get(i), MIN_IMAGE_SIDE, GRAYSCALE_CHROMA) for i in range(total)]
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
    exclude: tuple = (),
) -> ImageSet:
    """`--data` value ('sample', 'coco' or a folder) -> vetted, split `ImageSet`.

    `exclude`: folders inside a --data folder to leave out (a run's own --out). Raises
    `DataError` unless at least one usable colour image is found; if the split would leave
    none for training, all of them train and there is no validation split.
    """
    if data == "sample":
        image_set = sample_image_set(val_fraction, verbose, cache_dir)
    elif data == "coco":
        coco_dir = coco_dir or default_coco_dir()
        if coco_dir:
            image_set = coco_folder_image_set(coco_dir, verbose, cache_dir)
        else:
            image_set = tfds_image_set("coco/2017", tfds_data_dir, download, verbose, cache_dir)
    else:
        image_set = folder_image_set(data, val_fraction, verbose, cache_dir, exclude)
    if not len(image_set.train) and isinstance(image_set.val, list) and image_set.val:
        image_set.train, image_set.val = image_set.val, []  # too few photos to hold any out
    if not len(image_set.train):
        raise DataError(
            f"--data {data}: no usable colour images ({len(image_set.skipped)} unusable, "
            f"{len(image_set.grayscale)} grayscale)"
        )
    return image_set
