"""Files written by pix2color at commit cc3389b (tests/data/saved_by_cc3389b, whose make.py says
how) still load, into the networks built today, and compute what that code computed."""

from pathlib import Path

import keras
import numpy as np

from pix2color import callbacks, gan
from pix2color.loading import read_keras_generator
from pix2color.networks import build_discriminator, build_generator
from pix2color.networks.speed import fast_layers

SAVED = Path(__file__).resolve().parents[1] / "data" / "saved_by_cc3389b"
OUTPUTS = dict(np.load(SAVED / "outputs.npz"))


def test_a_saved_generator_loads_and_computes_what_it_computed():
    generator = read_keras_generator(SAVED / "generator.keras")
    names = {type(layer).__name__ for layer in generator.layers}
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


def test_a_saved_training_checkpoint_restores_into_todays_trainer():
    """G, D, both optimizers and the random states restore, with nothing in the checkpoint left over."""
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
