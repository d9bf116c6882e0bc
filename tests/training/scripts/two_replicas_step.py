"""One training step on two replicas (MirroredStrategy over two logical CPUs) against the same
step on one device with the same global batch, both from the same weights (one_step.py).
Prints `WORST` and the largest difference of a weight tensor's update, relative to that update,
then `REPLICAS-EQUAL` if the losses and the updates agree (to TOLERANCE for the updates).

Run in a process of its own (the logical CPUs must be set up before TensorFlow does anything
else) by tests/training/test_distribute.py
(`test_two_replicas_equal_one_replica_with_the_same_global_batch`), with tests/training on
PYTHONPATH for one_step: python two_replicas_step.py R1_GAMMA TOLERANCE
"""

import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from one_step import comparable_trainer, set_weights, train_one_step, weights, worst_update_difference

r1_gamma, tolerance = float(sys.argv[1]), float(sys.argv[2])
single = comparable_trainer(r1_gamma)
start = weights(single)
single_history = train_one_step(single)
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert two.num_replicas_in_sync == 2
mirrored = comparable_trainer(r1_gamma, two)
set_weights(mirrored, start)
mirrored_history = train_one_step(mirrored)
# The logged losses are Keras Mean metrics, float32 whatever the policy, summed per replica:
# equal to float32 round-off. The weights below are compared in float64.
for name in ("disc_loss", "r1_penalty", "d_real", "d_fake", "gen_l1_loss"):
    np.testing.assert_allclose(mirrored_history[name], single_history[name], rtol=3e-7, atol=1e-12)
worst = worst_update_difference(start, weights(single), weights(mirrored))
print("WORST", worst)
assert worst < tolerance, worst
np.testing.assert_allclose(mirrored_history["gen_gan_loss"], single_history["gen_gan_loss"],
                           rtol=max(tolerance, 3e-7))
print("REPLICAS-EQUAL")
