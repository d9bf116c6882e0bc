"""The report's pretrained variant (section VI.C): a U-Net decoder on an ImageNet ResNet-18 encoder.

The report's code builds it with fastai, `create_body(resnet18, pretrained=True, n_in=2,
cut=-2)` and `DynamicUnet(body, 2, (256, 256), y_range=(-1, 1))`, and feeds it concat(L, z)
with z ~ N(0, 1) of L's shape. Here, at image size S:

- Encoder: keras-hub's `ResNetBackbone` with the architecture of its `resnet_18_imagenet` preset
  (torchvision's ResNet-18 without pooling and classifier), on 2 input channels (L, z). Its
  first kernel is the pretrained one's first two input slices times 1.5 (fastai's rule for 2
  channels); every other weight is the pretrained one. Nothing is frozen.
- Decoder, fastai's `DynamicUnet` with its defaults: BatchNorm and ReLU on the encoder's output
  (S/32), two 3x3 conv+ReLU (512 -> 1024 -> 512); then for each resolution where the encoder
  changes size (S/16, S/8, S/4 and the stem's S/2: layer3, layer2, layer1, the stem's ReLU), a
  block: PixelShuffle upsampling (1x1 conv + ReLU with ICNR initialisation, depth-to-space),
  BatchNorm on the encoder's features there, concatenation, ReLU, two 3x3 conv+ReLU; a last
  PixelShuffle to S; concatenation with the input (L, z); a residual block (two 3x3 convs); a 1x1
  conv to 2 channels; a sigmoid scaled to (-1, 1).
- The caller gives only the lightness: `NoiseChannel` adds z. z ~ N(0, 1) in training and in
  the report's test-time (paper) mode; z = 0 in deterministic mode, so a photo always gets the
  same colours.

Initialisation as fastai: decoder convolutions He-normal (untruncated) with zero biases, the
upsampling convolutions ICNR (each group of 4 outputs that depth-to-space interleaves starts
with one kernel: nearest-neighbour upsampling), BatchNorm gamma 1 and beta 1e-3, the last 1x1
conv PyTorch's default (uniform +-1/sqrt(fan_in), bias N(0, 0.01)).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from pix2color.networks.common import DRAW_DTYPE, batch_norm, output_dtype
from pix2color.errors import EncoderWeightsError, first_line  # noqa: F401 - the module's errors, importable from here too

PRESET = "resnet_18_imagenet"
RESNET18 = dict(  # the resnet_18_imagenet preset's architecture
    input_conv_filters=[64],
    input_conv_kernel_sizes=[7],
    stackwise_num_filters=[64, 128, 256, 512],
    stackwise_num_blocks=[2, 2, 2, 2],
    stackwise_num_strides=[1, 2, 2, 2],
    block_type="basic_block",
    use_pre_activation=False,
)
FIRST_KERNEL = "conv1_conv/kernel"
TWO_CHANNEL_SCALE = 1.5  # fastai: a 2-channel first layer takes 1.5 x the pretrained first two slices
SKIPS = ("P4", "P3", "P2", "stem")  # the encoder features each decoder block concatenates, innermost first
ENCODER_WEIGHTS_HELP = (
    "give a local copy with --encoder-weights PATH (a keras-hub preset folder, or a .weights.h5 file of a "
    "ResNet-18 backbone), or train the encoder from scratch with --encoder-weights none"
)


@keras.saving.register_keras_serializable(package="pix2color")
class NoiseChannel(layers.Layer):
    """lightness (N, S, S, 1) -> concat(lightness, z) (N, S, S, 2).

    z ~ N(0, 1) when training or `always` (the report's test-time mode), z = 0 otherwise. In
    training z comes from Keras' seeded RNG, saved with the run (a resumed run draws the same
    z); at inference from the stateful `tf.random.normal`, TFLite's built-in
    RANDOM_STANDARD_NORMAL.
    """

    def __init__(self, always: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.always = always
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, lightness, training=None):
        if training:
            z = keras.random.normal(tf.shape(lightness), dtype=DRAW_DTYPE, seed=self.seed_generator)
        elif self.always:
            z = tf.random.normal(tf.shape(lightness), dtype=DRAW_DTYPE)
        else:
            z = tf.zeros_like(lightness)
        return tf.concat([lightness, tf.cast(z, lightness.dtype)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "always": self.always, "seed": self.seed}


@keras.saving.register_keras_serializable(package="pix2color")
class DepthToSpace(layers.Layer):
    """PixelShuffle: (N, H, W, 4C) -> (N, 2H, 2W, C); output (2h + i, 2w + j, c) is input
    channel (2i + j) * C + c (TensorFlow's order)."""

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, 2)


