"""Colorize photos with an exported `.tflite` generator: numpy, Pillow and LiteRT only.

This module imports no TensorFlow, so it runs where TensorFlow cannot (phones, small boards,
a slim container). It is self-contained: copy this one file next to a `.tflite` file.

    python lite.py generator_deterministic_float32.tflite photo.jpg -o colorized/

It reads photos, colorizes them at full resolution and names and writes its outputs with the
same code as `pix2color colorize`: the definitions it needs from `pix2color.photos` and
`pix2color.outputs`, copied verbatim below because one file cannot import them.
tests/test_lite.py::test_lite_copies_match fails when a copy differs from its original: change
the original, then copy it here again. This file's own code (the LiteRT runner and its command)
comes after the copies.

Tensor contract of pix2color's `.tflite` files (see `pix2color.export`):
    input  "lightness": float32 (1, S, S, 1), L / 50 - 1, in [-1, 1]
    output "ab":        float32 (1, S, S, 2), (a, b) / 110, in [-1, 1]
S is the model's image size (256 for the report's model); CIE Lab, D65, 2 degree observer.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import io
import itertools
import os
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps


# ============================================================================================
# Copied verbatim from pix2color/photos.py: tests/test_lite.py::test_lite_copies_match keeps them equal.
# ============================================================================================

DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: far above a phone photo, far below a decompression bomb
# The full-resolution planes are computed this many pixels at a time: a 50 MP photo's float32
# Lab, XYZ and RGB planes would take gigabytes at once, a band's take tens of megabytes.
BAND_PIXELS = 1 << 19

# sRGB (D65) -> XYZ, and the D65 white point (2 degree observer): as tensorflow-io.
_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    np.float32,
)
_XYZ_TO_RGB = np.array(
    [[3.24048134, -1.53715152, -0.49853633], [-0.96925495, 1.87599, 0.04155593], [0.05564664, -0.20404134, 1.05731107]],
    np.float32,
)
_WHITE = np.array([0.95047, 1.0, 1.08883], np.float32)
_XYZ_TO_RGB_WHITE = _XYZ_TO_RGB * _WHITE  # XYZ relative to white -> linear RGB


class ImageError(ValueError):
    """A file that cannot be colorized; the message names it and says why."""


class TooManyPixels(ImageError):
    """An image larger than the pixel limit (checked before it is decoded)."""


# --------------------------------------------------------------------------- reading photos


_PILLOW_LIMIT = threading.Lock()  # Pillow's own pixel limit is a global: lifted by one reader at a time


@dataclass
class Photo:
    """A photo as pix2color reads it: its pixels in sRGB, and what its file said besides."""

    rgb: np.ndarray  # uint8 (H, W, 3), upright, sRGB, transparency composited on white
    alpha: np.ndarray | None = None  # uint8 (H, W): its transparency, if it had any
    exif: bytes | None = None  # its EXIF, Orientation 1 (the pixels are upright), without the thumbnail
    dpi: tuple[float, float] | None = None
    icc_profile: bytes | None = None  # the profile its pixels were converted to sRGB from
    frames: int = 1  # pages or frames in the file: only the first is read
    lossless: bool = False  # a lossless WebP


def read_image(source: str | os.PathLike | typing.BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS,
               name: str | None = None, formats: tuple[str, ...] | None = None) -> np.ndarray:
    """Any image (a file, or a binary file object) -> uint8 sRGB (H, W, 3): `read_photo`'s pixels."""
    return read_photo(source, max_pixels, name, formats).rgb


def read_photo(source: str | os.PathLike | typing.BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS,
               name: str | None = None, formats: tuple[str, ...] | None = None) -> Photo:
    """Any image (a file, or a binary file object) -> `Photo`: uint8 RGB (H, W, 3), upright as its
    EXIF orientation says, in sRGB (an embedded ICC profile is applied: `_in_srgb`), and its
    transparency, EXIF, DPI and profile. The format is recognised from the content, never from a name.

    Grayscale is replicated to 3 channels; transparency is composited on white; 16-bit images
    are scaled to 8 bits; a float image is read as 0..1 (or 0..255, 0..65535 if its values go
    beyond). Raises `ImageError` naming the file (or `name`) for anything unreadable, larger than
    `max_pixels` (checked before decoding), or in a mode that cannot be converted to RGB.
    """
    name = name or (quoted(source) if isinstance(source, (str, os.PathLike)) else str(source))
    if isinstance(source, (str, os.PathLike)):
        problem = not_a_file(source) or ("an empty file (0 bytes)" if os.path.getsize(source) == 0 else None)
        if problem:
            raise ImageError(f"{name}: {problem}")
    try:
        with _PILLOW_LIMIT:
            previous_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # ours is checked below
            try:
                image = Image.open(source, formats=formats)  # formats: Pillow's names; None: any it reads
            finally:
                Image.MAX_IMAGE_PIXELS = previous_limit
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise TooManyPixels(f"{name}: {width}x{height} is {_too_many(width * height, max_pixels)}")
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # no copy of an image that is upright already
            try:
                return _photo_of(image, _webp_lossless(source) if image.format == "WEBP" else False)
            except (ValueError, OSError) as error:
                raise ImageError(f"{name}: image mode {image.mode} cannot be converted to RGB ({error})") from None
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds for bad files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if isinstance(error, Image.UnidentifiedImageError):
            container = image_container(source)
            reason = ("a HEIC photo, a format pix2color cannot read (convert it to JPEG or PNG)" if container == "HEIC"
                      else f"a {container} image in a pixel format that cannot be converted to RGB" if container
                      else "not an image (or not in a format pix2color reads)")
        raise ImageError(f"{name}: {reason}") from None


