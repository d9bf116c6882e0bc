"""Scale-out and mixed precision: the maths must not change with the number of replicas."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from pix2color.training import TrainConfig, build_trainer

    import sys
    config = TrainConfig(image_size=32, batch_size=4, r1_gamma=float(sys.argv[1]))
    rng = np.random.default_rng(0)
    batch = (rng.uniform(-1, 1, (4, 32, 32, 1)).astype("float32"), rng.uniform(-.5, .5, (4, 32, 32, 2)).astype("float32"))

    def one_step(strategy, initial=None):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            trainer = build_trainer(config, strategy)
            # Dropout is the only randomness: off, so both runs compute the same thing.
            for layer in trainer.generator.layers:
                if hasattr(layer, "rate"):
                    layer.rate = 0.0
            # SGD, not Adam, for the comparison: Adam's first step is lr * sign(gradient), which
            # turns float round-off in near-zero gradients into full +-lr differences.
            trainer.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), r1_gamma=config.r1_gamma)
        if initial is not None:
            trainer.generator.set_weights(initial[0])
            trainer.discriminator.set_weights(initial[1])
        start = (trainer.generator.get_weights(), trainer.discriminator.get_weights())
        history = trainer.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=1, verbose=0).history
        return start, trainer, history

    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert two.num_replicas_in_sync == 2
    start, single, single_history = one_step(tf.distribute.get_strategy())
    _, mirrored, mirrored_history = one_step(two, start)
    for name in ("disc_loss", "r1_penalty", "d_real", "d_fake", "gen_l1_loss"):
        np.testing.assert_allclose(mirrored_history[name], single_history[name], rtol=1e-4, atol=1e-6)
    # Relative size of the difference between the two updates, per weight tensor.
    worst = 0.0
    for model_a, model_b, before in ((single.generator, mirrored.generator, start[0]),
                                     (single.discriminator, mirrored.discriminator, start[1])):
        for a, b, b0 in zip(model_a.get_weights(), model_b.get_weights(), before):
            step = np.abs(a - b0).max()
            if step > 1e-6:
                worst = max(worst, np.abs(a - b).max() / step)
    print("WORST", worst)
    assert worst < float(sys.argv[2]), worst
    np.testing.assert_allclose(mirrored_history["gen_gan_loss"], single_history["gen_gan_loss"], rtol=float(sys.argv[2]))
    print("REPLICAS-EQUAL")
''')


@pytest.mark.parametrize("r1_gamma", [0.0, 0.1])
def test_two_replicas_equal_one_replica_with_the_same_global_batch(r1_gamma):
    """Loss scaling per replica, sharded batch and synchronized BatchNorm: the same step, to float
    round-off (1e-3 of each weight tensor's update; measured 8e-5), as one device with the global
    batch, with and without R1's double backprop through D's BatchNorm."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(r1_gamma), "1e-3"], capture_output=True, text=True, timeout=600
    )
    assert "REPLICAS-EQUAL" in result.stdout, result.stderr[-3000:]


def test_mixed_precision_step_is_finite_and_uses_loss_scaling():
    script = textwrap.dedent('''
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np, tensorflow as tf, keras
        from pix2color import gan
        from pix2color.training import TrainConfig, build_trainer
        trainer = build_trainer(TrainConfig(image_size=32, batch_size=2, r1_gamma=1.0, mixed_precision=True))
        assert isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
        assert trainer.generator.get_layer("down1_conv").compute_dtype == "float16"
        assert trainer.generator.output.dtype == "float32"
        rng = np.random.default_rng(0)
        batch = (rng.uniform(-1, 1, (2, 32, 32, 1)).astype("float32"), rng.uniform(-.5, .5, (2, 32, 32, 2)).astype("float32"))
        history = trainer.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=2, verbose=0).history
        assert all(np.isfinite(v[0]) for v in history.values()), history
        # R1 under mixed precision equals R1 in float32 on the same weights (no float16 underflow).
        keras.mixed_precision.set_global_policy("float32")
        from pix2color import models
        d32 = models.build_discriminator(32)
        d32.set_weights(trainer.discriminator.get_weights())
        p16, _ = gan.r1_penalty(trainer.discriminator, tf.constant(batch[0]), tf.constant(batch[1]), 1.0)
        p32, _ = gan.r1_penalty(d32, tf.constant(batch[0]), tf.constant(batch[1]), 1.0)
        assert p32 > 0 and abs(float(p16) - float(p32)) < 0.05 * float(p32), (float(p16), float(p32))
        print("MIXED-OK")
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert "MIXED-OK" in result.stdout, result.stderr[-3000:]
