"""The report's networks, each built from stock Keras layers as the report's layer tables draw them.

- `unet.build_generator`: the pix2pix U-Net generator;
- `patchgan.build_discriminator`: the PatchGAN discriminator;
- `resnet_unet.build_resnet18_generator`: the pretrained variant (report section VI.C);
- `cpu_layers.fast_layers`: the same networks with two kinds of layer computed faster on CPUs.
"""

from __future__ import annotations

import keras

from pix2color.config import GENERATORS
from pix2color.networks import old_class_names  # noqa: F401 - registers the layer names generator.keras files may hold
from pix2color.networks.patchgan import build_discriminator
from pix2color.networks.resnet_unet import build_resnet18_generator
from pix2color.networks.unet import build_generator

__all__ = ["build_discriminator", "build_generator", "build_named_generator", "build_resnet18_generator"]


def build_named_generator(
    kind: str = "unet",
    image_size: int = 256,
    dropout: bool = True,
    sync_batch_norm: bool = False,
    encoder_weights: str = "none",
) -> keras.Model:
    """The generator `kind` (see `config.GENERATORS`). dropout: the U-Net's (the ResNet-18 U-Net has
    none); encoder_weights: the ResNet-18 U-Net's ("imagenet", "none" or a path)."""
    if kind == "resnet18":
        return build_resnet18_generator(image_size, encoder_weights, sync_batch_norm)
    if kind != "unet":
        raise ValueError(f"generator must be one of {GENERATORS} (got {kind!r})")
    return build_generator(image_size, dropout=dropout, sync_batch_norm=sync_batch_norm)
