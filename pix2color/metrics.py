"""Image-quality metrics on colorized RGB images, under the report's protocol.

The report converts Lab back to RGB, rounds to 8-bit values and measures with piqa's
`value_range=256`: PSNR with a peak of 256 (``20 log10(256 / sqrt(MSE))``) and SSIM with the
constants C1 = (0.01 * 256)^2, C2 = (0.03 * 256)^2, an 11x11 Gaussian window (sigma 1.5),
valid region, averaged over the three channels. The common convention uses 255 for both.
"""

from __future__ import annotations

import tensorflow as tf

from pix2color import color

REPORT_PEAK = 256.0
COMMON_PEAK = 255.0


def to_uint8_values(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """Network-unit (lightness, ab) -> RGB as float32 holding rounded 8-bit values in [0, 255]."""
    return tf.round(color.model_outputs_to_rgb(lightness, ab) * 255.0)


def psnr(rgb_true: tf.Tensor, rgb_pred: tf.Tensor, peak: float = REPORT_PEAK) -> tf.Tensor:
    """Per-image PSNR in dB of RGB batches (N, H, W, 3) holding 0..255 values."""
    mse = tf.reduce_mean(tf.square(rgb_true - rgb_pred), axis=[-3, -2, -1])
    mse = tf.maximum(mse, 1e-10)  # identical images: a large finite PSNR, not inf
    return 20.0 * tf.math.log(peak / tf.sqrt(mse)) / tf.math.log(10.0)


def ssim(rgb_true: tf.Tensor, rgb_pred: tf.Tensor, peak: float = REPORT_PEAK) -> tf.Tensor:
    """Per-image SSIM of RGB batches holding 0..255 values: 11x11 Gaussian window (sigma 1.5),
    valid region, channel mean; constants C1 = (0.01 peak)^2, C2 = (0.03 peak)^2."""
    return tf.image.ssim(rgb_true, rgb_pred, max_val=peak, filter_size=11, filter_sigma=1.5)


def colourfulness(rgb: tf.Tensor) -> tf.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness of RGB images (N, H, W, 3) holding 0..255 values.

    rg = R - G, yb = (R + G) / 2 - B, CF = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
    0 for a grayscale image; about 30-60 for ordinary colour photos.
    """
    rgb = tf.convert_to_tensor(rgb, tf.float32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    axes = [-2, -1]
    spread = tf.sqrt(tf.math.reduce_variance(rg, axes) + tf.math.reduce_variance(yb, axes))
    mean = tf.sqrt(tf.square(tf.reduce_mean(rg, axes)) + tf.square(tf.reduce_mean(yb, axes)))
    return spread + 0.3 * mean
