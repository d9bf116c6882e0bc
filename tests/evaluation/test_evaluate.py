"""Evaluation protocols, the ablation runner and the run figures."""

import csv
import json

import numpy as np
import pytest
from helpers import run_cli

from pix2color.evaluation import evaluate, metrics


def numpy_colourfulness(rgb):
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)


def test_colourfulness_matches_hasler_suesstrunk():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 20, 30, 3)).astype(np.float32)
    ours = metrics.colourfulness(images).numpy()
    np.testing.assert_allclose(ours, [numpy_colourfulness(image) for image in images], rtol=1e-5)
    gray = np.repeat(images[..., :1], 3, axis=-1)
    np.testing.assert_allclose(metrics.colourfulness(gray).numpy(), 0.0, atol=1e-4)
    red = np.zeros((1, 4, 4, 3), np.float32)
    red[..., 0] = 255  # rg = 255, yb = 127.5 everywhere: no spread, only the mean term
    np.testing.assert_allclose(metrics.colourfulness(red).numpy(), 0.3 * np.hypot(255, 127.5), rtol=1e-5)


def test_protocols_aggregate_as_documented():
    result = evaluate.Evaluation(names=[f"i{k}" for k in range(6)], batch_size=4)
    psnr = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 70.0])
    result.values = {"deterministic": {"psnr256": psnr, "psnr255": psnr - 0.03, "ssim256": psnr / 100,
                                       "ssim255": psnr / 100 - 0.001, "colourfulness": psnr,
                                       "colourfulness_truth": psnr + 1}}
    mean, spread = result.report_protocol("deterministic", "psnr256")
    assert mean == pytest.approx((25.0 + 60.0) / 2) and spread == pytest.approx(17.5)  # batch means 25, 60
    mean, spread = result.common_protocol("deterministic", "psnr256")
    assert mean == pytest.approx(psnr.mean()) and spread == pytest.approx(psnr.std())
    table = result.markdown("t")
    assert "42.50 +- 17.50" in table and "24.31" in table  # ours, and the report's number beside it
    assert "| 0.4250 +- 0.1750 |" in table and "| 0.3657 +- 0.1972 |" in table  # SSIM, report then common protocol


def test_evaluate_command_on_sample_photos(small_generator_file, tmp_path):
    out = tmp_path / "eval"
    result = run_cli("evaluate", "--model", small_generator_file, "--data", "sample", "--out", out, "--verbose", 0,
                     "--no-fid")
    assert result.returncode == 0, result.stderr
    assert "FID" not in result.stdout
    for label in ("model, deterministic", "model, paper mode (report)", "grayscale baseline (a = b = 0)"):
        assert label in result.stdout
    with open(out / "evaluation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    from pix2color.data import load_image_set

    assert len(rows) == len(load_image_set("sample", verbose=0).val)
    assert "grayscale_colourfulness" in rows[0] and float(rows[0]["grayscale_colourfulness"]) < 1.0
    # The per-image PSNR of the gray baseline is that of a = b = 0 against the original: check one.
    assert float(rows[0]["grayscale_psnr256"]) - float(rows[0]["grayscale_psnr255"]) == pytest.approx(
        20 * np.log10(256 / 255), abs=1e-4)


def test_evaluate_offline_without_inception_s_weights_says_what_to_fetch(small_generator_file, tmp_path):
    """No network (a proxy that refuses, so the test never downloads) and no cached copy: one line
    naming the file to fetch and the ways round it, before any other work, and nothing written."""
    result = run_cli("evaluate", "--model", small_generator_file, "--out", tmp_path / "eval", KERAS_HOME=str(tmp_path),
                     HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    for words in ("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "--feature-weights PATH", "--no-fid"):
        assert words in line, line
    assert not (tmp_path / "eval").exists() and "model:" not in result.stdout


@pytest.mark.slow
def test_fid_and_kid_of_every_system_with_random_inception_weights(small_generator_file, tmp_path):
    """Offline, `--feature-weights none` runs the whole pipeline, and says in its first line that
    the distances then measure nothing."""
    result = run_cli("evaluate", "--model", small_generator_file, "--data", "sample", "--out", tmp_path, "--verbose", 0,
                     "--feature-weights", "none", "--modes", "deterministic,grayscale")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("FID / KID features: Inception-v3 with random weights")
    header = next(line for line in result.stdout.splitlines() if line.startswith("| system"))
    assert header.endswith("| FID | KID x 1000 |")
    for label in ("model, deterministic", "grayscale baseline (a = b = 0)"):
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"| {label} "))
        fid, kid = row.strip("| ").split(" | ")[-2:]
        assert float(fid) >= 0 and "+-" in kid, row
    assert "--feature-weights none" in (tmp_path / "evaluation.md").read_text()


@pytest.mark.slow
def test_inception_weights_from_a_local_file(tmp_path):
    """--feature-weights PATH: a file of Inception-v3 weights gives the features of those weights;
    a file of anything else is one line."""
    import warnings

    import keras

    from pix2color.evaluation.inception import FeatureWeightsError, InceptionFeatures

    random = InceptionFeatures("none")
    path = tmp_path / "inception.weights.h5"
    random.model.save_weights(path)
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3)).astype(np.float32)
    from_file = InceptionFeatures(str(path))
    np.testing.assert_allclose(from_file(images), random(images), rtol=1e-5, atol=1e-7)
    assert "not Keras' ImageNet file (another MD5)" in from_file.description
    (tmp_path / "other.weights.h5").write_bytes(b"not weights")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(tmp_path / "dense.weights.h5")
    for bad, words in ((tmp_path / "other.weights.h5", "not Inception-v3 weights"), (tmp_path / "no.h5", "no such file"),
                       (tmp_path / "dense.weights.h5", "not Inception-v3 weights")):
        with warnings.catch_warnings(record=True) as warned, pytest.raises(FeatureWeightsError, match=words):
            warnings.simplefilter("always")
            InceptionFeatures(str(bad))
        assert not warned, [str(warning.message)[:80] for warning in warned[:3]]  # the one line only


