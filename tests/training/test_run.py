"""End to end: the train command as a user runs it, bad inputs, and resuming after SIGKILL."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    MESSY_BAD,
    ROOT,
    file_states,
    latest_checkpoint_step,
    linked_copy,
    run_command,
    sample_photo_paths,
    seeded_run_args,
    train_command,
    train_in_subprocess,
)
from helpers import history_column, one_line, run_cli

SCRIPTS = Path(__file__).with_name("scripts")


@pytest.mark.slow
def test_train_on_sample_photos_writes_every_artifact(seeded_run, tmp_path):
    """conftest's seeded float32 run (2 epochs of 12 steps), then the same command again."""
    out = seeded_run("float32")
    assert "Done: 2 epochs, 24 steps" in (out.parent / "stdout.txt").read_text()
    stderr = (out.parent / "stderr.txt").read_text()
    assert "oneDNN" not in stderr and "libtensorflow_io" not in stderr
    assert history_column(out, "epoch", int) == [0, 1]
    with open(out / "history.csv", newline="") as handle:
        columns = next(csv.reader(handle))
    for name in ("disc_loss", "gen_gan_loss", "gen_l1_loss", "r1_penalty", "val_psnr", "val_ssim"):
        assert name in columns
    for path in ("losses.png", "samples/epoch_001.png", "samples/epoch_002.png", "generator.keras", "run.json",
                 "plots/fig07_gan_losses.png", "plots/fig08_disc_r1.png", "plots/fig10_psnr_ssim.png"):
        assert (out / path).stat().st_size > 0, path
    assert list((out / "logs" / "train").glob("events.out.tfevents.*"))
    assert (out / "checkpoints" / "checkpoint").exists()

    import keras
    import tensorflow as tf

    import pix2color.networks  # noqa: F401 - registers ChannelDropout for loading

    generator = keras.models.load_model(out / "generator.keras")
    assert generator(tf.zeros((1, 32, 32, 1))).shape == (1, 32, 32, 2)

    # Same command again: nothing left to do, nothing repeated, nothing written. (The copy's
    # run.json names the copy, as if the run had been started there.)
    copy = linked_copy(out, tmp_path / "run")
    settings = json.loads((copy / "run.json").read_text())
    (copy / "run.json").unlink()
    (copy / "run.json").write_text(json.dumps({**settings, "out": str(copy)}, indent=2) + "\n")
    before = file_states(copy)
    again = train_in_subprocess(copy, *seeded_run_args("float32"))
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr[-2000:]
    assert file_states(copy) == before


@pytest.mark.slow
def test_train_on_messy_folder_skips_and_reports_bad_files(messy_folder, tmp_path):
    out = tmp_path / "run"
    result = train_in_subprocess(out, "--gamma", "0.001", "--epochs", "1", "--steps-per-epoch", "2",
                                 data=messy_folder)
    assert result.returncode == 0, result.stderr
    assert f"{len(MESSY_BAD)} unusable files skipped" in result.stdout and "1 grayscale left out" in result.stdout
    for name in MESSY_BAD:
        assert re.search(rf"skipped .*{re.escape(name)}: ", result.stdout), name
    # Reported once, in plain words: no decoder warnings, no op names.
    for noise in ("Corrupt JPEG data", "Unsupported marker", "Premature end", "Input file read error", "jpeg_mem",
                  "function_node"):
        assert noise not in result.stderr + result.stdout, noise
    assert (out / "generator.keras").exists()


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_bad_data_folder_is_one_line_error(tmp_path, kind):
    folder = tmp_path / "photos"
    if kind == "empty":
        folder.mkdir()
    result = train_in_subprocess(tmp_path / "run", data=folder)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("pix2color-train: error:") and str(folder) in line


@pytest.mark.slow
def test_changed_flags_do_not_silently_mix_runs(finished_run, tmp_path):
    out = linked_copy(finished_run, tmp_path / "run")
    before = file_states(out)
    result = train_in_subprocess(out, "--epochs", "1", "--steps-per-epoch", "4", "--image-size", "64")
    assert result.returncode == 2 and "--image-size 32" in result.stderr and "Traceback" not in result.stderr
    assert file_states(out) == before


