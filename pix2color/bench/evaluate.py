"""`bench evaluate`: `pix2color evaluate` end to end against the generator's own latency."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from pix2color.bench.data import photo_folder
from pix2color.bench.timing import call_seconds
from pix2color.colorizing.loading import load_generator
from pix2color.networks import build_named_generator


def bench_evaluate(model: str | None, images: int, image_size: int, repeats: int, workdir: str | None,
                   feature_weights: str | None = None) -> dict:
    """`pix2color evaluate` end to end, run as a user runs it (a new process: import, load, trace,
    evaluate, write), against images x 2 modes x the generator's batch-1 latency, measured before
    and after it in this process. FID / KID only with `feature_weights` (their Inception-v3 runs
    on the originals and every mode's outputs)."""
    work = Path(workdir or tempfile.mkdtemp(prefix="pix2color-evaluate-bench-"))
    photo_folder(work / "photos", images, image_size, image_size)
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
    before = call_seconds(network_call, repeats)  # latency before and after the evaluation: the same machine
    command = [sys.executable, "-m", "pix2color.cli", "evaluate", "--model", model, "--data", str(work / "photos"),
               "--out", str(work / "evaluation"), "--verbose", "0",
               *(["--feature-weights", feature_weights] if feature_weights else ["--no-fid"])]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    total = time.perf_counter() - started
    latency = statistics.median(before + call_seconds(network_call, repeats))
    network = images * 2 * latency
    fid = f", FID / KID ({feature_weights} weights)" if feature_weights else ", without FID / KID"
    print(f"pix2color evaluate, {images} photos of {image_size}x{image_size}, deterministic + paper mode + gray "
          f"baseline{fid}: {total:.1f} s end to end")
    print(f"generator latency (batch 1, median of {repeats} calls before and {repeats} after): {latency:.3f} s; "
          f"photos x 2 modes x latency = {network:.1f} s; evaluate takes {total / network:.2f}x that")
    return {"images": images, "image_size": image_size, "total_s": total, "latency_s": latency,
            "ratio_to_network": total / network}