@pytest.mark.slow
def test_ablation_runner_a_u_net_and_a_pretrained_configuration(tmp_path):
    """Config 4 and p3 at two steps: the report's table, one section each (the l1-only
    configuration: the precision ablation below, and the table's row: the test after this one)."""
    out = tmp_path / "ablation"
    result = run_cli("ablation", "--data", "sample", "--configs", "4,p3", "--steps", "2", "--image-size", "32", "--out",
                     out, "--verbose", "0", "--encoder-weights", "none", "--feature-weights", "none", timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("FID / KID features: Inception-v3 with random weights")
    table = (out / "ablation.md").read_text()
    assert "Inception-v3 with random weights" in table  # the file says what its FID and KID are worth
    assert "| 4 (pix2pix) | 100 | - | - | - |" in table and "22.9265" in table  # the report's numbers beside ours
    with open(out / "ablation.csv", newline="") as handle:
        for row in csv.DictReader(handle):  # every run's colourfulness gap, FID and KID, measured
            assert all(row[name] not in ("", "None") for name in ("colourfulness_gap", "fid", "kid", "kid_std")), row
    assert "| Pretrain |" in table and "| p3 (pretrain-pix2pix) | 100 | - | - | - |" in table and "22.8156" in table
    assert (out / "ablation.png").stat().st_size > 0
    assert json.loads((out / "pretrain-pix2pix" / "run.json").read_text())["generator"] == "resnet18"
    assert (out / "pix2pix" / "generator.keras").exists()
    assert (out / "pix2pix" / "plots" / "fig09_l1.png").exists()  # figures made at the end of training
    assert (out / "pix2pix" / "plots" / "fig07_gan_losses.png").exists()


def test_the_report_table_has_a_section_per_generator_and_marks_each_configuration_s_options(tmp_path):
    from pix2color.evaluation import ablation

    def row(config_id, pretrained, psnr, ssim):
        name, options, report_psnr, report_ssim = ablation.CONFIGURATIONS[config_id]
        return dict(id=config_id, name=name, pretrained=pretrained, lambda_l1=1.0 if options.get("l1_only") else 100.0,
                    label_smoothing=options.get("label_smoothing", False), r1=options.get("r1_gamma", 0.0),
                    l1_only=options.get("l1_only", False), precision="float32", seed=1, psnr=psnr, psnr_sd=0.5,
                    ssim=ssim, ssim_sd=0.01, colourfulness_gap=12.34, fid=41.5 if config_id == "11" else None,
                    kid=0.0123 if config_id == "11" else None, kid_std=0.0021 if config_id == "11" else None,
                    report_psnr=report_psnr, report_ssim=report_ssim)

    table = ablation.write_table([row("11", False, 21.0, 0.8), row("1", False, 20.0, 0.7),
                                  row("p3", True, 19.0, 0.6)], tmp_path)
    assert ("| 11 (l1-only) | 1 | - | - | ✓ | 21.0000 +- 0.5000 | 0.8000 +- 0.0100 | +12.3 | 41.5 | 12.3 +- 2.1 | "
            "24.4775 | 0.9274 |") in table
    assert "| 0.7000 +- 0.0100 | +12.3 | - | - | 24.4431 |" in table  # not measured: a dash, never 0
    assert "| 1 (ls-r1-1) | 100 | ✓ | 1.0 | - |" in table
    assert table.index("| No pretrain |") < table.index("| 1 (ls-r1-1)") < table.index("| Pretrain |") < table.index("| p3 ")


def test_the_precision_table_gives_means_spreads_and_the_difference_from_float32(tmp_path):
    from pix2color.evaluation import ablation

    rows = [dict(id="6", name="r1-0.001 (final)", precision=precision, seed=seed, psnr=psnr, ssim=ssim,
                 colourfulness_gap=psnr - 10, fid=2 * psnr, kid=psnr / 1000, kid_std=0.0,
                 report_psnr=24.2536, report_ssim=0.9214)
            for precision, values in (("float32", [(20.0, 0.80), (21.0, 0.82), (22.0, 0.84)]),
                                      ("bfloat16", [(20.5, 0.81), (21.0, 0.81), (21.9, 0.83)]))
            for seed, (psnr, ssim) in zip((1, 2, 3), values)]
    table = ablation.write_table(rows, tmp_path)
    assert "| 6 (r1-0.001 (final)) | float32 | 1, 2, 3 | 21.0000 | 1.0000 (20.0000 .. 22.0000) | 0.8200 |" in table
    assert "| 20.5000 21.0000 21.9000 |" in table  # each seed's value
    assert "| +11.0 | 42 | 21 | 24.2536 |" in table  # colourfulness gap, FID and KID x 1000: means over seeds
    assert "6 (r1-0.001 (final)), bfloat16 - float32: PSNR +0.1333 dB, SSIM -0.0033 (means over seeds)" in table
    assert (tmp_path / "ablation.md").read_text().endswith(table)
    with open(tmp_path / "ablation.csv", newline="") as handle:
        assert [(row["precision"], row["seed"]) for row in csv.DictReader(handle)][:2] == [("float32", "1"), ("float32", "2")]


@pytest.mark.slow
def test_ablation_in_two_precisions_and_two_seeds(tmp_path):
    out = tmp_path / "ablation"
    result = run_cli("ablation", "--data", "sample", "--configs", "11", "--steps", "1", "--image-size", "32", "--out",
                     out, "--verbose", "0", "--precision", "float32,bfloat16", "--seed", "1,2", "--no-fid",
                     timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    for precision in ("float32", "bfloat16"):
        for seed in (1, 2):
            settings = json.loads((out / f"l1-only-{precision}-seed{seed}" / "run.json").read_text())
            assert (settings["precision"], settings["seed"]) == (precision, seed)
    table = (out / "ablation.md").read_text()
    assert "| 11 (l1-only) | bfloat16 | 1, 2 |" in table and "bfloat16 - float32: PSNR " in table
    l1_only = out / "l1-only-float32-seed1"
    assert (l1_only / "generator.keras").exists() and (l1_only / "plots" / "fig09_l1.png").exists()
    assert not (l1_only / "plots" / "fig07_gan_losses.png").exists()  # no GAN losses without D


def test_plots_command(tmp_path):
    from pix2color.training import plots

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"image_size": 32}')
    (run / "history.csv").write_text(
        "epoch,disc_loss,gen_gan_loss,gen_l1_loss,gen_total_loss,r1_penalty,val_disc_loss,val_gen_gan_loss,"
        "val_gen_l1_loss,val_gen_total_loss,val_psnr,val_r1_penalty,val_ssim\n"
        "0,0.7,1.5,0.2,21.5,0.01,0.71,1.4,0.21,22.4,20.1,0.01,0.80\n"
        "1,0.69,1.2,0.15,16.2,0.02,0.70,1.1,0.18,19.1,21.3,0.02,0.84\n")
    result = run_cli("plots", run, timeout=300)
    assert result.returncode == 0, result.stderr
    for filename, *_ in plots.REPORT_FIGURES:
        assert (run / "plots" / filename).stat().st_size > 0
    missing = run_cli("plots", tmp_path, timeout=300)
    assert missing.returncode == 2 and "not a pix2color run folder" in missing.stderr
