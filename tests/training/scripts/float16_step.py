"""Two training steps in float16 (mixed precision): the optimizers scale the loss, the layers
compute in float16 and the generator's output is float32, the losses are finite, and R1 equals
R1 in float32 on the same weights (no float16 underflow). Prints `MIXED-OK` if so.

Run in a process of its own (the global dtype policy is changed) by
tests/training/test_distribute.py (`test_float16_step_is_finite_and_uses_loss_scaling`):
python float16_step.py
"""

import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, keras
from pix2color.training import gan
from pix2color.training.run import TrainConfig, build_trainer
trainer = build_trainer(TrainConfig(image_size=32, batch_size=2, r1_gamma=1.0, precision="float16"))
assert isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
assert trainer.generator.get_layer("down1_conv").compute_dtype == "float16"
assert trainer.generator.output.dtype == "float32"
rng = np.random.default_rng(0)
batch = (rng.uniform(-1, 1, (2, 32, 32, 1)).astype("float32"), rng.uniform(-.5, .5, (2, 32, 32, 2)).astype("float32"))
history = trainer.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=2, verbose=0).history
assert all(np.isfinite(v[0]) for v in history.values()), history
# R1 under mixed precision equals R1 in float32 on the same weights (no float16 underflow).
keras.mixed_precision.set_global_policy("float32")
from pix2color.networks import build_discriminator
d32 = build_discriminator(32)
d32.set_weights(trainer.discriminator.get_weights())
p16, _ = gan.r1_penalty(trainer.discriminator, tf.constant(batch[0]), tf.constant(batch[1]), 1.0)
p32, _ = gan.r1_penalty(d32, tf.constant(batch[0]), tf.constant(batch[1]), 1.0)
assert p32 > 0 and abs(float(p16) - float(p32)) < 0.05 * float(p32), (float(p16), float(p32))
print("MIXED-OK")