def _he_normal() -> keras.initializers.Initializer:
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")  # torch's kaiming_normal_


@keras.saving.register_keras_serializable(package="pix2color")
class ICNR(keras.initializers.Initializer):
    """He-normal kernels (1, 1, in, C) repeated for the 4 sub-pixels of each output channel, so
    the upsampling starts as nearest-neighbour (Aitken et al. 2017; fastai's `icnr_init`)."""

    def __call__(self, shape, dtype=None):
        height, width, inputs, outputs = shape
        base = _he_normal()((height, width, inputs, outputs // 4), dtype=dtype)
        return keras.ops.tile(base, [1, 1, 1, 4])  # channel (2i + j) * C + c <- base channel c

    def get_config(self):
        return {}


def _batch_norm(name: str, synchronized: bool) -> layers.BatchNormalization:
    """fastai's BatchNorm: gamma 1, beta 1e-3."""
    return batch_norm(name, synchronized, gamma_initializer="ones", beta_initializer=keras.initializers.Constant(1e-3))


def _conv_relu(filters: int, name: str):
    def apply(x):
        x = layers.Conv2D(filters, 3, padding="same", kernel_initializer=_he_normal(), name=name)(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    return apply


def _pixel_shuffle(filters: int, name: str):
    def apply(x):
        x = layers.Conv2D(filters * 4, 1, kernel_initializer=ICNR(), name=f"{name}_conv")(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
        return DepthToSpace(name=name)(x)

    return apply


def resnet18_backbone(input_channels: int, image_size: int | None = None):
    """keras-hub's ResNetBackbone with the resnet_18_imagenet architecture."""
    import keras_hub

    return keras_hub.models.ResNetBackbone(**RESNET18, image_shape=(image_size, image_size, input_channels))


def _short(error: Exception, length: int = 100) -> str:
    """An exception as one short line: its type and the start of its first line."""
    text = first_line(error) if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:length]}{'...' if len(text) > length else ''}" if text else type(error).__name__


def pretrained_resnet18_weights(encoder_weights: str) -> dict[str, np.ndarray]:
    """The 3-channel ResNet-18 weights by variable path, from 'imagenet' (keras-hub's
    resnet_18_imagenet preset, downloaded once into the keras-hub cache), a keras-hub preset
    folder, or a `.weights.h5` file saved from a ResNet-18 backbone."""
    import keras_hub

    path = Path(encoder_weights)
    if encoder_weights == "imagenet":
        try:
            backbone = keras_hub.models.ResNetBackbone.from_preset(PRESET)
        except Exception as error:  # noqa: BLE001 - kagglehub/requests raise many kinds when offline
            raise EncoderWeightsError(
                f"--encoder-weights imagenet: the ImageNet ResNet-18 weights (keras-hub preset {PRESET}) "
                f"could not be downloaded ({_short(error)}); {ENCODER_WEIGHTS_HELP}"
            ) from None
    elif path.is_dir():
        try:
            backbone = keras_hub.models.ResNetBackbone.from_preset(str(path))
        except Exception as error:  # noqa: BLE001
            raise EncoderWeightsError(
                f"--encoder-weights {path}: not a keras-hub ResNet preset folder ({_short(error)})"
            ) from None
    elif path.is_file() and path.name.endswith(".weights.h5"):
        backbone = resnet18_backbone(3)
        try:
            backbone.load_weights(str(path))
        except Exception as error:  # noqa: BLE001
            raise EncoderWeightsError(
                f"--encoder-weights {path}: not the weights of a ResNet-18 backbone ({_short(error)})"
            ) from None
    else:
        raise EncoderWeightsError(
            f"--encoder-weights {encoder_weights}: no such preset folder or .weights.h5 file "
            "(use imagenet, none, or a path)"
        )
    config = {key: backbone.get_config().get(key) for key in RESNET18}
    if {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()} != RESNET18:
        raise EncoderWeightsError(f"--encoder-weights {encoder_weights}: a ResNet, but not a ResNet-18 ({config})")
    return {variable.path: variable.numpy() for variable in backbone.weights}


def load_encoder_weights(encoder: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Copy 3-channel ResNet-18 weights into the (L, z) encoder: the first kernel's first two
    input slices times 1.5, every other weight as it is."""
    for variable in encoder.weights:
        value = weights[variable.path]
        if variable.path == FIRST_KERNEL:
            value = value[:, :, : variable.shape[2], :] * TWO_CHANNEL_SCALE
        variable.assign(value)


def _encoder(image_size: int, encoder_weights: str, synchronized: bool) -> keras.Model:
    """(N, S, S, 2) -> [stem (S/2), P2 (S/4), P3 (S/8), P4 (S/16), P5 (S/32)]."""
    backbone = resnet18_backbone(2, image_size)
    features = keras.Model(
        backbone.input,
        [backbone.get_layer("conv1_relu").output] + [backbone.pyramid_outputs[f"P{k}"] for k in (2, 3, 4, 5)],
        name="resnet18_encoder",
    )
    if synchronized:  # BatchNorm over the global batch when training on several replicas
        def synchronize(layer):
            if isinstance(layer, layers.BatchNormalization):
                return layers.BatchNormalization.from_config({**layer.get_config(), "synchronized": True})
            return layer.__class__.from_config(layer.get_config())

        synced = keras.models.clone_model(features, clone_function=synchronize)
        synced.set_weights(features.get_weights())
        features = synced
    if encoder_weights != "none":
        load_encoder_weights(features, pretrained_resnet18_weights(encoder_weights))
    return features


def build_resnet18_generator(
    image_size: int = 256,
    encoder_weights: str = "imagenet",
    sync_batch_norm: bool = False,
) -> keras.Model:
    """The ResNet-18 U-Net from normalised lightness (S, S, 1) to normalised ab (S, S, 2) in (-1, 1).

    encoder_weights: 'imagenet', 'none' (keras-hub's random initialisation), or a path to a
    keras-hub preset folder or a `.weights.h5` file of a ResNet-18 backbone.
    """
    lightness = keras.Input((image_size, image_size, 1), name="lightness")
    lightness_noise = NoiseChannel(name="noise")(lightness)  # (S, S, 2)
    stem, p2, p3, p4, p5 = _encoder(image_size, encoder_weights, sync_batch_norm)(lightness_noise)
    skips = {"stem": stem, "P2": p2, "P3": p3, "P4": p4}

    x = _batch_norm("middle_bn", sync_batch_norm)(p5)  # (S/32, S/32, 512)
    x = layers.ReLU(name="middle_relu")(x)
    x = _conv_relu(1024, "middle_conv1")(x)
    x = _conv_relu(512, "middle_conv2")(x)
    for index, skip_name in enumerate(SKIPS):
        skip = skips[skip_name]
        up_filters = x.shape[-1] // 2
        up = _pixel_shuffle(up_filters, f"up{index}_shuffle")(x)  # (2h, 2w, up_filters)
        normalised_skip = _batch_norm(f"up{index}_skip_bn", sync_batch_norm)(skip)
        x = layers.Concatenate(name=f"up{index}_concat")([up, normalised_skip])
        x = layers.ReLU(name=f"up{index}_relu")(x)
        channels = x.shape[-1] if index < len(SKIPS) - 1 else x.shape[-1] // 2  # fastai halves the last block
        x = _conv_relu(channels, f"up{index}_conv1")(x)
        x = _conv_relu(channels, f"up{index}_conv2")(x)  # 512 (S/16), 384 (S/8), 256 (S/4), 96 (S/2)

    x = _pixel_shuffle(x.shape[-1], "last_shuffle")(x)  # (S, S, 96)
    x = layers.Concatenate(name="input_concat")([x, lightness_noise])  # (S, S, 98)
    residual = _conv_relu(x.shape[-1], "res_conv1")(x)
    residual = layers.Conv2D(x.shape[-1], 3, padding="same", kernel_initializer=_he_normal(), name="res_conv2")(residual)
    x = layers.ReLU(name="res_relu")(layers.Add(name="res_add")([residual, x]))
    x = layers.Conv2D(
        2, 1, name="out_conv",
        kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),  # torch's default
        bias_initializer=keras.initializers.RandomNormal(0.0, 0.01),
    )(x)
    x = layers.Activation("sigmoid", name="out_sigmoid")(x)
    ab = layers.Rescaling(2.0, offset=-1.0, dtype=output_dtype(), name="ab")(x)  # sigmoid into (-1, 1)
    return keras.Model(lightness, ab, name="resnet18_unet")
