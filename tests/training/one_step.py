"""One training step made comparable across one device, several replicas and several workers.

Imported by scripts/two_replicas_step.py, worker_step.py and one_device_step.py, which
test_distribute.py runs with this folder on PYTHONPATH (each needs its own process: a
distribution strategy must be set up before TensorFlow does anything else).

The step runs in float64: in float32, R1's double backprop and the G step against the updated
D amplify round-off (sums in another order on several replicas) to about 6e-3 of an update on
some machines, which would hide a real difference of that size. In float64 round-off is ~1e-12.
"""

import keras
import numpy as np
import tensorflow as tf

from pix2color.training.run import TrainConfig, build_trainer


def fixed_batch() -> tuple[np.ndarray, np.ndarray]:
    """The global batch every variant trains on: 4 lightness / ab pairs of 32 x 32."""
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (4, 32, 32, 1)), rng.uniform(-0.5, 0.5, (4, 32, 32, 2))  # float64


def comparable_trainer(r1_gamma: float, strategy=None):
    strategy = strategy or tf.distribute.get_strategy()
    config = TrainConfig(image_size=32, batch_size=4, r1_gamma=r1_gamma)
    keras.utils.set_random_seed(1)
    keras.config.set_dtype_policy("float64")
    with strategy.scope():
        trainer = build_trainer(config, strategy)
        # Dropout is the only randomness: off, so all variants compute the same thing.
        for layer in trainer.generator.layers:
            if hasattr(layer, "rate"):
                layer.rate = 0.0
        # SGD, not Adam, for the comparison: Adam's first step is lr * sign(gradient), which
        # turns float round-off in near-zero gradients into full +-lr differences.
        trainer.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), r1_gamma=r1_gamma)
    return trainer


def weights(trainer) -> list[np.ndarray]:
    return trainer.generator.get_weights() + trainer.discriminator.get_weights()


def set_weights(trainer, values: list[np.ndarray]) -> None:
    split = len(trainer.generator.weights)
    trainer.generator.set_weights(values[:split])
    trainer.discriminator.set_weights(values[split:])


def train_one_step(trainer) -> dict:
    """One step on `fixed_batch()` through `fit`; returns the history."""
    dataset = tf.data.Dataset.from_tensors(fixed_batch()).repeat()
    return trainer.fit(dataset, steps_per_epoch=1, verbose=0).history


def worst_update_difference(start, after_a, after_b) -> float:
    """The largest difference between two updates of the same weights, relative to the size of
    that weight tensor's update (tensors that did not move are left out)."""
    worst = 0.0
    for before, a, b in zip(start, after_a, after_b):
        step = np.abs(a - before).max()
        if step > 1e-6:
            worst = max(worst, np.abs(a - b).max() / step)
    return worst
