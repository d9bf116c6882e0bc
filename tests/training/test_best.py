"""--keep-best and --early-stop: Keras' semantics, run.json's record, a resume that keeps them."""

import json
import math
import re
import signal
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from conftest import ROOT, run_command, train_command
from helpers import history_column, run_cli, sample_photo_folder

from pix2color.training.best import Best, KeepBest, stopped_early

SEQUENCES = [
    [5.0, 4.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0],  # a tie is no improvement
    [1.0, 2.0, 3.0, 4.0],
    [3.0, math.nan, 2.0, 2.0, 2.0, 1.0],
    [2.0, 1.0, 1.5, 0.5, 0.7, 0.6, 0.8, 0.9],
]


def keep_best_decisions(values, metric, patience):
    """(epochs at which KeepBest keeps the generator, epoch at which it stops or None)."""
    callback = KeepBest("unwritten", None, metric, {}, patience=patience, write=False, log=lambda line: None)
    model = SimpleNamespace(stop_training=False)
    callback.set_model(model)
    kept, log_name = [], {"val_l1": "val_gen_l1_loss", "val_psnr": "val_psnr"}[metric]
    for epoch, value in enumerate(values):
        before = callback.best
        callback.on_epoch_end(epoch, {log_name: value})
        if callback.best is not before:
            kept.append(epoch)
        if model.stop_training:
            return kept, epoch
    return kept, None


