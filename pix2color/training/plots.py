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

from pix2color.errors import HistoryError  # noqa: F401 - the module's errors, importable from here too
from pix2color.training.run_folder import read_best  # noqa: E402

EQUILIBRIUM = math.log(2.0)  # BCE of a discriminator that cannot tell: -log(0.5) = 0.69


def read_history(history_csv: str | os.PathLike) -> dict[str, list[float]]:
    """`history.csv` (Keras' CSVLogger) -> column name -> values, one per epoch.

    CSVLogger writes NA for a value an epoch did not log (validation, in a run without a
    validation split): NaN here, drawn as a gap. Lines that are not whole rows (a torn write,
    a second header) are left out. Raises `HistoryError` if no epoch is in it.
    """
    with open(history_csv, newline="", encoding="utf-8", errors="replace") as handle:
        rows = list(csv.reader(handle))
    header = rows[0] if rows else []
    body = [row for row in rows[1:] if is_history_row(row, len(header))]
    if not body:
        raise HistoryError(f"{history_csv}: no finished epoch recorded yet (an interrupted first epoch?)")
    return {name: [_number(row[index]) for row in body] for index, name in enumerate(header)}


def is_history_row(row: list[str], columns: int) -> bool:
    """A whole history.csv row: an epoch number, then a number (or NA / empty) in every column."""
    if len(row) != columns or not row or not row[0].isdigit():
        return False
    return all(cell in ("", "NA") or _is_number(cell) for cell in row[1:])


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _number(text: str) -> float:
    return float(text) if _is_number(text) else math.nan


def _plot_pair(axis, history, name: str, label: str, **style):
    epochs = [int(e) + 1 for e in history["epoch"]]
    if name in history:
        axis.plot(epochs, history[name], marker="o", label=f"{label} (train)", **style)
    if f"val_{name}" in history:
        axis.plot(epochs, history[f"val_{name}"], marker="o", linestyle="--", label=f"{label} (val)", **style)


def _mark_best(axis, best: dict | None) -> None:
    """A vertical line at the epoch --keep-best kept (run.json's `best`)."""
    if best:
        axis.axvline(best["epoch"], color="black", linestyle="-.", linewidth=1,
                     label=f"best {best['metric']} (epoch {best['epoch']})")


def plot_history(history_csv: str | os.PathLike, out_png: str | os.PathLike, best: dict | None = None) -> str:
    """Loss-curve figure: G and D adversarial losses with the 0.69 line, L1, R1, PSNR/SSIM, and
    the epoch `best` kept, if any."""
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
            _mark_best(axis, best)
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


def comparison_grid(columns: Sequence[tuple[str, np.ndarray]], out_png: str | os.PathLike) -> str:
    """Images side by side: one column per (title, images (N, H, W, 3) in [0, 1]), one row per image."""
    rows = len(columns[0][1])
    figure, axes = plt.subplots(rows, len(columns), figsize=(2.2 * len(columns), 2.2 * rows), squeeze=False)
    for column, (title, images) in enumerate(columns):
        for row in range(rows):
            axis = axes[row, column]
            axis.imshow(np.clip(images[row], 0.0, 1.0))
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize="small")
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return str(out_png)


# The report's figures 7-11, one file each: (file, title, [(column, label)], draw the 0.69 line).
REPORT_FIGURES = (
    ("fig07_gan_losses.png", "G and D losses", [("gen_gan_loss", "G"), ("disc_loss", "D")], True),
    ("fig08_disc_r1.png", "D loss and its R1 term", [("disc_loss", "D"), ("r1_penalty", "R1")], True),
    ("fig09_l1.png", "Generator L1 loss", [("gen_l1_loss", "L1")], False),
    ("fig10_psnr_ssim.png", "Validation PSNR (dB) and SSIM", [("psnr", "PSNR"), ("ssim", "SSIM")], False),
    ("fig11_gen_total.png", "Full generator loss (GAN + lambda L1)", [("gen_total_loss", "G total")], False),
)


def run_figures(run: str | os.PathLike) -> list[str]:
    """All figures of a run folder into RUN/plots/: the report's figures 7-11 and the overview."""
    from pathlib import Path

    run = Path(run)
    history_csv = run / "history.csv"
    if not history_csv.exists():
        raise FileNotFoundError(f"{run}: no history.csv (not a pix2color run folder, or no epoch finished yet)")
    history = read_history(history_csv)
    best = read_best(run)
    out = run / "plots"
    out.mkdir(exist_ok=True)
    written = [plot_history(history_csv, run / "losses.png", best)]
    for filename, title, series, equilibrium in REPORT_FIGURES:
        if not any(name in history or f"val_{name}" in history for name, _ in series):
            continue  # e.g. no adversarial losses in an L1-only run
        figure, axis = plt.subplots(figsize=(7, 4.5))
        for name, label in series:
            _plot_pair(axis, history, name, label)
        if equilibrium:
            axis.axhline(EQUILIBRIUM, color="gray", linestyle=":", label="log 2 = 0.69")
        _mark_best(axis, best)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(out / filename, dpi=100)
        plt.close(figure)
        written.append(str(out / filename))
    return written
