"""Scale-out and mixed precision: the maths must not change with the number of replicas."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from one_step import comparable_trainer, set_weights, train_one_step, weights, worst_update_difference

    r1_gamma, tolerance = float(sys.argv[1]), float(sys.argv[2])
    single = comparable_trainer(r1_gamma)
    start = weights(single)
    single_history = train_one_step(single)
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert two.num_replicas_in_sync == 2
    mirrored = comparable_trainer(r1_gamma, two)
    set_weights(mirrored, start)
    mirrored_history = train_one_step(mirrored)
    # The logged losses are Keras Mean metrics, float32 whatever the policy, summed per replica:
    # equal to float32 round-off. The weights below are compared in float64.
    for name in ("disc_loss", "r1_penalty", "d_real", "d_fake", "gen_l1_loss"):
        np.testing.assert_allclose(mirrored_history[name], single_history[name], rtol=3e-7, atol=1e-12)
    worst = worst_update_difference(start, weights(single), weights(mirrored))
    print("WORST", worst)
    assert worst < tolerance, worst
    np.testing.assert_allclose(mirrored_history["gen_gan_loss"], single_history["gen_gan_loss"],
                               rtol=max(tolerance, 3e-7))
    print("REPLICAS-EQUAL")
''')


def script_env(**extra: str) -> dict:
    """The environment of a test's subprocess script: quiet TF, and `tests/` importable."""
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path, **extra}


