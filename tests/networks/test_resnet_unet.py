"""The pretrained variant: a U-Net decoder on a keras-hub ResNet-18 encoder (report VI.C).

Offline: no ImageNet weights here. The weight-loading path is tested with a keras-hub preset
folder (and a .weights.h5 file) the test writes itself from a seeded ResNet-18.
"""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT
from helpers import one_line, op_names, trainable_count

from pix2color.export import folder, tflite
from pix2color.networks import resnet_unet
from pix2color.networks.paper_mode import paper_mode_generator

PARAMETERS = 31_106_322  # trainable, at every image size (the encoder's 11,173,376 of them)


@pytest.fixture(scope="module")
def generator_64():
    keras.utils.set_random_seed(0)
    return resnet_unet.build_resnet18_generator(64, encoder_weights="none")


@pytest.fixture(scope="module")
def seeded_backbone(tmp_path_factory):
    """A 3-channel ResNet-18 with seeded (not ImageNet) weights, saved as a keras-hub preset
    folder with the library's own saver and as a .weights.h5 file."""
    keras.utils.set_random_seed(123)
    backbone = resnet_unet.resnet18_backbone(3)
    for variable in backbone.weights:  # make BatchNorm statistics distinguishable too
        variable.assign(variable + np.random.default_rng(len(variable.path)).normal(0, 0.01, variable.shape))
    folder = tmp_path_factory.mktemp("encoder")
    backbone.save_to_preset(str(folder / "preset"))
    backbone.save_weights(str(folder / "resnet18.weights.h5"))
    return {variable.path: variable.numpy() for variable in backbone.weights}, folder


@pytest.mark.parametrize("size", [64, 256])
def test_shapes_and_parameter_count(size, generator_64):
    generator = generator_64 if size == 64 else resnet_unet.build_resnet18_generator(size, encoder_weights="none")
    ab = generator(tf.random.uniform((2, size, size, 1), -1, 1), training=False).numpy()
    assert ab.shape == (2, size, size, 2) and np.abs(ab).max() < 1.0  # a sigmoid scaled to (-1, 1)
    assert trainable_count(generator) == PARAMETERS
    assert trainable_count(generator.get_layer("resnet18_encoder")) == 11_173_376  # torchvision's, 2 input channels
    # fastai's DynamicUnet decoder: the widths after each block, and every skip at its resolution.
    widths = {name: generator.get_layer(f"{name}_conv2_relu").output.shape[1:] for name in ("up0", "up1", "up2", "up3")}
    assert widths == {"up0": (size // 16, size // 16, 512), "up1": (size // 8, size // 8, 384),
                      "up2": (size // 4, size // 4, 256), "up3": (size // 2, size // 2, 96)}
    assert generator.get_layer("input_concat").output.shape[1:] == (size, size, 98)  # 96 + (L, z)


def test_preset_folder_loads_with_the_first_kernel_adapted(seeded_backbone):
    """--encoder-weights PATH: the first kernel is 1.5 x the first two input slices of the saved
    one (fastai's rule for 2 channels), every other backbone weight arrives unchanged."""
    from pix2color.training.run import TrainConfig, build_trainer

    saved, folder = seeded_backbone
    for source in (folder / "preset", folder / "resnet18.weights.h5"):
        trainer = build_trainer(TrainConfig(image_size=64, generator="resnet18", encoder_weights=str(source)))
        encoder = trainer.generator.get_layer("resnet18_encoder")
        assert len(encoder.weights) == len(saved)
        for variable in encoder.weights:
            expected = saved[variable.path]
            if variable.path == resnet_unet.FIRST_KERNEL:
                assert variable.shape == (7, 7, 2, 64)
                expected = 1.5 * expected[:, :, :2, :]
            np.testing.assert_array_equal(variable.numpy(), expected, err_msg=f"{source.name}: {variable.path}")


def test_bad_encoder_weights_are_one_line_errors(tmp_path):
    with pytest.raises(resnet_unet.EncoderWeightsError, match="no such preset folder"):
        resnet_unet.pretrained_resnet18_weights(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(resnet_unet.EncoderWeightsError, match="not a keras-hub ResNet preset folder"):
        resnet_unet.pretrained_resnet18_weights(str(tmp_path / "empty"))


def test_imagenet_without_a_network_is_a_one_line_error(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--generator", "resnet18", "--data", "sample", "--image-size", "32",
         "--epochs", "1", "--steps-per-epoch", "1", "--out", str(out), "--verbose", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    error = one_line(result.stderr)
    assert "could not be downloaded" in error and "--encoder-weights PATH" in error and "none" in error
    assert not (out / "run.json").exists()  # nothing written: re-running with another flag starts cleanly


def test_noise_channel_by_mode(generator_64):
    """Deterministic: z = 0, the same colours every time. Training and paper mode: z ~ N(0, 1)."""
    lightness = tf.random.uniform((2, 64, 64, 1), -1, 1)
    np.testing.assert_array_equal(generator_64(lightness, training=False), generator_64(lightness, training=False))
    noise = generator_64.get_layer("noise")
    with_noise = noise(lightness, training=True).numpy()
    np.testing.assert_array_equal(with_noise[..., 0], lightness.numpy()[..., 0])
    assert abs(with_noise[..., 1].std() - 1.0) < 0.05
    assert np.all(noise(lightness, training=False).numpy()[..., 1] == 0)
    paper = paper_mode_generator(generator_64)
    assert not np.allclose(paper(lightness).numpy(), paper(lightness).numpy())
    assert {id(v) for v in paper.weights} <= {id(v) for v in generator_64.weights}  # shares, does not copy


@pytest.mark.slow
def test_exports_with_builtin_ops_and_parity(generator_64, tmp_path):
    """SavedModel and TFLite (float32, int8; both modes), built-in ops only, as close to Keras as
    the U-Net's exports are."""
    from pix2color.export import litert_runner

    written = folder.export_generator(generator_64, str(tmp_path), variants=("float32",), log=lambda *_: None)
    # int8 in deterministic mode only (paper mode adds no int8-specific op), calibrated on 8 photos
    # instead of the export's 64: its conversion is the slow one, and parity is what is checked here.
    int8 = tmp_path / "tflite" / "generator_deterministic_int8.tflite"
    int8.write_bytes(tflite.tflite_model(generator_64, 64, "int8", tflite.calibration_lightness(64, count=8)))
    written.append(int8)
    lightness = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 1)).astype(np.float32)
    expected = generator_64(lightness, training=False).numpy()
    saved = tf.saved_model.load(str(tmp_path / "savedmodel"))
    np.testing.assert_allclose(saved.signatures["ab"](lightness=tf.constant(lightness))["ab"], expected, atol=1e-5)
    for path in written[1:]:
        ops = op_names(path)
        assert not any(op.startswith("Flex") or op in ("CUSTOM", "VAR_HANDLE", "READ_VARIABLE") for op in ops), ops
        assert ("RANDOM_STANDARD_NORMAL" in ops) == ("paper" in path.name), (path.name, ops)
    for variant, tolerance in (("float32", 1e-4), ("int8", 0.06)):
        got = litert_runner.LiteColorizer(tmp_path / "tflite" / f"generator_deterministic_{variant}.tflite")._run(lightness)
        assert np.abs(got - expected).max() <= tolerance, variant
