"""Writes the files of this folder; run with pix2color at commit ea24270 (the last
before the package was laid out by feature):

    git worktree add /tmp/p2c ea24270 && PYTHONPATH=/tmp/p2c python tests/networks/saved_by_ea24270/make.py

- generator.keras: a 32 px U-Net with 2 base filters, as `Model.save` wrote it then;
- checkpoints/: a `callbacks.TrainingCheckpoint` of that generator, a 32 px PatchGAN with 2 base
  filters and their Adam optimizers after two training steps;
- outputs.npz: a batch of lightness and what that code computed from it: G in deterministic mode
  (`generator_ab`), D's logits on (lightness, G's output) (`discriminator_logits`), and the
  checkpointed G after the two steps (`checkpoint_ab`).
"""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2color import callbacks, gan, networks

HERE = Path(__file__).parent


def main() -> None:
    keras.utils.set_random_seed(0)
    generator = networks.build_generator(32, base_filters=2)
    discriminator = networks.build_discriminator(32, base_filters=2)
    rng = np.random.default_rng(0)
    lightness = rng.uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    ab = rng.uniform(-0.5, 0.5, (2, 32, 32, 2)).astype(np.float32)
    generator.save(HERE / "generator.keras")
    generator_ab = generator(lightness, training=False).numpy()
    discriminator_logits = discriminator([lightness, generator_ab], training=False).numpy()

    trainer = gan.ColorizationGAN(generator, discriminator)
    trainer.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
    trainer.fit(tf.data.Dataset.from_tensors((lightness, ab)).repeat(), steps_per_epoch=2, epochs=1, verbose=0)
    checkpoint = callbacks.TrainingCheckpoint(HERE / "checkpoints", generator, trainer.g_optimizer,
                                              discriminator, trainer.d_optimizer)
    checkpoint.step.assign(2)
    checkpoint.epoch.assign(1)
    checkpoint.save()
    np.savez(HERE / "outputs.npz", lightness=lightness, ab=ab, generator_ab=generator_ab,
             discriminator_logits=discriminator_logits, checkpoint_ab=generator(lightness, training=False).numpy(),
             checkpoint_logits=discriminator([lightness, ab], training=False).numpy())


if __name__ == "__main__":
    main()