# EXIF tags a photo's output carries (IFD0): who made it, when, with what; and its Exif and GPS
# sub-IFDs. A TIFF's other tags describe its own file (strips, compression), or hold XMP, IPTC
# and its ICC profile, none of which is the colorization's.
EXIF_KEPT = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)  # description, make, model, software, date, artist, copyright
EXIF_SUBIFDS = (0x8769, 0x8825)  # Exif, GPS
SOFTWARE = "pix2color"  # every output says so (EXIF Software): a later folder search knows it as an output


def _photo_of(image: Image.Image, lossless: bool) -> Photo:
    """The `Photo` of an opened, loaded, upright image."""
    icc_profile = image.info.get("icc_profile") or None
    alpha = None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3].copy()
        alpha = None if alpha.min() == 255 else alpha
    dpi = image.info.get("dpi")
    return Photo(_to_rgb_array(_in_srgb(image, icc_profile)), alpha, _carried_exif(image),
                 tuple(float(value) for value in dpi) if dpi else None, icc_profile,
                 getattr(image, "n_frames", 1), lossless)


def _carried_exif(image: Image.Image) -> bytes | None:
    """The EXIF an output carries (`EXIF_KEPT`, the Exif and GPS sub-IFDs), Orientation 1 (the
    pixels are upright), Software pix2color; no thumbnail (Pillow writes none)."""
    found, kept = image.getexif(), Image.Exif()
    for tag in EXIF_KEPT:
        if tag in found:
            kept[tag] = found[tag]
    for tag in EXIF_SUBIFDS:
        if tag in found:
            kept[tag] = found.get_ifd(tag)
    kept[0x0112], kept[0x0131] = 1, SOFTWARE
    return kept.tobytes()


