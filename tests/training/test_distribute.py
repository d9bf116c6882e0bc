"""Scale-out and mixed precision: the maths must not change with the number of replicas."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPTS = Path(__file__).with_name("scripts")  # what the tests run in processes of their own (each says why)


def script_env(**extra: str) -> dict:
    """The environment of a test's subprocess script: quiet TF, and tests/training (one_step.py)
    importable."""
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path, **extra}


@pytest.mark.slow
@pytest.mark.parametrize("r1_gamma", [0.0, 0.1])
def test_two_replicas_equal_one_replica_with_the_same_global_batch(r1_gamma):
    """Loss scaling per replica, sharded batch and synchronized BatchNorm: the same step, to float64
    round-off (1e-9 of each weight tensor's update; measured 1.5e-13), as one device with the
    global batch, with and without R1's double backprop through D's BatchNorm."""
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "two_replicas_step.py"), str(r1_gamma), "1e-9"], env=script_env(),
        capture_output=True, text=True, timeout=600,
    )
    assert "REPLICAS-EQUAL" in result.stdout, result.stderr[-3000:]


@pytest.mark.slow
def test_float16_step_is_finite_and_uses_loss_scaling():
    result = subprocess.run([sys.executable, str(SCRIPTS / "float16_step.py")], capture_output=True, text=True,
                            timeout=600)
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


@pytest.mark.slow
def test_two_workers_equal_one_device_with_the_same_global_batch(tmp_path):
    """MultiWorkerMirroredStrategy (two processes on localhost, each with half the batch): one
    step with R1 equals one step on one device with the whole batch."""
    saved = tmp_path / "step.npz"
    workers = run_workers([sys.executable, str(SCRIPTS / "worker_step.py"), str(saved)])
    for worker in workers:
        assert worker.returncode == 0, worker.stderr[-3000:]
    checksums = {line for worker in workers for line in worker.stdout.splitlines() if line.startswith("CHECKSUM")}
    assert len(checksums) == 1, checksums  # both workers hold the same weights
    result = subprocess.run([sys.executable, str(SCRIPTS / "one_device_step.py"), str(saved)], env=script_env(),
                            capture_output=True, text=True, timeout=600)
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
    result = subprocess.run([sys.executable, str(SCRIPTS / "partial_validation_batch.py")], capture_output=True,
                            text=True, timeout=600)
    assert "PARTIAL-OK" in result.stdout, result.stderr[-3000:]
