"""Loads a generator.keras saved by a run trained in bfloat16, in a fresh process: every layer's
policy and every weight is float32, it runs in float32 with finite outputs, it leaves the global
policy float32, and `load_generator` loads it so too. Prints `FLOAT32-FILE` if so.

Run by tests/training/test_precision.py
(`test_a_bfloat16_run_saves_float32_files_and_refuses_another_precision`):
python read_saved_generator.py GENERATOR.keras
"""

import sys
import numpy as np
import keras
import tensorflow as tf
import pix2color.networks  # noqa: F401 - registers the custom layers for loading
from pix2color.colorizing.loading import load_generator

path = sys.argv[1]
generator = keras.models.load_model(path)
layers = [generator]
policies = set()
while layers:
    layer = layers.pop()
    policies.add(layer.dtype_policy.name)
    layers.extend(getattr(layer, "layers", []))
assert policies == {"float32"}, policies
assert {v.dtype for v in generator.weights} == {"float32"}
output = generator(tf.random.uniform((2, 32, 32, 1), -1, 1), training=False)
assert output.dtype == tf.float32 and np.all(np.isfinite(output.numpy()))
assert keras.config.dtype_policy().name == "float32"
loaded = load_generator(path)
assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}
print("FLOAT32-FILE")
