"""Input data: which images to use, and `tf.data` pipelines of Lab pairs.

Two steps, so that bad files never reach training:

1. `load_image_set` (`sources`) lists the images of `--data` (the sample set, a folder, COCO),
   decodes each once to set aside the unreadable, too-small and grayscale ones (`images`), and
   splits the rest into train / validation deterministically.
2. `make_train_dataset` / `make_eval_dataset` (`pipelines`) turn a list of good images into
   batches of ``(lightness, ab)`` in network units (see `pix2color.color`).
"""

from pix2color.data.images import (
    IMAGE_EXTENSIONS,
    decode_image,
    encoded_to_rgb,
    list_image_files,
    resize_rgb,
    scan_images,
)
from pix2color.data.pipelines import make_eval_dataset, make_train_dataset, preview_images, to_model_pair
from pix2color.data.sources import (
    COCO_HELP,
    DEFAULT_VAL_FRACTION,
    DataError,
    Images,
    ImageSet,
    TfdsSplit,
    coco_folder_image_set,
    default_coco_dir,
    folder_image_set,
    load_image_set,
    sample_image_set,
    sample_photos_dir,
    tfds_image_set,
)

__all__ = [
    "COCO_HELP", "DEFAULT_VAL_FRACTION", "IMAGE_EXTENSIONS", "DataError", "ImageSet", "Images", "TfdsSplit",
    "coco_folder_image_set", "decode_image", "default_coco_dir", "encoded_to_rgb", "folder_image_set",
    "list_image_files", "load_image_set", "make_eval_dataset", "make_train_dataset", "preview_images",
    "resize_rgb", "sample_image_set", "sample_photos_dir", "scan_images", "tfds_image_set", "to_model_pair",
]
