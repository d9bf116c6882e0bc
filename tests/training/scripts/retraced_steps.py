"""One training step, with deterministic ops, traced afresh eight times and run each time from the
same weights on the same batch. Prints one line per trace, `TRACE N DIFFERENCE`: the largest
difference of its weights and optimizer state from the first trace's.

Run in a process of its own by tests/training/test_run.py
(`test_deterministic_ops_give_one_step_whatever_its_trace`): python retraced_steps.py
"""

import numpy as np
import keras
import tensorflow as tf

from pix2color.training.run import TrainConfig, build_trainer, use_deterministic_ops

use_deterministic_ops()
keras.utils.set_random_seed(7)
trainer = build_trainer(TrainConfig(image_size=32, batch_size=4))
rng = np.random.default_rng(0)
batch = (rng.uniform(-1, 1, (4, 32, 32, 1)).astype("float32"), rng.uniform(-0.5, 0.5, (4, 32, 32, 2)).astype("float32"))
dataset = tf.data.Dataset.from_tensors(batch).repeat()
trainer.fit(dataset, steps_per_epoch=1, verbose=0)  # builds both optimizers
state = (trainer.generator.variables + trainer.discriminator.variables + trainer.g_optimizer.variables
         + trainer.d_optimizer.variables)
start = [v.numpy() for v in state]
first = None
for trace in range(8):
    for variable, value in zip(state, start):
        variable.assign(value)
    trainer.make_train_function(force=True)
    trainer.fit(dataset, steps_per_epoch=1, verbose=0)
    after = [v.numpy() for v in state]
    if first is None:
        first = after
    print("TRACE", trace, max(float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(first, after)), flush=True)
