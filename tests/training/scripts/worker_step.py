"""One training step as one worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG says
which), from one_step.py's comparable trainer. The chief saves the weights before and after the
step and the step's history to OUT.npz (read by one_device_step.py); every worker prints
`CHECKSUM` and the sum of its weights' magnitudes after the step.

Run as each of the workers by tests/training/test_distribute.py
(`test_two_workers_equal_one_device_with_the_same_global_batch`), with tests/training on
PYTHONPATH for one_step: python worker_step.py OUT.npz
"""

import sys
import numpy as np
from one_step import comparable_trainer, train_one_step, weights
from pix2color.training.distribute import make_strategy, worker_role

strategy = make_strategy("multiworker")
trainer = comparable_trainer(0.1, strategy)
start = weights(trainer)
history = train_one_step(trainer)
after = weights(trainer)
if worker_role(strategy).is_chief:
    np.savez(sys.argv[1], *start, *after, **{"history_" + k: v for k, v in history.items()})
print("CHECKSUM", float(sum(np.abs(w).sum() for w in after)))
