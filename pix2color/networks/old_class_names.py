"""Names a `generator.keras` file may give stock layers, registered so that such files load.

A `.keras` file names each layer's class, and stores its weights under that class's name, so
reading one needs a class of the same registered name and the same class name. These are the
stock layers under those names: they compute exactly as the stock layers do (`cpu_layers.fast_layers`
applies to them as to the stock ones). tests/networks/test_saved_files.py loads such a file and
a training checkpoint written with them.
"""

from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="pix2color")
class UpConvolution(layers.Conv2DTranspose):
    """`pix2color>UpConvolution`: a stock `Conv2DTranspose` (the U-Net's up convolutions)."""


@keras.saving.register_keras_serializable(package="pix2color")
class NarrowConvolution(layers.Conv2D):
    """`pix2color>NarrowConvolution`: a stock `Conv2D` (the PatchGAN's logits)."""
