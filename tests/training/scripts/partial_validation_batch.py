"""Validation on two replicas (MirroredStrategy over two logical CPUs) of 3 images in batches of
2, so that one replica's share of the last batch is empty: its means (over images) equal one
device's, image by image. Prints `PARTIAL-OK` if so.

Run in a process of its own (the logical CPUs must be set up before TensorFlow does anything
else) by tests/training/test_distribute.py
(`test_validation_on_two_replicas_with_a_partial_last_batch`): python partial_validation_batch.py
"""

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
