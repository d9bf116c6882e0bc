"""Benchmarks that print numbers (tests never time anything).

    python -m pix2color.bench train --image-size 256 --batch-size 4

prints seconds per training step for R1 off, R1 every step and lazy R1, with and without XLA.
Steps run through `fit` on one fixed batch of sample photos repeated, so only the step is
timed, not decoding. "per step" is the median over the timed steps; for lazy R1 the mean over
whole cycles of `--r1-every` steps is printed too, since only one step in k pays for R1.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

from pix2color.cli import import_quietly


class _StepTimer:
    """Keras callback recording the wall time of every training batch."""

    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                timer.started = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                timer.times.append(time.perf_counter() - timer.started)

        self.times: list[float] = []
        self.started = 0.0
        self.callback = Callback()


def _machine() -> str:
    import os

    import tensorflow as tf

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"TensorFlow {tf.__version__}, Python {platform.python_version()}"
    )


def bench_train(image_size: int, batch_size: int, steps: int, warmup: int, r1_every: int, xla: str) -> list[dict]:
    import keras
    import tensorflow as tf

    from pix2color.data import load_image_set, make_eval_dataset
    from pix2color.training import TrainConfig, build_trainer

    image_set = load_image_set("sample", verbose=0)
    batch = next(iter(make_eval_dataset(image_set.train[:batch_size], image_size, batch_size)))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()

    variants = [("R1 off", 0.0, 1), ("R1 every step", 0.001, 1), (f"lazy R1 (every {r1_every})", 0.001, r1_every)]
    xla_modes = {"both": (False, True), "off": (False,), "on": (True,)}[xla]
    results = []
    for jit in xla_modes:
        for name, gamma, every in variants:
            config = TrainConfig(image_size=image_size, batch_size=batch_size, r1_gamma=gamma, r1_every=every, jit_compile=jit)
            trainer = build_trainer(config)
            timer = _StepTimer()
            timed = max(steps, every)
            started = time.perf_counter()
            trainer.fit(dataset, steps_per_epoch=warmup + timed, epochs=1, callbacks=[timer.callback], shuffle=False, verbose=0)
            total = time.perf_counter() - started
            measured = timer.times[warmup:]
            row = {
                "config": name,
                "xla": jit,
                "first_step_s": timer.times[0],
                "median_step_s": statistics.median(measured),
                "mean_step_s": statistics.fmean(measured),
                "total_s": total,
            }
            results.append(row)
            print(
                f"{name:<24} XLA {'on ' if jit else 'off'}  median {row['median_step_s']:.2f} s/step  "
                f"mean {row['mean_step_s']:.2f} s/step over {len(measured)} steps  "
                f"(first step {row['first_step_s']:.1f} s)",
                flush=True,
            )
            del trainer
            keras.backend.clear_session()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pix2color.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="seconds per training step")
    train.add_argument("--image-size", type=int, default=256)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    train.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing, XLA compile)")
    train.add_argument("--r1-every", type=int, default=16, help="k of the lazy R1 configuration")
    train.add_argument("--xla", choices=("both", "off", "on"), default="both")
    args = parser.parse_args(argv)

    import_quietly()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices: each configuration is a new model
    print(f"machine: {_machine()}")
    if args.command == "train":
        print(f"training step, image {args.image_size}x{args.image_size}, batch {args.batch_size}")
        bench_train(args.image_size, args.batch_size, args.steps, args.warmup, args.r1_every, args.xla)
    return 0


if __name__ == "__main__":
    sys.exit(main())