@pytest.mark.slow
@pytest.mark.parametrize("r1_gamma", [0.0, 0.1])
def test_two_replicas_equal_one_replica_with_the_same_global_batch(r1_gamma):
    """Loss scaling per replica, sharded batch and synchronized BatchNorm: the same step, to float64
    round-off (1e-9 of each weight tensor's update; measured 1.5e-13), as one device with the
    global batch, with and without R1's double backprop through D's BatchNorm."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(r1_gamma), "1e-9"], env=script_env(), capture_output=True, text=True,
        timeout=600,
    )
    assert "REPLICAS-EQUAL" in result.stdout, result.stderr[-3000:]


@pytest.mark.slow
def test_float16_step_is_finite_and_uses_loss_scaling():
    script = textwrap.dedent('''
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np, tensorflow as tf, keras
        from pix2color.training import gan
        from pix2color.training.run import TrainConfig, build_trainer
        trainer = build_trainer(TrainConfig(image_size=32, batch_size=2, r1_gamma=1.0, precision="float16"))
        assert isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
        assert trainer.generator.get_layer("down1_conv").compute_dtype == "float16"
        assert trainer.generator.output.dtype == "float32"
        rng = np.random.default_rng(0)
        batch = (rng.uniform(-1, 1, (2, 32, 32, 1)).astype("float32"), rng.uniform(-.5, .5, (2, 32, 32, 2)).astype("float32"))
        history = trainer.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=2, verbose=0).history
        assert all(np.isfinite(v[0]) for v in history.values()), history
        # R1 under mixed precision equals R1 in float32 on the same weights (no float16 underflow).
        keras.mixed_precision.set_global_policy("float32")
        from pix2color.networks import build_discriminator
        d32 = build_discriminator(32)
        d32.set_weights(trainer.discriminator.get_weights())
        p16, _ = gan.r1_penalty(trainer.discriminator, tf.constant(batch[0]), tf.constant(batch[1]), 1.0)
        p32, _ = gan.r1_penalty(d32, tf.constant(batch[0]), tf.constant(batch[1]), 1.0)
        assert p32 > 0 and abs(float(p16) - float(p32)) < 0.05 * float(p32), (float(p16), float(p32))
        print("MIXED-OK")
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert "MIXED-OK" in result.stdout, result.stderr[-3000:]


# ---------------------------------------------------------------- several workers (processes)



def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(command: list[str], count: int = 2, timeout: int = 600) -> list[subprocess.CompletedProcess]:
    """Run `command` as `count` workers of one MultiWorkerMirroredStrategy cluster on localhost."""
    cluster = [f"localhost:{port}" for port in free_ports(count)]
    processes = []
    for index in range(count):
        tf_config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        env = script_env(TF_CONFIG=json.dumps(tf_config))
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    finally:
        for process in processes:
            process.kill()
    return results


WORKER_STEP = textwrap.dedent('''
    import sys
    import numpy as np
    from one_step import comparable_trainer, train_one_step, weights
    from pix2color.training.distribute import make_strategy, worker_role

    strategy = make_strategy("multiworker")
    trainer = comparable_trainer(0.1, strategy)
    start = weights(trainer)
    history = train_one_step(trainer)
    after = weights(trainer)
    if worker_role(strategy).is_chief:
        np.savez(sys.argv[1], *start, *after, **{"history_" + k: v for k, v in history.items()})
    print("CHECKSUM", float(sum(np.abs(w).sum() for w in after)))
''')

SINGLE_STEP = textwrap.dedent('''
    import sys
    import numpy as np
    from one_step import comparable_trainer, set_weights, train_one_step, weights, worst_update_difference

    saved = np.load(sys.argv[1])
    trainer = comparable_trainer(0.1)
    count = len(weights(trainer))
    arrays = [saved[f"arr_{i}"] for i in range(2 * count)]
    start, multi = arrays[:count], arrays[count:]
    set_weights(trainer, start)
    history = train_one_step(trainer)
    for name in ("disc_loss", "r1_penalty", "gen_l1_loss", "gen_gan_loss"):  # float32 metrics, see SCRIPT
        np.testing.assert_allclose(saved["history_" + name], history[name], rtol=3e-7, err_msg=name)
    worst = worst_update_difference(start, weights(trainer), multi)
    print("WORST", worst)
    assert worst < 1e-9, worst
    print("WORKERS-EQUAL")
''')


@pytest.mark.slow
def test_two_workers_equal_one_device_with_the_same_global_batch(tmp_path):
    """MultiWorkerMirroredStrategy (two processes on localhost, each with half the batch): one
    step with R1 equals one step on one device with the whole batch."""
    saved = tmp_path / "step.npz"
    workers = run_workers([sys.executable, "-c", WORKER_STEP, str(saved)])
    for worker in workers:
        assert worker.returncode == 0, worker.stderr[-3000:]
    checksums = {line for worker in workers for line in worker.stdout.splitlines() if line.startswith("CHECKSUM")}
    assert len(checksums) == 1, checksums  # both workers hold the same weights
    result = subprocess.run([sys.executable, "-c", SINGLE_STEP, str(saved)], env=script_env(), capture_output=True,
                            text=True, timeout=600)
    assert "WORKERS-EQUAL" in result.stdout, result.stdout[-2000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_two_workers_train_resume_and_only_the_chief_writes(tmp_path):
    """`train.py --strategy multiworker` as a user launches it on two machines (here: two
    processes), then again with more epochs: both resume from the chief's checkpoint."""
    out = tmp_path / "shared_run"
    command = [sys.executable, str(ROOT / "train.py"), "--data", "sample", "--image-size", "32", "--batch-size", "4",
               "--steps-per-epoch", "2", "--verbose", "2", "--strategy", "multiworker", "--out", str(out)]
    first = run_workers(command + ["--epochs", "1"])
    for worker in first:
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "Done: 1 epochs, 2 steps" in worker.stdout, worker.stdout
        assert "eagerly" not in worker.stderr, worker.stderr
    assert "Worker 1 of 2" in first[1].stdout
    for path in ("history.csv", "generator.keras", "checkpoints/checkpoint", "samples/epoch_001.png", "run.json"):
        assert (out / path).exists(), path
    worker_files = {p.relative_to(out / "workers" / "worker-1").parts[0] for p in (out / "workers" / "worker-1").rglob("*")}
    assert worker_files <= {"scan_cache"}, worker_files  # nothing else, and nothing of its own in the run folder

    second = run_workers(command + ["--epochs", "2"])
    for worker in second:
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "epoch 1, step 2" in worker.stdout and "Done: 2 epochs, 4 steps" in worker.stdout, worker.stdout
    rows = (out / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["0", "1"]


def test_multiworker_without_tf_config_is_a_clear_error(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--data", "sample", "--strategy", "multiworker", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 2
    assert "TF_CONFIG" in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow  # two replicas traced; the fast tier reaches distribute.py through every training
def test_validation_on_two_replicas_with_a_partial_last_batch():
    """3 images in batches of 2 on 2 replicas: one replica's share of the last batch is empty.
    It must add nothing, and the means (over images) equal one device's."""
    script = textwrap.dedent('''
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from pix2color.training.run import TrainConfig, build_trainer

        rng = np.random.default_rng(0)
        images = (rng.uniform(-1, 1, (3, 32, 32, 1)).astype("float32"), rng.uniform(-.5, .5, (3, 32, 32, 2)).astype("float32"))
        config = TrainConfig(image_size=32, batch_size=2)
        keras.utils.set_random_seed(1)
        single = build_trainer(config)
        per_image = [single.evaluate(tf.data.Dataset.from_tensor_slices(images).skip(i).take(1).batch(1), verbose=0, return_dict=True)
                     for i in range(3)]
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            mirrored = build_trainer(config, strategy)
        mirrored.generator.set_weights(single.generator.get_weights())
        mirrored.discriminator.set_weights(single.discriminator.get_weights())
        result = mirrored.evaluate(tf.data.Dataset.from_tensor_slices(images).batch(2), verbose=0, return_dict=True)
        for name in ("gen_l1_loss", "psnr", "ssim", "disc_loss"):
            expected = np.mean([r[name] for r in per_image])
            assert np.isfinite(result[name]), (name, result)
            np.testing.assert_allclose(result[name], expected, rtol=1e-4, err_msg=name)
        print("PARTIAL-OK")
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert "PARTIAL-OK" in result.stdout, result.stderr[-3000:]
