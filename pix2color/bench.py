"""Benchmarks that print numbers (tests never time anything).

    python -m pix2color.bench train --image-size 256 --batch-size 4 [--generator resnet18] [--json FILE] [--trace DIR]
    python -m pix2color.bench infer [--model RUN] [--generator resnet18]
    python -m pix2color.bench data
    python -m pix2color.bench evaluate [--model RUN] [--images 168]
    python -m pix2color.bench web [--model RUN]
    python -m pix2color.bench video [--model RUN] [--width 640 --height 360] [--json FILE]

`train` prints seconds per training step for R1 off, R1 every step and lazy R1, with and without XLA,
and for R1 off / every step (XLA off) the step's parts as the reference benchmark times them: G's
forward pass, the D step, the G step.
`--generator resnet18` times the ResNet-18 U-Net too, after the U-Net, in the same process.
Steps run through `fit` on one fixed batch of sample photos repeated, so only the step is
timed, not decoding. "per step" is the median over the timed steps; for lazy R1 the mean over
whole cycles of `--r1-every` steps is printed too, since only one step in k pays for R1.
`video` makes a clip from the sample photos (`pix2color.clips`: pans, zooms, two cuts), colorizes
it with `--stabilise off` and `on` through the real decode/colorize/encode path, and prints frames
per second (and as a ratio to the network's own rate at the same batch size), flicker (mean |delta
ab| between consecutive output frames after compensating the true camera motion, on pixels whose
true colour did not change) and PSNR against the true colour frames.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import sys
import time

from pix2color.quiet import import_quietly


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


def bench_train(image_size: int, batch_size: int, steps: int, warmup: int, r1_every: int, xla: str,
                lazy_xla: bool = False, generators: tuple[str, ...] = ("unet",), breakdown: bool = True,
                trace: str | None = None) -> list[dict]:
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
    for generator, jit, (name, gamma, every) in itertools.product(generators, xla_modes, variants):
        if jit and every > 1 and not lazy_xla:
            print(f"{name:<24}{generator:<9}XLA on   skipped: compiling lazy R1's tf.cond with XLA did not finish "
                  "in 12 minutes on 2 cores (--lazy-xla to try)", flush=True)
            continue
        config = TrainConfig(image_size=image_size, batch_size=batch_size, r1_gamma=gamma, r1_every=every,
                             jit_compile=jit, generator=generator, encoder_weights="none")
        trainer = build_trainer(config)
        timer = _StepTimer()
        timed = max(steps, every)
        started = time.perf_counter()
        trainer.fit(dataset, steps_per_epoch=warmup + timed, epochs=1, callbacks=[timer.callback], shuffle=False, verbose=0)
        total = time.perf_counter() - started
        measured = timer.times[warmup:]
        row = {
            "generator": generator,
            "config": name,
            "xla": jit,
            "image_size": image_size,
            "batch_size": batch_size,
            "first_step_s": timer.times[0],
            "median_step_s": statistics.median(measured),
            "mean_step_s": statistics.fmean(measured),
            "total_s": total,
        }
        if breakdown and every == 1 and not jit:
            row["breakdown_median_s"] = _step_parts(trainer, *batch, repeats=steps)
        results.append(row)
        parts = "".join(f"  {part[:-2].replace('_', ' ')} {value:.2f} s"
                        for part, value in row.get("breakdown_median_s", {}).items())
        print(
            f"{name:<24}{generator:<9}XLA {'on ' if jit else 'off'}  median {row['median_step_s']:.2f} s/step  "
            f"mean {row['mean_step_s']:.2f} s/step over {len(measured)} steps  "
            f"(first step {row['first_step_s']:.1f} s){parts}",
            flush=True,
        )
        if trace and len(results) == 1:
            _trace_steps(trainer, batch, trace)
        del trainer
        keras.backend.clear_session()
    return results


def _step_parts(trainer, lightness, real_ab, repeats: int) -> dict:
    """The step split as the reference benchmark splits it: G forward, D step (with R1 when the
    configuration has it), G step (D forward, both backward, G update: the time of a G step that
    recomputes G's forward pass, less that forward pass, as the reference's G step reuses it).
    Each part is the trainer's own (`discriminator_step`, `generator_step`)."""
    import tensorflow as tf

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
    forward = _median_seconds(lambda: g_forward().numpy(), repeats)
    return {
        "g_forward_s": forward,
        "d_step_s": _median_seconds(lambda: d_step(fake_ab).numpy(), repeats),
        "g_step_s": _median_seconds(lambda: g_step().numpy(), repeats) - forward,
    }


