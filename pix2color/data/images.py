"""Decoding images and vetting them: which files can train a colorizer, and why not.

Every image is decoded once, in parallel in `tf.data`, before training: files that cannot be
decoded, images too small to carry colour, and grayscale photos are set aside by name with the
reason, so bad files never reach training. Verdicts are cached by path, size and modification
time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from pix2color import color
from pix2color.outputs import write_json_atomically
from pix2color.photos import image_container

AUTOTUNE = tf.data.AUTOTUNE
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
GRAYSCALE_CHROMA = 2.0  # mean Lab chroma below this = a grayscale photo (colour photos: > 3.9)
MIN_IMAGE_SIDE = 16  # smaller images carry no usable colour information
SCAN_SIZE = 64  # images are shrunk to this for the grayscale test


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG/PNG/BMP/GIF (first frame)/WebP bytes -> uint8 RGB (H, W, 3).

    Grayscale is replicated to 3 channels, alpha is dropped, 16-bit PNGs are scaled to 8 bits,
    CMYK JPEGs are converted to RGB by the decoder.
    """
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize_rgb(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 RGB (H, W, 3) -> float RGB (S, S, 3) in [0, 1], squashed like the reference code.

    Bilinear with antialiasing: the reference's torchvision `Resize` on a PIL image is PIL's
    bilinear filter, which these values follow to within one 8-bit level.
    """
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)


def encoded_to_rgb(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded image bytes (a file's content, a tfds record) -> float RGB (S, S, 3) in [0, 1]."""
    return resize_rgb(decode_image(encoded), image_size)


def path_strings(paths: list[str]) -> tf.Tensor:
    """File paths as a tf.string tensor of the bytes the file system knows them by: a name that is
    not UTF-8 (Latin-1 from an old zip, say), which Python holds with surrogates, stays readable."""
    return tf.constant([os.fsencode(path) for path in paths], tf.string, shape=[len(paths)])


def list_image_files(folder: str | os.PathLike, extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                     skip_folder=None) -> list[str]:
    """All files under `folder` (recursive) whose extension is an image format, sorted.

    `skip_folder(path) -> reason or None`: subfolders it gives a reason for are not searched.
    """
    found = []
    for directory, subfolders, files in os.walk(folder):
        if skip_folder is not None:
            subfolders[:] = [name for name in subfolders if not skip_folder(os.path.join(directory, name))]
        found += [os.path.join(directory, name) for name in files
                  if os.path.splitext(name)[1].lower() in extensions and os.path.isfile(os.path.join(directory, name))]
    return sorted(str(Path(path)) for path in found)


@dataclass
class ScanReport:
    """What decoding every image once found. `read_from`: photos with an ICC profile other than
    sRGB -> the sRGB copy training reads instead (`srgb_copy`)."""

    good: list[str]
    skipped: dict[str, str]
    grayscale: list[str]
    read_from: dict[str, str] = field(default_factory=dict)


def srgb_copy(path: str, folder: Path) -> str | None:
    """For a photo with an embedded ICC profile other than sRGB (a CMYK JPEG, Adobe RGB, a
    gray-profiled scan), the path of a PNG copy of its pixels converted to sRGB, as `colorize`
    reads it (`pix2color.photos.read_photo`), made once in `folder`; None for any other file.
    TensorFlow's decoders ignore profiles: without the copy, the network would learn from colours
    no managed screen shows."""
    from PIL import Image

    from pix2color.photos import ImageError, is_srgb_profile, read_image

    try:
        with Image.open(path) as image:
            profile = image.info.get("icc_profile")
        if not profile or is_srgb_profile(profile):  # as `read_photo` decides: the same pixels either way
            return None
    except Exception:  # noqa: BLE001 - an unreadable file or profile: the scan judges the file as it is
        return None
    copy = folder / f"{hashlib.sha1(os.fsencode(path) + repr(_cache_key(path)).encode()).hexdigest()[:20]}.png"
    if not copy.exists():
        try:
            rgb = read_image(path)
        except ImageError:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        partial = copy.with_name(f".{copy.name}.partial")
        Image.fromarray(rgb).save(partial, "PNG")
        os.replace(partial, copy)
    return str(copy)


def _probe(index: tf.Tensor, encoded: tf.Tensor):
    image = decode_image(encoded)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    chroma = color.mean_chroma(resize_rgb(image, SCAN_SIZE))
    return index, height, width, chroma


def unreadable_reason(path: str) -> str:
    """Why the decoder rejected `path`, in plain words: what the file's content is, not which op failed."""
    try:
        size = os.path.getsize(path)
    except OSError as error:
        return f"cannot be read ({error.strerror.lower()})"
    if size == 0:
        return "empty file (0 bytes)"
    container = image_container(path)
    if container is None:
        return "not an image (the content is not JPEG, PNG, GIF, BMP or WebP)"
    if container == "TIFF":
        return "a TIFF image (convert it to PNG or JPEG to train on it)"
    return f"corrupt or truncated {container}"


def probe_all(indexed_encoded: tf.data.Dataset, total: int, verbose: int) -> dict[int, tuple[int, int, float]]:
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


def verdict_of(probe: tuple[int, int, float] | None, min_side: int, grayscale_chroma: float) -> str:
    """'good', 'grayscale', or why the image is unusable."""
    if probe is None:
        return "undecodable"
    height, width, chroma = probe
    if min(height, width) < min_side:
        return f"too small ({width}x{height} px; need at least {min_side} px a side)"
    return "grayscale" if chroma < grayscale_chroma else "good"


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
    """Decode each file once, in parallel, and sort it into good / skipped / grayscale; photos
    with an ICC profile other than sRGB are read from an sRGB copy (`srgb_copy`) made beside
    `cache_file` (or in a temporary folder).

    With `cache_file`, results are kept (keyed by path, size and modification time) so a
    resumed run or a second run on the same folder does not decode everything again.
    """
    cache: dict[str, list] = {}
    if cache_file and Path(cache_file).exists():
        cache = json.loads(Path(cache_file).read_text())
    copies = Path(cache_file).parent / "srgb" if cache_file else Path(tempfile.gettempdir()) / "pix2color-srgb"
    verdicts: dict[str, str] = {}
    read_from: dict[str, str] = {}
    todo = []
    for path in paths:
        entry = cache.get(path)
        if entry and entry[:2] == _cache_key(path) and (len(entry) < 4 or os.path.exists(entry[3])):
            verdicts[path] = entry[2]
            if len(entry) > 3:
                read_from[path] = entry[3]
        else:
            todo.append(path)
    if todo:
        for path in todo:
            copy = srgb_copy(path, copies)
            if copy:
                read_from[path] = copy
        sources = [read_from.get(path, path) for path in todo]
        indexed = tf.data.Dataset.from_tensor_slices((tf.range(len(todo), dtype=tf.int64), path_strings(sources)))
        found = probe_all(indexed.map(lambda i, p: (i, tf.io.read_file(p))), len(todo), verbose)
        for index, path in enumerate(todo):
            verdict = verdict_of(found.get(index), min_side, grayscale_chroma)
            verdicts[path] = unreadable_reason(path) if verdict == "undecodable" else verdict
            cache[path] = [*_cache_key(path), verdicts[path], *([read_from[path]] if path in read_from else [])]
        if cache_file:
            write_json_atomically(cache_file, cache)
    good = [p for p in paths if verdicts[p] == "good"]
    grayscale = [p for p in paths if verdicts[p] == "grayscale"]
    skipped = {p: v for p, v in verdicts.items() if v not in ("good", "grayscale")}
    return ScanReport(good, skipped, grayscale, {path: read_from[path] for path in good if path in read_from})
