"""--precision: what `auto` picks, networks built for each precision in turn, and a bfloat16 step
that computes what the float32 step computes, to bfloat16's rounding."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, file_states, linked_copy, seeded_run_args, train_in_subprocess
from helpers import run_cli

from pix2color.training import gan, precision
from pix2color.training.precision import Devices
from pix2color.training.run import TrainConfig, build_networks, build_trainer

BFLOAT16_UNIT_ROUNDOFF = 2.0**-9  # 8 significant bits, rounded to nearest
FLOAT32_UNIT_ROUNDOFF = 2.0**-24
SCRIPTS = Path(__file__).with_name("scripts")  # what tests run in processes of their own


# ---------------------------------------------------------------- what auto picks


@pytest.mark.parametrize("devices, expected", [
    (Devices(tpu=True), "bfloat16"),
    (Devices(gpu_capabilities=((8, 0),)), "bfloat16"),
    (Devices(gpu_capabilities=((9, 0), (8, 6))), "bfloat16"),
    (Devices(gpu_capabilities=((7, 5),)), "float16"),
    (Devices(gpu_capabilities=((8, 0), (7, 0))), "float16"),  # the oldest GPU decides
    (Devices(cpu_flags=frozenset({"avx512_bf16"}), gpu_capabilities=((7, 5),)), "float16"),  # the GPU trains
    (Devices(cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16"})), "bfloat16"),
    (Devices(cpu_flags=frozenset({"avx2", "amx_bf16", "amx_tile"})), "bfloat16"),
    (Devices(cpu_flags=frozenset({"avx2", "avx512f", "avx512_vnni"})), "float32"),
    (Devices(), "float32"),
])
def test_auto_picks_bfloat16_where_the_hardware_has_it_float16_on_older_gpus_float32_elsewhere(devices, expected):
    choice = precision.resolve("auto", devices)
    assert choice.precision == expected
    assert choice.reason.startswith("auto: ")


def test_auto_on_this_machine_follows_its_cpu_flags():
    """This machine has no accelerator: `auto` is bfloat16 exactly when its CPU lists avx512_bf16
    or amx_bf16 (read here from /proc/cpuinfo on its own)."""
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU decides on this machine")
    words = set(Path("/proc/cpuinfo").read_text().split())
    expected = "bfloat16" if words & {"avx512_bf16", "amx_bf16"} else "float32"
    devices = precision.this_machine()
    assert not devices.tpu and devices.gpu_capabilities == ()
    assert precision.resolve("auto", devices).precision == expected


def test_cpu_flags_are_read_from_cpuinfo_text():
    text = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\nbugs\t\t: spectre\n"
    assert precision.cpu_flags(text) == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}
    assert precision.cpu_flags("processor\t: 0\n") == frozenset()


def test_an_asked_precision_is_kept_and_auto_keeps_the_one_a_resumed_run_recorded():
    assert precision.resolve("float32", Devices(tpu=True)) == precision.Choice("float32", "")
    assert precision.resolve("auto", Devices(tpu=True), recorded="float32").precision == "float32"
    assert precision.resolve("auto", Devices(), recorded="bfloat16").precision == "bfloat16"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve("float8", Devices())


def test_a_run_json_without_precision_resumes_as_float16_or_float32():
    assert precision.recorded_precision({"mixed_precision": True}) == "float16"
    assert precision.recorded_precision({"mixed_precision": False}) == "float32"
    assert precision.recorded_precision({}) == "float32"
    assert precision.recorded_precision({"precision": "bfloat16", "mixed_precision": False}) == "bfloat16"


# ---------------------------------------------------------------- networks for a precision


def test_float32_and_bfloat16_networks_built_in_turn_in_one_process():
    """The global dtype policy is set around building and restored: a float32 trainer built after
    a bfloat16 one is float32 through and through."""
    before = build_trainer(TrainConfig(image_size=32))
    generator, discriminator = build_networks(TrainConfig(image_size=32, precision="bfloat16"))
    trainer = build_trainer(TrainConfig(image_size=32, precision="bfloat16"),
                            stock_networks=(generator, discriminator))
    after = build_trainer(TrainConfig(image_size=32))
    assert keras.config.dtype_policy().name == "float32"
    for float32_trainer in (before, after):
        assert precision.layer_precisions(float32_trainer.generator) == {"float32"}
        assert precision.layer_precisions(float32_trainer.discriminator) == {"float32"}
    assert generator.get_layer("down1_conv").compute_dtype == "bfloat16"
    assert generator.get_layer("down1_bn").compute_dtype == "bfloat16"
    assert discriminator.get_layer("conv1").compute_dtype == "bfloat16"
    # G's output and D's logits are float32: every loss is computed from them in float32.
    assert generator.get_layer("ab").compute_dtype == "float32" and generator.output.dtype == "float32"
    assert discriminator.get_layer("logits").compute_dtype == "float32" and discriminator.output.dtype == "float32"
    # Variables and optimizer state in float32; no loss scaling (bfloat16 has float32's range).
    assert {v.dtype for v in generator.weights + discriminator.weights} == {"float32"}
    for optimizer in (trainer.g_optimizer, trainer.d_optimizer):
        assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert {v.dtype for v in optimizer.variables} <= {"float32", "int64"}
    with pytest.raises(ValueError, match="resolve `auto` first"):
        build_networks(TrainConfig(image_size=32, precision="auto"))


def test_batch_norm_statistics_are_float32_under_bfloat16():
    """Keras' BatchNormalization casts bfloat16 inputs to float32 for its moments (checked here,
    as it is Keras' doing): the moving statistics after one batch equal float64's to float32
    round-off, where bfloat16 arithmetic would be off by about 2^-9."""
    from pix2color.networks.common import batch_norm

    rng = np.random.default_rng(0)
    values = tf.cast(rng.normal(3.0, 1.0, (4, 8, 8, 16)), tf.bfloat16)  # (N, H, W, C), exactly bfloat16
    exact = tf.cast(values, tf.float64).numpy()
    expected_mean = 0.1 * exact.mean(axis=(0, 1, 2))  # momentum 0.9 from 0
    expected_variance = 0.9 + 0.1 * exact.var(axis=(0, 1, 2))  # from 1
    for synchronized in (False, True):
        with precision.building_for("bfloat16"):
            layer = batch_norm("bn", synchronized=synchronized)
        outputs = layer(values, training=True)
        assert outputs.dtype == tf.bfloat16 and layer.moving_mean.dtype == "float32"
        np.testing.assert_allclose(layer.moving_mean.numpy(), expected_mean, rtol=2e-6)
        np.testing.assert_allclose(layer.moving_variance.numpy(), expected_variance, rtol=2e-6)
    in_bfloat16 = 0.1 * tf.cast(tf.reduce_mean(values, axis=(0, 1, 2)), tf.float64).numpy()
    assert np.abs(in_bfloat16 / expected_mean - 1).max() > 1e-4  # the tolerance above tells the two apart


def test_dropout_masks_are_the_same_in_bfloat16_and_float32():
    from pix2color.networks.unet import ChannelDropout

    inputs = tf.ones((4, 2, 2, 64))
    masks = []
    for name in ("float32", "bfloat16"):
        with precision.building_for(name):
            layer = ChannelDropout(seed=5)
        masks.append(tf.cast(layer(inputs, training=True), tf.float32).numpy())
    np.testing.assert_array_equal(masks[0], masks[1])
    assert 0 < (masks[0] == 0).mean() < 1


def test_a_bfloat16_copy_and_a_float32_copy_keep_every_value():
    generator, _ = build_networks(TrainConfig(image_size=32, l1_only=True, precision="bfloat16"))
    assert generator.get_layer("up1_convt").compute_dtype == "bfloat16"
    saved = precision.float32_layers(generator)
    assert precision.layer_precisions(saved) == {"float32"}
    for copied, source in zip(saved.variables, generator.variables):
        np.testing.assert_array_equal(copied.numpy(), source.numpy())
    again = precision.computing_in(saved, "bfloat16")
    assert again.get_layer("up1_convt").compute_dtype == "bfloat16" and again.get_layer("ab").compute_dtype == "float32"
    lightness = tf.random.uniform((2, 32, 32, 1), -1, 1)
    np.testing.assert_array_equal(again(lightness).numpy(), generator(lightness).numpy())
    assert precision.float32_layers(saved) is saved  # nothing to convert


# ---------------------------------------------------------------- one step, three precisions

STEP_SIZE = 32
R1_GAMMA = 0.1  # large enough that R1 shapes D's update


def step_batch(dtype):
    rng = np.random.default_rng(0)
    return (rng.uniform(-1, 1, (4, STEP_SIZE, STEP_SIZE, 1)).astype(dtype),
            rng.uniform(-0.5, 0.5, (4, STEP_SIZE, STEP_SIZE, 2)).astype(dtype))


def one_step(name: str, start: list | None, policy: str = "float32"):
    """One training step in precision `name` (under the global `policy`: float64 for the
    reference), from the weights `start` (or the new networks' own), with plain SGD: Adam's first
    step is lr * sign(gradient), which would turn round-off in near-zero gradients into +-lr.
    The same seed gives every precision the same dropout masks. Returns (start, losses, after)."""
    keras.utils.set_random_seed(1)
    keras.config.set_dtype_policy(policy)
    try:
        trainer = build_trainer(TrainConfig(image_size=STEP_SIZE, precision=name, r1_gamma=R1_GAMMA))
    finally:
        keras.config.set_dtype_policy("float32")
    trainer.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), r1_gamma=R1_GAMMA)
    networks = (trainer.generator, trainer.discriminator)
    if start is None:  # the reference's own weights, rounded to float32 so that all start equal
        start = [w.numpy().astype(np.float32).astype(np.float64) for network in networks for w in network.weights]
    split = len(networks[0].weights)
    networks[0].set_weights(start[:split])
    networks[1].set_weights(start[split:])
    dataset = tf.data.Dataset.from_tensors(step_batch("float64" if policy == "float64" else "float32")).repeat()
    history = trainer.fit(dataset, steps_per_epoch=1, verbose=0).history
    after = [w.numpy().astype(np.float64) for network in networks for w in network.weights]
    return start, {name: values[0] for name, values in history.items()}, after, [
        w.path for network in networks for w in network.weights]


@pytest.mark.slow
def test_a_bfloat16_step_computes_the_float32_step_to_bfloat16_rounding():
    """The same step (same weights, batch and dropout masks) in float64, float32 and bfloat16.

    Losses: each is a mean, taken in float32, of values that passed through at most ~15 bfloat16
    layers (G, then D); if each layer's rounding of 2^-9 added up in the same direction that is
    15 * 2^-9 = 2.9%: allowed 3% (measured at most 0.7%, G's adversarial loss).

    Updates: a weight tensor's update sums many products whose rounding errors the step
    amplifies (depth, BatchNorm over few values, sums that cancel to a fraction of their terms:
    a single tensor's update is off by up to 40% in bfloat16). That amplification belongs to
    the step, not to the precision: float32 goes through the same step with a unit roundoff of
    2^-24 where bfloat16 has 2^-9, so bfloat16's error in each tensor should be about
    2^15 = 2^-9 / 2^-24 times float32's error (against float64). Allowed: 32 times that
    (measured: median 1.4, at most 11; float32 accumulates inside every convolution where
    bfloat16 also rounds each layer's output), and at least 0.5% of the update. A bfloat16 run
    whose dropout masks differed from float32's is off by 50% to 150% in most tensors.
    """
    start, reference, after64, paths = one_step("float32", None, policy="float64")
    _, losses32, after32, _ = one_step("float32", start)
    _, losses16, after16, _ = one_step("bfloat16", start)
    for name, value in reference.items():
        assert abs(losses32[name] - value) <= 1e-5 * abs(value) + 1e-7, (name, losses32[name], value)
        assert abs(losses16[name] - value) <= 0.03 * abs(value), (name, losses16[name], value)
    ratio = BFLOAT16_UNIT_ROUNDOFF / FLOAT32_UNIT_ROUNDOFF
    errors = {}
    for path, before, exact, single, half in zip(paths, start, after64, after32, after16):
        update = np.linalg.norm(exact - before)
        if update == 0:
            continue
        float32_error = np.linalg.norm(single - exact) / update
        bfloat16_error = np.linalg.norm(half - exact) / update
        errors[path] = (bfloat16_error, float32_error)
        assert bfloat16_error <= max(32 * ratio * float32_error, 5e-3), (path, bfloat16_error, float32_error)
    assert len(errors) > 40  # every tensor of both networks moved and was compared
    assert np.median([half for half, _ in errors.values()]) < 0.2, errors


def test_r1_in_bfloat16_is_within_2_percent_of_float32():
    """R1's gradient flows back through D in bfloat16 (no underflow: float32's exponent range);
    its squares are summed in float32."""
    from pix2color.networks import build_discriminator

    keras.utils.set_random_seed(2)
    discriminator = build_discriminator(STEP_SIZE)
    with precision.building_for("bfloat16"):
        bfloat16_discriminator = build_discriminator(STEP_SIZE)
    bfloat16_discriminator.set_weights(discriminator.get_weights())
    lightness, ab = (tf.constant(x) for x in step_batch("float32"))
    expected, _ = gan.r1_penalty(discriminator, lightness, ab, 1.0)
    value, logits = gan.r1_penalty(bfloat16_discriminator, lightness, ab, 1.0)
    assert value.dtype == tf.float32 and logits.dtype == tf.float32
    assert float(expected) > 0
    assert abs(float(value) - float(expected)) <= 0.02 * float(expected), (float(value), float(expected))


# ---------------------------------------------------------------- a run in bfloat16, as a user runs it

def bfloat16_dtypes_in(saved_model: Path) -> list[str]:
    """Names of the nodes of a SavedModel's graphs that take or make bfloat16 tensors."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model / "saved_model.pb").read_bytes())
    found = []
    for meta_graph in proto.meta_graphs:
        nodes = list(meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            nodes += list(function.node_def)
        for node in nodes:
            for value in node.attr.values():
                if value.type == tf.bfloat16.as_datatype_enum or tf.bfloat16.as_datatype_enum in value.list.type:
                    found.append(node.name)
    return found


@pytest.mark.slow
def test_a_bfloat16_run_saves_float32_files_and_refuses_another_precision(seeded_run, tmp_path):
    """Trained in bfloat16 (conftest's seeded run): generator.keras loads and runs in float32 in a
    fresh process, the export has no bfloat16 in its graphs, and resuming in another precision is
    refused in one line, writing nothing (resuming with `auto` in the recorded one: test_stopping's
    kill test)."""
    out = seeded_run("bfloat16")
    assert "Precision: bfloat16\n" in (out.parent / "stdout.txt").read_text()
    assert json.loads((out / "run.json").read_text())["precision"] == "bfloat16"
    read = subprocess.run([sys.executable, str(SCRIPTS / "read_saved_generator.py"), str(out / "generator.keras")],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert "FLOAT32-FILE" in read.stdout, read.stderr[-3000:]
    exported = run_cli("export", "--model", out, "--out", tmp_path / "exported", "--formats", "savedmodel")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert bfloat16_dtypes_in(tmp_path / "exported" / "savedmodel") == []

    copy = linked_copy(out, tmp_path / "run")
    before = file_states(copy)
    refused = train_in_subprocess(copy, *seeded_run_args("bfloat16")[:-1], "float32", "--epochs", "3")
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--precision 'bfloat16' (now 'float32')" in lines[0], refused.stderr[-3000:]
    assert file_states(copy) == before


@pytest.mark.slow
def test_a_run_json_saying_mixed_precision_false_resumes_in_float32(finished_run, tmp_path):
    """A run.json without `precision` says mixed_precision false (float32) or true (float16)."""
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    settings = json.loads((out / "run.json").read_text())
    del settings["precision"]
    (out / "run.json").write_text(json.dumps({**settings, "mixed_precision": False}))
    resume = ["--epochs", "2", "--steps-per-epoch", "4", "--checkpoint-every", "2"]
    refused = train_in_subprocess(out, *resume, "--mixed-precision")
    assert refused.returncode == 2 and "--precision 'float32' (now 'float16')" in refused.stderr, refused.stderr[-3000:]
    resumed = train_in_subprocess(out, *resume, "--precision", "auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Precision: float32 (auto: the precision this run was started with)" in resumed.stdout
    assert json.loads((out / "run.json").read_text())["precision"] == "float32"


# ---------------------------------------------------------------- the benchmarks in bfloat16


def test_bench_infer_times_keras_and_savedmodel_generators_computing_in_bfloat16(small_generator_file, tmp_path):
    from pix2color.bench.infer import networks_computing_in
    from pix2color.colorizing.loading import load_generator

    generator = load_generator(small_generator_file)
    networks = networks_computing_in(generator, "bfloat16", tmp_path)
    assert set(networks) == {"keras bfloat16", "keras fast bfloat16", "savedmodel bfloat16"}
    assert bfloat16_dtypes_in(tmp_path / "savedmodel_bfloat16")  # it does compute in bfloat16
    lightness = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    expected = generator(lightness, training=False).numpy()
    for name, (path, predict) in networks.items():
        ab = predict(lightness)
        assert ab.dtype == np.float32 and Path(path).exists(), name
        drift = np.abs(ab - expected).max()
        assert 0 < drift < 0.05, (name, drift)  # bfloat16's rounding, not another network
