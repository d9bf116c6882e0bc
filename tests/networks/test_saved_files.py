"""Files written by earlier pix2color (tests/networks/saved_by_COMMIT, each with the make.py that wrote
it: at cc3389b, whose layers had other registered names, and at ea24270, the last commit before
the package was laid out by feature) still load, into the networks built today, and compute what
that code computed."""

from pathlib import Path

import keras
import numpy as np
import pytest

from pix2color.colorizing.loading import read_keras_generator
from pix2color.networks import build_discriminator, build_generator
from pix2color.networks.cpu_layers import fast_layers
from pix2color.training import callbacks, gan

DATA = Path(__file__).resolve().parent  # saved_by_COMMIT folders
saved_by = pytest.mark.parametrize("commit", ["cc3389b", "ea24270"])


def saved(commit: str) -> tuple[Path, dict]:
    folder = DATA / f"saved_by_{commit}"
    return folder, dict(np.load(folder / "outputs.npz"))


@saved_by
def test_a_saved_generator_loads_and_computes_what_it_computed(commit):
    SAVED, OUTPUTS = saved(commit)
    generator = read_keras_generator(SAVED / "generator.keras")
    names = {type(layer).__name__ for layer in generator.layers}
    if commit == "cc3389b":
        assert "UpConvolution" in names  # pix2color>UpConvolution, as the file names them
    lightness = OUTPUTS["lightness"]
    np.testing.assert_allclose(generator(lightness, training=False), OUTPUTS["generator_ab"], rtol=0, atol=1e-6)
    # The faster layers are those the file's code computed with: the same sums in the same order,
    # bit for bit on the CPU that wrote the file; oneDNN picks other kernels on other CPUs (an
    # Intel Xeon with AMX: 1.4e-9 at most), hence a bound 100x below the stock layers'.
    np.testing.assert_allclose(fast_layers(generator)(lightness, training=False), OUTPUTS["generator_ab"],
                               rtol=0, atol=1e-8)
    # Its weights are today's generator's, variable for variable.
    today = build_generator(32, base_filters=2)
    assert [v.path for v in today.weights] == [v.path for v in generator.weights]
    today.set_weights(generator.get_weights())
    np.testing.assert_allclose(today(lightness, training=False), OUTPUTS["generator_ab"], rtol=0, atol=1e-6)


@saved_by
def test_a_saved_training_checkpoint_restores_into_todays_trainer(commit):
    """G, D, both optimizers and the random states restore, with nothing in the checkpoint left over."""
    SAVED, OUTPUTS = saved(commit)
    generator, discriminator = build_generator(32, base_filters=2), build_discriminator(32, base_filters=2)
    trainer = gan.ColorizationGAN(fast_layers(generator), fast_layers(discriminator))
    trainer.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
    checkpoint = callbacks.TrainingCheckpoint(SAVED / "checkpoints", generator, trainer.g_optimizer,
                                              discriminator, trainer.d_optimizer, write=False)
    assert checkpoint.restore(log=lambda message: None) == (1, 2)
    checkpoint.checkpoint.read(str(SAVED / "checkpoints" / "ckpt-2")).assert_consumed()
    assert int(trainer.g_optimizer.iterations) == 2 and int(trainer.d_optimizer.iterations) == 2
    lightness, ab = OUTPUTS["lightness"], OUTPUTS["ab"]
    np.testing.assert_allclose(generator(lightness, training=False), OUTPUTS["checkpoint_ab"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(discriminator([lightness, ab], training=False), OUTPUTS["checkpoint_logits"],
                               rtol=0, atol=1e-5)
