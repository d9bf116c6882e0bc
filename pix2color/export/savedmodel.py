"""The SavedModel export: the generator in both inference modes, behind signatures that take a
photo of any size (the full-resolution recipe in TensorFlow ops) or the network's own tensors.

    serving_default / colorize        image uint8 (H, W, C), C in 1..4, any size
                                      -> colorized uint8 (H, W, 3), same size (full-res recipe)
    colorize_paper                    the same in the report's test-time mode
    ab / ab_paper                     lightness float32 (N, S, S, 1) -> ab float32 (N, S, S, 2)

The weights are stored once, shared by both modes. TensorFlow is imported inside the functions:
`pix2color export` checks its arguments and paths before paying for TensorFlow's start-up.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path


def _import_tf():
    import tensorflow as tf

    return tf


def draw_afresh_in_every_process():
    """Called first in every function traced for export: its random ops (the paper mode's dropout
    masks and noise) get no seed, so each process that loads the file draws its own. Otherwise a
    global seed set in the exporting process (a notebook that trained, then exported) would be
    baked into the ops, and every phone would draw the same masks in the same order. Under op
    determinism TensorFlow requires seeds, so the exporting process's are kept."""
    tf = _import_tf()
    # TensorFlow has a public setter of op determinism but no public getter (checked with 2.21).
    from tensorflow.python.framework.config import is_op_determinism_enabled

    if not is_op_determinism_enabled():
        tf.compat.v1.get_default_graph().seed = None  # the graph being traced, not the process


def colorize_in_graph(network, image, image_size: int):
    """The full-resolution recipe as TensorFlow ops (for the SavedModel's serving signature).

    image: uint8 (H, W, C), C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA; alpha dropped).
    Mirrors `pix2color.colorizing.recipe.FullResolutionColorizer` (area-filtered L in, bilinear ab out).
    """
    tf = _import_tf()
    from pix2color import color

    channels = tf.shape(image)[-1]
    image = tf.cond(channels < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    lab = color.rgb_to_lab(tf.cast(image, tf.float32) / 255.0)
    lightness = lab[..., :1]  # (H, W, 1), full resolution
    small = tf.image.resize(lightness[None], [image_size, image_size], method="area") / 50.0 - 1.0
    ab_small = network(small, training=False)  # (1, S, S, 2)
    ab = tf.image.resize(ab_small * 110.0, tf.stack([height, width]), method="bilinear")[0]
    rgb = color.lab_to_rgb(tf.concat([lightness, ab], axis=-1))
    return tf.cast(tf.round(rgb * 255.0), tf.uint8)


SAVEDMODEL_FILES = {"saved_model.pb", "fingerprint.pb", "variables", "assets", "keras_metadata.pb"}


def not_an_export(folder: str | Path) -> list[str]:
    """What a folder holds that a SavedModel export does not write (`--overwrite` replaces a
    folder only when this is empty: it never removes a user's file)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return [folder.name]
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name not in SAVEDMODEL_FILES or entry.is_symlink():
            found.append(entry.name)
        elif entry.name == "variables" and entry.is_dir():
            found += [f"variables/{item.name}" for item in sorted(entry.iterdir())
                      if not (item.name == "variables.index" or item.name.startswith("variables.data-"))]
        elif entry.name == "assets" and entry.is_dir():
            found += [f"assets/{item.name}" for item in sorted(entry.iterdir())]
    return found


def export_savedmodel(generator, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write a SavedModel with whole-job and raw-network signatures, both inference modes.

    Written into a hidden temporary folder beside `out_dir` and renamed into place when whole;
    an existing `out_dir` is replaced only with `overwrite`, and only if it holds nothing but an
    export's files (`not_an_export`)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(errno.EEXIST, "exists (--overwrite replaces it)", str(out_dir))
    foreign = not_an_export(out_dir) if os.path.lexists(out_dir) else []
    if foreign:
        raise FileExistsError(errno.EEXIST, f"holds what no export writes ({', '.join(foreign[:3])}): left as it is, "
                                            "--overwrite or not", str(out_dir))
    tf = _import_tf()
    module, signatures = savedmodel_module(generator)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        tf.saved_model.save(module, str(partial), signatures=signatures)
        if out_dir.exists():  # overwrite: the old folder goes only once the new one is whole
            replaced = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            os.replace(out_dir, replaced / out_dir.name)
            os.replace(partial, out_dir)
            shutil.rmtree(replaced)
        else:
            os.replace(partial, out_dir)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return out_dir


def savedmodel_module(generator):
    """(a `tf.Module` holding the generator in both modes, its signatures): `colorize` /
    `colorize_paper` (a uint8 photo of any size in, colorized out) and `ab` / `ab_paper` (the
    raw network); the weights are stored once, shared by both modes."""
    tf = _import_tf()
    from pix2color.networks.paper_mode import paper_mode_generator

    size = int(generator.input_shape[1])
    module = tf.Module()
    module.generator = generator
    module.paper_generator = paper_mode_generator(generator)
    image_spec = tf.TensorSpec([None, None, None], tf.uint8, name="image")
    lightness_spec = tf.TensorSpec([None, size, size, 1], tf.float32, name="lightness")

    def whole_job(network):
        def colorize(image):
            draw_afresh_in_every_process()
            return {"colorized": colorize_in_graph(network, image, size)}

        return tf.function(colorize, input_signature=[image_spec], autograph=False)

    def raw(network):
        def ab(lightness):
            draw_afresh_in_every_process()
            return {"ab": network(lightness, training=False)}

        return tf.function(ab, input_signature=[lightness_spec], autograph=False)

    module.colorize = whole_job(module.generator)
    module.colorize_paper = whole_job(module.paper_generator)
    module.ab = raw(module.generator)
    module.ab_paper = raw(module.paper_generator)
    return module, {
        "serving_default": module.colorize.get_concrete_function(),
        "colorize": module.colorize.get_concrete_function(),
        "colorize_paper": module.colorize_paper.get_concrete_function(),
        "ab": module.ab.get_concrete_function(),
        "ab_paper": module.ab_paper.get_concrete_function(),
    }
