"""The generator rebuilt for LiteRT computes what the generator computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2color.export.tflite_layers import PhaseUpConvolution, litert_generator
from pix2color.networks import build_named_generator
from pix2color.networks.paper_mode import paper_mode_generator


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
        phases = PhaseUpConvolution(reference)
        np.testing.assert_allclose(phases(inputs), expected, rtol=1e-12, atol=1e-12)
        op_types = {op.type for op in tf.function(phases).get_concrete_function(inputs).graph.get_operations()}
        assert "DepthToSpace" in op_types and "Conv2DBackpropInput" not in op_types
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("kind", ["unet", "resnet18"])
def test_litert_generator_is_the_same_function(kind):
    """The generator rebuilt for LiteRT (phase convolutions; for int8, pooled ReLUs) shares the
    weights and computes the same outputs, in both modes."""
    generator = build_named_generator(kind, 32)
    lite = litert_generator(generator, quantized=True)

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
    paper = paper_mode_generator(generator)
    keras.utils.set_random_seed(3)
    expected = paper(lightness)
    keras.utils.set_random_seed(3)
    np.testing.assert_allclose(litert_generator(paper, quantized=True)(lightness), expected, atol=2e-5)
