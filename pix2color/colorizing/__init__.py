"""Colorizing users' photos and videos at their full resolution with a trained generator.

- `loading`: a trained generator from a run folder, a `.keras` file or a SavedModel.
- `recipe`: the full-resolution recipe around the network, and CIE Lab in NumPy.
- `files`: the photos and videos a command names, each to its output (`pix2color colorize`).
- `video`: videos frame by frame; `stabilise`: their colours steady over time.

This file imports nothing: the device's runner imports `recipe` without TensorFlow.
"""
