"""Colorize photos with an exported `.tflite` generator: numpy, Pillow and LiteRT only.

This module imports no TensorFlow, so it runs where TensorFlow cannot (phones, small boards,
a slim container). It is self-contained: copy this one file next to a `.tflite` file.

    python lite.py generator_deterministic_float32.tflite photo.jpg -o colorized/

It also holds the one reader of users' photos (`read_image`: EXIF orientation, pixel limit,
any Pillow mode), which `pix2color.colorize` uses too.

Tensor contract of pix2color's `.tflite` files (see `pix2color.export`):
    input  "lightness": float32 (1, S, S, 1), L / 50 - 1, in [-1, 1]
    output "ab":        float32 (1, S, S, 2), (a, b) / 110, in [-1, 1]
S is the model's image size (256 for the report's model); CIE Lab, D65, 2 degree observer.

Full-resolution recipe: L of the original photo, resized to S x S (area filter) for the network;
the predicted ab upsampled (bilinear) to the original size and recombined with the original,
full-resolution L. The Lab formulas below are the same as tensorflow-io's (which
`pix2color.color` uses for training); a test checks they agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import typing
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: far above a phone photo, far below a decompression bomb

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


# --------------------------------------------------------------------------- reading photos


_PILLOW_LIMIT = threading.Lock()  # Pillow's own pixel limit is a global: lifted by one reader at a time


def read_image(source: str | os.PathLike | typing.BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS,
               name: str | None = None) -> np.ndarray:
    """Any image (a file, or a binary file object) -> uint8 RGB (H, W, 3), upright as its EXIF
    orientation says. The format is recognised from the content, never from a name.

    Grayscale is replicated to 3 channels; transparency is composited on white; 16-bit images
    are scaled to 8 bits. Raises `ImageError` naming the file (or `name`) for anything
    unreadable, larger than `max_pixels` (checked before decoding), or in a mode that cannot be
    converted to RGB.
    """
    name = name or str(source)
    try:
        with _PILLOW_LIMIT:
            previous_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # ours is checked below
            try:
                image = Image.open(source)
            finally:
                Image.MAX_IMAGE_PIXELS = previous_limit
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{name}: {width}x{height} is {width * height / 1e6:.1f} megapixels, more than the "
                    f"limit of {max_pixels / 1e6:.1f}"
                )
            image.load()
            image = ImageOps.exif_transpose(image)
            try:
                return _to_rgb_array(image)
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
            reason = (f"a {container} image in a pixel format that cannot be converted to RGB" if container
                      else "not an image (or a format Pillow cannot read)")
        raise ImageError(f"{name}: {reason}") from None


_SIGNATURES = {b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF",
               b"BM": "BMP"}


def image_container(source) -> str | None:
    """The image format a file's first bytes announce, if any (to tell "not an image" from "an
    image whose pixels Pillow cannot turn into RGB", such as a float64 or complex TIFF)."""
    try:
        if hasattr(source, "seek"):
            source.seek(0)
            head = source.read(12)
        else:
            with open(source, "rb") as handle:
                head = handle.read(12)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for signature, kind in _SIGNATURES.items() if head.startswith(signature)), None)


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        gray = np.asarray(image, dtype=np.float32) / 257.0
        return np.repeat(np.round(gray).astype(np.uint8)[..., None], 3, axis=-1)
    if image.mode == "I":
        gray = np.asarray(image, dtype=np.float32)
        scale = 257.0 if gray.max() > 255 else 1.0
        return np.repeat(np.clip(np.round(gray / scale), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


# --------------------------------------------------------------------------- Lab in numpy


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """RGB floats in [0, 1] (..., 3) -> Lab (..., 3), as `tfio.experimental.color.rgb_to_lab`."""
    rgb = np.asarray(rgb, np.float32)
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(np.maximum(xyz, 0)), xyz * 7.787 + 16.0 / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1).astype(np.float32)


def _lab_to_linear_rgb(lab: np.ndarray) -> np.ndarray:
    """Lab (..., 3) -> linear-light RGB (not yet clipped); L clipped to [0, 100] and a, b to +-110."""
    lab = np.asarray(lab, np.float32)
    return _linear_rgb(lab[..., 0], lab[..., 1], lab[..., 2])


def _linear_rgb(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`_lab_to_linear_rgb` of separate L, a, b arrays (no (..., 3) copy made first)."""
    lightness = np.clip(lightness, 0.0, 100.0, dtype=np.float32)
    a, b = np.clip(a, -110.0, 110.0, dtype=np.float32), np.clip(b, -110.0, 110.0, dtype=np.float32)
    fy = (lightness + 16.0) / 116.0
    f = np.stack([a / 500.0 + fy, fy, np.maximum(fy - b / 200.0, 0.0)], axis=-1)
    xyz = np.where(f > 0.2068966, f * f * f, (f - 16.0 / 116.0) / 7.787)
    return xyz @ _XYZ_TO_RGB_WHITE.T


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Lab (..., 3) -> RGB in [0, 1]; L clipped to [0, 100] and a, b to +-110 (as pix2color.color)."""
    linear = _lab_to_linear_rgb(lab)
    rgb = np.where(linear > 0.0031308, 1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055, linear * 12.92)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


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
    """uint8 RGB (..., 3) -> Lab L (...), the same values as `rgb_to_lab(rgb / 255)[..., 0]`."""
    linear_y = (np.take(_DECODE_8BIT_Y[0], rgb[..., 0]) + np.take(_DECODE_8BIT_Y[1], rgb[..., 1])
                + np.take(_DECODE_8BIT_Y[2], rgb[..., 2]))  # Y / Y_white, Y_white = 1
    f = np.where(linear_y > 0.008856, np.cbrt(linear_y), linear_y * 7.787 + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


def lab_to_8bit_rgb(lab: np.ndarray) -> np.ndarray:
    """Lab (..., 3) -> uint8 RGB: `lab_to_rgb` then rounding, with a table for the sRGB curve."""
    return _encode_8bit(_lab_to_linear_rgb(lab))


def _encode_8bit(linear: np.ndarray) -> np.ndarray:
    """Linear-light RGB -> uint8 sRGB through the table (clipped to [0, 1] first)."""
    indices = np.rint(np.clip(linear, 0.0, 1.0) * _ENCODE_LEVELS).astype(np.int32)
    return np.take(_ENCODE_8BIT, indices)


def _resize_channel(channel: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    """Resize one float32 channel (H, W) to size=(width, height) with Pillow's 'F' mode."""
    return np.asarray(Image.fromarray(channel.astype(np.float32), mode="F").resize(size, resample), np.float32)


# --------------------------------------------------------------------------- the colorizer


class FullResolutionColorizer:
    """The full-resolution recipe around any network `predict_ab`: (N, S, S, 1) -> (N, S, S, 2).

    Images of any size and mix of sizes go through the network together as one batch.
    """

    def __init__(self, predict_ab, image_size: int):
        self.predict_ab = predict_ab
        self.image_size = image_size

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB (H, W, 3) -> (full-resolution L (H, W), network input (S, S, 1))."""
        lightness = lightness_of_8bit(rgb)
        size = self.image_size
        small = _resize_channel(lightness, (size, size), Image.Resampling.BOX) / 50.0 - 1.0
        return lightness, small[..., None]

    @staticmethod
    def finish(lightness: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
        """Full-resolution L (H, W) + predicted normalised ab (S, S, 2) -> uint8 RGB (H, W, 3)."""
        height, width = lightness.shape
        a, b = (_resize_channel(ab_small[..., k] * 110.0, (width, height), Image.Resampling.BILINEAR) for k in range(2))
        return _encode_8bit(_linear_rgb(lightness, a, b))

    def colorize_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 RGB images (H_i, W_i, 3) -> colorized uint8 RGB images of the same sizes."""
        return self.finish_batch(*self.predict_batch(images))

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


class LiteColorizer(FullResolutionColorizer):
    """The recipe with a pix2color `.tflite` generator run by LiteRT."""

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads or os.cpu_count())
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        _, height, width, channels = self.input["shape"]
        if channels != 1 or height != width:
            raise ValueError(f"{model_path}: not a pix2color generator (input shape {self.input['shape']})")
        super().__init__(self._run, int(height))

    def _run(self, lightness: np.ndarray) -> np.ndarray:
        """The .tflite file takes one image at a time: (N, S, S, 1) -> (N, S, S, 2)."""
        results = []
        for image in lightness:
            self.interpreter.set_tensor(self.input["index"], image[None].astype(np.float32))
            self.interpreter.invoke()
            results.append(self.interpreter.get_tensor(self.output["index"])[0].copy())
        return np.stack(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Colorize photos with a pix2color .tflite file (no TensorFlow).")
    parser.add_argument("model", help="a pix2color .tflite generator")
    parser.add_argument("inputs", nargs="+", help="image files")
    parser.add_argument("-o", "--out", default="colorized", help="output folder")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    colorizer = LiteColorizer(args.model, args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.inputs:
        try:
            result = colorizer.colorize(read_image(path, args.max_pixels))
        except ImageError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        target = out / f"{Path(path).stem}.png"
        Image.fromarray(result).save(target)
        print(f"{path} -> {target}")
    print(f"{len(args.inputs) - failed} colorized, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
