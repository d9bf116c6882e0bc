"""CIE Lab colour space: the one place where RGB <-> Lab and the network's normalisation live.

The network sees the lightness L and predicts the chroma channels a, b (CIE Lab, D65, 2 degree
observer). Values are normalised as in the report's code: ``L / 50 - 1`` and ``ab / 110``, both
roughly in [-1, 1]. The conversions are tensorflow-io's (`tfio.experimental.color`), which are
plain TensorFlow ops, so they run inside `tf.data`, in graphs and on any device.

Note: gradients through `rgb_to_lab` are NaN at pure-black pixels (cube root at 0). Nothing in
training differentiates through the conversion; keep it that way.
"""

from __future__ import annotations

import warnings

import tensorflow as tf


def _import_tfio_color():
    """Import tfio's colour ops without the noise its native libraries make.

    tensorflow-io ships native plugins built for an older TensorFlow; importing it prints
    "unable to load libtensorflow_io_plugins.so" warnings although the colour ops (pure TF)
    work. Those warnings are silenced here; a failed import is a clear error.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"tensorflow_io(\.|$)")
            warnings.filterwarnings("ignore", message=r".*(libtensorflow_io|file system plugins).*")
            from tensorflow_io.python.experimental import color_ops
    except Exception as error:  # noqa: BLE001 - any import failure means the same to the user
        raise ImportError(
            "pix2color needs tensorflow-io for its Lab colour conversion, and importing it failed "
            f"({type(error).__name__}: {error}). Install it with: pip install 'tensorflow-io>=0.37'"
        ) from error
    return color_ops


_color_ops = _import_tfio_color()

L_SCALE = 50.0  # L in [0, 100]  ->  L / 50 - 1 in [-1, 1]
AB_SCALE = 110.0  # a, b in about [-110, 110]  ->  ab / 110 in about [-1, 1]


def rgb_to_lab(rgb: tf.Tensor) -> tf.Tensor:
    """RGB floats in [0, 1], shape (..., 3) -> Lab (L in [0, 100], a and b about +-110)."""
    return _color_ops.rgb_to_lab(tf.convert_to_tensor(rgb, tf.float32))


def lab_to_rgb(lab: tf.Tensor) -> tf.Tensor:
    """Lab (..., 3) -> RGB in [0, 1], never NaN.

    L is clipped to [0, 100] and a, b to +-AB_SCALE first (a generator's tanh output can reach
    the edges), and the result is clipped to [0, 1]: Lab covers colours that sRGB cannot show.
    """
    lab = tf.convert_to_tensor(lab, tf.float32)
    lightness = tf.clip_by_value(lab[..., :1], 0.0, 100.0)
    ab = tf.clip_by_value(lab[..., 1:], -AB_SCALE, AB_SCALE)
    rgb = _color_ops.lab_to_rgb(tf.concat([lightness, ab], axis=-1))
    return tf.clip_by_value(rgb, 0.0, 1.0)


def normalize_lab(lab: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Lab (..., 3) -> (lightness (..., 1) in [-1, 1], ab (..., 2) in about [-1, 1])."""
    lightness = lab[..., :1] / L_SCALE - 1.0
    ab = lab[..., 1:] / AB_SCALE
    return lightness, ab


def denormalize_lab(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """Inverse of `normalize_lab`: (lightness, ab) in network units -> Lab (..., 3)."""
    lightness = tf.convert_to_tensor(lightness, tf.float32)
    ab = tf.convert_to_tensor(ab, tf.float32)
    return tf.concat([(lightness + 1.0) * L_SCALE, ab * AB_SCALE], axis=-1)


def rgb_to_model_inputs(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """RGB floats in [0, 1] -> (lightness, ab) in network units."""
    return normalize_lab(rgb_to_lab(rgb))


def model_outputs_to_rgb(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """(lightness, ab) in network units -> RGB floats in [0, 1]."""
    return lab_to_rgb(denormalize_lab(lightness, ab))


def mean_chroma(rgb: tf.Tensor) -> tf.Tensor:
    """Mean Lab chroma sqrt(a^2 + b^2) over the pixels of RGB images (..., H, W, 3) in [0, 1].

    Grayscale photos (stored as RGB or not) have a chroma near 0; colour photos above ~4.
    """
    ab = rgb_to_lab(rgb)[..., 1:]
    return tf.reduce_mean(tf.norm(ab, axis=-1), axis=[-2, -1])
