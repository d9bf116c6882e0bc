"""`tf.data` pipelines: lists of vetted images -> batches of (lightness, ab) in network units.

The training stream is a pure function of (files, seed, position): pass p over the data is a
permutation seeded by (seed, p), and image i's flip is seeded by (seed, i). A resumed run asks
for the stream from its global step and sees exactly the batches it had not seen yet.
"""

from __future__ import annotations

import tensorflow as tf

from pix2color import color
from pix2color.data.images import AUTOTUNE, encoded_to_rgb, path_strings
from pix2color.data.sources import DataError, Images, TfdsSplit


def to_model_pair(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """float RGB (S, S, 3) -> (lightness (S, S, 1), ab (S, S, 2)) in network units."""
    return color.rgb_to_model_inputs(rgb)


TFDS_SHUFFLE_BUFFER = 2048  # encoded COCO images are ~160 kB: ~330 MB of buffer


def _pass_elements(images: Images, seed: int):
    """(one_pass(pass_index) -> dataset of items, item -> encoded bytes, items per pass)."""
    if isinstance(images, TfdsSplit):

        def one_pass(pass_index):
            return images.kept_encoded_images().shuffle(
                TFDS_SHUFFLE_BUFFER, seed=tf.cast(seed, tf.int64) * 1_000_003 + pass_index
            )

        return one_pass, tf.identity, len(images)

    files = path_strings(sorted(images))
    count = len(images)

    def one_pass(pass_index):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count), seed=tf.stack([tf.cast(seed, tf.int64), pass_index])
        )
        return tf.data.Dataset.from_tensor_slices(tf.gather(files, order))

    return one_pass, tf.io.read_file, count


def make_train_dataset(
    images: Images,
    image_size: int,
    batch_size: int,
    seed: int = 42,
    start_step: int = 0,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Endless, deterministic stream of training batches, starting at global step `start_step`.

    Each pass over the files is a permutation seeded by (seed, pass) (for a tfds split: a
    shuffle buffer seeded so); each image is flipped left-right with probability 1/2, seeded by
    (seed, its position in the stream). Skipping to `start_step` reads no pixels for files.

    `batch_size` is the global batch. With an `input_context` (from
    `strategy.distribute_datasets_from_function`), this worker's pipeline keeps only its share of
    every global batch, before decoding, in per-replica batches: the replicas together see
    exactly the global batches of one device.
    """
    if not len(images):
        raise DataError("no training images")
    one_pass, to_encoded, count = _pass_elements(images, seed)
    start_index = start_step * batch_size
    first_pass, offset = divmod(start_index, count)

    def load(position, item):
        rgb = encoded_to_rgb(to_encoded(item), image_size)
        flip = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), position]))
        rgb = tf.cond(flip < 0.5, lambda: tf.image.flip_left_right(rgb), lambda: rgb)
        return to_model_pair(rgb)

    stream = tf.data.Dataset.counter(start=first_pass).flat_map(one_pass).skip(offset).enumerate(start=start_index)
    options = tf.data.Options()
    if input_context is None:
        # Distributed by Keras (MirroredStrategy): each replica takes its share of every batch.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    else:
        share = batch_size // input_context.num_input_pipelines  # this worker's part of a global batch
        pipeline = input_context.input_pipeline_id
        stream = stream.filter(lambda position, _: (position % batch_size) // share == pipeline)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return (
        stream.map(load, num_parallel_calls=AUTOTUNE)
        .ignore_errors(log_warning=True)  # a file that broke after the scan must not end a run
        .batch(batch_size, drop_remainder=True)
        .prefetch(AUTOTUNE)
        .with_options(options)
    )


def preview_images(images: Images, count: int) -> Images:
    """`count` images spread over a split (different photos, not 4 crops of one), for figures."""
    if isinstance(images, TfdsSplit):
        return images
    images = sorted(images)
    return images[:: max(1, len(images) // count)][:count]


def make_eval_dataset(images: Images, image_size: int, batch_size: int) -> tf.data.Dataset:
    """Validation / test batches: every image once, in a fixed order, no augmentation."""
    if isinstance(images, TfdsSplit):
        encoded = images.kept_encoded_images()
    else:
        encoded = tf.data.Dataset.from_tensor_slices(path_strings(sorted(images))).map(tf.io.read_file)
    return (
        encoded.map(lambda data: to_model_pair(encoded_to_rgb(data, image_size)), num_parallel_calls=AUTOTUNE)
        .batch(batch_size)
        .prefetch(AUTOTUNE)
    )
