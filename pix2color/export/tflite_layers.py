"""The generator rebuilt from the ops LiteRT's XNNPACK delegate runs fastest, for the TFLite converter.

`export` converts `litert_generator(generator)` rather than the generator itself: the same
function and weights, with the transposed convolutions as phase convolutions and, for int8,
ReLUs as pooled ReLUs. TensorFlow runs the stock layers faster, so only TFLite files see these.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


class PhaseUpConvolution(layers.Layer):
    """A 4x4, stride-2, 'same' transposed convolution as four 2x2 convolutions, one per output
    phase (even/odd row and column), interleaved by depth-to-space. The same sums.

    XNNPACK runs these as ordinary convolutions, in float32 and int8, where its transposed
    convolution is slower and, in int8, splits the graph.
    """

    TAPS = ((3, 1), (2, 0))  # kernel taps giving even / odd outputs, from inputs (i-1, i) / (i, i+1)

    def __init__(self, source: layers.Conv2DTranspose, **kwargs):
        super().__init__(name=f"{source.name}_phases", **kwargs)
        self.source = source  # shares its variables; no copy

    def call(self, inputs):
        height, width = inputs.shape[1:3]
        kernel = tf.transpose(tf.cast(self.source.kernel, inputs.dtype), [0, 1, 3, 2])  # (4, 4, in, out)
        padded = tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])  # (N, H+2, W+2, in)
        phases = []  # outputs (2i + row, 2j + column), for (row, column) = 00, 01, 10, 11: (N, H, W, out) each
        for row in (0, 1):
            for column in (0, 1):
                taps = tf.gather(tf.gather(kernel, self.TAPS[row], axis=0), self.TAPS[column], axis=1)
                window = padded[:, row : row + height + 1, column : column + width + 1]
                phases.append(tf.nn.conv2d(window, taps, strides=1, padding="VALID"))
        outputs = tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2)  # (N, 2H, 2W, out)
        if self.source.use_bias:
            outputs = outputs + tf.cast(self.source.bias, outputs.dtype)
        return self.source.activation(outputs)

    @staticmethod
    def applies_to(layer: layers.Layer) -> bool:
        return (isinstance(layer, layers.Conv2DTranspose) and layer.kernel_size == (4, 4) and layer.strides == (2, 2)
                and layer.padding == "same" and layer.data_format == "channels_last")


class PooledReLU(layers.Layer):
    """ReLU as a 1x1 max-pool with the ReLU fused in: the same function.

    For int8 only: XNNPACK has no quantized RELU, so each one (the U-Net's, after every skip
    concatenation) would run outside the delegate and split the graph; a quantized MAX_POOL_2D
    with a fused ReLU it runs (docs/performance.md has the timing).
    """

    def call(self, inputs):
        return tf.nn.relu(tf.nn.max_pool2d(inputs, 1, 1, "VALID"))

    @staticmethod
    def applies_to(layer: layers.Layer) -> bool:
        return (type(layer) is layers.ReLU and layer.max_value is None and not layer.negative_slope
                and not layer.threshold)


def litert_generator(generator: keras.Model, quantized: bool) -> keras.Model:
    """`generator` rebuilt for the TFLite converter: shares every weight (no copy) and computes the
    same function; `quantized`: for a full-integer (int8) conversion."""

    def swap(layer):
        if PhaseUpConvolution.applies_to(layer):
            return PhaseUpConvolution(layer)
        if quantized and PooledReLU.applies_to(layer):
            return PooledReLU(name=f"{layer.name}_pooled")
        return layer

    lite = keras.models.clone_model(generator, clone_function=swap, recursive=True)
    lite.name = f"{generator.name}_litert"
    return lite
