"""The layer table of tests/networks/test_unet.py and test_patchgan.py, read off a Keras model.

The networks at 256 px are written from the report's code (github.com/Julien-Gustin/
Image-Colorization, python/models/generator.py and discriminator.py), one row per
convolution in order. Generator level k (down k / up k) is the k-th `UNetModule` from the
outside (k = 0: the outermost, `last=True`). Columns:
  kind, stride, padding, input channels, output shape (H, W, C), bias, BatchNorm after,
  dropout after (rate of whole-channel dropout), activation before, activation after,
  skip: what the up block's output is concatenated with (first), as (op, block it follows).
`before`/`after` name the non-linearity feeding the convolution / fed by its block's output.
"""

import keras
import pytest

from pix2color.networks.unet import ChannelDropout


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
        if isinstance(only_consumer(end), ChannelDropout):
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


