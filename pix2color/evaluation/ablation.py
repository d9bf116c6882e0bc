"""The report's ablation (Table II), at the scale you choose; and any configuration in several
precisions and seeds.

    pix2color ablation --data sample --image-size 64 --steps 200 --out runs/ablation
    pix2color ablation --data sample --configs 4,6 --steps 5      # a quick look
    pix2color ablation --configs p2,p4 --encoder-weights imagenet  # the pretrained ResNet-18 rows
    pix2color ablation --configs 6 --precision float32,bfloat16 --seed 1,2,3 --image-size 256 --steps 240

Each configuration is trained from scratch into OUT/<name>/ (OUT/<name>-<precision>-seed<N>/
with several precisions or seeds; resumable like any run), then evaluated on the validation
images in the report's mode (dropout on, batch statistics) with the report's protocol. Writes
OUT/ablation.md (the table in the report's layout, with the report's own numbers beside ours;
with several precisions or seeds, the mean over seeds and its spread for each configuration and
precision, and the difference of each precision from float32), OUT/ablation.csv (one row per
run), and OUT/ablation.png (sample colorizations side by side).
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import replace
from pathlib import Path

from pix2color.colorizing.loading import load_generator
from pix2color.evaluation import evaluate
from pix2color.training import run_folder

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


def run_ablation(base, config_ids, out: Path, log=print, precisions=None, seeds=None, features=None) -> list[dict]:
    """Train and evaluate each configuration, in each of `precisions` (default: base's) with each
    of `seeds` (default: base's); returns one result row per run. With `features` (an
    `InceptionFeatures`), each run's FID and KID on the validation images too."""
    # local: TensorFlow and matplotlib load only once an ablation runs, not for `pix2color ablation --help`
    import keras

    from pix2color import color
    from pix2color.data import load_image_set, make_eval_dataset, preview_images
    from pix2color.training import plots
    from pix2color.training.run import train

    precisions = list(precisions or [base.precision])
    seeds = list(seeds or [base.seed])
    rows, grid_outputs = [], []
    val = load_image_set(base.data, base.val_fraction, verbose=0, coco_dir=base.coco_dir,
                         tfds_data_dir=base.tfds_data_dir).val
    names = evaluate.image_names(val)
    lightness, ab = next(iter(make_eval_dataset(preview_images(val, GRID_IMAGES), base.image_size, GRID_IMAGES)))
    for config_id in config_ids:
        name, options, report_psnr, report_ssim = CONFIGURATIONS[config_id]
        for precision in precisions:
            for seed in seeds:
                folder = out / run_folder_name(name, precision, seed, len(precisions) > 1, len(seeds) > 1)
                log(f"--- configuration {config_id}: {name}"
                    + (f", {precision}" if len(precisions) > 1 else "") + (f", seed {seed}" if len(seeds) > 1 else ""))
                config = replace(base, out=str(folder), precision=precision, seed=seed, **options)
                result = train(config, log=log)
                generator = load_generator(result.generator_path)
                keras.utils.set_random_seed(seeds[0])  # every run judged with the same dropout draws
                evaluation = evaluate.evaluate_generator(generator, val, names, evaluate.REPORT_BATCH, ("paper",),
                                                         verbose=0, features=features)
                rows.append(result_row(config_id, name, config, folder, evaluation, report_psnr, report_ssim))
                if seed == seeds[0]:
                    predicted = generator(lightness, training=False)
                    label = name + (f" {rows[-1]['precision']}" if len(precisions) > 1 else "")
                    grid_outputs.append((label, color.model_outputs_to_rgb(lightness, predicted).numpy()))
    truth = color.model_outputs_to_rgb(lightness, ab).numpy()
    plots.comparison_grid([("original", truth), *grid_outputs], out / "ablation.png")
    write_table(rows, out, features.description if features is not None else "FID / KID not measured")
    return rows


def result_row(config_id: str, name: str, config, folder: Path, evaluation: evaluate.Evaluation,
               report_psnr: float, report_ssim: float) -> dict:
    """One run's row of ablation.csv: the options that tell the configurations apart, the precision
    the run really trained in (its run.json), and its paper-mode numbers beside the report's."""
    psnr, psnr_sd = evaluation.report_protocol("paper", "psnr256")
    ssim, ssim_sd = evaluation.report_protocol("paper", "ssim256")
    paper = evaluation.values["paper"]
    distances = evaluation.distances.get("paper", {})
    return dict(
        id=config_id, name=name, pretrained=config.generator == "resnet18",
        lambda_l1=config.effective_lambda_l1, label_smoothing=config.label_smoothing,
        r1=0.0 if config.l1_only else config.r1_gamma, l1_only=config.l1_only,
        precision=run_folder.read_run_json(folder)["precision"], seed=config.seed, psnr=psnr, psnr_sd=psnr_sd,
        ssim=ssim, ssim_sd=ssim_sd,
        colourfulness_gap=float(paper["colourfulness_truth"].mean() - paper["colourfulness"].mean()),
        fid=distances.get("fid"), kid=distances.get("kid"), kid_std=distances.get("kid_std"),
        report_psnr=report_psnr, report_ssim=report_ssim,
    )


def run_folder_name(name: str, precision: str, seed: int, several_precisions: bool, several_seeds: bool) -> str:
    """OUT/<name>, with -<precision> and -seed<N> when the ablation runs several of them."""
    return (name.split(" ")[0] + (f"-{precision}" if several_precisions else "")
            + (f"-seed{seed}" if several_seeds else ""))


def write_table(rows: list[dict], out: Path, features: str = "FID / KID not measured") -> str:
    """ablation.md and ablation.csv; returns the markdown tables. One run per configuration: the
    report's layout; several precisions or seeds: `spread_table`. `features`: which Inception-v3
    weights gave FID and KID, said above the table (ablation.csv holds KID itself, not x 1000)."""
    runs_per_configuration = len(rows) / len({row["id"] for row in rows})
    table = spread_table(rows) if runs_per_configuration > 1 else report_table(rows)
    (out / "ablation.md").write_text(
        "PSNR/SSIM: report protocol (value range 256, mean over batches of 4 +- std of batch means), paper mode, "
        "on the validation images; colourfulness gap: the originals' mean colourfulness minus the outputs'; "
        "FID and KID x 1000 (+- its spread over subsets) of the outputs against the originals, when measured "
        f"(docs/evaluation.md). {features}. Report columns: Table II (COCO val2017, 256x256, 15 epochs).\n\n" + table
    )
    with open(out / "ablation.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return table


def report_table(rows: list[dict]) -> str:
    lines = []
    for section, pretrained in (("No pretrain", False), ("Pretrain", True)):
        section_rows = [row for row in rows if row["pretrained"] == pretrained]
        if not section_rows:
            continue
        lines += [
            f"| {section} | Lambda | One sided label smoothing | R1 | Only L1 | PSNR | SSIM | colourfulness gap | FID | "
            "KID x 1000 | report PSNR | report SSIM |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in section_rows:
            lines.append(
                f"| {row['id']} ({row['name']}) | {row['lambda_l1']:g} | {'✓' if row['label_smoothing'] else '-'} | "
                f"{row['r1'] if row['r1'] else '-'} | {'✓' if row['l1_only'] else '-'} | "
                f"{row['psnr']:.4f} +- {row['psnr_sd']:.4f} | {row['ssim']:.4f} +- {row['ssim_sd']:.4f} | "
                f"{row['colourfulness_gap']:+.1f} | {distance(row, 'fid')} | {distance(row, 'kid')} | "
                f"{row['report_psnr']:.4f} | {row['report_ssim']:.4f} |"
            )
        lines.append("")
    return "\n".join(lines)


def spread_table(rows: list[dict]) -> str:
    """Per configuration and precision: the mean over seeds of PSNR and SSIM, their spread (sample
    standard deviation over seeds, and the range) and each seed's value; then each precision's
    difference from float32 in the means."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["id"], row["name"], row["precision"]), []).append(row)
    lines = ["| configuration | precision | seeds | PSNR mean | PSNR sd (min .. max) | SSIM mean | SSIM sd (min .. max) "
             "| PSNR per seed | SSIM per seed | colourfulness gap mean | FID mean | KID x 1000 mean | report PSNR "
             "| report SSIM |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    means = {}
    for (config_id, name, precision), runs in groups.items():
        psnrs, ssims = [run["psnr"] for run in runs], [run["ssim"] for run in runs]
        psnr_mean, ssim_mean = statistics.fmean(psnrs), statistics.fmean(ssims)
        means[config_id, precision] = (psnr_mean, ssim_mean, name)
        lines.append(
            f"| {config_id} ({name}) | {precision} | {', '.join(str(run['seed']) for run in runs)} | "
            f"{psnr_mean:.4f} | {spread(psnrs)} | {ssim_mean:.4f} | {spread(ssims)} | "
            f"{' '.join(f'{value:.4f}' for value in psnrs)} | {' '.join(f'{value:.4f}' for value in ssims)} | "
            f"{statistics.fmean(run['colourfulness_gap'] for run in runs):+.1f} | {mean_distance(runs, 'fid')} | "
            f"{mean_distance(runs, 'kid')} | {runs[0]['report_psnr']:.4f} | {runs[0]['report_ssim']:.4f} |"
        )
    lines.append("")
    for (config_id, precision), (psnr, ssim, name) in means.items():
        if precision != "float32" and (config_id, "float32") in means:
            psnr32, ssim32, _ = means[config_id, "float32"]
            lines.append(f"{config_id} ({name}), {precision} - float32: PSNR {psnr - psnr32:+.4f} dB, "
                         f"SSIM {ssim - ssim32:+.4f} (means over seeds)")
    return "\n".join(lines) + "\n"


def spread(values: list[float]) -> str:
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{deviation:.4f} ({min(values):.4f} .. {max(values):.4f})"


def distance(row: dict, name: str) -> str:
    """A run's FID ('12.34') or KID x 1000 ('1.23 +- 0.45'); '-' when not measured."""
    return "-" if row.get(name) is None else evaluate.distance_text(row, name)


def mean_distance(runs: list[dict], name: str) -> str:
    values = [run[name] for run in runs if run.get(name) is not None]
    if not values:
        return "-"
    return f"{statistics.fmean(values):.4g}" if name == "fid" else f"{1000 * statistics.fmean(values):.4g}"