def keras_decisions(values, mode, patience, tmp_path):
    """The same with Keras' own ModelCheckpoint(save_best_only=True) and EarlyStopping."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    saved = tmp_path / f"{mode}-{patience}-{len(values)}"
    checkpoint = keras.callbacks.ModelCheckpoint(str(saved / "epoch{epoch}.weights.h5"), monitor="m", mode=mode,
                                                 save_best_only=True, save_weights_only=True, verbose=0)
    stopping = keras.callbacks.EarlyStopping(monitor="m", mode=mode, patience=patience)
    for callback in (checkpoint, stopping):
        callback.set_model(model)
        callback.on_train_begin()
    model.stop_training = False
    for epoch, value in enumerate(values):
        checkpoint.on_epoch_end(epoch, {"m": value})
        stopping.on_epoch_end(epoch, {"m": value})
        if model.stop_training:
            break
    kept = sorted(int(re.search(r"\d+", path.name).group()) - 1 for path in saved.glob("*.weights.h5"))
    return kept, epoch if model.stop_training else None


@pytest.mark.parametrize("patience", [1, 2, 3])
@pytest.mark.parametrize("values", SEQUENCES)
def test_keep_best_keeps_and_stops_as_keras_callbacks_do(values, patience, tmp_path):
    assert keep_best_decisions(values, "val_l1", patience) == keras_decisions(values, "min", patience, tmp_path)
    flipped = [-value for value in values]  # larger is better (PSNR): the same decisions
    assert keep_best_decisions(flipped, "val_psnr", patience) == keras_decisions(flipped, "max", patience, tmp_path)


def test_a_resumed_run_knows_its_best_and_how_long_it_has_waited():
    best = Best("val_l1", epoch=3, value=0.2, steps=30)
    assert not stopped_early(best, 2, 4) and stopped_early(best, 2, 5) and not stopped_early(best, None, 9)
    callback = KeepBest("unwritten", None, "val_l1", {}, best=best, patience=2, write=False, log=lambda line: None)
    model = SimpleNamespace(stop_training=False)
    callback.set_model(model)
    callback.on_epoch_end(3, {"val_gen_l1_loss": 0.25})  # epoch 4: no better, one epoch waited
    assert not model.stop_training and callback.best is best
    callback.on_epoch_end(4, {"val_gen_l1_loss": 0.2})  # epoch 5: a tie, the second epoch waited: stop
    assert model.stop_training


@pytest.mark.slow
def test_keep_best_and_early_stop_survive_an_interruption(tmp_path):
    """Interrupted with SIGINT in the third epoch and run again, the run ends with best/generator.keras
    of the epoch the validation history says is best, and its validation L1 is the recorded one."""
    from test_stopping import stop_with

    from pix2color.colorizing.loading import load_generator
    from pix2color.data import load_image_set, make_eval_dataset
    from pix2color.training.gan import l1_loss

    out = tmp_path / "run"
    command = train_command(out, "--epochs", "6", "--steps-per-epoch", "3", "--keep-best", "val_l1",
                            "--early-stop", "2", "--checkpoint-every", "1000")
    stop_with(command, signal.SIGINT, "Epoch 3/6", wait=0.5)
    resumed = run_command(command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    losses = history_column(out, "val_gen_l1_loss")
    best_epoch = int(np.argmin(losses)) + 1  # the first of equal values, as Keras keeps it
    record = json.loads((out / "run.json").read_text())["best"]
    assert (record["metric"], record["epoch"]) == ("val_l1", best_epoch)
    assert record["value"] == pytest.approx(losses[best_epoch - 1], rel=1e-6)
    kept = json.loads((out / "best" / "generator.json").read_text())
    assert (kept["epochs"], kept["steps"]) == (best_epoch, 3 * best_epoch)
    assert len(losses) == 6 or len(losses) - best_epoch == 2  # all epochs, or stopped 2 epochs after the best

    photo = sorted((ROOT / "pix2color" / "sample_photos").glob("*__view.jpg"))[0]
    colorized = run_cli("colorize", photo, "--model", out / "best", "-o", tmp_path / "colorized")
    assert colorized.returncode == 0 and f"model: {out / 'best' / 'generator.keras'} (step {3 * best_epoch})" in (
        colorized.stdout), colorized.stdout + colorized.stderr
    generator = load_generator(out / "best")
    val = load_image_set("sample", verbose=0).val
    measured = [float(l1_loss(ab, generator(lightness, training=False))) * len(lightness)
                for lightness, ab in make_eval_dataset(val, 32, 4)]
    assert sum(measured) / len(val) == pytest.approx(record["value"], rel=1e-4)

    json.dump({**json.loads((out / "run.json").read_text()), "best": {**record, "epoch": len(losses) - 2}},
              open(out / "run.json", "w"))  # as if the best were two epochs back: patience 2 is used up
    again = run_command(command)
    assert again.returncode == 0 and ("stopped early after epoch" in again.stdout or "already holds" in again.stdout)
    assert history_column(out, "val_gen_l1_loss") == losses  # nothing trained


def test_the_figures_mark_the_epoch_kept(tmp_path, monkeypatch):
    """losses.png and the report's figures draw a line at run.json's best epoch, named by its measure."""
    from pix2color.training import plots

    (tmp_path / "run.json").write_text(json.dumps(
        {"image_size": 32, "best": {"metric": "val_l1", "epoch": 2, "value": 0.18, "steps": 20}}))
    (tmp_path / "history.csv").write_text(
        "epoch,disc_loss,gen_gan_loss,gen_l1_loss,val_gen_l1_loss,val_psnr,val_ssim\n"
        "0,0.7,1.5,0.2,0.21,20.1,0.80\n1,0.69,1.2,0.15,0.18,21.3,0.84\n2,0.69,1.1,0.12,0.19,21.0,0.83\n")
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    plots.run_figures(tmp_path)
    assert len(figures) > 1
    for figure in figures:
        marked = [line for axis in figure.axes for line in axis.lines if line.get_label() == "best val_l1 (epoch 2)"]
        assert marked and all(list(line.get_xdata()) == [2, 2] for line in marked), figure


def test_val_fid_needs_validation_images_enough_for_kid(tmp_path):
    """Refused at once, in one line, before any training (not after the first epoch)."""
    from pix2color.config import RunError, TrainConfig
    from pix2color.training.run import train

    photos = sample_photo_folder(tmp_path / "photos", 6)
    config = TrainConfig(data=str(photos), out=str(tmp_path / "run"), image_size=32, val_fraction=0.3, val_fid=True,
                         feature_weights="none", keep_best="val_kid", verbose=0)
    with pytest.raises(RunError, match=r"--val-fid needs 4 validation images or more \(\d here\)"):
        train(config, log=lambda line: None)
    assert not (tmp_path / "run").exists()
