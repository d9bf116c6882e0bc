"""Evaluate a colorizer as the report does, and as everyone else does, against a gray baseline.

    pix2color evaluate --model runs/pix2color --data sample
    pix2color evaluate --model generator.keras --data coco-test --coco-dir coco

For every image (squashed to the model's S x S, as in training) it computes PSNR and SSIM of
the 8-bit RGB result against the original, and colourfulness; over the whole set, FID and KID of
the results against the originals (Inception-v3 features: `pix2color.evaluation`); for:
- the model, deterministic (BatchNorm moving statistics, no dropout), the default for use:
  the same photo always gets the same colours whatever else is in the batch;
- the model in the report's mode (dropout on, BatchNorm statistics of the test batch), which is
  how the report's numbers were produced, so use it to compare with them;
- the grayscale baseline (a = b = 0), which PSNR/SSIM reward surprisingly well.

Two protocols: the report's (piqa's value_range=256: PSNR peak and SSIM constants from 256; the
mean over batches of per-batch means, +- the std of the batch means) and the common one (255 for
both; per-image mean +- std).
Writes evaluation.md (the table) and evaluation.csv (one row per image) into --out.
FID and KID compare within pix2color, not with published values (docs/evaluation.md says why,
and how many images they need).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pix2color.evaluation.distances import KID_SUBSETS, to_originals

# Keras, TensorFlow and the networks are imported inside the functions that need them: `pix2color
# evaluate` checks its arguments and paths before paying for TensorFlow's start-up.

SYSTEMS = ("deterministic", "paper", "grayscale")
REPORT_BATCH = 4
METRICS = ("psnr256", "psnr255", "ssim256", "ssim255", "colourfulness", "colourfulness_truth")


@dataclass
class Evaluation:
    """Per-image metrics of each system, in image order, and the set's distances to the originals."""

    names: list[str]
    batch_size: int
    values: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # system -> metric -> (N,)
    distances: dict[str, dict[str, float]] = field(default_factory=dict)  # system -> fid, kid, kid_std, kid_subset
    features: str | None = None  # which Inception-v3 weights gave the distances

    def report_protocol(self, system: str, metric: str) -> tuple[float, float]:
        """Mean over batches of per-batch means, and the std of the batch means (the report's +-)."""
        per_image = self.values[system][metric]
        batch_means = [per_image[i : i + self.batch_size].mean() for i in range(0, len(per_image), self.batch_size)]
        return float(np.mean(batch_means)), float(np.std(batch_means))

    def common_protocol(self, system: str, metric: str) -> tuple[float, float]:
        per_image = self.values[system][metric]
        return float(per_image.mean()), float(per_image.std())

    def markdown(self, title: str) -> str:
        distances = bool(self.distances)
        lines = [
            f"## {title}",
            "",
            f"{len(self.names)} images; report protocol = value range 256 (PSNR peak, SSIM constants), mean of "
            f"per-batch means over batches of {self.batch_size} +- std of the batch means; common = 255, "
            "per-image mean +- std."
            + (f" {self.features}; KID x 1000, +- its spread over {KID_SUBSETS} subsets of "
               f"{next(iter(self.distances.values()))['kid_subset']:.0f} images." if distances else ""),
            "",
            "| system | PSNR (report) | SSIM (report) | PSNR (common) | SSIM (common) | colourfulness | "
            "ground-truth colourfulness | gap |" + (" FID | KID x 1000 |" if distances else ""),
            "|---|---|---|---|---|---|---|---|" + ("---|---|" if distances else ""),
        ]
        labels = {"deterministic": "model, deterministic", "paper": "model, paper mode (report)",
                  "grayscale": "grayscale baseline (a = b = 0)"}
        for system in self.values:
            psnr_r, psnr_r_sd = self.report_protocol(system, "psnr256")
            ssim_r, ssim_r_sd = self.report_protocol(system, "ssim256")
            psnr_c, psnr_c_sd = self.common_protocol(system, "psnr255")
            ssim_c, ssim_c_sd = self.common_protocol(system, "ssim255")
            colourful = self.values[system]["colourfulness"].mean()
            truth = self.values[system]["colourfulness_truth"].mean()
            measured = self.distances.get(system)
            lines.append(
                f"| {labels[system]} | {psnr_r:.2f} +- {psnr_r_sd:.2f} | {ssim_r:.4f} +- {ssim_r_sd:.4f} | "
                f"{psnr_c:.2f} +- {psnr_c_sd:.2f} | {ssim_c:.4f} +- {ssim_c_sd:.4f} | {colourful:.1f} | "
                f"{truth:.1f} | {truth - colourful:+.1f} |"
                + (f" {distance_text(measured, 'fid')} | {distance_text(measured, 'kid')} |" if measured else "")
            )
        lines += ["", "Report (256x256, COCO test2017, paper mode): PSNR 24.31 +- 2.12, SSIM 0.922."]
        return "\n".join(lines) + "\n"

    def csv_text(self) -> str:
        """One row per image: its name, then every system's every metric."""
        columns = [f"{system}_{metric}" for system in self.values for metric in self.values[system]]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["image", *columns])
        for index, name in enumerate(self.names):
            row = [self.values[s][m][index] for s in self.values for m in self.values[s]]
            writer.writerow([name, *(f"{value:.6f}" for value in row)])
        return text.getvalue()


