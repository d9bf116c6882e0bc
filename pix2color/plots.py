"""Matplotlib figures of a run: loss curves (like the report's figures 7-11) and sample grids."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

EQUILIBRIUM = math.log(2.0)  # BCE of a discriminator that cannot tell: -log(0.5) = 0.69


def read_history(history_csv: str | os.PathLike) -> dict[str, list[float]]:
    """`history.csv` (Keras' CSVLogger) -> column name -> values, one per epoch."""
    with open(history_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.items():
            columns.setdefault(name, []).append(float(value) if value not in ("", None) else math.nan)
    return columns


def _plot_pair(axis, history, name: str, label: str, **style):
    epochs = [int(e) + 1 for e in history["epoch"]]
    if name in history:
        axis.plot(epochs, history[name], marker="o", label=f"{label} (train)", **style)
    if f"val_{name}" in history:
        axis.plot(epochs, history[f"val_{name}"], marker="o", linestyle="--", label=f"{label} (val)", **style)


def plot_history(history_csv: str | os.PathLike, out_png: str | os.PathLike) -> str:
    """Loss-curve figure: G and D adversarial losses with the 0.69 line, L1, R1, PSNR/SSIM."""
    history = read_history(history_csv)
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    (gan_axis, l1_axis), (r1_axis, quality_axis) = axes

    _plot_pair(gan_axis, history, "gen_gan_loss", "G loss", color="tab:blue")
    _plot_pair(gan_axis, history, "disc_loss", "D loss", color="tab:red")
    gan_axis.axhline(EQUILIBRIUM, color="gray", linestyle=":", label="log 2 = 0.69 (equilibrium)")
    gan_axis.set_title("Adversarial losses")

    _plot_pair(l1_axis, history, "gen_l1_loss", "L1 (ab)", color="tab:green")
    l1_axis.set_title("Generator L1 loss")

    _plot_pair(r1_axis, history, "r1_penalty", "R1 penalty", color="tab:purple")
    _plot_pair(r1_axis, history, "disc_loss", "D loss", color="tab:red")
    r1_axis.set_title("Discriminator loss and its R1 term")

    _plot_pair(quality_axis, history, "psnr", "PSNR (dB)", color="tab:orange")
    quality_axis.set_title("Validation PSNR (report protocol)")
    if "val_ssim" in history:
        ssim_axis = quality_axis.twinx()
        _plot_pair(ssim_axis, history, "ssim", "SSIM", color="tab:brown")
        ssim_axis.set_ylabel("SSIM")
        ssim_axis.legend(loc="lower right", fontsize="small")

    for axis in axes.flat:
        axis.set_xlabel("epoch")
        if axis.lines:
            axis.legend(loc="best", fontsize="small")
        else:
            axis.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=axis.transAxes)
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return str(out_png)


def sample_grid(
    rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    out_png: str | os.PathLike,
    title: str = "",
    column_titles: Sequence[str] = ("grayscale input", "generated", "original"),
) -> str:
    """Grid with one row per image: (gray, generated, original), each RGB floats in [0, 1]."""
    count = len(rows)
    figure, axes = plt.subplots(count, 3, figsize=(9, 3 * count), squeeze=False)
    for row_index, images in enumerate(rows):
        for column_index, image in enumerate(images):
            axis = axes[row_index, column_index]
            axis.imshow(np.clip(image, 0.0, 1.0))
            axis.set_xticks([])
            axis.set_yticks([])
            if row_index == 0:
                axis.set_title(column_titles[column_index])
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return str(out_png)
