"""The step the workers took (worker_step.py's SAVED.npz), taken again on one device with the
whole batch from the same weights. Prints `WORST` and the largest difference of a weight
tensor's update from the workers', relative to that update, then `WORKERS-EQUAL` if the losses
and the updates agree.

Run by tests/training/test_distribute.py
(`test_two_workers_equal_one_device_with_the_same_global_batch`) after the workers, with
tests/training on PYTHONPATH for one_step: python one_device_step.py SAVED.npz
"""

import sys
import numpy as np
from one_step import comparable_trainer, set_weights, train_one_step, weights, worst_update_difference

saved = np.load(sys.argv[1])
trainer = comparable_trainer(0.1)
count = len(weights(trainer))
arrays = [saved[f"arr_{i}"] for i in range(2 * count)]
start, multi = arrays[:count], arrays[count:]
set_weights(trainer, start)
history = train_one_step(trainer)
for name in ("disc_loss", "r1_penalty", "gen_l1_loss", "gen_gan_loss"):  # float32 metrics, see two_replicas_step.py
    np.testing.assert_allclose(saved["history_" + name], history[name], rtol=3e-7, err_msg=name)
worst = worst_update_difference(start, weights(trainer), multi)
print("WORST", worst)
assert worst < 1e-9, worst
print("WORKERS-EQUAL")
