"""The report's test-time mode: the generator run as in training, without updating anything.

The report evaluates its generator in training mode: dropout on, BatchNorm on the statistics of
the current batch (and, for the ResNet-18 U-Net, a random noise channel z). `paper_mode_generator`
gives that behaviour as a pure function that exports to SavedModel and TFLite.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from pix2color.networks.resnet_unet import NoiseChannel
from pix2color.networks.unet import ChannelDropout


class BatchStatNormalization(layers.Layer):
    """A BatchNormalization layer's gamma and beta applied with the current batch's statistics.

    Leaves the moving averages alone (it never reads or updates them), so a model built with it
    is a pure function; mean and variance are built-in TFLite ops.
    """

    def __init__(self, source: layers.BatchNormalization, **kwargs):
        super().__init__(name=f"{source.name}_batchstats", **kwargs)
        self.source = source  # shares its variables; no copy

    def call(self, inputs, training=None, mask=None):  # `training` is ignored on purpose
        mean, variance = tf.nn.moments(inputs, axes=[0, 1, 2], keepdims=True)
        return tf.nn.batch_normalization(
            inputs, mean, variance, self.source.beta, self.source.gamma, self.source.epsilon
        )


def paper_mode_generator(generator: keras.Model) -> keras.Model:
    """The generator as the report evaluates it: dropout on, BatchNorm on the batch's statistics,
    and for the ResNet-18 U-Net a random noise channel z.

    Shares every weight with `generator` (no copy). Its output for an image depends on the other
    images of the batch (BatchNorm statistics) and on the random dropout masks or noise.
    """

    def swap(layer):
        if isinstance(layer, layers.BatchNormalization):
            return BatchStatNormalization(layer)
        if isinstance(layer, ChannelDropout):
            return ChannelDropout(layer.rate, always=True, name=f"{layer.name}_always")
        if isinstance(layer, NoiseChannel):
            return NoiseChannel(always=True, name=f"{layer.name}_always")
        return layer

    paper = keras.models.clone_model(generator, clone_function=swap, recursive=True)  # into nested encoders
    paper.name = f"{generator.name}_paper"
    return paper
