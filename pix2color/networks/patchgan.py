"""The report's discriminator: a PatchGAN on concat(lightness, ab), one logit per patch.

Written from the report's own PyTorch code (`PatchGAN` of github.com/Julien-Gustin/Image-
Colorization); tests/networks/test_patchgan.py checks it layer for layer. The 70x70 PatchGAN
(the default) at S = 256:

    layer   before  convolution                    after
    conv0           Conv 3 -> 64, 4x4, stride 2     LReLU          (128, 128, 64)
    conv1   LReLU   Conv 64 -> 128, stride 2        BN, LReLU      (64, 64, 128)
    conv2   LReLU   Conv 128 -> 256, stride 2       BN, LReLU      (32, 32, 256)
    conv3   LReLU   pad 1, Conv 256 -> 512, stride 1  BN, LReLU    (31, 31, 512)
    logits  LReLU   pad 1, Conv 512 -> 1, stride 1                 (30, 30, 1)

No sigmoid: the losses take logits. The convolutions followed by BatchNorm have no bias (the
reference gives them one, which BatchNorm cancels exactly).

BatchNorm is always `synchronized`, also on one device. R1 differentiates D twice, and Keras'
unsynchronized moments (tf.nn.moments) put a stop_gradient on the mean that is exact for a
first derivative but drops terms of the second: R1's gradient would come out wrong for every
layer before a BatchNorm. The synchronized moments (E[x^2] - E[x]^2 over an all-reduce, the
identity on one device) differentiate twice correctly; see
tests/training/test_gan.py::test_r1_gradient_through_batch_norm_matches_finite_differences.
"""

from __future__ import annotations

import keras
from keras import layers

from pix2color.config import PATCH_SIZES
from pix2color.networks.common import LEAKY_SLOPE, batch_norm, normal_init, output_dtype


def build_discriminator(
    image_size: int | None = None,
    patch_size: int = 70,
    base_filters: int = 64,
) -> keras.Model:
    """PatchGAN with a `patch_size` x `patch_size` receptive field (see `config.PATCH_SIZES`)."""
    if patch_size not in PATCH_SIZES:
        raise ValueError(f"patch size must be one of {sorted(PATCH_SIZES)} (got {patch_size})")
    n_layers = PATCH_SIZES[patch_size]

    lightness = keras.Input((image_size, image_size, 1), name="lightness")
    ab = keras.Input((image_size, image_size, 2), name="ab")
    x = layers.Concatenate(name="lab")([lightness, ab])  # (S, S, 3)

    if n_layers == 0:  # PixelGAN: 1x1 convolutions only
        x = layers.Conv2D(base_filters, 1, kernel_initializer=normal_init(), name="conv0")(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name="lrelu0")(x)
        x = layers.Conv2D(base_filters * 2, 1, use_bias=False, kernel_initializer=normal_init(), name="conv1")(x)
        x = batch_norm("bn1", synchronized=True)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name="lrelu1")(x)
        logits = layers.Conv2D(1, 1, kernel_initializer=normal_init(), dtype=output_dtype(), name="logits")(x)
        return keras.Model([lightness, ab], logits, name="discriminator")

    x = layers.Conv2D(base_filters, 4, strides=2, padding="same", kernel_initializer=normal_init(),
                      name="conv0")(x)  # (S/2, S/2, 64)
    x = layers.LeakyReLU(LEAKY_SLOPE, name="lrelu0")(x)
    for index in range(1, n_layers + 1):
        last = index == n_layers  # the last feature layer keeps the size (stride 1)
        if last:
            x = layers.ZeroPadding2D(1, name=f"pad{index}")(x)
        x = layers.Conv2D(base_filters * min(2**index, 8), 4, strides=1 if last else 2,
                          padding="valid" if last else "same", use_bias=False,
                          kernel_initializer=normal_init(), name=f"conv{index}")(x)
        x = batch_norm(f"bn{index}", synchronized=True)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"lrelu{index}")(x)
    x = layers.ZeroPadding2D(1, name="pad_logits")(x)
    logits = layers.Conv2D(1, 4, kernel_initializer=normal_init(), dtype=output_dtype(), name="logits")(x)
    return keras.Model([lightness, ab], logits, name="discriminator")  # (S/8 - 2, S/8 - 2, 1) at 70x70
