"""The report's ablation (Table II), at the scale you choose.

    pix2color ablation --data sample --image-size 64 --steps 200 --out runs/ablation
    pix2color ablation --data sample --configs 4,6 --steps 5      # a quick look
    pix2color ablation --configs p2,p4 --encoder-weights imagenet  # the pretrained ResNet-18 rows

Each configuration is trained from scratch into OUT/<name>/ (resumable like any run), then
evaluated on the validation images in the report's mode (dropout on, batch statistics) with the
report's protocol. Writes OUT/ablation.md (the table in the report's layout, with the report's
own numbers beside ours), OUT/ablation.csv, and OUT/ablation.png (sample colorizations side by side).
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from pix2color import evaluate
from pix2color.loading import load_generator

# Table II: id -> (name, options, the report's PSNR and SSIM on val2017). Rows 1-11 are the
# U-Net ("No pretrain"); p1-p5 the ResNet-18 U-Net ("Pretrain", report section VI.C).
PRETRAIN = dict(generator="resnet18")
CONFIGURATIONS = {
    "1": ("ls-r1-1", dict(label_smoothing=True, r1_gamma=1.0), 24.4431, 0.9272),
    "2": ("ls", dict(label_smoothing=True, r1_gamma=0.0), 22.8674, 0.9016),
    "3": ("r1-1", dict(r1_gamma=1.0), 24.4491, 0.9272),
    "4": ("pix2pix", dict(r1_gamma=0.0), 22.9265, 0.9036),
    "5": ("r1-0.01", dict(r1_gamma=0.01), 24.3824, 0.9256),
    "6": ("r1-0.001 (final)", dict(r1_gamma=0.001), 24.2536, 0.9214),
    "7": ("r1-0.0001", dict(r1_gamma=0.0001), 23.5766, 0.9115),
    "8": ("ls-r1-0.001", dict(label_smoothing=True, r1_gamma=0.001), 24.2407, 0.9221),
    "10": ("gan-only", dict(gan_only=True, r1_gamma=0.0), 21.3014, 0.8751),
    "11": ("l1-only", dict(l1_only=True, lambda_l1=1.0, r1_gamma=0.0), 24.4775, 0.9274),
    "p1": ("pretrain-ls-r1-1", dict(PRETRAIN, label_smoothing=True, r1_gamma=1.0), 24.6284, 0.9289),
    "p2": ("pretrain-r1-1", dict(PRETRAIN, r1_gamma=1.0), 24.5580, 0.9288),
    "p3": ("pretrain-pix2pix", dict(PRETRAIN, r1_gamma=0.0), 22.8156, 0.9075),
    "p4": ("pretrain-r1-0.001", dict(PRETRAIN, r1_gamma=0.001), 24.5437, 0.9273),
    "p5": ("pretrain-ls-r1-0.001", dict(PRETRAIN, label_smoothing=True, r1_gamma=0.001), 24.3423, 0.9276),
}
GRID_IMAGES = 4


def run_ablation(base, config_ids, out: Path, log=print) -> list[dict]:
    """Train and evaluate each configuration; returns one result row per configuration."""
    # local: TensorFlow and matplotlib load only once an ablation runs, not for `pix2color ablation --help`
    import keras

    from pix2color import color, plots
    from pix2color.data import load_image_set, make_eval_dataset, preview_images
    from pix2color.training import train

    rows, grid_outputs = [], []
    val = load_image_set(base.data, base.val_fraction, verbose=0, coco_dir=base.coco_dir,
                         tfds_data_dir=base.tfds_data_dir).val
    names = evaluate.image_names(val)
    lightness, ab = next(iter(make_eval_dataset(preview_images(val, GRID_IMAGES), base.image_size, GRID_IMAGES)))
    for config_id in config_ids:
        name, options, report_psnr, report_ssim = CONFIGURATIONS[config_id]
        folder = out / name.split(" ")[0]
        log(f"--- configuration {config_id}: {name}")
        config = replace(base, out=str(folder), **options)
        result = train(config, log=log)
        generator = load_generator(result.generator_path)
        keras.utils.set_random_seed(base.seed)
        evaluation = evaluate.evaluate_generator(generator, val, names, evaluate.REPORT_BATCH, ("paper",), verbose=0)
        psnr, psnr_sd = evaluation.report_protocol("paper", "psnr256")
        ssim, ssim_sd = evaluation.report_protocol("paper", "ssim256")
        rows.append(dict(
            id=config_id, name=name, pretrained=config.generator == "resnet18", lambda_l1=config.effective_lambda_l1, label_smoothing=config.label_smoothing,
            r1=0.0 if config.l1_only else config.r1_gamma, l1_only=config.l1_only, psnr=psnr, psnr_sd=psnr_sd,
            ssim=ssim, ssim_sd=ssim_sd, report_psnr=report_psnr, report_ssim=report_ssim,
        ))
        predicted = generator(lightness, training=False)
        grid_outputs.append((name, color.model_outputs_to_rgb(lightness, predicted).numpy()))
    truth = color.model_outputs_to_rgb(lightness, ab).numpy()
    plots.comparison_grid([("original", truth), *grid_outputs], out / "ablation.png")
    write_table(rows, out)
    return rows


def write_table(rows: list[dict], out: Path) -> str:
    lines = []
    for section, pretrained in (("No pretrain", False), ("Pretrain", True)):
        section_rows = [row for row in rows if row["pretrained"] == pretrained]
        if not section_rows:
            continue
        lines += [
            f"| {section} | Lambda | One sided label smoothing | R1 | Only L1 | PSNR | SSIM | report PSNR | report SSIM |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in section_rows:
            lines.append(
                f"| {row['id']} ({row['name']}) | {row['lambda_l1']:g} | {'✓' if row['label_smoothing'] else '-'} | "
                f"{row['r1'] if row['r1'] else '-'} | {'✓' if row['l1_only'] else '-'} | "
                f"{row['psnr']:.4f} +- {row['psnr_sd']:.4f} | {row['ssim']:.4f} +- {row['ssim_sd']:.4f} | "
                f"{row['report_psnr']:.4f} | {row['report_ssim']:.4f} |"
            )
        lines.append("")
    table = "\n".join(lines)
    (out / "ablation.md").write_text(
        "PSNR/SSIM: report protocol (value range 256, mean over batches of 4 +- std of batch means), paper mode, "
        "on the validation images. Report columns: Table II (COCO val2017, 256x256, 15 epochs).\n\n" + table
    )
    with open(out / "ablation.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return table
