"""Faster CPU forms of two stock layers, swapped in by `fast_layers` for training and inference.

The networks are built from stock Keras layers (`unet`, `patchgan`), and that is what is saved
and checkpointed. On CPUs (oneDNN) two kinds of layer are slow for their arithmetic; each is
computed here as a matrix product and a sum of shifted taps: the same sums, in another order.

- `MatmulUpConvolution`: the U-Net's 4x4, stride-2 transposed convolutions on small inputs
  (the innermost up blocks, weight-heavy and position-poor, where the convolution primitive
  spends most of its time);
- `MatmulNarrowConvolution`: a stride-1 'valid' convolution to a few channels, the PatchGAN's
  logits, whose filter gradient the convolution primitive computes slowly.

tests/networks/test_cpu_layers.py proves each equal to the stock layer it replaces (outputs,
gradients, and for D's logits R1's second derivatives). docs/performance.md has the timings.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


class MatmulUpConvolution(layers.Layer):
    """A stock 4x4, stride-2, 'same' `Conv2DTranspose` computed, on inputs of at most
    `MATMUL_PIXELS` positions, as one matrix product followed by the overlap-add of its 4x4
    taps; on larger inputs (where the convolution is faster) as the stock layer.

    Shares the stock layer's variables (no copy) and takes its name.
    """

    MATMUL_PIXELS = 64  # 8 x 8

    def __init__(self, source: layers.Conv2DTranspose, **kwargs):
        super().__init__(name=source.name, dtype=source.dtype_policy, **kwargs)
        self.source = source

    @staticmethod
    def applies_to(layer: layers.Layer) -> bool:
        return (isinstance(layer, layers.Conv2DTranspose) and layer.kernel_size == (4, 4)
                and layer.strides == (2, 2) and layer.padding == "same" and layer.data_format == "channels_last"
                and layer.dilation_rate == (1, 1) and layer.output_padding is None)

    def call(self, inputs):
        height, width, channels = inputs.shape[1:]
        if height is None or width is None or height * width > self.MATMUL_PIXELS:
            return self.source(inputs)
        kernel = tf.cast(self.source.kernel, inputs.dtype)  # (4, 4, out, in)
        outputs = kernel.shape[2]
        # Every input position's 16 taps at once: (N, H, W, 4, 4, out). The kernel, as stored,
        # is the product's left operand and the small result is transposed: copying the kernel
        # transposed into a right operand (32 MB for 1024 -> 512) is slower than the product.
        matrix = tf.reshape(kernel, [16 * outputs, channels])
        taps = tf.transpose(tf.matmul(matrix, tf.reshape(inputs, [-1, channels]), transpose_b=True))  # (N*H*W, 16*out)
        taps = tf.reshape(taps, [-1, height, width, 4, 4, outputs])
        # Overlap-add, rows then columns: output 2i takes tap 1 of input i and tap 3 of input i-1;
        # output 2i+1 takes tap 2 of input i and tap 0 of input i+1.
        rows = overlap_add(taps, axis=1, tap_axis=3)  # (N, H, 2, W, 4, out)
        columns = overlap_add(rows, axis=3, tap_axis=4)  # (N, H, 2, W, 2, out)
        result = tf.reshape(columns, [-1, 2 * height, 2 * width, outputs])  # (N, 2H, 2W, out)
        if self.source.use_bias:
            result = result + tf.cast(self.source.bias, result.dtype)
        return self.source.activation(result)


class MatmulNarrowConvolution(layers.Layer):
    """A stock stride-1, 'valid' `Conv2D` to at most `MAX_FILTERS` channels computed as one
    matrix product from the input channels to every tap's outputs, then the sum of the taps'
    shifted windows.

    Shares the stock layer's variables (no copy) and takes its name.
    """

    MAX_FILTERS = 8

    def __init__(self, source: layers.Conv2D, **kwargs):
        super().__init__(name=source.name, dtype=source.dtype_policy, **kwargs)
        self.source = source

    @staticmethod
    def applies_to(layer: layers.Layer) -> bool:
        return (isinstance(layer, layers.Conv2D) and layer.filters <= MatmulNarrowConvolution.MAX_FILTERS
                and layer.strides == (1, 1) and layer.padding == "valid" and layer.dilation_rate == (1, 1)
                and layer.groups == 1 and layer.data_format == "channels_last")

    def call(self, inputs):
        height, width, channels = inputs.shape[1:]
        if height is None or width is None:
            return self.source(inputs)
        source = self.source
        rows, columns = source.kernel_size
        kernel = tf.cast(source.kernel, inputs.dtype)  # (rows, columns, in, out)
        matrix = tf.reshape(tf.transpose(kernel, [2, 0, 1, 3]), [channels, rows * columns * source.filters])
        taps = tf.reshape(tf.matmul(tf.reshape(inputs, [-1, channels]), matrix),
                          [-1, height, width, rows * columns, source.filters])  # (N, H, W, taps, out)
        out_height, out_width = height - rows + 1, width - columns + 1
        result = tf.add_n([taps[:, i : i + out_height, j : j + out_width, i * columns + j]
                           for i in range(rows) for j in range(columns)])  # (N, H - rows + 1, W - columns + 1, out)
        if source.use_bias:
            result = result + tf.cast(source.bias, result.dtype)
        return source.activation(result)


def overlap_add(taps: tf.Tensor, axis: int, tap_axis: int) -> tf.Tensor:
    """Along `axis`, interleave even outputs (tap 1 at i + tap 3 at i-1) and odd outputs (tap 2
    at i + tap 0 at i+1), consuming `tap_axis`; the new size-2 axis follows `axis`. (Splits and
    concatenations, whose gradients are concatenations and splits.)"""
    tap0, tap1, tap2, tap3 = tf.unstack(taps, axis=tap_axis)
    size = taps.shape[axis]

    def shifted(tensor, down: bool):  # down: element i takes element i - 1 (zero at the border)
        zeros = tf.zeros_like(tf.split(tensor, [1, size - 1], axis)[0])
        if down:
            return tf.concat([zeros, tf.split(tensor, [size - 1, 1], axis)[0]], axis)
        return tf.concat([tf.split(tensor, [1, size - 1], axis)[1], zeros], axis)

    even = tap1 + shifted(tap3, down=True)
    odd = tap2 + shifted(tap0, down=False)
    return tf.stack([even, odd], axis=axis + 1)


def fast_layers(model: keras.Model) -> keras.Model:
    """`model` with its slow CPU layers computed the fast way: the same function, every weight
    shared (no copy), every other layer the same object, nested models included.

    Applied by `training.run.build_trainer` (the trainer computes with it; the stock networks are
    what is checkpointed and saved) and by `loading.load_network` (inference in TensorFlow).
    Not by `export`: the SavedModel keeps the stock layers, and TFLite has its own swap
    (`pix2color.export.tflite_layers`).
    """

    def swap(layer):
        if MatmulUpConvolution.applies_to(layer):
            return MatmulUpConvolution(layer)
        if MatmulNarrowConvolution.applies_to(layer):
            return MatmulNarrowConvolution(layer)
        return layer

    fast = keras.models.clone_model(model, clone_function=swap, recursive=True)
    fast.name = model.name
    return fast
