"""Users' photos without TensorFlow: reading them as pix2color colorizes them.

Every photo pix2color colorizes (the `colorize` command, the web app, the Turing-test poll, the
device's runner) is read by `read_image` / `read_photo`: upright as its EXIF orientation says,
converted to sRGB by its colour profile, refused before decoding when larger than a pixel limit,
any Pillow mode turned into 8-bit RGB, its metadata kept for the output, and anything unreadable
one line naming the file. What is done with it next is `pix2color.colorizing.recipe`.

NumPy and Pillow only: importing this module costs no TensorFlow start-up (the web app serves a
poll alone without TensorFlow), and `pix2color export` writes it, unchanged, into the device's
one-file runner (`pix2color.export.one_file`).
"""

from __future__ import annotations

import functools
import io
import os
import stat
import threading
import typing
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps

from pix2color.errors import ImageError, TooManyPixels  # noqa: F401 - the module's errors, importable from here too
from pix2color.outputs import quoted

DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: far above a phone photo, far below a decompression bomb


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
    return Photo(_to_rgb_array(_in_srgb(image, icc_profile)), alpha, output_exif(image),
                 tuple(float(value) for value in dpi) if dpi else None, icc_profile,
                 getattr(image, "n_frames", 1), lossless)


def output_exif(image: Image.Image | None = None) -> bytes:
    """The EXIF an output carries: Software pix2color (a later folder search knows it as an
    output); with the input `image`, also its `EXIF_KEPT` tags, the Exif and GPS sub-IFDs and
    Orientation 1 (the pixels are upright). No thumbnail (Pillow writes none)."""
    kept = Image.Exif()
    if image is not None:
        found = image.getexif()
        for tag in EXIF_KEPT:
            if tag in found:
                kept[tag] = found[tag]
        for tag in EXIF_SUBIFDS:
            if tag in found:
                kept[tag] = found.get_ifd(tag)
        kept[0x0112] = 1
    kept[0x0131] = SOFTWARE
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
