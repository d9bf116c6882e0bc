"""Long runs that survive: divergence, kills at random moments, Ctrl-C / SIGTERM, full disks."""

import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEEDED_STEPS_PER_EPOCH, latest_checkpoint_step, run_command, seeded_run_args, train_command
from helpers import one_line


def checkpoint_steps(out) -> list[int]:
    """Steps of the complete checkpoints on disk (an .index file exists once a write is whole)."""
    return sorted(int(p.name[5:-6]) for p in (out / "checkpoints").glob("ckpt-*.index"))


def checkpoint_values(prefix) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in name}


@pytest.mark.slow
def test_divergence_stops_with_one_line_and_leaves_only_finite_checkpoints(tmp_path):
    out = tmp_path / "run"
    command = train_command(out, "--epochs", "1", "--steps-per-epoch", "40", "--checkpoint-every", "1",
                            "--lr", "1e6", "--gamma", "0")
    result = run_command(command)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    line = one_line(result.stderr)
    # A loss (checked after every step) or the weights (checked before every save) name the step.
    diverged = re.search(r"not finite: (?:\w+ is (?:nan|inf|-inf) at step (\d+)|the (?:generator|discriminator)'s "
                         r"(?:weights|optimizer state) after step (\d+));", line)
    assert diverged, line
    step = int(diverged.group(1) or diverged.group(2))
    steps = checkpoint_steps(out)
    assert steps and max(steps) == step - 1 == latest_checkpoint_step(out), (steps, line)
    for saved in steps:
        for name, value in checkpoint_values(out / "checkpoints" / f"ckpt-{saved}").items():
            if value.dtype.kind == "f":
                assert np.all(np.isfinite(value)), (saved, name)
    assert f"ckpt-{step - 1}, is finite" in line
    assert not (out / "generator.keras").exists()

    again = run_command(command)  # resumes from the last finite checkpoint (and diverges again, as it must)
    assert f"Resuming from {out / 'checkpoints' / f'ckpt-{step - 1}'}" in again.stdout, again.stdout[-2000:]


# The kills of each precision: (the step after which, during a checkpoint write?). bfloat16 is
# emulated, slowly, on CPUs without it: one kill there, the three in float32.
KILL_PLANS = {"float32": ((2, True), (14, False)), "bfloat16": ((3, False),)}


@pytest.mark.slow
@pytest.mark.parametrize("precision", KILL_PLANS)
def test_killed_at_random_moments_and_resumed_ends_with_the_same_weights(tmp_path, seeded_run, precision):
    """SIGKILLs (in float32 two, one during a checkpoint write), as many resumes, the last with
    `--precision auto`: the uninterrupted run's weights (conftest's seeded_run, made beside other
    tests) bit for bit, in float32 and in bfloat16.

    With --deterministic-ops: without it, two uninterrupted runs already differ by float rounding
    (ops side by side on the inter-op pool, Grappler's arithmetic rewrites varying from trace to
    trace), which GAN training grows to ~1e-3 in 24 steps.
    """
    steps = 2 * SEEDED_STEPS_PER_EPOCH[precision]
    args = seeded_run_args(precision)
    left_alone = seeded_run(precision)

    out = tmp_path / "killed"
    command = train_command(out, *args)
    rng = random.Random(2026)
    kills = []
    for threshold, mid_write in KILL_PLANS[precision]:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            if latest_checkpoint_step(out) >= threshold and (
                not mid_write or any("_temp" in name for name in os.listdir(out / "checkpoints"))
            ):
                break
            time.sleep(0.001)
        if not mid_write:
            time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
        kills.append(latest_checkpoint_step(out))
    assert kills[0] >= 2 and kills[-1] < steps, kills

    result = run_command(command[:-1] + ["auto"])  # --precision auto: the precision the run was started with
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Precision: {precision} (auto: the precision this run was started with)" in result.stdout
    assert re.search(r"Resuming from .*ckpt-\d+: epoch \d, step \d+", result.stdout)
    assert f"Done: 2 epochs, {steps} steps" in result.stdout
    expected = checkpoint_values(left_alone / "checkpoints" / f"ckpt-{steps}")
    resumed = checkpoint_values(out / "checkpoints" / f"ckpt-{steps}")
    assert expected.keys() == resumed.keys()
    assert any(name.startswith("random_states/") for name in expected)  # the dropout masks' RNG is saved
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job a shell script starts in the background