def distance_text(found: dict, name: str) -> str:
    """FID ('12.34') or KID x 1000 with its spread ('1.23 +- 0.45') of `to_originals`' result, as tables show them."""
    return f"{found['fid']:.4g}" if name == "fid" else f"{1000 * found['kid']:.4g} +- {1000 * found['kid_std']:.2g}"


def evaluate_generator(generator, images, names: list[str], batch_size: int = REPORT_BATCH,
                       systems=SYSTEMS, verbose: int = 1, features=None) -> Evaluation:
    """Run `generator` over `images` (paths or a tfds split) and measure every system; with
    `features` (a `pix2color.evaluation.inception.InceptionFeatures`), FID and KID too."""
    import keras

    from pix2color.data import make_eval_dataset

    size = int(generator.input_shape[1])
    measure = _batch_measurer(generator, systems)
    collected = {s: {k: [] for k in METRICS} for s in systems}
    pooled = {name: [] for name in ("truth", *systems)}  # Inception features, for FID / KID
    progress = keras.utils.Progbar(len(names), verbose=verbose, unit_name="image")
    for lightness, ab in make_eval_dataset(images, size, batch_size):
        measured, outputs = measure(lightness, ab)
        for system, values in measured.items():
            for metric, value in values.items():
                collected[system][metric].append(value.numpy())
        if features is not None:
            for name, rgb in outputs.items():
                pooled[name].append(features(rgb))
        progress.add(len(lightness))
    result = Evaluation(list(names), batch_size, features=None if features is None else features.description)
    result.values = {s: {m: np.concatenate(v) for m, v in collected[s].items()} for s in systems}
    if features is not None:
        truth = np.concatenate(pooled["truth"])
        result.distances = {system: to_originals(np.concatenate(pooled[system]), truth) for system in systems}
    return result


def _batch_measurer(generator, systems):
    """The function that measures one batch, every system against the originals:
    (lightness, ab) -> ({system: {metric: per-image values}}, {"truth" or system: its uint8 RGB, for FID / KID})."""
    import tensorflow as tf

    from pix2color.evaluation import metrics
    from pix2color.networks.paper_mode import paper_mode_generator

    paper = paper_mode_generator(generator) if "paper" in systems else None
    predict = {
        "deterministic": lambda lightness: generator(lightness, training=False),
        "paper": paper,
        "grayscale": lambda lightness: tf.zeros(tf.concat([tf.shape(lightness)[:-1], [2]], 0)),
    }

    # One graph per batch: run eagerly, the metrics cost as much as the network. No autograph: the
    # code has no tensor-dependent Python control flow, and converting it costs seconds every run.
    @tf.function(autograph=False)
    def measure(lightness, ab):
        truth = metrics.to_uint8_values(lightness, ab)
        truth_colourfulness = metrics.colourfulness(truth)
        measured, images = {}, {"truth": truth}
        for system in systems:
            output = images[system] = metrics.to_uint8_values(lightness, predict[system](lightness))
            measured[system] = {
                "psnr256": metrics.psnr(truth, output, metrics.REPORT_PEAK),
                "psnr255": metrics.psnr(truth, output, metrics.COMMON_PEAK),
                **dict(zip(("ssim256", "ssim255"),
                           metrics.ssim_for_peaks(truth, output, (metrics.REPORT_PEAK, metrics.COMMON_PEAK)))),
                "colourfulness": metrics.colourfulness(output),
                "colourfulness_truth": truth_colourfulness,
            }
        return measured, images

    return measure


def images_for(data: str, coco_dir=None, tfds_data_dir=None, limit: int | None = None):
    """`--data` -> (images, names): sample (its validation photos), coco-val, coco-test, or a folder."""
    from pix2color.data import load_image_set

    if data in ("coco-val", "coco-test"):
        image_set = load_image_set("coco", coco_dir=coco_dir, tfds_data_dir=tfds_data_dir, verbose=0)
        images = image_set.val if data == "coco-val" else image_set.test
    elif data == "sample":
        images = load_image_set("sample", verbose=0).val
    else:
        image_set = load_image_set(data, val_fraction=0.0, verbose=0)
        images = image_set.train + image_set.val
    if isinstance(images, list):
        images = sorted(images)[:limit]
    elif limit:
        raise ValueError("--limit works with folders of images, not tensorflow-datasets splits")
    return images, image_names(images)


def image_names(images) -> list[str]:
    """One name per image, in `make_eval_dataset` order: file names, or tfds split positions."""
    if isinstance(images, list):
        return [Path(p).name for p in sorted(images)]
    return [f"{images.name}:{images.split}#{i}" for i in np.flatnonzero(images.kept)]