def _trace_steps(trainer, batch, trace: str) -> None:
    """A TensorFlow profiler trace of two whole training steps (TensorBoard's Profile tab)."""
    import tensorflow as tf

    step = tf.function(trainer.train_step)
    tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    tf.profiler.experimental.start(trace)
    for _ in range(2):
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    tf.profiler.experimental.stop()
    print(f"profiler trace of 2 steps in {trace} (tensorboard --logdir {trace}: Profile tab)")
    _print_op_types(trace)


def _print_op_types(trace: str) -> None:
    """Time per op type in a profiler trace, if xprof (TensorBoard's profiler) is installed."""
    import glob
    from collections import Counter

    try:
        from xprof.convert import raw_to_tool_data
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


def _call_seconds(function, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls (no warm-up)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def _median_seconds(function, repeats: int) -> float:
    function()  # warm-up (tracing, delegate set-up)
    return statistics.median(_call_seconds(function, repeats))


def _interleaved_medians(functions: dict, repeats: int) -> dict:
    """Median seconds of each function, timed in turn (one call of each per round), so that a
    slow moment of the machine falls on all of them rather than on one."""
    for function in functions.values():
        function()  # warm-up (tracing, delegate set-up)
    times: dict = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _size_mb(path) -> float:
    from pathlib import Path

    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def bench_infer(model: str | None, image_size: int, repeats: int, images: int, workdir: str | None,
                generators: tuple[str, ...] = ("unet",)) -> list[dict]:
    """Per generator and format: file size, latency at S x S and for a 12 MP photo, PSNR change vs float32."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from pix2color import lite
    from pix2color.data import load_image_set
    from pix2color.loading import load_generator
    from pix2color.networks import build_named_generator

    work = Path(workdir or tempfile.mkdtemp(prefix="pix2color-bench-"))
    if model:
        subjects = [(Path(model).name, load_generator(model))]
    else:
        print("no --model: untrained generators (sizes and latencies are real; PSNR changes only "
              "measure numerical drift)")
        subjects = [(kind, build_named_generator(kind, image_size, encoder_weights="none")) for kind in generators]
    photos = [lite.read_image(p) for p in load_image_set("sample", verbose=0).val[:images]]
    big = np.asarray(Image.fromarray(photos[0]).resize((4000, 3000), Image.Resampling.BICUBIC))
    rows = []
    for label, generator in subjects:
        rows += _bench_infer_generator(label, generator, work / label, photos, big, repeats)
    return rows


def _bench_infer_generator(label: str, generator, work, photos: list, big, repeats: int) -> list[dict]:
    import numpy as np
    import tensorflow as tf

    from pix2color import export, lite, metrics

    work.mkdir(parents=True, exist_ok=True)
    size = int(generator.input_shape[1])
    keras_file = work / "generator.keras"
    generator.save(keras_file)
    export.export(str(keras_file), str(work), modes=("deterministic",), log=lambda *_: None)
    lightness = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 1)).astype(np.float32)

    @tf.function
    def keras_ab(x):
        return generator(x, training=False)

    saved = tf.saved_model.load(str(work / "savedmodel"))
    networks = {
        "keras": (keras_file, lambda x: keras_ab(tf.constant(x)).numpy()),
        "savedmodel": (work / "savedmodel", lambda x: saved.signatures["ab"](lightness=tf.constant(x))["ab"].numpy()),
    }
    for variant in export.TFLITE_VARIANTS:
        path = work / "tflite" / f"generator_deterministic_{variant}.tflite"
        networks[f"tflite {variant}"] = (path, lite.LiteColorizer(path)._run)

    truth = np.stack(photos).astype(np.float32)
    outputs = {name: np.stack(lite.FullResolutionColorizer(predict, size).colorize_batch(photos)).astype(np.float32)
               for name, (_, predict) in networks.items()}
    latencies = _interleaved_medians({name: lambda predict=predict: predict(lightness)
                                      for name, (_, predict) in networks.items()}, repeats)
    rows = []
    for name, (path, predict) in networks.items():
        recipe = lite.FullResolutionColorizer(predict, size)
        rows.append({
            "generator": label,
            "format": name,
            "size_mb": _size_mb(path),
            "latency_s": latencies[name],
            "photo_12mp_s": _median_seconds(lambda: recipe.colorize(big), 1),
            "psnr": float(np.mean(metrics.psnr(truth, outputs[name]).numpy())),
            # the drift from the float32 file's colours, in 8-bit levels (mean over pixels and channels)
            "levels_from_float32": float(np.abs(outputs[name] - outputs["tflite float32"]).mean()),
        })
    reference_psnr = next(row["psnr"] for row in rows if row["format"] == "tflite float32")
    started = time.perf_counter()
    saved.signatures["serving_default"](image=tf.constant(big))
    serving_first = time.perf_counter() - started
    serving = _median_seconds(lambda: saved.signatures["serving_default"](image=tf.constant(big)), 1)

    parameters = sum(int(np.prod(v.shape)) for v in generator.trainable_weights)
    print(f"\n{label}: {parameters / 1e6:.1f} M parameters, {size}x{size}; latency: median of {repeats} network calls "
          f"on one image, formats in turn; 12 MP: 4000x3000 photo end to end (full-resolution recipe, numpy + network); PSNR: peak 256 "
          f"on {len(photos)} sample photos, against the originals; levels from float32: mean |output - TFLite "
          "float32's output| in 8-bit levels")
    print(f"{'format':<18}{'size MB':>9}{'latency s':>11}{'12 MP s':>9}{'PSNR dB':>9}{'vs float32':>12}"
          f"{'levels from float32':>21}")
    for row in rows:
        print(f"{row['format']:<18}{row['size_mb']:>9.1f}{row['latency_s']:>11.3f}{row['photo_12mp_s']:>9.2f}"
              f"{row['psnr']:>9.2f}{row['psnr'] - reference_psnr:>+12.3f}{row['levels_from_float32']:>21.2f}")
    print(f"SavedModel serving signature, 12 MP in-graph: {serving:.2f} s (first call {serving_first:.2f} s)")
    return rows


def _photo_folder(folder, count: int, width: int, height: int) -> list[str]:
    """`count` JPEGs of width x height made from the sample photos (repeated if needed) in `folder`."""
    from PIL import Image

    from pix2color.data import load_image_set

    folder.mkdir(parents=True, exist_ok=True)
    sources = load_image_set("sample", verbose=0).train
    files = []
    for index in range(count):
        photo = Image.open(sources[index % len(sources)]).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        path = folder / f"{index:05d}.jpg"
        photo.save(path, quality=90)
        files.append(str(path))
    return files


def bench_evaluate(model: str | None, images: int, image_size: int, repeats: int, workdir: str | None) -> dict:
    """`pix2color evaluate` end to end, run as a user runs it (a new process: import, load, trace,
    evaluate, write), against images x 2 modes x the generator's batch-1 latency, measured before
    and after it in this process."""
    import subprocess
    import tempfile
    from pathlib import Path

    import numpy as np
    import tensorflow as tf

    from pix2color.loading import load_generator
    from pix2color.networks import build_named_generator

    work = Path(workdir or tempfile.mkdtemp(prefix="pix2color-evaluate-bench-"))
    _photo_folder(work / "photos", images, image_size, image_size)
    if model is None:
        print("no --model: an untrained 256 px U-Net (its time is real, its metrics are not)")
        model = str(work / "generator.keras")
        build_named_generator("unet", image_size).save(model)
    generator = load_generator(model)
    size = int(generator.input_shape[1])
    predict = tf.function(lambda lightness: generator(lightness, training=False))
    lightness = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, size, size, 1)).astype(np.float32))

    def network_call():
        predict(lightness).numpy()

    network_call()  # tracing
    before = _call_seconds(network_call, repeats)  # latency before and after the evaluation: the same machine
    command = [sys.executable, "-m", "pix2color.cli", "evaluate", "--model", model, "--data", str(work / "photos"),
               "--out", str(work / "evaluation"), "--verbose", "0"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    total = time.perf_counter() - started
    latency = statistics.median(before + _call_seconds(network_call, repeats))
    network = images * 2 * latency
    print(f"pix2color evaluate, {images} photos of {image_size}x{image_size}, deterministic + paper mode + gray "
          f"baseline: {total:.1f} s end to end")
    print(f"generator latency (batch 1, median of {repeats} calls before and {repeats} after): {latency:.3f} s; "
          f"photos x 2 modes x latency = {network:.1f} s; evaluate takes {total / network:.2f}x that")
    return {"images": images, "image_size": image_size, "total_s": total, "latency_s": latency,
            "ratio_to_network": total / network}


def bench_data(images: int, width: int, height: int, image_size: int, batch_size: int, batches: int,
               step_seconds: float) -> float:
    """Images per second through the training pipeline, for COCO-sized JPEGs made from the samples."""
    import tempfile
    from pathlib import Path

    from pix2color.data import make_train_dataset

    files = _photo_folder(Path(tempfile.mkdtemp(prefix="pix2color-data-bench-")), images, width, height)
    size_kb = sum(Path(f).stat().st_size for f in files) / len(files) / 1024
    dataset = make_train_dataset(files, image_size, batch_size, seed=0)
    iterator = iter(dataset)
    for _ in range(5):  # warm-up: tracing, thread pools
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    rate = batches * batch_size / (time.perf_counter() - started)
    consumption = batch_size / step_seconds
    print(f"{images} JPEGs {width}x{height} (~{size_kb:.0f} kB), read + decode + resize to {image_size} + flip + Lab, "
          f"batch {batch_size}: {rate:.1f} images/s on {__import__('os').cpu_count()} cores")
    print(f"training at {step_seconds:.1f} s/step consumes {consumption:.1f} images/s: the pipeline is "
          f"{rate / consumption:.0f}x faster than needed")
    return rate


def bench_poll(participants: int = 50, pairs: int = 20, workdir: str | None = None, log=print) -> dict:
    """Concurrent participants answering a whole poll on a real server on loopback.

    Returns the counts (for the test that nothing is lost) and answers/s, p50/p95 latency."""
    import asyncio
    import tempfile
    from pathlib import Path

    import httpx
    import numpy as np

    from pix2color import turing
    from pix2color.web.local_server import LocalServer

    folder = Path(workdir or tempfile.mkdtemp(prefix="pix2color-poll-bench-")) / "poll"
    rng = np.random.default_rng(0)
    images = []
    for index in range(pairs):
        original = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        images.append(turing.PollImages(f"photo{index}.jpg", original, original, original // 2))
    turing.write_poll(folder, images, "report", seed=1)
    latencies: list[float] = []

    async def participant(base: str) -> int:
        async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Accept": "application/json"}) as client:
            trial = (await client.get("/poll")).json()
            answered = 0
            while not trial["done"]:
                started = time.perf_counter()
                reply = await client.post("/poll/answer", json={
                    "pair": trial["pair"], "shown": trial["images"], "answer": "original"})
                latencies.append(time.perf_counter() - started)
                reply.raise_for_status()
                answered += reply.json()["recorded"]
                trial = reply.json()["next"]
            return answered

    async def everyone(base: str) -> list[int]:
        return await asyncio.gather(*(participant(base) for _ in range(participants)))

    with LocalServer(["--poll", str(folder)]) as server:
        started = time.perf_counter()
        acknowledged = asyncio.run(asyncio.wait_for(everyone(server.url), timeout=600))
        seconds = time.perf_counter() - started
    answers = turing.Poll(folder).answers()
    stats = {
        "participants": participants, "pairs": pairs, "acknowledged": sum(acknowledged), "stored": len(answers),
        "distinct": len({(row[0], row[1]) for row in answers}), "seconds": seconds,
        "answers_per_s": sum(acknowledged) / seconds,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p95_ms": 1000 * float(np.percentile(latencies, 95)),
        "folder": str(folder),
    }
    log(f"poll: {participants} participants x {pairs} pairs on loopback: {stats['acknowledged']} answers acknowledged, "
        f"{stats['stored']} stored; {stats['answers_per_s']:.0f} answers/s, latency p50 {stats['p50_ms']:.0f} ms, "
        f"p95 {stats['p95_ms']:.0f} ms")
    return stats


def bench_colorize_load(model: str | None, clients: int = 8, requests_each: int = 4, megapixels: float = 1.0,
                        log=print) -> dict:
    """`clients` concurrent uploads of a `megapixels` JPEG to `/api/colorize` on loopback."""
    import asyncio
    import io
    import tempfile
    from pathlib import Path

    import httpx
    import numpy as np
    from PIL import Image

    from pix2color import lite
    from pix2color.data import load_image_set
    from pix2color.networks import build_generator
    from pix2color.web.local_server import LocalServer

    if model is None:  # an untrained 256 px U-Net: the latency is real, the colours are not
        model = str(Path(tempfile.mkdtemp(prefix="pix2color-web-bench-")) / "generator.keras")
        build_generator(256).save(model)
    photo = lite.read_image(load_image_set("sample", verbose=0).val[0])
    side = int((megapixels * 1e6 / (4 / 3)) ** 0.5)
    buffer = io.BytesIO()
    Image.fromarray(photo).resize((side * 4 // 3, side), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
    upload = buffer.getvalue()
    latencies: list[float] = []

    async def client(base: str) -> int:
        done = 0
        async with httpx.AsyncClient(base_url=base, timeout=600) as http:
            for _ in range(requests_each):
                started = time.perf_counter()
                reply = await http.post("/api/colorize", files={"image": ("photo.jpg", upload, "image/jpeg")})
                if reply.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                    done += 1
        return done

    async def everyone(base: str) -> list[int]:
        return await asyncio.gather(*(client(base) for _ in range(clients)))

    with LocalServer(["--model", model, "--queue", str(clients)]) as server:
        httpx.post(server.url + "/api/colorize", files={"image": ("w.jpg", upload, "image/jpeg")}, timeout=600)  # warm-up
        started = time.perf_counter()
        completed = sum(asyncio.run(everyone(server.url)))
        seconds = time.perf_counter() - started
    stats = {"clients": clients, "completed": completed, "requested": clients * requests_each, "seconds": seconds,
             "p50_s": float(np.percentile(latencies, 50)), "p95_s": float(np.percentile(latencies, 95)),
             "per_s": completed / seconds}
    log(f"colorize: {clients} concurrent clients x {requests_each} uploads of a {megapixels:.1f} MP JPEG "
        f"({side * 4 // 3}x{side}): {completed}/{clients * requests_each} done, {stats['per_s']:.2f} images/s, "
        f"latency p50 {stats['p50_s']:.2f} s, p95 {stats['p95_s']:.2f} s")
    return stats


def flicker_and_psnr(clip, frames: list, tolerance: float = 2.0) -> tuple[float, float]:
    """(flicker in Lab ab units, mean per-frame PSNR in dB) of colorized `frames` of `clip`.

    Flicker: mean |ab_t - ab_{t-1} moved by the true motion| over the pixels seen in both frames
    whose true ab moved with them to within `tolerance`, over every pair of frames in one shot.
    """
    import cv2
    import numpy as np

    from pix2color.clips import motion_to_previous
    from pix2color.lite import rgb_to_lab

    height, width = frames[0].shape[:2]
    true_ab = [rgb_to_lab(frame / 255.0)[..., 1:] for frame in clip.frames]
    output_ab = [rgb_to_lab(frame / 255.0)[..., 1:] for frame in frames]
    ones = np.ones((height, width), np.float32)
    changes = []
    for t in range(1, len(frames)):
        if clip.shot_of_frame[t] != clip.shot_of_frame[t - 1]:
            continue
        motion = motion_to_previous(clip, t)

        def moved(image):
            return cv2.warpAffine(image, motion, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)

        steady = ((moved(ones) > 0.999)
                  & (np.abs(true_ab[t] - moved(true_ab[t - 1])).max(axis=-1) < tolerance))
        changes.append(np.abs(output_ab[t] - moved(output_ab[t - 1]))[steady].mean())
    errors = [np.mean((frame.astype(np.float64) - truth) ** 2) for frame, truth in zip(frames, clip.frames)]
    return float(np.mean(changes)), float(np.mean([10 * np.log10(255.0**2 / max(e, 1e-10)) for e in errors]))


def bench_video(model: str | None, width: int, height: int, seconds: float, fps: int, batch_size: int,
                strength: float, repeats: int, workdir: str | None, log=print) -> list[dict]:
    import tempfile
    from pathlib import Path

    import numpy as np

    from pix2color import clips
    from pix2color.lite import FullResolutionColorizer
    from pix2color.loading import Network, load_network
    from pix2color.stabilise import Stabiliser
    from pix2color.video import colorize_video

    if model:
        network = load_network(model)
    else:
        from pix2color.networks import build_generator

        generator = build_generator(256)
        network = Network(lambda x: generator.predict_on_batch(x), 256)
        model = "an untrained 256 px U-Net"
    recipe = FullResolutionColorizer(network.predict_ab, network.image_size)
    work = Path(workdir or tempfile.mkdtemp(prefix="pix2color-bench-video-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = clips.render(clips.default_shots(seconds, fps), width, height, fps)
    source = clips.write_clip(clip, work / "clip.mp4")
    log(f"clip: {len(clip.frames)} frames, {width}x{height} at {fps} fps, cuts at frames {clip.cuts}; "
        f"model: {model} ({network.image_size} px)")
    batch = np.stack([recipe.prepare(frame)[1] for frame in clip.frames[:batch_size]])
    network.predict_ab(batch)
    network_fps = batch_size / _median_seconds(lambda: network.predict_ab(batch), repeats)
    log(f"network alone: {network_fps:.1f} frames/s at batch {batch_size}")
    rows = []
    for stabilise in ("off", "on"):
        stabiliser = Stabiliser(strength) if stabilise == "on" else None
        started = time.perf_counter()
        result = colorize_video(source, work / f"stabilise_{stabilise}.mp4", recipe, batch_size, stabiliser)
        elapsed = time.perf_counter() - started
        flicker, psnr = flicker_and_psnr(clip, clips.read_frames(result.target))
        row = {"config": f"stabilise {stabilise}", "frames": result.frames, "fps": result.frames / elapsed,
               "network_fps": network_fps, "flicker_ab": flicker, "psnr_db": psnr, "cuts_detected": result.cuts,
               "cuts": clip.cuts, "strength": strength if stabiliser else None, "width": width, "height": height,
               "image_size": network.image_size, "batch_size": batch_size}
        rows.append(row)
        log(f"stabilise {stabilise}: {row['fps']:.1f} frames/s ({row['fps'] / network_fps:.2f}x the network), "
            f"flicker {flicker:.3f}, PSNR {psnr:.2f} dB"
            + (f", cuts detected at {result.cuts}" if stabiliser else ""))
    off, on = rows
    log(f"stabiliser: flicker x{on['flicker_ab'] / off['flicker_ab']:.2f}, PSNR {on['psnr_db'] - off['psnr_db']:+.2f} dB")
    return rows


def generators(choice: str) -> tuple[str, ...]:
    """The generators to time: the U-Net always, the ResNet-18 U-Net beside it when asked."""
    return ("unet",) if choice == "unet" else ("unet", choice)


def main(argv: list[str] | None = None) -> int:
    from pix2color.cli import ArgumentParser
    from pix2color.config import GENERATORS

    parser = ArgumentParser(prog="python -m pix2color.bench", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="seconds per training step")
    train.add_argument("--image-size", type=int, default=256)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    train.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing, XLA compile)")
    train.add_argument("--r1-every", type=int, default=16, help="k of the lazy R1 configuration")
    train.add_argument("--xla", choices=("both", "off", "on"), default="both")
    train.add_argument("--lazy-xla", action="store_true", help="also time lazy R1 under XLA (compiles for long)")
    train.add_argument("--no-breakdown", action="store_true", help="skip timing G forward, D step and G step apart")
    train.add_argument("--trace", default=None, help="write a TensorFlow profiler trace of the first configuration")
    train.add_argument("--json", default=None, help="write one JSON record per configuration to this file")
    train.add_argument("--deterministic-ops", action="store_true", help="as pix2color train --deterministic-ops")
    data = commands.add_parser("data", help="images/s through the input pipeline")
    data.add_argument("--images", type=int, default=200)
    data.add_argument("--width", type=int, default=640)
    data.add_argument("--height", type=int, default=480)
    data.add_argument("--image-size", type=int, default=256)
    data.add_argument("--batch-size", type=int, default=4)
    data.add_argument("--batches", type=int, default=100)
    data.add_argument("--step-seconds", type=float, default=3.0, help="training step time to compare with")
    evaluate = commands.add_parser("evaluate", help="pix2color evaluate end to end vs the generator's latency")
    evaluate.add_argument("--model", default=None, help="run folder or .keras (default: an untrained 256 px U-Net)")
    evaluate.add_argument("--images", type=int, default=168)
    evaluate.add_argument("--image-size", type=int, default=256, help="the photos' size (and the untrained U-Net's)")
    evaluate.add_argument("--repeats", type=int, default=7)
    evaluate.add_argument("--workdir", default=None, help="keep the photos and evaluation.md here")
    web = commands.add_parser("web", help="the web app under load on loopback: poll answers, colorize uploads")
    web.add_argument("--model", default=None, help="run folder or .keras (default: an untrained 256 px U-Net)")
    web.add_argument("--participants", type=int, default=50)
    web.add_argument("--pairs", type=int, default=20)
    web.add_argument("--clients", type=int, default=8)
    web.add_argument("--requests", type=int, default=4, help="uploads per colorize client")
    infer = commands.add_parser("infer", help="size, latency and accuracy per export format")
    infer.add_argument("--model", default=None, help="run folder or .keras (default: an untrained generator)")
    infer.add_argument("--image-size", type=int, default=256, help="for the untrained generator")
    infer.add_argument("--repeats", type=int, default=5)
    infer.add_argument("--images", type=int, default=8, help="sample photos for the PSNR column")
    infer.add_argument("--workdir", default=None, help="keep the exported files here")
    video = commands.add_parser("video", help="colorize a clip made from the sample photos: fps, flicker, PSNR")
    video.add_argument("--model", default=None, help="run folder, .keras or SavedModel (default: an untrained 256 px U-Net)")
    video.add_argument("--width", type=int, default=640)
    video.add_argument("--height", type=int, default=360)
    video.add_argument("--seconds", type=float, default=6.0, help="clip length (three shots)")
    video.add_argument("--fps", type=int, default=24)
    video.add_argument("--batch-size", type=int, default=8)
    video.add_argument("--strength", type=float, default=None, help="stabiliser strength (default: the CLI's)")
    video.add_argument("--repeats", type=int, default=5, help="timings of the network alone")
    video.add_argument("--workdir", default=None, help="keep the clip and both outputs here")
    video.add_argument("--json", default=None, help="write one JSON record per configuration to this file")
    for command in (train, infer):
        command.add_argument("--generator", choices=GENERATORS, default="unet",
                             help="resnet18: the ResNet-18 U-Net too, after the U-Net, in the same process")
    args = parser.parse_args(argv)
    import_quietly()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices: each configuration is a new model
    print(f"machine: {_machine()}")
    if args.command == "train":
        if args.deterministic_ops:
            from pix2color.training import use_deterministic_ops

            use_deterministic_ops()
            print("deterministic ops (op determinism, one inter-op thread)")
        print(f"training step, image {args.image_size}x{args.image_size}, batch {args.batch_size}")
        rows = bench_train(args.image_size, args.batch_size, args.steps, args.warmup, args.r1_every, args.xla,
                           args.lazy_xla, generators(args.generator), not args.no_breakdown, args.trace)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps({**row, "machine": _machine()}) + "\n" for row in rows)
            print(f"wrote {args.json}")
    elif args.command == "data":
        bench_data(args.images, args.width, args.height, args.image_size, args.batch_size, args.batches,
                   args.step_seconds)
    elif args.command == "evaluate":
        bench_evaluate(args.model, args.images, args.image_size, args.repeats, args.workdir)
    elif args.command == "web":
        bench_poll(args.participants, args.pairs)
        bench_colorize_load(args.model, args.clients, args.requests)
    elif args.command == "video":
        from pix2color.stabilise import DEFAULT_STRENGTH

        rows = bench_video(args.model, args.width, args.height, args.seconds, args.fps, args.batch_size,
                           DEFAULT_STRENGTH if args.strength is None else args.strength, args.repeats, args.workdir)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps({**row, "machine": _machine()}) + "\n" for row in rows)
            print(f"wrote {args.json}")
    elif args.command == "infer":
        bench_infer(args.model, args.image_size, args.repeats, args.images, args.workdir, generators(args.generator))
    return 0


if __name__ == "__main__":
    sys.exit(main())