def start_and_wait_for(command, text: str, **popen) -> subprocess.Popen:
    """Start `command` and read its output until a line contains `text`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               **popen)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return process
    raise AssertionError(f"{text!r} never printed: {''.join(seen)[-2000:]} {process.stderr.read()[-2000:]}")


def stop_with(command, signal_number: int, started: str, wait: float) -> int:
    """Start the run, send `signal_number` `wait` seconds after it prints `started`: the step of the
    checkpoint it says it wrote."""
    process = start_and_wait_for(command, started, preexec_fn=_ignore_sigint)
    time.sleep(wait)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal_number, stderr[-2000:]
    line = one_line(stderr)
    stopped = re.search(rf"stopped by {signal.Signals(signal_number).name} at step (\d+); checkpoint (\S+) written; "
                        r"run the same command again to resume", line)
    assert stopped, line
    step = int(stopped.group(1))
    assert stopped.group(2) == str(Path(command[command.index("--out") + 1]) / "checkpoints" / f"ckpt-{step}")
    return step


@pytest.mark.slow
def test_sigint_and_sigterm_write_a_checkpoint_and_the_rerun_resumes_there(tmp_path):
    """SIGINT in the first epoch; SIGTERM to the resumed run as soon as it says it resumes (before
    its first step, so with nothing new to save); then the run ends where an uninterrupted one would."""
    out = tmp_path / "run"
    steps = 10  # per epoch: the first step's tracing alone outlasts the 1 s before SIGINT
    command = train_command(out, "--epochs", "2", "--steps-per-epoch", str(steps), "--checkpoint-every", "1000")
    first = stop_with(command, signal.SIGINT, "Epoch 1/2", wait=1.0)
    assert first < 2 * steps and checkpoint_steps(out) == [first]
    resumed_from = f"Resuming from {out / 'checkpoints' / f'ckpt-{first}'}: epoch {first // steps}, step {first}"
    second = stop_with(command, signal.SIGTERM, resumed_from, wait=0.0)
    assert first <= second < 2 * steps and checkpoint_steps(out)[-1] == second

    result = run_command(command)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (f"Resuming from {out / 'checkpoints' / f'ckpt-{second}'}: epoch {second // steps}, step {second}"
            in result.stdout)
    assert f"Done: 2 epochs, {2 * steps} steps" in result.stdout


@pytest.mark.slow
def test_a_stop_before_the_first_step_saves_step_0(tmp_path):
    out = tmp_path / "run"
    command = train_command(out, "--epochs", "1", "--steps-per-epoch", "3")
    process = start_and_wait_for(command, "validation images")  # the data summary: the models are not built yet
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "stopped by SIGTERM at step 0; checkpoint" in one_line(stderr)
    assert checkpoint_steps(out) == [0]
    result = run_command(command)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Resuming from {out / 'checkpoints' / 'ckpt-0'}: epoch 0, step 0" in result.stdout


def test_unwritable_out_is_one_line_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    result = run_command(train_command(blocker / "run", "--epochs", "1", "--steps-per-epoch", "1"), timeout=120)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line == f"pix2color-train: error: cannot write to --out {blocker / 'run'}: Not a directory", line


@pytest.fixture
def small_disk(tmp_path):
    """A 300 MB tmpfs: room for one checkpoint of the 32 px models (223 MB), not two."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_stops_in_one_line_and_loses_nothing(tmp_path, small_disk):
    out = small_disk / "run"
    args = ["--epochs", "1", "--steps-per-epoch", "6", "--checkpoint-every", "2"]
    result = run_command(train_command(out, *args))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    line = one_line(result.stderr)
    assert re.fullmatch(rf"pix2color-train: error: could not write the checkpoint of step 4 to {out / 'checkpoints'}: "
                        rf"No space left on device \(the newest checkpoint, {out / 'checkpoints' / 'ckpt-2'}, "
                        r"is intact\)", line), line
    assert checkpoint_steps(out) == [2] and latest_checkpoint_step(out) == 2
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith("ckpt-4")]  # partial files removed

    moved = tmp_path / "bigger_disk"  # the user frees space: here, moves the run to a roomier disk
    shutil.copytree(out, moved)
    resumed = run_command(train_command(moved, *args))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming from {moved / 'checkpoints' / 'ckpt-2'}: epoch 0, step 2" in resumed.stdout


@pytest.mark.slow  # trains in float16 with loss scaling
def test_float16_skipped_steps_are_not_divergence():
    """An overflowing loss scale makes the loss-scale optimizer skip the step: losses finite, weights unchanged."""
    import keras
    import tensorflow as tf

    from pix2color.training import stopping
    from pix2color.training.run import TrainConfig, build_trainer

    try:
        trainer = build_trainer(TrainConfig(image_size=32, precision="float16", r1_gamma=0.0))
        for optimizer in (trainer.g_optimizer, trainer.d_optimizer):
            optimizer.dynamic_scale.assign(2.0**100)  # float16 gradients overflow at once
        rng = np.random.default_rng(0)
        lightness = rng.uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
        ab = rng.uniform(-0.5, 0.5, (4, 32, 32, 2)).astype("float32")
        trainer.fit(lightness, ab, batch_size=4, epochs=1, verbose=0)  # builds the optimizers
        before = [v.numpy() for v in trainer.generator.trainable_variables]
        for optimizer in (trainer.g_optimizer, trainer.d_optimizer):
            optimizer.dynamic_scale.assign(2.0**100)
        history = trainer.fit(lightness, ab, batch_size=4, epochs=1, verbose=0,
                              callbacks=[stopping.FiniteGuard(lambda: 1)])  # would raise on a non-finite loss
        assert all(np.isfinite(values[-1]) for values in history.history.values())
        for old, variable in zip(before, trainer.generator.trainable_variables):
            np.testing.assert_array_equal(old, variable.numpy())  # the step was skipped
        assert float(trainer.g_optimizer.dynamic_scale) < 2.0**100  # and the scale lowered
        assert tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in trainer.generator.trainable_variables])
    finally:
        keras.config.set_dtype_policy("float32")