def as_8bit_rgb(image) -> np.ndarray:
    """What a program passes as a photo -> uint8 RGB (H, W, 3): a PIL image (any mode; upright as
    its EXIF says, its ICC profile applied), or an array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)
    (alpha composited on white) of uint8, uint16, bool, or floats in 0..1 (0..255 if they go
    beyond). ValueError in one line for anything else."""
    if isinstance(image, Image.Image):
        if min(image.size) < 1:
            raise ValueError(f"expected a photo: got an image of {image.width}x{image.height} pixels")
        image = ImageOps.exif_transpose(image)
        image.load()
        return _photo_of(image, False).rgb
    array = np.asarray(image)
    wanted = ("expected a photo: a PIL image, or an array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8, "
              "uint16 or floats in 0..1")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(f"{wanted} (got an array of shape {array.shape})")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = np.round(array / 257.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating) or (np.issubdtype(array.dtype, np.integer) and array.dtype != np.uint8):
        values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        scale = 255.0 if np.issubdtype(array.dtype, np.floating) and values.max(initial=0.0) <= 1.0 else 1.0
        array = np.clip(np.round(values * scale), 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ValueError(f"{wanted} (got an array of {array.dtype})")
    if array.shape[-1] == 4:
        alpha = array[..., 3:].astype(np.float32) / 255.0
        array = np.round(array[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(array)


def _webp_lossless(source) -> bool:
    """A WebP file whose image is stored lossless: its first image chunk, past any ICC, EXIF or
    XMP chunk before it, is VP8L. Only the chunks' headers are read."""
    try:
        handle = source if hasattr(source, "seek") else open(source, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return False
    try:
        handle.seek(12)  # after "RIFF", the size and "WEBP"
        while len(header := handle.read(8)) == 8:
            kind, size = header[:4], int.from_bytes(header[4:], "little")
            if kind in (b"VP8L", b"VP8 ", b"ANMF", b"ALPH"):
                return kind == b"VP8L"
            handle.seek(size + size % 2, 1)
        return False
    except OSError:
        return False
    finally:
        if handle is not source:
            handle.close()


def _first_bytes(source, count: int) -> bytes | None:
    """The first `count` bytes of a file (a path or a binary file object), or None if unreadable."""
    try:
        if hasattr(source, "seek"):
            source.seek(0)
            return source.read(count)
        with open(source, "rb") as handle:
            return handle.read(count)
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """An ICC profile of sRGB (LittleCMS's), for outputs whose input carried a profile."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@functools.lru_cache(maxsize=8)
def is_srgb_profile(icc_profile: bytes) -> bool:
    """Whether an RGB profile maps colours as sRGB does, to within one 8-bit level: judged from its
    transform of 32,768 colours (every 8th level of each channel), not from its name, which
    anyone may write. Most camera and phone photos carry such a profile: their pixels are
    then read as they are, without a transform of the whole photo."""
    levels = np.arange(0, 256, 8, dtype=np.uint8)
    probe = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(32 * 32, 32, 3)
    try:
        managed = ImageCms.profileToProfile(Image.fromarray(probe), ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)),
                                            ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile())), outputMode="RGB")
    except (OSError, ValueError, ImageCms.PyCMSError):  # not an RGB profile (CMYK, gray), or unreadable
        return False
    return int(np.abs(np.asarray(managed, np.int16) - probe).max()) <= 1


def _in_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """`image` converted to sRGB through its embedded ICC profile (LittleCMS, perceptual intent):
    a CMYK photo, an Adobe RGB or a gray-profiled one get the colours they have on a managed
    screen. A palette or 16-bit image is first made 8-bit RGB or gray. An sRGB profile
    (`is_srgb_profile`), an unreadable one, or a mode LittleCMS does not take (float) leaves the
    image as it is."""
    if not icc_profile:
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = Image.fromarray(_to_rgb_array(image)[..., 0], "L")
    if image.mode not in ("RGB", "RGBA", "CMYK", "L", "LA") or (image.mode in ("RGB", "RGBA")
                                                                and is_srgb_profile(icc_profile)):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if image.mode == "LA":
            image = image.convert("L")
        return ImageCms.profileToProfile(image, source, ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile())),
                                         outputMode="RGBA" if image.mode == "RGBA" else "RGB")
    except (OSError, ValueError, ImageCms.PyCMSError):
        return image


def _too_many(pixels: int, limit: int) -> str:
    """'12.0 megapixels, more than the limit of 1.0', in pixels where megapixels to one decimal
    would not tell the two apart (a limit below 0.1 MP reads "0.0")."""
    if limit >= 100_000 and f"{pixels / 1e6:.1f}" != f"{limit / 1e6:.1f}":
        return f"{pixels / 1e6:.1f} megapixels, more than the limit of {limit / 1e6:.1f}"
    return f"{pixels:,} pixels, more than the limit of {limit:,}"


def not_a_file(path: str | os.PathLike) -> str | None:
    """Why `path` is not a regular file that can be read, or None if it is; told from `stat`,
    without opening it: a FIFO blocks its reader until something writes into it, a device may
    never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"a broken symlink (to {os.readlink(path)})" if os.path.islink(path) else "no such file"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder"
    kinds = [(stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device")]
    return f"not a regular file ({next((kind for test, kind in kinds if test(mode)), 'a special file')})"


_SIGNATURES = {b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF",
               b"BM": "BMP"}


def image_container(source) -> str | None:
    """The image format a file's first bytes announce, if any (to tell "not an image" from "an
    image whose pixels Pillow cannot turn into RGB", such as a float64 or complex TIFF)."""
    head = _first_bytes(source, 12)
    if head is None:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        return "HEIC"
    return next((kind for signature, kind in _SIGNATURES.items() if head.startswith(signature)), None)


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode == "F":  # 32-bit float: 0..1 by convention; 0..255 and 0..65535 are read as such
        gray = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(gray.max(initial=0.0))
        if top > 65535:
            raise ValueError(f"float pixel values up to {top:g}; expected 0..1 (or 0..255, 0..65535)")
        scale = 255.0 if top <= 1.0 else 1.0 if top <= 255.0 else 1 / 257.0
        return np.repeat(np.clip(np.round(gray * scale), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        gray = np.asarray(image, dtype=np.float32) / 257.0
        return np.repeat(np.round(gray).astype(np.uint8)[..., None], 3, axis=-1)
    if image.mode == "I":
        gray = np.asarray(image, dtype=np.float32)
        scale = 257.0 if gray.max() > 255 else 1.0
        return np.repeat(np.clip(np.round(gray / scale), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    if image.mode in ("P", "RGB", "L") and "transparency" in image.info:  # a palette's, or one colour marked so
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


# --------------------------------------------------------------------------- Lab in numpy


def _linear_rgb(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lab given as separate L, a, b arrays (so no (..., 3) copy is made) -> linear-light RGB
    (..., 3), not yet clipped; L clipped to [0, 100] and a, b to +-110."""
    lightness = np.clip(lightness, 0.0, 100.0, dtype=np.float32)
    a, b = np.clip(a, -110.0, 110.0, dtype=np.float32), np.clip(b, -110.0, 110.0, dtype=np.float32)
    fy = (lightness + 16.0) / 116.0
    f = np.stack([a / 500.0 + fy, fy, np.maximum(fy - b / 200.0, 0.0)], axis=-1)
    xyz = np.where(f > 0.2068966, f * f * f, (f - 16.0 / 116.0) / 7.787)
    return xyz @ _XYZ_TO_RGB_WHITE.T


# Fast paths for 8-bit photos: sRGB decoding of 256 possible values, and sRGB encoding
# through a 65,536-entry table (error < 0.03 of an 8-bit level before rounding).
_DECODE_8BIT = np.where(np.arange(256) / 255.0 > 0.04045, ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
                        np.arange(256) / 255.0 / 12.92).astype(np.float32)
_DECODE_8BIT_Y = _DECODE_8BIT[None, :] * _RGB_TO_XYZ[1, :, None]  # each channel's share of Y, per 8-bit level
_ENCODE_LEVELS = 65535
_ENCODE_8BIT = np.round(
    255.0 * np.clip(np.where(np.linspace(0, 1, _ENCODE_LEVELS + 1) > 0.0031308,
                             1.055 * np.linspace(0, 1, _ENCODE_LEVELS + 1) ** (1 / 2.4) - 0.055,
                             np.linspace(0, 1, _ENCODE_LEVELS + 1) * 12.92), 0, 1)
).astype(np.uint8)


def lightness_of_8bit(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> Lab L (...), the values `pix2color.photos.rgb_to_lab(rgb / 255)[..., 0]`
    gives, computed `BAND_PIXELS` at a time through tables of the 256 levels."""
    pixels = rgb.reshape(-1, 3)
    lightness = np.empty(len(pixels), np.float32)
    for start in range(0, len(pixels), BAND_PIXELS):
        band = pixels[start:start + BAND_PIXELS]
        linear_y = (np.take(_DECODE_8BIT_Y[0], band[:, 0]) + np.take(_DECODE_8BIT_Y[1], band[:, 1])
                    + np.take(_DECODE_8BIT_Y[2], band[:, 2]))  # Y / Y_white, Y_white = 1
        f = np.where(linear_y > 0.008856, np.cbrt(linear_y), linear_y * 7.787 + 16.0 / 116.0)
        lightness[start:start + BAND_PIXELS] = 116.0 * f - 16.0
    return lightness.reshape(rgb.shape[:-1])


def _encode_8bit(linear: np.ndarray) -> np.ndarray:
    """Linear-light RGB -> uint8 sRGB through the table (clipped to [0, 1] first)."""
    indices = np.rint(np.clip(linear, 0.0, 1.0) * _ENCODE_LEVELS).astype(np.int32)
    return np.take(_ENCODE_8BIT, indices)


def _resize_channel(channel: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    """Resize one float32 channel (H, W) to size=(width, height) with Pillow's 'F' mode."""
    return np.asarray(Image.fromarray(channel.astype(np.float32), mode="F").resize(size, resample), np.float32)


def _resized_tile(channel: Image.Image, size: tuple[int, int], rows: range, columns: range) -> np.ndarray:
    """Rows x columns of `channel` (an 'F' image) resized bilinearly to size=(width, height):
    the same values as that tile of the whole resize (Pillow's `box` keeps its filter's centres
    and its reach beyond the box), without the whole resize in memory."""
    width, height = size
    x_scale, y_scale = channel.width / width, channel.height / height
    box = (columns.start * x_scale, rows.start * y_scale, columns.stop * x_scale, rows.stop * y_scale)
    resized = channel.resize((len(columns), len(rows)), Image.Resampling.BILINEAR, box=box)
    return np.asarray(resized, np.float32)


# --------------------------------------------------------------------------- the colorizer


class FullResolutionColorizer:
    """The full-resolution recipe around any network `predict_ab`: (N, S, S, 1) -> (N, S, S, 2).

    Images of any size and mix of sizes go through the network together as one batch.
    """

    def __init__(self, predict_ab, image_size: int):
        self.predict_ab = predict_ab
        self.image_size = image_size

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A photo (uint8 RGB (H, W, 3), or what `as_8bit_rgb` takes) -> (full-resolution L (H, W),
        network input (S, S, 1))."""
        lightness = lightness_of_8bit(as_8bit_rgb(rgb))
        size = self.image_size
        small = _resize_channel(lightness, (size, size), Image.Resampling.BOX) / 50.0 - 1.0
        return lightness, small[..., None]

    @staticmethod
    def finish(lightness: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
        """Full-resolution L (H, W) + predicted normalised ab (S, S, 2) -> uint8 RGB (H, W, 3).

        Works on tiles of at most `BAND_PIXELS` (bands of whole rows unless a row is longer): only a
        tile's float planes exist at a time."""
        height, width = lightness.shape
        channels = [Image.fromarray(np.ascontiguousarray(ab_small[..., k] * 110.0, np.float32), mode="F")
                    for k in range(2)]
        rgb = np.empty((height, width, 3), np.uint8)
        tile_width = min(width, BAND_PIXELS)  # a panorama's row can hold more than a band
        tile_height = max(1, BAND_PIXELS // tile_width)
        for top in range(0, height, tile_height):
            for left in range(0, width, tile_width):
                rows, columns = range(top, min(height, top + tile_height)), range(left, min(width, left + tile_width))
                a, b = (_resized_tile(channel, (width, height), rows, columns) for channel in channels)
                tile = np.s_[rows.start:rows.stop, columns.start:columns.stop]
                rgb[tile] = _encode_8bit(_linear_rgb(lightness[tile], a, b))
        return rgb

    def colorize_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 RGB images (H_i, W_i, 3) -> colorized uint8 RGB images of the same sizes."""
        return self.finish_batch(*self.predict_batch(images)) if len(images) else []

    def predict_batch(self, images: list[np.ndarray]) -> tuple[list, np.ndarray]:
        """The network's half: uint8 RGB images -> ([(L, network input)], predicted ab (N, S, S, 2))."""
        prepared = [self.prepare(image) for image in images]
        return prepared, self.predict_ab(np.stack([small for _, small in prepared]))

    def finish_batch(self, prepared: list, ab: np.ndarray, ab_filter=None) -> list[np.ndarray]:
        """The full-resolution half of `colorize_batch`. `ab_filter(full-resolution L (H, W), ab
        (S, S, 2)) -> ab (any size)`, if given, sees every prediction in order (a video's stabiliser)."""
        if ab_filter is not None:
            ab = [ab_filter(lightness, ab_i) for (lightness, _), ab_i in zip(prepared, ab)]
        return [self.finish(lightness, ab_i) for (lightness, _), ab_i in zip(prepared, ab)]

    def colorize(self, rgb: np.ndarray) -> np.ndarray:
        return self.colorize_batch([rgb])[0]

    def grayscale(self, rgb: np.ndarray) -> np.ndarray:
        """The photo with a = b = 0: what the network is given, shown as an image."""
        return self.finish(self.prepare(rgb)[0], np.zeros((1, 1, 2), np.float32))


# ============================================================================================
# Copied verbatim from pix2color/outputs.py: tests/test_lite.py::test_lite_copies_match keeps them equal.
# ============================================================================================

COLORIZED = "_colorized"  # NAME_colorized.EXT: the output of an input that is in the output's place
SKIPPED_SUMMARY = "their outputs exist; --overwrite replaces them"


class OutputExists(FileExistsError):
    """An output's name was taken when it came to be written (after the plan was made, say):
    the file there is left as it is."""


@dataclass(frozen=True)
class Wanted:
    """An input and the output it asks for: a path below the output folder, suffix included."""

    source: Path
    relative: Path
    compare: bool = False  # also NAME_compare.jpg next to the output


@dataclass
class Planned:
    """One input's outputs after `plan_outputs`' rules. `target` is None when the input is
    skipped: its output exists and may not be replaced. `compare` is None unless asked for and free."""

    source: Path
    target: Path | None = None
    compare: Path | None = None
    renamed: list[str] = field(default_factory=list)  # one line per output given another name, saying why
    skipped: list[str] = field(default_factory=list)  # one line per existing output left as it is


def plan_outputs(wanted: list[Wanted], out: str | os.PathLike, overwrite: bool = False) -> list[Planned]:
    """Where each input's outputs go, so that nothing a user owns is lost:

    - an output that would be one of the inputs (the same path, or the same file through a
      symlink or a hard link) becomes NAME_colorized.EXT (then NAME_colorized-2.EXT, ...), even
      with `overwrite`: an input is never written;
    - an output another input already has becomes NAME-2.EXT (NAME-3.EXT, ...): every input
      gets its own;
    - any other output that already exists is skipped unless `overwrite`.

    Names depend on the inputs and `out`, not on which outputs exist already, so the same command
    run again finds the first run's outputs under the same names (and skips them).
    """
    names = _Names([item.source for item in wanted], overwrite)
    return [names.plan(item, Path(out)) for item in wanted]


def _path_key(path: Path) -> str:
    """Equal for two spellings of one path (symlinks followed as far as they exist)."""
    return os.path.normcase(os.path.realpath(path))


def _file_identity(path: Path) -> tuple[int, int] | None:
    """What `os.path.samefile` compares (device, inode): equal for hard links; None if absent."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


class _Names:
    """The inputs, which no output may be, and the outputs given out so far (to which input)."""

    def __init__(self, sources: list[Path], overwrite: bool):
        self.overwrite = overwrite
        self.inputs = {_path_key(source) for source in sources}
        self.input_files = {identity for identity in map(_file_identity, sources) if identity}
        self.owners: dict[str, Path] = {}

    def plan(self, item: Wanted, out: Path) -> Planned:
        planned = Planned(item.source)
        target = self._claim(item.source, out / item.relative, planned)
        compare = target.with_name(f"{target.stem}_compare.jpg")
        compare = self._claim(item.source, compare, planned) if item.compare else None
        planned.target = self._kept(target, planned)
        if planned.target is not None and compare is not None:
            planned.compare = self._kept(compare, planned)
        return planned

    def is_input(self, path: Path) -> bool:
        return _path_key(path) in self.inputs or _file_identity(path) in self.input_files

    def _claim(self, source: Path, wanted: Path, planned: Planned) -> Path:
        path = self._free_name(wanted)
        if path != wanted:
            why = "is one of the inputs" if self.is_input(wanted) else f"is {self.owners[_path_key(wanted)]}'s output"
            planned.renamed.append(f"{quoted(source)} -> {quoted(path)} ({quoted(wanted)} {why})")
        self.owners[_path_key(path)] = source
        return path

    def _free_name(self, wanted: Path) -> Path:
        if self.is_input(wanted):
            stem = wanted.stem + COLORIZED
            stems = itertools.chain([stem], (f"{stem}-{n}" for n in itertools.count(2)))
        elif _path_key(wanted) in self.owners:
            stems = (f"{wanted.stem}-{n}" for n in itertools.count(2))
        else:
            return wanted
        candidates = (wanted.with_name(stem + wanted.suffix) for stem in stems)
        return next(path for path in candidates if not self.is_input(path) and _path_key(path) not in self.owners)

    def _kept(self, path: Path, planned: Planned) -> Path | None:
        """`path`, or None (and a line saying so) when it exists and may not be replaced: a
        folder never is."""
        if (self.overwrite and not _is_folder(path)) or not os.path.lexists(path):
            return path
        planned.skipped.append(exists_message(path))
        return None


def quoted(path: str | os.PathLike) -> str:
    """A path as messages show it: itself, unless it holds what a terminal would not show as
    written (a newline, an escape sequence, bytes that are not UTF-8): then those are escaped
    (\\n, \\x1b, \\xe9) and the whole is quoted, so a name never reads as a second line."""
    text = os.fspath(path)
    text = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else text
    shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if shown == text and text.isprintable():
        return text
    return "'" + "".join(char if char.isprintable() else repr(char)[1:-1] for char in shown) + "'"


def exists_message(path: Path) -> str:
    if _is_folder(path):
        return f"{quoted(path)} is a folder; left as it is (no option replaces a folder)"
    if _is_special(path):
        return f"{quoted(path)} is not a regular file (a FIFO, a device or a socket); left as it is (no option replaces it)"
    return f"{quoted(path)} exists; left as it is (--overwrite replaces it)"


def _is_folder(path: Path) -> bool:
    """A folder itself, not a symlink to one (which --overwrite replaces as it replaces any symlink)."""
    return os.path.isdir(path) and not os.path.islink(path)


def _is_special(path: Path) -> bool:
    """A FIFO, a device or a socket itself (not a symlink to one): never a file an earlier run wrote."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode)


def summary(written: int, skipped: int, failed: int, out: str | os.PathLike | None = None) -> str:
    """The last line of a run: inputs colorized, skipped (their outputs exist) and failed."""
    into = f" into {quoted(out)}" if out is not None else ""
    return (f"{written} colorized{into}, {skipped} skipped" + (f" ({SKIPPED_SUMMARY})" if skipped else "")
            + f", {failed} failed")


def check_output_folder(out: str | os.PathLike, flag: str = "-o") -> None:
    """ValueError in plain words unless `out` is a folder this process can write in, or can
    create (checked before any work; nothing is created). `flag` names the option in the message.
    An empty name (an unset variable in a script) is refused, not taken as the current folder."""
    if not os.fspath(out).strip():
        raise ValueError(f"{flag} is empty (an unset variable?): give a folder, . for the current one")
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise ValueError(f"{flag} {quoted(out)}: exists and is not a folder")
    existing = next(folder for folder in [out, *out.absolute().parents] if os.path.lexists(folder))
    if not existing.is_dir():
        raise ValueError(f"{flag} {quoted(out)}: cannot be created: {quoted(existing)} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"{flag} {quoted(out)}: cannot write in {quoted(existing)} ({error.strerror or error})") from None


def write_output(path: Path, write: Callable[[typing.BinaryIO], None], overwrite: bool = False) -> None:
    """Write the file `path` through `write(handle)`, never replacing a file unless `overwrite`.

    `write` fills memory first; its bytes are then written with Python's file API and counted,
    because an encoder writing to a file itself may not notice a full disk (Pillow's JPEG
    encoder does not): a short file raises OSError (ENOSPC) instead of taking the output's name.
    The file is written whole under a hidden temporary name in the same folder, then given its
    name (`move_into_place`): a process killed mid-write leaves no half file under the output's
    name. Without `overwrite` a file there, even one that appeared after the plan was made,
    raises `OutputExists` and is left alone; with it, a symlink there is replaced, not the file
    it points to.
    """
    encoded = io.BytesIO()
    write(encoded)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = reserve_temporary(path)
    try:
        _fill(temporary, "wb", lambda handle: _write_all(handle, encoded.getbuffer(), path))
        move_into_place(temporary, path, overwrite)
    finally:
        temporary.unlink(missing_ok=True)


def _write_all(handle: typing.BinaryIO, data: memoryview, path: Path) -> None:
    """Write `data`, then check the file holds all of it (OSError ENOSPC naming `path` if not)."""
    handle.write(data)
    handle.flush()
    written = os.fstat(handle.fileno()).st_size
    if written != len(data):
        raise OSError(errno.ENOSPC, f"only {written:,} of {len(data):,} bytes written (disk full?)", str(path))


def _fill(path: Path, mode: str, write: Callable[[typing.BinaryIO], None]) -> None:
    try:
        handle = open(path, mode)  # noqa: SIM115 - "xb" raises before anything is created
    except FileExistsError:
        raise OutputExists(errno.EEXIST, "exists", str(path)) from None
    try:
        with handle:
            write(handle)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


NAME_MAX = 255  # bytes of a file name on the file systems pix2color writes to (ext4, APFS, NTFS)


def reserve_temporary(path: Path) -> Path:
    """A new, empty hidden file next to `path` (.NAME.PID-RANDOM.part, NAME shortened to keep the
    whole within `NAME_MAX` bytes), created exclusively so that whatever is written into it is
    nobody else's file. Such files of `path` that a killed process left (its PID no longer runs
    on this machine) are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = _temporary_prefix(path)
    remove_stale_temporaries(path)
    while True:
        temporary = path.with_name(f"{prefix}{os.getpid()}-{secrets.token_hex(4)}.part")
        try:
            open(temporary, "xb").close()  # noqa: SIM115
            return temporary
        except FileExistsError:
            continue


def _temporary_prefix(path: Path) -> str:
    """'.NAME.', NAME cut (at a character, not inside one) to leave room for the PID and the rest."""
    room = NAME_MAX - len(".") - len(".") - len("4194304-0123abcd.part")
    encoded = os.fsencode(path.name)
    if len(encoded) > room:
        encoded = encoded[:room]
        while encoded:  # drop a cut UTF-8 sequence's leftover bytes
            try:
                encoded.decode("utf-8")
                break
            except UnicodeDecodeError:
                encoded = encoded[:-1]
    return f".{os.fsdecode(encoded)}."


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of `path` whose writer is gone: a process killed mid-write (kill -9,
    a power cut) leaves one, named with its PID. Returns what was removed."""
    prefix, removed = _temporary_prefix(path), []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".part")):
            continue
        pid = name[len(prefix):-len(".part")].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            try:
                os.unlink(path.parent / name)
                removed.append(path.parent / name)
            except OSError:
                pass
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def move_into_place(temporary: Path, path: Path, overwrite: bool = False) -> None:
    """Give a finished temporary file its name, with `write_output`'s rule: without `overwrite`
    only while the name is free (a hard link, which fails on an existing name; a copy into an
    exclusively created file where the file system has no hard links). The temporary is removed."""
    try:
        if overwrite and _is_folder(path):
            raise OutputExists(errno.EISDIR, "is a folder", str(path))
        if overwrite and _is_special(path):
            raise OutputExists(errno.EEXIST, "is not a regular file", str(path))
        if overwrite:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise OutputExists(errno.EEXIST, "exists", str(path)) from None
        except OSError:  # no hard links here: an exclusively created file, filled with a copy
            with open(temporary, "rb") as source:
                _fill(path, "xb", lambda handle: shutil.copyfileobj(source, handle, 1 << 20))
    finally:
        temporary.unlink(missing_ok=True)


# ============================================================================================
# This file's own: the LiteRT runner and its command.
# ============================================================================================

MAX_THREADS = 256  # LiteRT crashes (SIGSEGV) when asked for 100,000


class ModelError(ValueError):
    """A model file LiteRT cannot run as a pix2color generator; the message names it."""


class LiteColorizer(FullResolutionColorizer):
    """The recipe with a pix2color `.tflite` generator run by LiteRT."""

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None):
        self.interpreter = _interpreter(model_path, num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        _, height, width, channels = self.input["shape"]
        if channels != 1 or height != width:
            raise ModelError(f"{model_path}: not a pix2color generator (input shape {self.input['shape']})")
        super().__init__(self._run, int(height))

    def _run(self, lightness: np.ndarray) -> np.ndarray:
        """The .tflite file takes one image at a time: (N, S, S, 1) -> (N, S, S, 2)."""
        results = []
        for image in lightness:
            self.interpreter.set_tensor(self.input["index"], image[None].astype(np.float32))
            self.interpreter.invoke()
            results.append(self.interpreter.get_tensor(self.output["index"])[0].copy())
        return np.stack(results)


def _interpreter(model_path: str | os.PathLike, num_threads: int | None):
    """A LiteRT interpreter with its tensors allocated, or `ModelError` in plain words (LiteRT's
    own messages say "model allocation is null/empty" for a missing file and for a folder)."""
    from ai_edge_litert.interpreter import Interpreter

    if os.path.isdir(model_path):
        raise ModelError(f"{model_path}: is a folder, not a .tflite file")
    if not os.path.exists(model_path):
        raise ModelError(f"{model_path}: no such file")
    try:
        with _without_delegate_notice():
            interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads or os.cpu_count())
            interpreter.allocate_tensors()
    except Exception as error:  # noqa: BLE001 - LiteRT raises ValueError or RuntimeError for bad files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"{model_path}: not a LiteRT (.tflite) model ({reason})") from None
    return interpreter


_DELEGATE_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


@contextlib.contextmanager
def _without_delegate_notice():
    """LiteRT's C++ side prints _DELEGATE_NOTICE on stderr for every model it loads, and no
    setting (TF_CPP_MIN_LOG_LEVEL included) turns it off: stderr's file descriptor is caught while
    the model loads, and every other line is passed on after."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr to filter
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().splitlines(keepends=True) if line.rstrip() != _DELEGATE_NOTICE]
            if kept:
                os.write(2, b"".join(kept))


def save_png(rgb: np.ndarray, path: Path, overwrite: bool = False) -> None:
    write_output(path, lambda handle: Image.fromarray(rgb).save(handle, "PNG"), overwrite)


# --------------------------------------------------------------------------- the command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line; the usage is in --help
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        description="Colorize photos with a pix2color .tflite file (no TensorFlow). OUT/NAME.png for each "
                    "photo; an input is never written (NAME_colorized.png instead), two inputs never share "
                    "an output (NAME-2.png), an existing file is skipped unless --overwrite.")
    parser.add_argument("model", help="a pix2color .tflite generator")
    parser.add_argument("inputs", nargs="+", help="image files")
    parser.add_argument("-o", "--out", default="colorized", help="output folder (default: colorized)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images larger than this (default: {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--threads", type=int, default=None, help=f"LiteRT's threads, 1..{MAX_THREADS} (default: its own)")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never an input)")
    return parser


def _check_options(args: argparse.Namespace) -> None:
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise ValueError(f"--threads must be in 1..{MAX_THREADS} (got {args.threads})")
    if args.max_pixels < 1:
        raise ValueError(f"--max-pixels must be at least 1 (got {args.max_pixels})")
    check_output_folder(args.out)


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 when nothing failed (an output that exists is skipped, and said so), 1 when
    some photos could not be colorized or written, 2 for a bad model, option or output folder;
    130 after Ctrl-C (the photos finished so far are kept, whole)."""
    parser = _parser()
    try:
        return _main(parser, parser.parse_args(argv))
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout is gone (`| head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        _check_options(args)
        colorizer = LiteColorizer(args.model, args.threads)
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    inputs = {}
    for path in map(Path, args.inputs):
        inputs.setdefault(_path_key(path), path)  # a file named twice (or through a link) is colorized once
    wanted = [Wanted(path, Path(path.stem + ".png")) for path in inputs.values()]
    counts = [0, 0, 0]  # written, skipped, failed
    for planned in plan_outputs(wanted, args.out, args.overwrite):
        counts[_colorize_one(colorizer, planned, args)] += 1
    print(summary(*counts))
    return 1 if counts[2] else 0


def _colorize_one(colorizer: LiteColorizer, planned: Planned, args: argparse.Namespace) -> int:
    """Colorize one planned photo, saying what happened: 0 written, 1 skipped, 2 failed."""
    for line in planned.renamed:
        print(f"note: {line}", file=sys.stderr)
    for line in planned.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if planned.target is None:
        return 1
    try:
        save_png(colorizer.colorize(read_image(planned.source, args.max_pixels)), planned.target, args.overwrite)
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OutputExists:
        print(f"skipped: {exists_message(planned.target)}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {planned.source}: could not write {planned.target}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"{planned.source} -> {planned.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