def test_history_is_trimmed_by_replacing_it_and_left_alone_when_whole(tmp_path):
    """A resume keeps the rows its checkpoint holds: a file with more is replaced whole (a kill
    mid-write leaves the old one), a file with no more is not touched."""
    from pix2color.training.run import _trim_history

    history = tmp_path / "history.csv"
    history.write_bytes(b"epoch,loss\r\n0,1.5\r\n1,1.2\r\n")
    elsewhere = tmp_path / "linked.csv"
    os.link(history, elsewhere)
    before = file_states(tmp_path)
    _trim_history(history, epochs_done=2)
    assert file_states(tmp_path) == before
    _trim_history(history, epochs_done=1)
    assert history.read_bytes() == b"epoch,loss\r\n0,1.5\r\n"
    assert elsewhere.read_bytes() == b"epoch,loss\r\n0,1.5\r\n1,1.2\r\n"  # replaced, not written through


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["resnet18"])  # the U-Net: test_stopping's random kills
def test_sigkill_then_rerun_resumes_where_it_was(tmp_path, generator):
    out = tmp_path / "run"
    command = train_command(out, "--epochs", "2", "--steps-per-epoch", "4", "--checkpoint-every", "1",
                            "--generator", generator, "--encoder-weights", "none")
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while latest_checkpoint_step(out) < 5 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # mid-epoch 2, perhaps mid-write of a checkpoint
    process.wait()
    killed_at = latest_checkpoint_step(out)
    assert 5 <= killed_at < 8, killed_at

    result = run_command(command)
    assert result.returncode == 0, result.stderr
    resumed = re.search(r"Resuming from .*ckpt-(\d+): epoch (\d+), step (\d+)", result.stdout)
    assert resumed, result.stdout
    step = int(resumed.group(3))
    assert step == int(resumed.group(1)) >= killed_at - 1  # the last complete checkpoint
    assert int(resumed.group(2)) == step // 4
    assert "Done: 2 epochs, 8 steps" in result.stdout
    assert history_column(out, "epoch", int) == [0, 1]  # no repeated or lost epochs
    if generator == "resnet18":  # the run is accepted by the other commands as a U-Net run is (evaluate: the ablation test)
        photo = Path(sample_photo_paths(1)[0])
        for args in (["colorize", str(photo), "-o", str(tmp_path / "colorized"), "--model", str(out), "--verbose", "0"],
                     ["export", "--model", str(out), "--out", str(tmp_path / "exported"), "--formats", "savedmodel"]):
            done = run_cli(*args)
            assert done.returncode == 0, (args[0], done.stderr[-2000:])
        assert (tmp_path / "colorized" / photo.name).exists()
        assert (tmp_path / "exported" / "savedmodel" / "saved_model.pb").exists()


def test_restore_brings_back_weights_and_optimizer_state(finished_run):
    """The checkpoint holds both optimizers' slots and step counts, not only the weights."""
    from pix2color.training import callbacks
    from pix2color.training.run import TrainConfig, build_networks, build_trainer

    before = file_states(finished_run)
    config = TrainConfig(data="sample", image_size=32)
    generator, discriminator = build_networks(config)
    fresh = build_trainer(config, stock_networks=(generator, discriminator))
    checkpoint = callbacks.TrainingCheckpoint(
        finished_run / "checkpoints", generator, fresh.g_optimizer, discriminator, fresh.d_optimizer
    )
    assert checkpoint.restore() == (1, 4)
    assert int(fresh.g_optimizer.iterations) == 4 and int(fresh.d_optimizer.iterations) == 4
    moments = [v.numpy() for v in fresh.d_optimizer.variables if "momentum" in v.path]
    assert moments and any(np.abs(m).sum() > 0 for m in moments)
    import keras

    saved = keras.models.load_model(finished_run / "generator.keras")
    for restored, final in zip(fresh.generator.weights, saved.weights):
        np.testing.assert_array_equal(restored.numpy(), final.numpy())
    assert file_states(finished_run) == before


def test_report_command_offline_explains_how_to_get_coco(tmp_path):
    """`python train.py --gamma 0.001` with no COCO anywhere: instructions, not a traceback."""
    env = {k: v for k, v in os.environ.items() if k != "COCO_DIR"}
    env["TFDS_DATA_DIR"] = str(tmp_path / "tfds")  # an empty tensorflow-datasets folder
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--gamma", "0.001", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train2017.zip" in result.stderr and "--data sample" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing trained on other data


def test_an_epoch_s_last_step_is_saved_with_the_epoch_counted(tmp_path, monkeypatch):
    """A checkpoint never says "all of an epoch's steps done, the epoch not": one written before
    validation would make a resumed run train that epoch again."""
    import keras

    from pix2color.training.callbacks import TrainingCheckpoint

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    checkpoint = TrainingCheckpoint(tmp_path / "checkpoints", model, model.optimizer, every_steps=2)
    saved = []
    real_save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda: saved.append((int(checkpoint.step), int(checkpoint.epoch)))
                        or real_save())
    data = np.zeros((16, 2), np.float32)
    model.fit(data, data[:, :1], batch_size=4, epochs=2, callbacks=[checkpoint], verbose=0)  # 4 steps an epoch
    assert saved == [(2, 0), (4, 1), (6, 1), (8, 2)]


@pytest.mark.parametrize("epochs_done, steps_done, phases", [
    (0, 0, [(3, 6)]),  # a new run
    (0, 4, [(1, 2), (3, 6)]),  # stopped within epoch 1: its last 2 steps first
    (0, 6, [(3, 6)]),  # stopped during epoch 1's validation: epoch 1 counts as done, 2 epochs to go
    (1, 6, [(3, 6)]),
])
def test_a_resumed_run_trains_exactly_the_steps_left(epochs_done, steps_done, phases):
    from pix2color.training.run import _fit_phases, _whole_epochs

    whole = _whole_epochs(epochs_done, steps_done, 6)
    planned = _fit_phases(whole, steps_done, 6, 3)
    assert planned == phases
    first_epoch = whole
    trained = 0
    for last_epoch, steps in planned:
        trained += (last_epoch - first_epoch) * steps
        first_epoch = last_epoch
    assert steps_done + trained == 3 * 6


@pytest.mark.slow
def test_deterministic_ops_give_one_step_whatever_its_trace():
    """The same step traced eight times: eight bit-identical updates. (With Grappler's arithmetic
    optimizer on, 3 re-traces in 7 differed by ~1e-6 on idle cores, every one on busy cores:
    docs/training.md#determinism---deterministic-ops.)"""
    result = run_command([sys.executable, str(SCRIPTS / "retraced_steps.py")], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    differences = [float(line.split()[2]) for line in result.stdout.splitlines() if line.startswith("TRACE")]
    assert differences == [0.0] * 8, result.stdout
