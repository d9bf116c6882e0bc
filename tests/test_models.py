import keras
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
    depth = models.unet_depth(size)  # the up blocks of the three innermost levels, at every size
    assert dropout_layers == [f"up{level}_dropout" for level in (depth - 1, depth - 2, depth - 3)]


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


# --------------------------------------------------------------------------- layer table
#
# Both networks at 256 px, written from the report's code (github.com/Julien-Gustin/
# Image-Colorization, python/models/generator.py and discriminator.py), one row per
# convolution in order. Generator level k (down k / up k) is the k-th `UNetModule` from the
# outside (k = 0: the outermost, `last=True`). Columns:
#   kind, stride, padding, input channels, output shape (H, W, C), bias, BatchNorm after,
#   dropout after (rate of whole-channel dropout), activation before, activation after,
#   skip: what the up block's output is concatenated with (first), as (op, block it follows).
# `before`/`after` name the non-linearity feeding the convolution / fed by its block's output.


class Deliberate:
    """A cell where pix2color differs from the reference on purpose."""

    def __init__(self, reference, ours, why: str):
        self.reference, self.ours, self.why = reference, ours, why

    def __repr__(self):
        return f"reference {self.reference!r}, pix2color {self.ours!r} ({self.why})"


BN_CANCELS_BIAS = Deliberate(True, False, "BatchNorm in training mode subtracts the batch mean, which removes "
                                          "any constant per channel: the bias has no effect and a zero gradient")
LEAKY, RELU = "leaky_relu", "relu"
COLUMNS = ("kind", "stride", "pad", "in", "out_shape", "bias", "bn", "dropout", "before", "after", "skip")

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

DISCRIMINATOR_256 = {
    #           kind    s  p  in   out shape        bias             BN     drop  before after  skip
    "conv0":  ("conv", 2, 1, 3,   (128, 128, 64),  True,            False, None, None,  LEAKY, None),
    "conv1":  ("conv", 2, 1, 64,  (64, 64, 128),   BN_CANCELS_BIAS, True,  None, LEAKY, LEAKY, None),
    "conv2":  ("conv", 2, 1, 128, (32, 32, 256),   BN_CANCELS_BIAS, True,  None, LEAKY, LEAKY, None),
    "conv3":  ("conv", 1, 1, 256, (31, 31, 512),   BN_CANCELS_BIAS, True,  None, LEAKY, LEAKY, None),
    "logits": ("conv", 1, 1, 512, (30, 30, 1),     True,            False, None, LEAKY, None,  None),
}


