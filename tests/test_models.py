import numpy as np
import pytest
import tensorflow as tf

from pix2color import models


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.fixture(scope="module")
def generator_256():
    return models.build_generator(256)


def test_report_sizes_at_256(generator_256):
    discriminator = models.build_discriminator(256)
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
    generator = models.build_generator(size)
    lightness = tf.random.uniform((2, size, size, 1), -1, 1)
    ab = generator(lightness, training=False).numpy()
    assert ab.shape == (2, size, size, 2) and np.abs(ab).max() <= 1.0
    dropout_layers = [l.name for l in generator.layers if isinstance(l, models.ChannelDropout)]
    assert len(dropout_layers) == 3


def test_dropout_only_when_training_and_absent_for_l1_only():
    generator = models.build_generator(32)
    lightness = tf.random.uniform((2, 32, 32, 1), -1, 1)
    np.testing.assert_allclose(generator(lightness, training=False), generator(lightness, training=False))
    assert not np.allclose(generator(lightness, training=True), generator(lightness, training=True))
    plain = models.build_generator(32, dropout=False)
    assert not any(isinstance(l, models.ChannelDropout) for l in plain.layers)


def test_channel_dropout_drops_whole_channels():
    layer = models.ChannelDropout(0.5)
    x = tf.ones((8, 5, 5, 64))
    y = layer(x, training=True).numpy()
    per_channel = y.reshape(8, 25, 64)
    assert np.all(per_channel.min(axis=1) == per_channel.max(axis=1))  # constant per map
    assert set(np.unique(y)) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - rate)
    assert 0.3 < (y == 0).mean() < 0.7
    np.testing.assert_array_equal(layer(x, training=False), x)


@pytest.mark.parametrize("patch, size, grid", [(70, 64, 6), (16, 64, 30), (286, 256, 6), (1, 32, 32)])
def test_patch_sizes(patch, size, grid):
    discriminator = models.build_discriminator(size, patch_size=patch)
    logits = discriminator([tf.zeros((1, size, size, 1)), tf.zeros((1, size, size, 2))])
    assert logits.shape == (1, grid, grid, 1)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        models.build_generator(100)
    with pytest.raises(ValueError, match="patch size"):
        models.build_discriminator(64, patch_size=50)


def test_generator_saves_and_loads(tmp_path):
    import keras

    generator = models.build_generator(32)
    path = tmp_path / "g.keras"
    generator.save(path)
    loaded = keras.models.load_model(path)
    lightness = tf.random.uniform((1, 32, 32, 1), -1, 1)
    np.testing.assert_allclose(loaded(lightness), generator(lightness), atol=1e-6)
