"""`bench data`: images per second through the training input pipeline."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from PIL import Image

from pix2color.data import load_image_set, make_train_dataset


def photo_folder(folder: Path, count: int, width: int, height: int) -> list[str]:
    """`count` JPEGs of width x height made from the sample photos (repeated if needed) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = load_image_set("sample", verbose=0).train
    files = []
    for index in range(count):
        photo = Image.open(sources[index % len(sources)]).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        path = folder / f"{index:05d}.jpg"
        photo.save(path, quality=90)
        files.append(str(path))
    return files


def bench_data(images: int, width: int, height: int, image_size: int, batch_size: int, batches: int,
               step_seconds: float) -> float:
    """Images per second through the training pipeline, for COCO-sized JPEGs made from the samples."""
    files = photo_folder(Path(tempfile.mkdtemp(prefix="pix2color-data-bench-")), images, width, height)
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
          f"batch {batch_size}: {rate:.1f} images/s on {os.cpu_count()} cores")
    print(f"training at {step_seconds:.1f} s/step consumes {consumption:.1f} images/s: the pipeline is "
          f"{rate / consumption:.0f}x faster than needed")
    return rate
