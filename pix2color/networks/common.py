"""What the networks share: the report's initialisation and BatchNorm settings, the output dtype,
the dtype of random draws, and the check that their weights are numbers."""

from __future__ import annotations

import keras
from keras import layers

BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1, in Keras' convention
BN_EPSILON = 1e-5  # PyTorch's; Keras' default is 1e-3
LEAKY_SLOPE = 0.2  # the report's slope; Keras' default is 0.3


def normal_init() -> keras.initializers.Initializer:
    """N(0, 0.02), the report's weight initialisation. A new instance for every layer: one shared
    instance would give every layer of one shape the same kernel."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def batch_norm(
    name: str,
    synchronized: bool = False,
    gamma_initializer: keras.initializers.Initializer | str | None = None,
    beta_initializer: keras.initializers.Initializer | str = "zeros",
) -> layers.BatchNormalization:
    """BatchNorm with PyTorch's momentum and epsilon; gamma N(1, 0.02) unless told otherwise.

    synchronized: statistics over the global batch when training on several replicas.
    """
    return layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer=gamma_initializer or keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        beta_initializer=beta_initializer,
        synchronized=synchronized,
        name=name,
    )


def output_dtype() -> str | None:
    """Outputs stay float32 under mixed precision (losses and metrics need the range);
    otherwise they follow the global policy (float32, or float64 in exactness tests)."""
    return "float32" if keras.config.dtype_policy().name.startswith("mixed") else None


# Random draws (dropout masks, the ResNet-18 U-Net's noise) are made in float32 whatever the layers
# compute in: from the same seed, float32, bfloat16, float16 and float64 networks draw the same
# masks, so their training steps can be compared; and bfloat16 has 8 significant bits, so its
# uniform draws in [0.5, 1) could take only 128 values.
DRAW_DTYPE = "float32"


def all_finite(variables) -> bool:
    """No NaN or infinity in any floating-point variable of `variables` (weights, optimizer state):
    what a checkpoint must hold before it is written, and a generator before it colorizes."""
    return all(bool(keras.ops.all(keras.ops.isfinite(v))) for v in variables if "float" in str(v.dtype))
