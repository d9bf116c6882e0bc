"""`bench train`: seconds per training step, whole and in the reference benchmark's parts."""

from __future__ import annotations

import glob
import itertools
import json
import statistics
import time
from collections import Counter

import keras
import tensorflow as tf

from pix2color.bench.timing import median_seconds
from pix2color.data import load_image_set, make_eval_dataset
from pix2color.training.run import TrainConfig, build_trainer

LAZY_XLA_NOTE = ("skipped: compiling lazy R1's tf.cond with XLA did not finish in 12 minutes on 2 cores "
                 "(--lazy-xla to try)")


class StepTimer(keras.callbacks.Callback):
    """Records the wall time of every training batch."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self.started = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.started)


def bench_train(image_size: int, batch_size: int, steps: int, warmup: int, r1_every: int, xla: str,
                lazy_xla: bool = False, generators: tuple[str, ...] = ("unet",), breakdown: bool = True,
                trace: str | None = None, precision: str = "float32") -> list[dict]:
    """Times `fit` on one fixed batch of sample photos, repeated, for R1 off, every step and lazy,
    with and without XLA, in `precision` (resolved: not auto); prints one line per configuration,
    each naming the precision (shared/bench/side_by_side.sh reads the lines with "median")."""
    image_set = load_image_set("sample", verbose=0)
    batch = next(iter(make_eval_dataset(image_set.train[:batch_size], image_size, batch_size)))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()

    variants = [("R1 off", 0.0, 1), ("R1 every step", 0.001, 1), (f"lazy R1 (every {r1_every})", 0.001, r1_every)]
    xla_modes = {"both": (False, True), "off": (False,), "on": (True,)}[xla]
    results = []
    for generator, jit, (name, gamma, every) in itertools.product(generators, xla_modes, variants):
        if jit and every > 1 and not lazy_xla:
            print(f"{name:<24}{generator:<9}XLA on   {precision:<10}{LAZY_XLA_NOTE}", flush=True)
            continue
        config = TrainConfig(image_size=image_size, batch_size=batch_size, r1_gamma=gamma, r1_every=every,
                             jit_compile=jit, generator=generator, encoder_weights="none", precision=precision)
        trainer = build_trainer(config)
        timed = max(steps, every)
        row = {"generator": generator, "config": name, "xla": jit, "precision": precision, "image_size": image_size,
               "batch_size": batch_size, **time_configuration(trainer, dataset, warmup, timed)}
        if breakdown and every == 1 and not jit:
            row["breakdown_median_s"] = step_parts(trainer, *batch, repeats=steps)
        results.append(row)
        print_row(row, timed)
        if trace and len(results) == 1:
            trace_steps(trainer, batch, trace)
        del trainer
        keras.backend.clear_session()
    return results


def time_configuration(trainer, dataset, warmup: int, timed: int) -> dict:
    """`warmup` untimed steps then `timed` timed ones through `fit`: first, median and mean step."""
    timer = StepTimer()
    started = time.perf_counter()
    trainer.fit(dataset, steps_per_epoch=warmup + timed, epochs=1, callbacks=[timer], shuffle=False, verbose=0)
    total = time.perf_counter() - started
    measured = timer.times[warmup:]
    return {
        "first_step_s": timer.times[0],
        "median_step_s": statistics.median(measured),
        "mean_step_s": statistics.fmean(measured),
        "total_s": total,
    }


def print_row(row: dict, timed: int) -> None:
    parts = "".join(f"  {part[:-2].replace('_', ' ')} {value:.2f} s"
                    for part, value in row.get("breakdown_median_s", {}).items())
    print(
        f"{row['config']:<24}{row['generator']:<9}XLA {'on ' if row['xla'] else 'off'}  {row['precision']:<10}"
        f"median {row['median_step_s']:.2f} s/step  "
        f"mean {row['mean_step_s']:.2f} s/step over {timed} steps  "
        f"(first step {row['first_step_s']:.1f} s){parts}",
        flush=True,
    )


def step_parts(trainer, lightness, real_ab, repeats: int) -> dict:
    """The step split as the reference benchmark splits it: G forward, D step (with R1 when the
    configuration has it), G step (D forward, both backward, G update: the time of a G step that
    recomputes G's forward pass, less that forward pass, as the reference's G step reuses it).
    Each part is the trainer's own (`discriminator_step`, `generator_step`)."""
    generator = trainer.generator

    @tf.function
    def g_forward():
        return generator(lightness, training=True)

    @tf.function
    def d_step(fake_ab):
        return trainer.discriminator_step(lightness, real_ab, fake_ab)["disc_loss"]

    @tf.function
    def g_step():
        with tf.GradientTape() as tape:
            fake_ab = generator(lightness, training=True)
        return trainer.generator_step(lightness, real_ab, fake_ab, tape)["gen_total_loss"]

    fake_ab = g_forward()
    forward = median_seconds(lambda: g_forward().numpy(), repeats)
    return {
        "g_forward_s": forward,
        "d_step_s": median_seconds(lambda: d_step(fake_ab).numpy(), repeats),
        "g_step_s": median_seconds(lambda: g_step().numpy(), repeats) - forward,
    }


def trace_steps(trainer, batch, trace: str) -> None:
    """A TensorFlow profiler trace of two whole training steps (TensorBoard's Profile tab)."""
    step = tf.function(trainer.train_step)
    tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    tf.profiler.experimental.start(trace)
    for _ in range(2):
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    tf.profiler.experimental.stop()
    print(f"profiler trace of 2 steps in {trace} (tensorboard --logdir {trace}: Profile tab)")
    print_op_types(trace)


def print_op_types(trace: str) -> None:
    """Time per op type in a profiler trace, if xprof (TensorBoard's profiler) is installed."""
    try:
        from xprof.convert import raw_to_tool_data  # optional: only with xprof installed
    except ImportError:
        print("(pip install xprof for the time per op type)")
        return
    latest = sorted(glob.glob(f"{trace}/**/*.xplane.pb", recursive=True))[-1]
    data, _ = raw_to_tool_data.xspace_to_tool_data([latest], "framework_op_stats^", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    totals: Counter = Counter()
    for row in table["rows"]:
        cells = dict(zip(columns, (cell["v"] if isinstance(cell, dict) else cell for cell in row["c"])))
        totals[cells["type"]] += cells["total_self_time"]
    whole = sum(totals.values())
    for op_type, micros in totals.most_common(12):
        print(f"  {op_type:<40}{100 * micros / whole:5.1f}% of op time")
