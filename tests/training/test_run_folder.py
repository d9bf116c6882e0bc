"""A run folder loses nothing: one trainer at a time, damaged checkpoints passed over, nothing
written before a resume is checked, its own pictures never trained on."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_command, sample_photo_paths, train_command
from helpers import file_hashes, one_line, run_cli
from PIL import Image

from pix2color.training import checkpoints, run_folder


def generator_weights_of(checkpoint_prefix, image_size=32) -> list[np.ndarray]:
    """The generator's weights as a checkpoint holds them (restored into a fresh generator)."""
    import tensorflow as tf

    from pix2color.networks import build_generator

    generator = build_generator(image_size)
    tf.train.Checkpoint(generator=generator).restore(str(checkpoint_prefix)).expect_partial()
    return generator.get_weights()


def assert_same_weights(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        np.testing.assert_array_equal(got, want)


def wait_for(condition, timeout=300.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_second_trainer_on_the_same_folder_stops_at_once_and_a_killed_one_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(train_command(out, "--epochs", "1", "--steps-per-epoch", "500"), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: f'"pid": {first.pid}' in _read(out / run_folder.LOCK_FILE))
        first.send_signal(signal.SIGSTOP)  # frozen, still holding the lock: the folder cannot change but for the second
        before = file_hashes(out)
        second = run_command(train_command(out, "--epochs", "1", "--steps-per-epoch", "500"))
        assert second.returncode == 2
        line = one_line(second.stderr)
        assert str(out) in line and f"process {first.pid}" in line and "in use by another training" in line
        assert file_hashes(out) == before  # the second trainer wrote nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    lock = run_folder.RunLock(out)
    assert lock.acquire()  # the kernel released the killed trainer's lock
    lock.release()
    assert not (out / run_folder.LOCK_FILE).exists()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@pytest.mark.slow
def test_a_failed_resume_changes_nothing_and_the_right_command_then_resumes(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "run.json").unlink()
    (out / "generator.keras").unlink()
    before = file_hashes(out)
    wrong = run_command(train_command(out, "--epochs", "2", "--steps-per-epoch", "4", "--image-size", "64"))
    assert wrong.returncode == 2
    assert "other settings" in one_line(wrong.stderr)
    after = file_hashes(out)
    for hashes in (before, after):  # the lock file, if a killed trainer left one, names its holder
        hashes.pop(run_folder.LOCK_FILE, None)
    assert after == before and not (out / "run.json").exists()
    right = run_command(train_command(out, "--epochs", "2", "--steps-per-epoch", "4", "--checkpoint-every", "2"))
    assert right.returncode == 0, right.stderr[-2000:]
    assert f"Resuming from {out / 'checkpoints' / 'ckpt-4'}: epoch 1, step 4" in right.stdout
    assert (out / "run.json").exists()


@pytest.mark.parametrize("damage", ["index deleted", "data deleted", "data truncated", "data zeroed",
                                    "index truncated", "index zeroed"])
def test_a_damaged_newest_checkpoint_is_passed_over_for_the_one_before(finished_run, damage, tmp_path):
    """In-process: TrainingCheckpoint.restore on a copy of the run with ckpt-4 damaged."""
    from pix2color.training import callbacks
    from pix2color.training.run import TrainConfig, build_networks, build_trainer

    directory = tmp_path / "checkpoints"
    shutil.copytree(finished_run / "checkpoints", directory)
    part = directory / ("ckpt-4.index" if damage.startswith("index") else "ckpt-4.data-00000-of-00001")
    if damage.endswith("deleted"):
        part.unlink()
    elif damage.endswith("truncated"):
        part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    else:
        part.write_bytes(bytes(part.stat().st_size))
    generator, discriminator = build_networks(TrainConfig(image_size=32))
    trainer = build_trainer(TrainConfig(image_size=32), stock_networks=(generator, discriminator))
    checkpoint = callbacks.TrainingCheckpoint(directory, generator, trainer.g_optimizer, discriminator,
                                              trainer.d_optimizer)
    notes = []
    assert checkpoint.restore(log=notes.append) == (0, 2)
    assert len(notes) == 1 and "ckpt-4 cannot be restored" in notes[0] and "using ckpt-2 (step 2)" in notes[0], notes
    assert checkpoint.newest == f"{directory}/ckpt-2" and int(trainer.g_optimizer.iterations) == 2
    # Every weight is ckpt-2's, also where the damaged file had been read in part.
    assert_same_weights(trainer.generator.get_weights(), generator_weights_of(finished_run / "checkpoints" / "ckpt-2"))


def test_when_no_checkpoint_restores_the_error_names_each_and_why(finished_run, tmp_path):
    from pix2color.config import RunError
    from pix2color.training import callbacks
    from pix2color.training.run import TrainConfig, build_networks, build_trainer

    directory = tmp_path / "checkpoints"
    shutil.copytree(finished_run / "checkpoints", directory)
    for step in (2, 4):
        (directory / f"ckpt-{step}.data-00000-of-00001").write_bytes(b"")
    generator, discriminator = build_networks(TrainConfig(image_size=32))
    trainer = build_trainer(TrainConfig(image_size=32), stock_networks=(generator, discriminator))
    checkpoint = callbacks.TrainingCheckpoint(directory, generator, trainer.g_optimizer, discriminator,
                                              trainer.d_optimizer)
    with pytest.raises(RunError, match=r"no checkpoint in .* can be restored: ckpt-4 cannot be restored \(its data "
                                       r"file is truncated\); ckpt-2 cannot"):
        checkpoint.restore(log=lambda message: None)


@pytest.mark.slow
def test_resume_and_colorize_pass_over_a_damaged_newest_checkpoint(finished_run, tmp_path):
    """End to end: train resumes from ckpt-2 saying why, and an interrupted run's generator loads from ckpt-2."""
    from pix2color.colorizing.loading import load_generator

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "generator.keras").unlink()
    (out / "generator.json").unlink()
    data = out / "checkpoints" / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    notes = []
    load_generator(out, log=notes.append)
    assert "ckpt-4 cannot be restored (its data file is truncated)" in notes[0]
    assert notes[-1].startswith(f"model: {out / 'checkpoints' / 'ckpt-2'} (step 2")
    resumed = run_command(train_command(out, "--epochs", "1", "--steps-per-epoch", "4", "--checkpoint-every", "2"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "ckpt-4 cannot be restored (its data file is truncated); using ckpt-2 (step 2) instead" in resumed.stdout
    assert f"Resuming from {out / 'checkpoints' / 'ckpt-2'}: epoch 0, step 2" in resumed.stdout
    assert checkpoints.checkpoint_steps(out / "checkpoints")[0] == 4  # written again, whole
    assert "Done: 1 epochs, 4 steps" in resumed.stdout


@pytest.mark.slow
def test_colorize_takes_the_newer_of_generator_keras_and_the_checkpoints(finished_run, tmp_path):
    """A run that finished (generator.keras of step 4), was resumed and stopped at step 6."""
    from pix2color.colorizing.loading import load_generator

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    resumed = subprocess.Popen(train_command(out, "--epochs", "2", "--steps-per-epoch", "4", "--checkpoint-every", "2"),
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: 6 in checkpoints.checkpoint_steps(out / "checkpoints") or resumed.poll() is not None)
    resumed.send_signal(signal.SIGKILL)
    resumed.wait()
    newest = checkpoints.checkpoint_steps(out / "checkpoints")[0]
    assert newest > 4 and run_folder.read_generator_record(out).steps == 4
    notes = []
    generator = load_generator(out, log=notes.append)
    assert notes == [f"model: {out / 'checkpoints' / f'ckpt-{newest}'} (step {newest}, newer than generator.keras of "
                     "step 4)"]
    assert_same_weights(generator.get_weights(), generator_weights_of(out / "checkpoints" / f"ckpt-{newest}"))

    # A run from before generator.json: the file's time decides.
    (out / "generator.json").unlink()
    notes.clear()
    load_generator(out, log=notes.append)
    assert notes[0].startswith(f"model: {out / 'checkpoints' / f'ckpt-{newest}'}")
    os.utime(out / "generator.keras")  # now newer than every checkpoint
    notes.clear()
    load_generator(out, log=notes.append)
    assert notes == [f"model: {out / 'generator.keras'} (saved after the newest checkpoint, ckpt-{newest})"]


def test_partial_checkpoints_are_removed_and_a_double_interrupt_says_what_is_saved(tmp_path):
    out = tmp_path / "run"
    partial = out / "checkpoints" / "ckpt-3_temp"
    partial.mkdir(parents=True)
    (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(bytes(1000))
    (out / ".pix2color.lock").write_text("")
    process = subprocess.Popen(train_command(out, "--epochs", "1", "--steps-per-epoch", "200"), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: not partial.exists())
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)  # the second: stop at once
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    assert f"Removed {partial}: the partial write of an interrupted checkpoint" in stdout
    line = one_line(stderr)
    assert line == f"pix2color-train: interrupted; {checkpoints.what_is_saved(out)}"
    assert not list((out / "checkpoints").glob("*_temp*"))


@pytest.mark.slow
def test_a_run_inside_its_data_folder_never_trains_on_its_own_pictures(tmp_path):
    """Also: a folder whose validation split is empty trains, and its plots are drawn (CSVLogger's NA)."""
    data = tmp_path / "photos"
    data.mkdir()
    for path in sample_photo_paths(6):
        shutil.copy(path, data)
    poll = data / "poll"
    poll.mkdir()
    (poll / "poll.sqlite").write_bytes(b"")
    shutil.copy(sample_photo_paths(7)[-1], poll / "gray.png")
    out = data / "run"
    first = run_command(train_command(out, "--epochs", "1", "--val-fraction", "0", data=data))
    assert first.returncode == 0, first.stderr[-2000:]
    assert "6 training and 0 validation images" in first.stdout
    assert "No validation images" in first.stdout and (out / "plots" / "fig09_l1.png").exists()
    again = run_command(train_command(out, "--epochs", "2", "--val-fraction", "0", data=data))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "6 training and 0 validation images" in again.stdout, again.stdout
    assert f"left out {out}: this run's own folder" in again.stdout
    assert f"left out {poll}: a pix2color poll folder" in again.stdout
    plots = run_cli("plots", out)
    assert plots.returncode == 0 and "Traceback" not in plots.stderr


def test_out_holding_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run_command(train_command(tmp_path, "--epochs", "1"))
    assert result.returncode == 2
    assert "holds other files (notes.txt) and no pix2color run" in one_line(result.stderr)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


@pytest.mark.slow
def test_damaged_state_file_history_and_generator_keras_are_no_dead_end(finished_run, tmp_path):
    """Binary garbage in checkpoints/checkpoint and history.csv, a damaged generator.keras: the run
    resumes, its figures are drawn, and the generator is read from the checkpoints meanwhile."""
    from pix2color.colorizing.loading import load_generator

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    garbage = bytes(range(256)) * 2
    (out / "checkpoints" / "checkpoint").write_bytes(garbage)
    (out / "history.csv").write_bytes((out / "history.csv").read_bytes() + b"1,abc,,\n" + garbage)
    (out / "generator.keras").write_bytes(b"PK\x03\x04" + garbage)
    notes = []
    load_generator(out, log=notes.append)
    assert "not a Keras model file" in notes[0] and notes[1].startswith(f"model: {out / 'checkpoints' / 'ckpt-4'}")
    resumed = run_command(train_command(out, "--epochs", "2", "--steps-per-epoch", "4", "--checkpoint-every", "2"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "checkpoint.damaged: TensorFlow cannot read it" in resumed.stdout
    assert f"Resuming from {out / 'checkpoints' / 'ckpt-4'}: epoch 1, step 4" in resumed.stdout
    from pix2color.training import plots

    assert plots.read_history(out / "history.csv")["epoch"] == [0.0, 1.0]
    load_generator(out, log=notes.append)
    assert notes[-1] == f"model: {out / 'generator.keras'} (step 8)"


@pytest.mark.slow
def test_a_signal_after_the_last_epoch_stops_before_the_figures_and_a_rerun_draws_them(tmp_path):
    """SIGINT while the generator is saved (it stops before the figures) or the figures are drawn."""
    out = tmp_path / "run"
    process = subprocess.Popen(train_command(out, "--epochs", "1", "--steps-per-epoch", "2"), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("2/2 - "):  # the epoch's line: what follows is the generator, then the figures
            process.send_signal(signal.SIGINT)
            break
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    line = one_line(stderr)
    assert "stopped by SIGINT at step 2, after the last epoch" in line, line
    if not (out / "plots").exists():
        assert "run the same command again to write plots" in line
        again = run_command(train_command(out, "--epochs", "1", "--steps-per-epoch", "2"))
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr[-2000:]
    assert (out / "plots" / "fig09_l1.png").exists() and (out / "generator.keras").exists()


@pytest.mark.slow
def test_a_closed_stdout_keeps_the_work_of_the_steps_done(tmp_path):
    """`train | head -1`: the reader goes away; the run saves a checkpoint and ends quietly."""
    out = tmp_path / "run"
    process = subprocess.Popen(train_command(out, "--epochs", "1", "--steps-per-epoch", "400", "--verbose", "1"),
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: (out / "run.json").exists() or process.poll() is not None)
    time.sleep(8)  # a few steps, whose progress bar lines go to the pipe
    process.stdout.close()
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 141 and b"Traceback" not in stderr, stderr[-2000:]
    steps = checkpoints.checkpoint_steps(out / "checkpoints")
    assert steps and steps[0] > 0, steps


def test_a_run_json_written_before_a_flag_existed_resumes_with_the_flag_s_default():
    """A run started before --keep-best, --val-fid and --feature-weights existed holds none of them:
    each is its default, so the same command resumes it; a new value is still a change."""
    from dataclasses import asdict

    from pix2color.config import TrainConfig

    config = TrainConfig(data="sample", image_size=32)
    older = {key: value for key, value in asdict(config).items()
             if key not in ("keep_best", "early_stop", "val_fid", "feature_weights")}
    assert run_folder.changed_settings(older, config.run_defining()) == []
    asked = TrainConfig(data="sample", image_size=32, keep_best="val_l1").run_defining()
    assert run_folder.changed_settings(older, asked) == ["--keep-best None (now 'val_l1')"]


def test_a_resume_refused_for_a_changed_setting_names_the_flag_as_typed():
    assert run_folder.changed_settings({"r1_gamma": 1.0}, {"r1_gamma": 0.001}, keys=("r1_gamma",)) == [
        "--gamma 1.0 (now 0.001)"]  # the flag is --gamma; there is no --r1-gamma


def test_a_refused_run_leaves_nothing_behind(tmp_path, monkeypatch):
    """A run refused before its first checkpoint (no photos here) removes what it made: its run
    folder, its scan cache, and a runs/ folder made for it; a folder that was there stays."""
    from pix2color.config import TrainConfig
    from pix2color.data import DataError
    from pix2color.training.run import train

    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        train(TrainConfig(data="empty", out="runs/first", image_size=32, verbose=0), log=lambda line: None)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "gray").mkdir()  # photos the scan turns down: refused after it wrote its cache
    for index, path in enumerate(sample_photo_paths(3)):
        Image.open(path).convert("L").save(tmp_path / "gray" / f"g{index}.jpg")
    with pytest.raises(DataError, match="grayscale"):
        train(TrainConfig(data="gray", out="mine", image_size=32, verbose=0), log=lambda line: None)
    assert list((tmp_path / "mine").iterdir()) == [] and sorted(path.name for path in tmp_path.iterdir()) == [
        "empty", "gray", "mine"]


def test_a_folder_holding_only_a_file_browser_s_files_is_a_fine_out(tmp_path):
    for name in (".DS_Store", "Thumbs.db", "._photo.jpg"):
        (tmp_path / name).write_bytes(b"\x00")
    assert run_folder.foreign_entries(tmp_path) == []
    (tmp_path / "notes.txt").write_text("mine")
    assert run_folder.foreign_entries(tmp_path) == ["notes.txt"]
