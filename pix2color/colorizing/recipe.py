"""The full-resolution recipe, and CIE Lab in NumPy: what `colorize`, the web app, the poll and
the device's runner do around a network.

Full-resolution recipe (`FullResolutionColorizer`): L of the original photo, resized to S x S
(area filter) for the network; the predicted ab upsampled (bilinear) to the original size and
recombined with the original, full-resolution L, so edges stay as sharp as the photo's own.
The network's units: L / 50 - 1 in, (a, b) / 110 out, both in [-1, 1].

The Lab formulas are tensorflow-io's (which `pix2color.color` uses for training; a test checks
that they agree): CIE Lab, D65 white, 2 degree observer.

NumPy and Pillow only, like `pix2color.photos`: the web app serves a poll without TensorFlow, and
`pix2color export` writes this module, unchanged, into the device's one-file runner
(`pix2color.export.one_file`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pix2color.errors import ModelError
from pix2color.photos import as_8bit_rgb

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
    """`_linear_rgb` of one Lab array (..., 3)."""
    lab = np.asarray(lab, np.float32)
    return _linear_rgb(lab[..., 0], lab[..., 1], lab[..., 2])


def _linear_rgb(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lab given as separate L, a, b arrays (so no (..., 3) copy is made) -> linear-light RGB
    (..., 3), not yet clipped; L clipped to [0, 100] and a, b to +-110."""
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
    """uint8 RGB (..., 3) -> Lab L (...), the values `pix2color.colorizing.recipe.rgb_to_lab(rgb / 255)[..., 0]`
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


def _resized_tile(channel: Image.Image, size: tuple[int, int], rows: range, columns: range) -> np.ndarray:
    """Rows x columns of `channel` (an 'F' image) resized bilinearly to size=(width, height):
    the same values as that tile of the whole resize (Pillow's `box` keeps its filter's centres
    and its reach beyond the box), without the whole resize in memory."""
    width, height = size
    x_scale, y_scale = channel.width / width, channel.height / height
    box = (columns.start * x_scale, rows.start * y_scale, columns.stop * x_scale, rows.stop * y_scale)
    resized = channel.resize((len(columns), len(rows)), Image.Resampling.BILINEAR, box=box)
    return np.asarray(resized, np.float32)


def keep_in_gamut(lightness: np.ndarray, a: np.ndarray, b: np.ndarray, halvings: int = 16):
    """(a, b) scaled towards 0, at their own hue, where Lab (L, a, b) has no sRGB colour, by as
    little as needed (bisection): such a colour loses chroma and keeps its lightness, which
    clipping each RGB channel would change."""
    linear = _linear_rgb(lightness, a, b)
    outside = np.any((linear < -1e-6) | (linear > 1 + 1e-6), axis=-1)
    if not outside.any():
        return a, b
    lightness_out, a_out, b_out = lightness[outside], a[outside], b[outside]
    low, high = np.zeros(len(a_out), np.float32), np.ones(len(a_out), np.float32)  # a = b = 0 is always inside
    for _ in range(halvings):
        middle = (low + high) / 2
        rgb = _linear_rgb(lightness_out, a_out * middle, b_out * middle)
        inside = np.all((rgb >= -1e-6) & (rgb <= 1 + 1e-6), axis=-1)
        low, high = np.where(inside, middle, low), np.where(inside, high, middle)
    a, b = a.copy(), b.copy()
    a[outside], b[outside] = a_out * low, b_out * low
    return a, b


def ab_on_grid(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> the photo's own a, b averaged over a size x size grid (area filter,
    as `FullResolutionColorizer.prepare` averages L), in the network's units: (S, S, 2).

    The colours a perfect network would predict: `FullResolutionColorizer.finish` renders them as
    it renders a prediction (the Turing-test poll shows the original so). The whole photo's Lab is
    computed at once: for photos of a few megapixels at most."""
    lab = rgb_to_lab(rgb / np.float32(255.0))
    return np.stack([_resize_channel(lab[..., k], (size, size), Image.Resampling.BOX) for k in (1, 2)], -1) / 110.0


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
        ab = self.predict_ab(np.stack([small for _, small in prepared]))
        if not np.isfinite(ab).all():  # NaN would reach the 8-bit tables as an index
            raise ModelError("the network's output is not finite (NaN or infinite): its weights are damaged")
        return prepared, ab

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
