"""The report's generator: the pix2pix U-Net, from normalised lightness to normalised ab.

Written from the report's own PyTorch code (`UNet` of github.com/Julien-Gustin/Image-Colorization);
tests/networks/test_unet.py checks it layer for layer against a table written from that code.
At S = 256 (depth 8; level 0 is the outermost):

    level  down block                               up block
    0      Conv 1 -> 64, stride 2                   ReLU, ConvT 128 -> 2 (bias), tanh
    1      LReLU, Conv 64 -> 128, BN                ReLU, ConvT 256 -> 64, BN, concat
    2      LReLU, Conv 128 -> 256, BN               ReLU, ConvT 512 -> 128, BN, concat
    3      LReLU, Conv 256 -> 512, BN               ReLU, ConvT 1024 -> 256, BN, concat
    4      LReLU, Conv 512 -> 512, BN               ReLU, ConvT 1024 -> 512, BN, concat
    5      LReLU, Conv 512 -> 512, BN               ReLU, ConvT 1024 -> 512, BN, dropout, concat
    6      LReLU, Conv 512 -> 512, BN               ReLU, ConvT 1024 -> 512, BN, dropout, concat
    7      LReLU, Conv 512 -> 512 (1x1 bottleneck)  ReLU, ConvT 512 -> 512, BN, dropout, concat

- convolutions are 4x4, stride 2; Keras' 'same' padding equals PyTorch's padding 1;
- the skip connection of level k carries the input of down block k *after* its LeakyReLU, as
  the reference's graph does (it applies that LeakyReLU in place, so its `torch.cat([x, ...])`
  sees the activated tensor); the ReLU that starts the next up block makes this the same
  function as a skip taken before the LeakyReLU;
- dropout drops whole channels, in the up blocks of the three innermost levels;
- convolutions followed by BatchNorm have no bias (BatchNorm cancels it);
- weights N(0, 0.02), BatchNorm gamma N(1, 0.02) and beta 0 (`common`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from pix2color.config import unet_depth
from pix2color.networks.common import LEAKY_SLOPE, batch_norm, normal_init, output_dtype

MAX_FILTERS = 512
DROPOUT_RATE = 0.5
DROPOUT_BLOCKS = 3  # up blocks with dropout: the bottleneck's own and the next two


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
        shape = tf.stack([tf.shape(inputs)[0], 1, 1, tf.shape(inputs)[-1]])  # one draw per image and channel
        if training:
            draw = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        else:
            draw = tf.random.uniform(shape, dtype=inputs.dtype)
        keep = tf.cast(draw >= self.rate, inputs.dtype)
        return inputs * keep / (1.0 - self.rate)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "always": self.always, "seed": self.seed}


def build_generator(
    image_size: int = 256,
    base_filters: int = 64,
    dropout: bool = True,
    input_channels: int = 1,
    output_channels: int = 2,
    sync_batch_norm: bool = False,
) -> keras.Model:
    """The U-Net from normalised lightness (S, S, 1) to normalised ab (S, S, 2) in [-1, 1].

    dropout=False: the report's "L1 only" model and its deterministic `UNet(stochastic=False)`.
    sync_batch_norm: BatchNorm statistics over the global batch (training on several replicas).
    """
    depth = unet_depth(image_size)  # log2(S): the innermost level is 1x1
    filters = [min(base_filters * 2**level, MAX_FILTERS) for level in range(depth)]
    dropout_levels = set(range(depth - DROPOUT_BLOCKS, depth)) if dropout else set()

    def down_convolution(level: int) -> layers.Conv2D:
        return layers.Conv2D(filters[level], 4, strides=2, padding="same", use_bias=False,
                             kernel_initializer=normal_init(), name=f"down{level}_conv")

    lightness = keras.Input((image_size, image_size, input_channels), name="lightness")  # (S, S, 1)
    x = down_convolution(0)(lightness)  # (S/2, S/2, 64)
    skips = {}  # level -> the input of down block `level`, concatenated by up block `level`
    for level in range(1, depth):
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"down{level}_lrelu")(x)
        skips[level] = x
        x = down_convolution(level)(x)  # (S / 2^(level+1), S / 2^(level+1), filters[level])
        if level < depth - 1:
            x = batch_norm(f"down{level}_bn", sync_batch_norm)(x)

    # x: the 1x1 bottleneck. Back up, innermost level first.
    for level in reversed(range(1, depth)):
        x = layers.ReLU(name=f"up{level}_relu")(x)
        x = layers.Conv2DTranspose(filters[level - 1], 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=normal_init(), name=f"up{level}_convt")(x)
        x = batch_norm(f"up{level}_bn", sync_batch_norm)(x)  # (S / 2^level, S / 2^level, filters[level - 1])
        if level in dropout_levels:
            x = ChannelDropout(DROPOUT_RATE, name=f"up{level}_dropout")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([skips[level], x])  # 2 x filters[level - 1] channels

    x = layers.ReLU(name="up0_relu")(x)
    x = layers.Conv2DTranspose(output_channels, 4, strides=2, padding="same", kernel_initializer=normal_init(),
                               name="up0_convt")(x)  # (S, S, 2)
    ab = layers.Activation("tanh", dtype=output_dtype(), name="ab")(x)
    return keras.Model(lightness, ab, name="generator")
