"""The two networks of the report: a pix2pix U-Net generator and a PatchGAN discriminator.

Both are Keras functional models built from the report's own PyTorch code (`UNet` /
`PatchGAN` of github.com/Julien-Gustin/Image-Colorization); `tests/test_models.py` checks them
layer for layer against a table written from that code:

- convolutions are 4x4; 'same' padding with stride 2 equals PyTorch's padding 1;
- the generator's skip connections carry the encoder features *after* the next level's
  LeakyReLU, as the reference's graph does (it applies that LeakyReLU in place, so its
  `torch.cat([x, ...])` sees the activated tensor); the ReLU that starts the next up block
  makes this the same function as a skip taken before the LeakyReLU;
- dropout (whole channels) sits in the up blocks of the three innermost levels;
- generator convolutions followed by BatchNorm have no bias; so do the discriminator's
  (the reference gives them one, which BatchNorm cancels exactly);
- weights are N(0, 0.02), BatchNorm gamma N(1, 0.02) and beta 0, one initializer per layer
  (a shared initializer instance would give every layer of one shape the same kernel);
- BatchNorm uses PyTorch's momentum (0.1 there, 0.9 in Keras' convention) and epsilon 1e-5.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from pix2color.config import GENERATORS, PATCH_SIZES, unet_depth  # noqa: F401 - also read from here

MAX_FILTERS = 512
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
LEAKY_SLOPE = 0.2  # the report's slope; Keras' default is 0.3
DROPOUT_RATE = 0.5
DROPOUT_BLOCKS = 3  # up blocks with dropout: the bottleneck's own and the next two


def _conv_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def output_dtype() -> str | None:
    """Outputs stay float32 under mixed precision (losses and metrics need the range);
    otherwise they follow the global policy (float32, or float64 in exactness tests)."""
    return "float32" if keras.config.dtype_policy().name.startswith("mixed") else None


def _batch_norm(name: str, synchronized: bool = False) -> layers.BatchNormalization:
    return layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        synchronized=synchronized,  # statistics over the global batch when training on replicas
        name=name,
    )


@keras.saving.register_keras_serializable(package="pix2color")
class ChannelDropout(layers.Layer):
    """Drops whole feature maps (like `SpatialDropout2D`, as the reference code does).

    In training the masks come from Keras' seeded RNG, whose state is saved with the run, so a
    resumed run draws the masks the uninterrupted run would have. At inference (`always`: the
    report's test-time noise) they come from the stateful `tf.random.uniform`, so the model
    still converts to TFLite with built-in ops only.
    """

    def __init__(self, rate: float = DROPOUT_RATE, always: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.always = always  # drop at inference too (the report's test-time noise)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not (training or self.always) or self.rate == 0:
            return inputs
        shape = tf.stack([tf.shape(inputs)[0], 1, 1, tf.shape(inputs)[-1]])
        if training:
            draw = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        else:
            draw = tf.random.uniform(shape, dtype=inputs.dtype)
        keep = tf.cast(draw >= self.rate, inputs.dtype)
        return inputs * keep / (1.0 - self.rate)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "always": self.always, "seed": self.seed}


@keras.saving.register_keras_serializable(package="pix2color")
class UpConvolution(layers.Conv2DTranspose):
    """The U-Net's 4x4, stride-2 transposed convolution (PyTorch's padding 1 = Keras' 'same').

    The same layer and weights as `Conv2DTranspose`. On small inputs (up to `MATMUL_PIXELS`
    positions: the innermost up blocks) it is computed as one matrix product followed by the
    overlap-add of its 4x4 taps: on CPUs (oneDNN) the convolution primitive spends most of its
    time on these weight-heavy, position-poor layers (measured here, 1024 -> 512 channels from
    2x2: 16.9 ms against 5.5 ms; from 16x16 the convolution is faster). The sums are the same,
    in another order.
    """

    MATMUL_PIXELS = 64  # 8 x 8

    def call(self, inputs):
        height, width, channels = inputs.shape[1:]
        if (height is None or width is None or height * width > self.MATMUL_PIXELS
                or self.kernel_size != (4, 4) or self.strides != (2, 2) or self.padding != "same"
                or self.data_format != "channels_last"):
            return super().call(inputs)
        kernel = tf.cast(self.kernel, inputs.dtype)  # (4, 4, out, in)
        outputs = kernel.shape[2]
        # Every input position's 16 taps at once: (N, H, W, 4, 4, out). The kernel, as stored,
        # is the product's left operand and the small result is transposed: copying the kernel
        # transposed into a right operand (32 MB for 1024 -> 512) took a third of a batch-1
        # forward pass. Four innermost layers, forward and backward at batch 4: 210 -> 136 ms.
        matrix = tf.reshape(kernel, [16 * outputs, channels])
        taps = tf.transpose(tf.matmul(matrix, tf.reshape(inputs, [-1, channels]), transpose_b=True))  # (N*H*W, 16*out)
        taps = tf.reshape(taps, [-1, height, width, 4, 4, outputs])
        # Overlap-add, rows then columns: output 2i takes tap 1 of input i and tap 3 of input i-1;
        # output 2i+1 takes tap 2 of input i and tap 0 of input i+1.
        rows = _overlap_add(taps, axis=1, tap_axis=3)  # (N, H, 2, W, 4, out)
        columns = _overlap_add(rows, axis=3, tap_axis=4)  # (N, H, 2, W, 2, out)
        result = tf.reshape(columns, [-1, 2 * height, 2 * width, outputs])
        if self.use_bias:
            result = result + tf.cast(self.bias, result.dtype)
        return result


@keras.saving.register_keras_serializable(package="pix2color")
class NarrowConvolution(layers.Conv2D):
    """A stride-1, 'valid' convolution to a few channels: the PatchGAN's logits (512 -> 1, 4x4).

    The same layer and weights as `Conv2D`, computed as one matrix product from the input
    channels to every tap's outputs, then the sum of the taps' shifted windows. On CPUs the
    convolution primitive with one output channel is slow, its filter gradient above all (a
    profile put it at ~10% of a step's convolution time for 0.2% of the arithmetic); measured
    here for D's logits at 256 px, forward + gradients + R1's double backward: 46.5 ms against
    8.7 ms. The sums are the same, in another order.
    """

    MAX_FILTERS = 8

    def call(self, inputs):
        height, width, channels = inputs.shape[1:]
        if (height is None or width is None or self.filters > self.MAX_FILTERS or self.strides != (1, 1)
                or self.padding != "valid" or self.dilation_rate != (1, 1) or self.groups != 1
                or self.data_format != "channels_last"):
            return super().call(inputs)
        rows, columns = self.kernel_size
        kernel = tf.cast(self.kernel, inputs.dtype)  # (rows, columns, in, out)
        matrix = tf.reshape(tf.transpose(kernel, [2, 0, 1, 3]), [channels, rows * columns * self.filters])
        taps = tf.reshape(tf.matmul(tf.reshape(inputs, [-1, channels]), matrix),
                          [-1, height, width, rows * columns, self.filters])  # (N, H, W, taps, out)
        out_height, out_width = height - rows + 1, width - columns + 1
        result = tf.add_n([taps[:, i : i + out_height, j : j + out_width, i * columns + j]
                           for i in range(rows) for j in range(columns)])
        if self.use_bias:
            result = result + tf.cast(self.bias, result.dtype)
        return result


def _overlap_add(taps: tf.Tensor, axis: int, tap_axis: int) -> tf.Tensor:
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


class BatchStatNormalization(layers.Layer):
    """A BatchNormalization layer's gamma and beta applied with the current batch's statistics.

    The report runs its generator in training mode at test time; this layer gives that
    behaviour without updating (or even touching) the moving averages, so a model built with it
    is a pure function that exports to SavedModel and TFLite (mean/variance are built-in ops).
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

    from pix2color.resnet_unet import NoiseChannel

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


class PhaseUpConvolution(layers.Layer):
    """A 4x4, stride-2, 'same' transposed convolution as four 2x2 convolutions, one per output
    phase (even/odd row and column), interleaved by depth-to-space. The same sums.

    For LiteRT only: XNNPACK runs these as ordinary convolutions, in float32 and int8, where its
    transposed convolution is slower and, in int8, splits the graph (TensorFlow is faster with
    the transposed convolution, so training never sees this layer).
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

    For int8 LiteRT only: XNNPACK has no quantized RELU, so each one (the U-Net's, after every
    skip concatenation) ran outside the delegate and split the graph; a quantized MAX_POOL_2D
    with a fused ReLU it runs. Measured here, 256 px U-Net, int8: 0.052 -> 0.021 s per image.
    """

    def call(self, inputs):
        return tf.nn.relu(tf.nn.max_pool2d(inputs, 1, 1, "VALID"))

    @staticmethod
    def applies_to(layer: layers.Layer) -> bool:
        return (type(layer) is layers.ReLU and layer.max_value is None and not layer.negative_slope
                and not layer.threshold)


def litert_generator(generator: keras.Model, quantized: bool) -> keras.Model:
    """`generator` rebuilt from the ops LiteRT's XNNPACK runs fastest, for the TFLite converter.

    Shares every weight (no copy) and computes the same function; `quantized`: for a full-integer
    (int8) conversion.
    """

    def swap(layer):
        if PhaseUpConvolution.applies_to(layer):
            return PhaseUpConvolution(layer)
        if quantized and PooledReLU.applies_to(layer):
            return PooledReLU(name=f"{layer.name}_pooled")
        return layer

    lite = keras.models.clone_model(generator, clone_function=swap, recursive=True)
    lite.name = f"{generator.name}_litert"
    return lite


def build_generator(
    image_size: int = 256,
    base_filters: int = 64,
    dropout: bool = True,
    input_channels: int = 1,
    output_channels: int = 2,
    sync_batch_norm: bool = False,
) -> keras.Model:
    """U-Net from normalised lightness (S, S, 1) to normalised ab (S, S, 2) in [-1, 1].

    Level k (0 = outermost) is a down block and its mirror up block. Down: LeakyReLU(0.2) (not
    on level 0), Conv stride 2, BatchNorm (not on level 0 nor the innermost 1x1 level). Up:
    ReLU, ConvTranspose stride 2, BatchNorm, channel dropout on the `DROPOUT_BLOCKS` innermost
    levels, then concatenation with level k's input (the LeakyReLU output); level 0's up block
    is ConvTranspose to 2 channels with a bias, then tanh.
    """
    depth = unet_depth(image_size)
    filters = [min(base_filters * 2**level, MAX_FILTERS) for level in range(depth)]
    dropout_levels = set(range(depth - DROPOUT_BLOCKS, depth)) if dropout else set()

    def down_conv(level, x):
        return layers.Conv2D(
            filters[level], 4, strides=2, padding="same", use_bias=False,
            kernel_initializer=_conv_init(), name=f"down{level}_conv",
        )(x)

    lightness = keras.Input((image_size, image_size, input_channels), name="lightness")
    x = down_conv(0, lightness)  # (S/2, S/2, 64)
    skips = {}  # level -> the input of down block `level`, concatenated by up block `level`
    for level in range(1, depth):
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"down{level}_lrelu")(x)
        skips[level] = x
        x = down_conv(level, x)  # (S / 2^(level+1), S / 2^(level+1), filters[level])
        if level < depth - 1:
            x = _batch_norm(f"down{level}_bn", sync_batch_norm)(x)

    # x: the 1x1 bottleneck. Walk back up, innermost level first.
    for level in reversed(range(1, depth)):
        x = layers.ReLU(name=f"up{level}_relu")(x)
        x = UpConvolution(
            filters[level - 1], 4, strides=2, padding="same", use_bias=False,
            kernel_initializer=_conv_init(), name=f"up{level}_convt",
        )(x)
        x = _batch_norm(f"up{level}_bn", sync_batch_norm)(x)
        if level in dropout_levels:
            x = ChannelDropout(DROPOUT_RATE, name=f"up{level}_dropout")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([skips[level], x])  # 2 x filters[level - 1] channels

    x = layers.ReLU(name="up0_relu")(x)
    x = UpConvolution(
        output_channels, 4, strides=2, padding="same", kernel_initializer=_conv_init(),
        name="up0_convt",
    )(x)
    ab = layers.Activation("tanh", dtype=output_dtype(), name="ab")(x)  # (S, S, 2)
    return keras.Model(lightness, ab, name="generator")


def build_named_generator(
    kind: str = "unet",
    image_size: int = 256,
    dropout: bool = True,
    sync_batch_norm: bool = False,
    encoder_weights: str = "none",
) -> keras.Model:
    """The generator `kind` (see GENERATORS). dropout: the U-Net's (the ResNet-18 U-Net has
    none); encoder_weights: the ResNet-18 U-Net's ("imagenet", "none" or a path)."""
    if kind == "resnet18":
        from pix2color.resnet_unet import build_resnet18_generator

        return build_resnet18_generator(image_size, encoder_weights, sync_batch_norm)
    if kind != "unet":
        raise ValueError(f"generator must be one of {GENERATORS} (got {kind!r})")
    return build_generator(image_size, dropout=dropout, sync_batch_norm=sync_batch_norm)


def build_discriminator(
    image_size: int | None = None,
    patch_size: int = 70,
    base_filters: int = 64,
) -> keras.Model:
    """PatchGAN on concat(lightness, ab): one logit per `patch_size` x `patch_size` patch.

    70x70 (default): C64 (no BN) - C128 - C256 (stride 2) - C512 (stride 1) - C1 (stride 1),
    LeakyReLU 0.2, no sigmoid (the losses take logits). 30x30 logits at S = 256.

    D's BatchNorm layers are always `synchronized`, also on one device. R1 differentiates D
    twice, and Keras' unsynchronized moments (tf.nn.moments) put a stop_gradient on the mean
    that is exact for a first derivative but drops terms of the second: R1's gradient came out
    wrong for every layer before a BatchNorm. The synchronized moments (E[x^2] - E[x]^2 over an
    all-reduce, the identity on one device) differentiate twice correctly; see
    tests/test_gan.py::test_r1_gradient_through_batch_norm_matches_finite_differences.
    """
    if patch_size not in PATCH_SIZES:
        raise ValueError(f"patch size must be one of {sorted(PATCH_SIZES)} (got {patch_size})")
    n_layers = PATCH_SIZES[patch_size]

    lightness = keras.Input((image_size, image_size, 1), name="lightness")
    ab = keras.Input((image_size, image_size, 2), name="ab")
    x = layers.Concatenate(name="lab")([lightness, ab])  # (S, S, 3)

    if n_layers == 0:  # PixelGAN: 1x1 convolutions only
        x = layers.Conv2D(base_filters, 1, kernel_initializer=_conv_init(), name="conv0")(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name="lrelu0")(x)
        x = layers.Conv2D(base_filters * 2, 1, use_bias=False, kernel_initializer=_conv_init(), name="conv1")(x)
        x = _batch_norm("bn1", synchronized=True)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name="lrelu1")(x)
        logits = NarrowConvolution(1, 1, kernel_initializer=_conv_init(), dtype=output_dtype(), name="logits")(x)
        return keras.Model([lightness, ab], logits, name="discriminator")

    x = layers.Conv2D(
        base_filters, 4, strides=2, padding="same", kernel_initializer=_conv_init(), name="conv0"
    )(x)
    x = layers.LeakyReLU(LEAKY_SLOPE, name="lrelu0")(x)
    for index in range(1, n_layers + 1):
        last = index == n_layers  # the last feature layer keeps the size (stride 1)
        if last:
            x = layers.ZeroPadding2D(1, name=f"pad{index}")(x)
        x = layers.Conv2D(
            base_filters * min(2**index, 8), 4, strides=1 if last else 2,
            padding="valid" if last else "same", use_bias=False,
            kernel_initializer=_conv_init(), name=f"conv{index}",
        )(x)
        x = _batch_norm(f"bn{index}", synchronized=True)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"lrelu{index}")(x)
    x = layers.ZeroPadding2D(1, name="pad_logits")(x)
    logits = NarrowConvolution(1, 4, kernel_initializer=_conv_init(), dtype=output_dtype(), name="logits")(x)
    return keras.Model([lightness, ab], logits, name="discriminator")