def layer_table(model) -> dict:
    """The same table, read off a Keras functional model's graph."""
    producer = {id(layer.output): layer for layer in model.layers}
    consumers = {}
    for layer in model.layers:
        for tensor in (layer.input if isinstance(layer.input, list) else [layer.input]):
            consumers.setdefault(id(tensor), []).append(layer)

    def only_consumer(layer):
        found = consumers.get(id(layer.output), [])
        return found[0] if len(found) == 1 else None

    def activation(layer):
        if isinstance(layer, keras.layers.LeakyReLU):
            assert layer.negative_slope == pytest.approx(0.2), layer.name
            return LEAKY
        if isinstance(layer, keras.layers.ReLU):
            return RELU
        if isinstance(layer, keras.layers.Activation):
            return layer.activation.__name__
        return None

    def block_of(layer):  # the convolution block a BatchNorm / conv / dropout layer belongs to
        while not isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            layer = producer[id(layer.input)]
        return layer.name.rsplit("_", 1)[0] if "_" in layer.name else layer.name

    table = {}
    for conv in model.layers:
        if not isinstance(conv, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            continue
        source = producer.get(id(conv.input))
        pad = (conv.kernel_size[0] - conv.strides[0]) // 2 if conv.padding == "same" else 0
        if isinstance(source, keras.layers.ZeroPadding2D):
            pad = source.padding[0][0]
            source = producer.get(id(source.input))
        end, bn, dropout = conv, False, None
        if isinstance(only_consumer(end), keras.layers.BatchNormalization):
            end, bn = only_consumer(end), True
        if isinstance(only_consumer(end), models.ChannelDropout):
            end = only_consumer(end)
            dropout = end.rate
        following = consumers.get(id(end.output), [])
        skip = None
        joins = [layer for layer in following if isinstance(layer, keras.layers.Concatenate)]
        if isinstance(conv, keras.layers.Conv2DTranspose) and joins:  # an up block and its skip connection
            first, second = joins[0].input
            other = first if second is end.output else second
            skip_source = producer[id(other)]
            op = activation(skip_source)
            skip = (op, block_of(producer[id(skip_source.input)] if op else skip_source))
            if other is second:  # the reference concatenates the skip first: torch.cat([x, model(x)])
                skip += ("second",)
        activations = {activation(layer) for layer in following if not isinstance(layer, keras.layers.Concatenate)}
        after = activations.pop() if len(activations) == 1 else (tuple(sorted(activations)) or None)
        name = conv.name.rsplit("_", 1)[0] if "_" in conv.name else conv.name
        table[name] = (
            "convT" if isinstance(conv, keras.layers.Conv2DTranspose) else "conv", conv.strides[0], pad,
            int(conv.input.shape[-1]), tuple(conv.output.shape[1:]), conv.use_bias, bn, dropout,
            activation(source) if source is not None else None, after, skip,
        )
    return table


def assert_matches_reference(model, reference: dict):
    ours = layer_table(model)
    assert list(ours) == list(reference), "blocks or their order differ"
    problems = []
    for name, row in reference.items():
        for column, expected, got in zip(COLUMNS, row, ours[name]):
            if isinstance(expected, Deliberate):
                expected = expected.ours
            if expected != got:
                problems.append(f"{name} {column}: reference {expected!r}, pix2color {got!r}")
    assert not problems, "\n".join(problems)


def test_generator_is_the_reference_unet_layer_for_layer(generator_256):
    assert_matches_reference(generator_256, GENERATOR_256)


def test_discriminator_is_the_reference_patchgan_layer_for_layer():
    assert_matches_reference(models.build_discriminator(256), DISCRIMINATOR_256)


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


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16])
def test_up_convolution_is_conv2d_transpose(size):
    """The U-Net's transposed convolution: on small inputs a matrix product and an overlap-add,
    on larger ones the convolution; the same outputs and gradients as Keras' Conv2DTranspose
    (float64: the sums only differ in order)."""
    keras.config.set_dtype_policy("float64")
    try:
        reference = keras.layers.Conv2DTranspose(6, 4, strides=2, padding="same", bias_initializer="random_normal")
        ours = models.UpConvolution(6, 4, strides=2, padding="same")
        inputs = tf.constant(np.random.default_rng(size).standard_normal((3, size, size, 5)))
        reference(inputs), ours(inputs)
        ours.set_weights(reference.get_weights())
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(inputs)
            outputs = [layer(inputs) for layer in (reference, ours)]
            losses = [tf.reduce_sum(tf.sin(output)) for output in outputs]
        np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-12, atol=1e-12)
        for first, second in zip(tape.gradient(losses[0], [inputs, *reference.weights]),
                                 tape.gradient(losses[1], [inputs, *ours.weights])):
            np.testing.assert_allclose(second, first, rtol=1e-11, atol=1e-12)
        graph = tf.function(ours).get_concrete_function(inputs).graph
        uses_matmul = any(op.type in ("MatMul", "BatchMatMulV2") for op in graph.get_operations())
        assert uses_matmul == (size * size <= models.UpConvolution.MATMUL_PIXELS)
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("size", [1, 3, 16])
def test_phase_up_convolution_is_conv2d_transpose(size):
    """LiteRT's form of the up convolution: four phase convolutions and a depth-to-space, the
    same outputs as Keras' Conv2DTranspose, bias and activation included (float64)."""
    keras.config.set_dtype_policy("float64")
    try:
        reference = keras.layers.Conv2DTranspose(6, 4, strides=2, padding="same", activation="tanh",
                                                 bias_initializer="random_normal")
        inputs = tf.constant(np.random.default_rng(size).standard_normal((2, size, size + 1, 5)))
        expected = reference(inputs)
        phases = models.PhaseUpConvolution(reference)
        np.testing.assert_allclose(phases(inputs), expected, rtol=1e-12, atol=1e-12)
        op_types = {op.type for op in tf.function(phases).get_concrete_function(inputs).graph.get_operations()}
        assert "DepthToSpace" in op_types and "Conv2DBackpropInput" not in op_types
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("kind", ["unet", "resnet18"])
def test_litert_generator_is_the_same_function(kind):
    """The generator rebuilt for LiteRT (phase convolutions; for int8, pooled ReLUs) shares the
    weights and computes the same outputs, in both modes."""
    generator = models.build_named_generator(kind, 32)
    lite = models.litert_generator(generator, quantized=True)

    def types_in(model):  # into nested models, not into the wrapped source layers
        return set().union(*({type(layer).__name__} | (types_in(layer) if isinstance(layer, keras.Model) else set())
                             for layer in model.layers))

    layer_types = types_in(lite)
    assert {"PooledReLU"} <= layer_types and not {"UpConvolution", "Conv2DTranspose"} & layer_types
    if kind == "unet":
        assert "PhaseUpConvolution" in layer_types
    lightness = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32))
    np.testing.assert_allclose(lite(lightness, training=False), generator(lightness, training=False), atol=2e-5)
    for weight in generator.weights:
        weight.assign(weight * 1.01)  # shared, not copied
    np.testing.assert_allclose(lite(lightness, training=False), generator(lightness, training=False), atol=2e-5)
    paper = models.paper_mode_generator(generator)
    keras.utils.set_random_seed(3)
    expected = paper(lightness)
    keras.utils.set_random_seed(3)
    np.testing.assert_allclose(models.litert_generator(paper, quantized=True)(lightness), expected, atol=2e-5)


@pytest.mark.parametrize("kernel_size", [1, 4])
def test_narrow_convolution_is_conv2d_to_second_order(kernel_size):
    """D's logits layer: a matrix product and a shifted sum; the same outputs, gradients and R1
    second derivatives as Keras' Conv2D (float64: the sums only differ in order)."""
    keras.config.set_dtype_policy("float64")
    try:
        reference = keras.layers.Conv2D(1, kernel_size, bias_initializer="random_normal")
        ours = models.NarrowConvolution(1, kernel_size)
        inputs = tf.constant(np.random.default_rng(kernel_size).standard_normal((2, 9, 7, 5)))
        reference(inputs), ours(inputs)
        ours.set_weights(reference.get_weights())
        results = []
        for layer in (reference, ours):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(inputs)
                    output = layer(inputs)
                    loss = tf.reduce_sum(tf.sin(output))
                gradient_inputs, *gradient_weights = inner.gradient(loss, [inputs, *layer.weights])
                penalty = tf.reduce_sum(gradient_inputs**2)  # R1's shape: D's input gradient, squared
            results.append([output, gradient_inputs, *gradient_weights, *outer.gradient(penalty, layer.weights)])
        for first, second in zip(*results):
            np.testing.assert_allclose(second, first, rtol=1e-11, atol=1e-12)
        graph = tf.function(ours).get_concrete_function(inputs).graph
        assert not any(op.type.startswith("Conv2D") for op in graph.get_operations())
    finally:
        keras.config.set_dtype_policy("float32")
