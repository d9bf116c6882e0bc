"""Exporting a trained generator: a SavedModel for serving, TFLite files for phones, and the
one-file runner that colorizes with them on a device (LiteRT, numpy and Pillow only).

- `folder`: what an export folder holds, and writing it (`pix2color export`).
- `savedmodel`, `tflite`: the two formats; `tflite_layers`: the generator rebuilt for the converter.
- `litert_runner`: the device's colorizer and command; `one_file`: that runner and the modules it
  uses written as one file, `colorize_tflite.py`.

This file imports nothing: the device's runner imports `pix2color.export.litert_runner`, which
must not bring TensorFlow with it.
"""
