"""Each fast layer of `speed` against the stock layer it replaces, and `fast_layers` on whole networks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2color.networks import build_discriminator, build_named_generator, cpu_layers


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16])
def test_up_convolution_is_conv2d_transpose(size):
    """The U-Net's transposed convolution: on small inputs a matrix product and an overlap-add,
    on larger ones the convolution; the same outputs and gradients as Keras' Conv2DTranspose
    (float64: the sums only differ in order)."""
    keras.config.set_dtype_policy("float64")
    try:
        reference = keras.layers.Conv2DTranspose(6, 4, strides=2, padding="same", bias_initializer="random_normal")
        inputs = tf.constant(np.random.default_rng(size).standard_normal((3, size, size, 5)))
        reference(inputs)
        ours = cpu_layers.MatmulUpConvolution(reference)
        assert ours.weights == reference.weights  # shared, not copied
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(inputs)
            outputs = [layer(inputs) for layer in (reference, ours)]
            losses = [tf.reduce_sum(tf.sin(output)) for output in outputs]
        np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-12, atol=1e-12)
        for first, second in zip(tape.gradient(losses[0], [inputs, *reference.weights]),
                                 tape.gradient(losses[1], [inputs, *reference.weights])):
            np.testing.assert_allclose(second, first, rtol=1e-11, atol=1e-12)
        graph = tf.function(ours).get_concrete_function(inputs).graph
        uses_matmul = any(op.type in ("MatMul", "BatchMatMulV2") for op in graph.get_operations())
        assert uses_matmul == (size * size <= cpu_layers.MatmulUpConvolution.MATMUL_PIXELS)
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("kernel_size", [1, 4])
def test_narrow_convolution_is_conv2d_to_second_order(kernel_size):
    """D's logits layer: a matrix product and a shifted sum; the same outputs, gradients and R1
    second derivatives as Keras' Conv2D (float64: the sums only differ in order)."""
    keras.config.set_dtype_policy("float64")
    try:
        reference = keras.layers.Conv2D(1, kernel_size, bias_initializer="random_normal")
        inputs = tf.constant(np.random.default_rng(kernel_size).standard_normal((2, 9, 7, 5)))
        reference(inputs)
        ours = cpu_layers.MatmulNarrowConvolution(reference)
        results = []
        for layer in (reference, ours):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(inputs)
                    output = layer(inputs)
                    loss = tf.reduce_sum(tf.sin(output))
                gradient_inputs, *gradient_weights = inner.gradient(loss, [inputs, *reference.weights])
                penalty = tf.reduce_sum(gradient_inputs**2)  # R1's shape: D's input gradient, squared
            results.append([output, gradient_inputs, *gradient_weights, *outer.gradient(penalty, reference.weights)])
        for first, second in zip(*results):
            np.testing.assert_allclose(second, first, rtol=1e-11, atol=1e-12)
        graph = tf.function(ours).get_concrete_function(inputs).graph
        assert not any(op.type.startswith("Conv2D") for op in graph.get_operations())
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("kind", ["unet", "resnet18", "discriminator"])
def test_fast_layers_share_every_weight_and_compute_the_same_function(kind):
    """The swap reaches nested models, keeps the weights in order (optimizer slots and
    checkpoints follow that order) and every other layer, and changes no output."""
    model = build_discriminator(32) if kind == "discriminator" else build_named_generator(kind, 32)
    fast = cpu_layers.fast_layers(model)
    assert [id(v) for v in fast.trainable_variables] == [id(v) for v in model.trainable_variables]
    assert [id(v) for v in fast.weights] == [id(v) for v in model.weights]
    assert fast.name == model.name

    def types_in(network):
        return [type(layer).__name__ for layer in network.layers] + [
            name for layer in network.layers if isinstance(layer, keras.Model) for name in types_in(layer)]

    swapped = types_in(fast)
    if kind == "unet":
        assert "MatmulUpConvolution" in swapped
    if kind == "discriminator":
        assert "MatmulNarrowConvolution" in swapped
    rng = np.random.default_rng(0)
    lightness = tf.constant(rng.uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32))
    inputs = [lightness, tf.constant(rng.uniform(-1, 1, (2, 32, 32, 2)).astype(np.float32))] \
        if kind == "discriminator" else lightness
    np.testing.assert_allclose(fast(inputs, training=False), model(inputs, training=False), atol=1e-5)
