"""Training on several replicas, workers or a TPU: everything about `tf.distribute`, in one place.

- `make_strategy`: the strategy for `--strategy` (auto, default, mirrored, multiworker, tpu).
- `WorkerRole` / `worker_role`: which worker this process is, and where it may write.
- `loss_to_differentiate`: what a custom `train_step` differentiates on one replica, so the GAN
  maths does not depend on the number of replicas (nor on mixed precision's loss scale).
- `for_multi_worker`: the trainer class with what `fit` needs under several workers.
- `training_input`, `check_workers_agree`: the input stream and the resume check of a run.

With N replicas each one differentiates its share of the batch; the optimizer sums the N
gradients, so each loss is divided by N first and the update is that of the global batch mean.
BatchNorm layers are synchronized across replicas (see `training.run.build_trainer`), so a step on
N replicas is the step of one device with the global batch.

Keras 3.15's `fit` fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585). The two
workarounds in `MultiWorkerFit` (an override of the private Keras method `_maybe_symbolic_build`,
and the logs reshaped in `update_metrics`) hold for Keras `KERAS_CHECKED`; multi-worker training
refuses to start with any other Keras (`check_keras_for_multiworker`), so an upgrade cannot
silently depend on internals that moved. They apply only to multi-worker runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from pix2color.config import STRATEGIES
from pix2color.errors import StrategyError, first_line  # noqa: F401 - the module's errors, importable from here too

KERAS_CHECKED = "3.15"  # the Keras series whose internals the multi-worker workarounds rely on
EXAMPLE_TF_CONFIG = (
    """'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}'"""
)


def check_keras_for_multiworker() -> None:
    """The one Keras-version check: the multi-worker workarounds touch Keras internals."""
    if not keras.version().startswith(KERAS_CHECKED + "."):
        raise StrategyError(
            f"multi-worker training works around Keras internals checked with Keras {KERAS_CHECKED} only "
            f"(installed: {keras.version()}); install keras=={KERAS_CHECKED}.* or train on one machine"
        )


def tf_config_workers() -> int:
    """How many workers TF_CONFIG names (0 without TF_CONFIG)."""
    if not os.environ.get("TF_CONFIG"):
        return 0
    try:
        cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    except ValueError as error:
        raise StrategyError(f"TF_CONFIG is not valid JSON: {error}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """A `tf.distribute` strategy: several GPUs (mirrored), several machines, or a TPU.

    auto: a TPU if one is attached (Colab sets COLAB_TPU_ADDR / TPU_NAME), several workers if
    TF_CONFIG names more than one, all GPUs if more than one, otherwise the default strategy.
    Create it before any other TensorFlow work: a cluster must be set up first.
    """
    if name not in STRATEGIES:
        raise StrategyError(f"--strategy must be one of {', '.join(STRATEGIES)}")
    if name == "auto":
        if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
            name = "tpu"
        elif tf_config_workers() > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if tf_config_workers() < 2:
            raise StrategyError(f"--strategy multiworker needs TF_CONFIG naming at least two workers, e.g. {EXAMPLE_TF_CONFIG}")
        check_keras_for_multiworker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        reason = first_line(error, 160)
        raise StrategyError(f"--strategy tpu: no TPU found ({reason})") from None
    return tf.distribute.TPUStrategy(resolver)


def _cluster_jobs(strategy: tf.distribute.Strategy) -> dict:
    return strategy.cluster_resolver.cluster_spec().as_dict()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True under MultiWorkerMirroredStrategy with more than one worker."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    jobs = _cluster_jobs(strategy)
    return len(jobs.get("worker", [])) + len(jobs.get("chief", [])) > 1


@dataclass
class WorkerRole:
    """Where this process writes. With several workers only the chief writes the run folder;
    the others keep their own files under `out/workers/` and read the chief's checkpoints."""

    index: int = 0
    count: int = 1

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    def own_folder(self, out: Path) -> Path:
        return out if self.is_chief else out / "workers" / f"worker-{self.index}"


def worker_role(strategy: tf.distribute.Strategy) -> WorkerRole:
    if not is_multi_worker(strategy):
        return WorkerRole()
    resolver = strategy.cluster_resolver
    jobs = _cluster_jobs(strategy)
    workers = len(jobs.get("worker", []))
    if "chief" in jobs:  # a "chief" task is worker 0, the "worker" tasks follow it
        return WorkerRole(0 if resolver.task_type == "chief" else resolver.task_id + 1, workers + 1)
    return WorkerRole(resolver.task_id, workers)


def training_input(strategy: tf.distribute.Strategy, dataset_for_pipeline):
    """What `fit` trains on. `dataset_for_pipeline(input_context)` builds one input pipeline;
    with several workers each builds its own and keeps only its share of every global batch
    (tf.data's automatic sharding would decode all of it on every worker)."""
    if is_multi_worker(strategy):
        return strategy.distribute_datasets_from_function(dataset_for_pipeline)
    return dataset_for_pipeline(None)


def check_workers_agree(strategy: tf.distribute.Strategy, steps_done: int, out: Path) -> None:
    """All workers must resume from the same step; they do not if `out` is not one folder
    they all see (each would restore whatever its own disk holds)."""

    @tf.function  # eagerly, the collective is slow and TF warns about it
    def all_steps():
        return strategy.gather(strategy.run(lambda: tf.constant([steps_done], tf.int64)), axis=0)

    steps = sorted(set(all_steps().numpy().tolist()))
    if len(steps) > 1:
        raise StrategyError(
            f"the workers found different checkpoints in {out} (steps {steps}): "
            "--out must be a folder every worker sees (a shared filesystem or a gs:// bucket)"
        )


def loss_to_differentiate(loss: tf.Tensor, optimizer: keras.optimizers.Optimizer) -> tf.Tensor:
    """The loss a custom `train_step` differentiates for one `optimizer` step on this replica's
    share of the batch (call it inside the tape).

    Divided by the number of replicas (their gradients are summed, so the update is that of the
    global batch mean) and, under mixed precision, multiplied by the optimizer's loss scale
    (which `apply_gradients` divides out again).
    """
    loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        loss = optimizer.scale_loss(loss)
    return loss


class MultiWorkerFit:
    """What a `keras.Model` with its own steps needs for `fit` under MultiWorkerMirroredStrategy
    (keras-team/keras#20585), mixed in by `for_multi_worker` only there.

    The model must be built, with its optimizers and metrics, before `fit`, and its steps must
    return their logs from `update_metrics`.
    """

    def update_metrics(self, values: dict, batch_size: tf.Tensor) -> dict:
        # Keras averages logs across workers along axis 0, which scalars do not have.
        logs = super().update_metrics(values, batch_size)
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Private Keras method (checked with Keras KERAS_CHECKED). Keras builds the model here
        # from a batch it reduces across replicas eagerly, which fails with several workers
        # ("Attempt to convert a value (PerReplica ...)"). The build is not needed: the models,
        # optimizers and metrics are built before `fit`.
        pass


def for_multi_worker(model_class: type[keras.Model]) -> type[keras.Model]:
    """`model_class` with `MultiWorkerFit` mixed in: what `fit` can run under several workers."""
    check_keras_for_multiworker()
    return type(f"MultiWorker{model_class.__name__}", (MultiWorkerFit, model_class), {})
