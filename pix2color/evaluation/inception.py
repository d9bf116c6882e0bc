"""Inception-v3 pool features of 8-bit RGB images, for FID and KID.

Keras' own `keras.applications.InceptionV3` (without its classifier, global average pooling:
2048 numbers an image), its input 299 x 299 (images resized bilinearly) scaled to [-1, 1] as
`keras.applications.inception_v3.preprocess_input` does. Three sources of weights:

- "imagenet": Keras' ImageNet weights, downloaded once (87 MB) into ~/.keras/models;
- a path: a local copy of that file (or of the one with the classifier), for machines offline;
- "none": random weights, seeded: the pipeline runs offline, but the distances then measure
  nothing (tests, and a check that a set-up works).

Published FIDs use the TF-slim Inception graph of 2015 (`pt_inception-2015-12-05`); Keras'
ImageNet weights are another training of the same architecture, so FIDs computed here compare
with each other, not with published ones (docs/evaluation.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings

import numpy as np
from pix2color.errors import FeatureWeightsError, first_line  # noqa: F401 - the module's errors, importable from here too

WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/{WEIGHTS_FILE}"
WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"  # as keras.applications.inception_v3 checks it
WEIGHTS_WITH_TOP_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"  # the file with the classifier
INPUT_SIZE = 299
FEATURES = 2048
NONE = "none"
IMAGENET = "imagenet"


class InceptionFeatures:
    """`features(rgb)`: (N, H, W, 3) RGB holding 0..255 values -> (N, 2048) float64 features."""

    def __init__(self, weights: str = IMAGENET):
        import tensorflow as tf

        self.weights = weights
        self.model = _inception(weights)
        self.random = weights == NONE

        @tf.function(autograph=False, reduce_retracing=True)
        def features(rgb):
            resized = tf.image.resize(tf.cast(rgb, tf.float32), (INPUT_SIZE, INPUT_SIZE), method="bilinear")
            return self.model(resized / 127.5 - 1.0, training=False)

        self._features = features

    @property
    def description(self) -> str:
        """Which weights, in words: said in the first line of every command that reports FID or KID."""
        if self.random:
            return ("FID / KID features: Inception-v3 with random weights (--feature-weights none): the distances "
                    "check the pipeline and measure nothing")
        if self.weights == IMAGENET:
            return "FID / KID features: Inception-v3, Keras' ImageNet weights (compare within pix2color only)"
        if _md5(self.weights) in (WEIGHTS_MD5, WEIGHTS_WITH_TOP_MD5):
            return f"FID / KID features: Inception-v3, Keras' ImageNet weights from {self.weights} (compare within pix2color only)"
        return (f"FID / KID features: Inception-v3, weights from {self.weights}, not Keras' ImageNet file (another MD5): "
                "compare only with numbers of the same file")

    def __call__(self, rgb) -> np.ndarray:
        return np.asarray(self._features(rgb), np.float64)


def _inception(weights: str):
    """The pooled Inception-v3 with `weights`, or FeatureWeightsError in one line (the caller adds
    how to do without: a flag of its own)."""
    import keras

    def build(source, include_top=False):
        with warnings.catch_warnings():  # a file of other weights: hundreds of Keras warnings before it fails
            warnings.simplefilter("ignore")
            model = keras.applications.InceptionV3(include_top=include_top, weights=source, pooling="avg",
                                                   input_shape=None if include_top else (INPUT_SIZE, INPUT_SIZE, 3))
        return model if not include_top else keras.Model(model.input, model.get_layer("avg_pool").output)

    if weights == NONE:
        keras.utils.set_random_seed(0)  # the same random features every time (callers seed after building)
        return build(None)
    if weights == IMAGENET:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # Keras' download lines: one line of ours instead
                weights = keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5)
        except Exception as error:  # noqa: BLE001 - Keras' download raises a bare Exception when offline
            reason = first_line(error, 160)
            reason = "no connection" if reason.startswith("URL fetch failure") else reason
            raise FeatureWeightsError(
                f"FID / KID need Inception-v3's ImageNet weights, which Keras could not download ({reason}): fetch "
                f"{WEIGHTS_URL} on a machine online and pass --feature-weights PATH (or put it in "
                f"~/.keras/models)") from None
        return build(weights)
    if not os.path.isfile(weights):
        raise FeatureWeightsError(f"--feature-weights {weights}: no such file (imagenet, none, or the path of "
                                  f"{WEIGHTS_FILE})")
    for include_top in (False, True):  # the file without the classifier, or the one with it
        try:
            return build(weights, include_top)
        except Exception:  # noqa: BLE001 - a file of other weights fails in many ways
            continue
    raise FeatureWeightsError(f"--feature-weights {weights}: not Inception-v3 weights Keras can load (expected "
                              f"{WEIGHTS_FILE}, or the file with the classifier)")


def _md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
