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
    return ssim_for_peaks(rgb_true, rgb_pred, (peak,))[0]


def ssim_for_peaks(rgb_true: tf.Tensor, rgb_pred: tf.Tensor, peaks: tuple[float, ...]) -> list[tf.Tensor]:
    """`ssim` for several peaks at the cost of one: the local statistics are shared, only the
    constants differ. The Gaussian window is applied as two 1-D passes (it is separable), which
    is `tf.image.ssim`'s window at a fifth of its cost."""
    rgb_true = tf.convert_to_tensor(rgb_true, tf.float32)
    rgb_pred = tf.convert_to_tensor(rgb_pred, tf.float32)
    taps = tf.exp(-0.5 * tf.square(tf.range(-5.0, 6.0) / 1.5))
    taps = taps / tf.reduce_sum(taps)  # (11,)
    channels = 3 * 5
    rows = tf.tile(tf.reshape(taps, [11, 1, 1, 1]), [1, 1, channels, 1])
    columns = tf.tile(tf.reshape(taps, [1, 11, 1, 1]), [1, 1, channels, 1])

    def local_mean(maps):  # valid region: (N, H - 10, W - 10, channels)
        maps = tf.nn.depthwise_conv2d(maps, rows, [1, 1, 1, 1], "VALID")
        return tf.nn.depthwise_conv2d(maps, columns, [1, 1, 1, 1], "VALID")

    stacked = tf.concat([rgb_true, rgb_pred, rgb_true * rgb_true, rgb_pred * rgb_pred, rgb_true * rgb_pred], -1)
    mean_true, mean_pred, square_true, square_pred, product = tf.split(local_mean(stacked), 5, axis=-1)
    variance_true = square_true - mean_true * mean_true
    variance_pred = square_pred - mean_pred * mean_pred
    covariance = product - mean_true * mean_pred
    results = []
    for peak in peaks:
        c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
        luminance = (2.0 * mean_true * mean_pred + c1) / (mean_true * mean_true + mean_pred * mean_pred + c1)
        structure = (2.0 * covariance + c2) / (variance_true + variance_pred + c2)
        results.append(tf.reduce_mean(luminance * structure, axis=[-3, -2, -1]))
    return results


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
