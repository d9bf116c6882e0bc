import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import trainable_count
from layer_table import LEAKY, RELU, assert_matches_reference, layer_table

from pix2color.config import unet_depth
from pix2color.networks import build_discriminator, build_generator
from pix2color.networks.unet import ChannelDropout


@pytest.fixture(scope="module")
def generator_256():
    return build_generator(256)


def test_report_sizes_at_256(generator_256):
    discriminator = build_discriminator(256)
    assert generator_256.output_shape == (None, 256, 256, 2)
    assert discriminator.output_shape == (None, 30, 30, 1)
    assert abs(trainable_count(generator_256) - 54.4e6) < 0.05e6  # 54,409,858
    assert abs(trainable_count(discriminator) - 2.77e6) < 0.01e6  # 2,765,633
    # U-Net depth log2(256) = 8: seven down-sampling convolutions then the 1x1 bottleneck.
    assert generator_256.get_layer("down7_conv").output.shape[1:] == (1, 1, 512)


def test_leaky_slope_and_init(generator_256):
    slopes = {layer.negative_slope for layer in generator_256.layers if "lrelu" in layer.name}
    assert slopes == {0.2}
    kernels = [l.kernel.numpy() for l in generator_256.layers if l.name in ("down4_conv", "down5_conv", "down6_conv")]
    assert not np.allclose(kernels[0], kernels[1]) and not np.allclose(kernels[1], kernels[2])
    assert abs(kernels[0].std() - 0.02) < 0.001 and abs(kernels[0].mean()) < 0.001
    gamma = generator_256.get_layer("down3_bn").gamma.numpy()
    assert abs(gamma.mean() - 1.0) < 0.01 and 0.01 < gamma.std() < 0.03


@pytest.mark.parametrize("size", [32, 64])
def test_generator_small_sizes(size):
    generator = build_generator(size)
    lightness = tf.random.uniform((2, size, size, 1), -1, 1)
    ab = generator(lightness, training=False).numpy()
    assert ab.shape == (2, size, size, 2) and np.abs(ab).max() <= 1.0
    dropout_layers = [l.name for l in generator.layers if isinstance(l, ChannelDropout)]
    depth = unet_depth(size)  # the up blocks of the three innermost levels, at every size
    assert dropout_layers == [f"up{level}_dropout" for level in (depth - 1, depth - 2, depth - 3)]


def test_dropout_only_when_training_and_absent_for_l1_only():
    generator = build_generator(32)
    lightness = tf.random.uniform((2, 32, 32, 1), -1, 1)
    np.testing.assert_allclose(generator(lightness, training=False), generator(lightness, training=False))
    assert not np.allclose(generator(lightness, training=True), generator(lightness, training=True))
    plain = build_generator(32, dropout=False)
    assert not any(isinstance(l, ChannelDropout) for l in plain.layers)


def test_channel_dropout_drops_whole_channels():
    layer = ChannelDropout(0.5)
    x = tf.ones((8, 5, 5, 64))
    y = layer(x, training=True).numpy()
    per_channel = y.reshape(8, 25, 64)
    assert np.all(per_channel.min(axis=1) == per_channel.max(axis=1))  # constant per map
    assert set(np.unique(y)) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - rate)
    assert 0.3 < (y == 0).mean() < 0.7
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        build_generator(100)
    with pytest.raises(ValueError, match="patch size"):
        build_discriminator(64, patch_size=50)


def test_generator_saves_and_loads(tmp_path):
    generator = build_generator(32)
    path = tmp_path / "g.keras"
    generator.save(path)
    loaded = keras.models.load_model(path)
    lightness = tf.random.uniform((1, 32, 32, 1), -1, 1)
    np.testing.assert_allclose(loaded(lightness), generator(lightness), atol=1e-6)


GENERATOR_256 = {
    #          kind     s  p  in    out shape        bias   BN     drop  before after  skip
    "down0": ("conv",  2, 1, 1,    (128, 128, 64),  False, False, None, None,  LEAKY, None),
    "down1": ("conv",  2, 1, 64,   (64, 64, 128),   False, True,  None, LEAKY, LEAKY, None),
    "down2": ("conv",  2, 1, 128,  (32, 32, 256),   False, True,  None, LEAKY, LEAKY, None),
    "down3": ("conv",  2, 1, 256,  (16, 16, 512),   False, True,  None, LEAKY, LEAKY, None),
    "down4": ("conv",  2, 1, 512,  (8, 8, 512),     False, True,  None, LEAKY, LEAKY, None),
    "down5": ("conv",  2, 1, 512,  (4, 4, 512),     False, True,  None, LEAKY, LEAKY, None),
    "down6": ("conv",  2, 1, 512,  (2, 2, 512),     False, True,  None, LEAKY, LEAKY, None),
    "down7": ("conv",  2, 1, 512,  (1, 1, 512),     False, False, None, LEAKY, RELU,  None),  # bottleneck
    "up7":   ("convT", 2, 1, 512,  (2, 2, 512),     False, True,  0.5,  RELU,  None,  (LEAKY, "down6")),
    "up6":   ("convT", 2, 1, 1024, (4, 4, 512),     False, True,  0.5,  RELU,  None,  (LEAKY, "down5")),
    "up5":   ("convT", 2, 1, 1024, (8, 8, 512),     False, True,  0.5,  RELU,  None,  (LEAKY, "down4")),
    "up4":   ("convT", 2, 1, 1024, (16, 16, 512),   False, True,  None, RELU,  None,  (LEAKY, "down3")),
    "up3":   ("convT", 2, 1, 1024, (32, 32, 256),   False, True,  None, RELU,  None,  (LEAKY, "down2")),
    "up2":   ("convT", 2, 1, 512,  (64, 64, 128),   False, True,  None, RELU,  None,  (LEAKY, "down1")),
    "up1":   ("convT", 2, 1, 256,  (128, 128, 64),  False, True,  None, RELU,  None,  (LEAKY, "down0")),
    "up0":   ("convT", 2, 1, 128,  (256, 256, 2),   True,  False, None, RELU,  "tanh", None),
}


def test_generator_is_the_reference_unet_layer_for_layer(generator_256):
    assert_matches_reference(generator_256, GENERATOR_256)


def test_layer_table_reader_sees_a_misplaced_dropout(generator_256):
    """The table catches what a parameter count cannot: dropout one level out (junyanz's placement)."""
    generator = generator_256
    table = layer_table(generator)
    assert [name for name, row in table.items() if row[7]] == ["up7", "up6", "up5"]
    shifted = dict(GENERATOR_256)
    shifted["up7"] = shifted["up7"][:7] + (None,) + shifted["up7"][8:]
    shifted["up4"] = shifted["up4"][:7] + (0.5,) + shifted["up4"][8:]
    with pytest.raises(AssertionError, match="up7 dropout"):
        assert_matches_reference(generator, shifted)
