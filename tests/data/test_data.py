import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import MESSY_BAD, MESSY_GOOD, sample_photo_paths
from helpers import sample_photo_folder
from PIL import Image

from pix2color import data
from pix2color.data import load_image_set, make_eval_dataset


def names(paths):
    return {Path(p).name for p in paths}


def test_messy_folder_is_vetted(messy_folder):
    image_set = data.folder_image_set(messy_folder, verbose=0)
    assert names(image_set.skipped) == MESSY_BAD
    assert names(image_set.grayscale) == {"gray.jpg"}
    assert names(image_set.train + image_set.val) == MESSY_GOOD
    assert not set(image_set.train) & set(image_set.val)
    reasons = {Path(p).name: reason for p, reason in image_set.skipped.items()}
    # Plain words, never the decoder op's name.
    assert reasons == {
        "tiny.png": "too small (1x1 px; need at least 16 px a side)",
        "x.jpg": "not an image (the content is not JPEG, PNG, GIF, BMP or WebP)",
        "corrupt.jpg": "corrupt or truncated JPEG",
        "truncated.jpg": "corrupt or truncated JPEG",
        "garbled.jpg": "corrupt or truncated JPEG",
        "empty.png": "empty file (0 bytes)",
    }
    summary = image_set.summary()
    assert "6 unusable files skipped" in summary and "1 grayscale left out" in summary
    for name in MESSY_BAD:
        assert name in summary
    assert "function_node" not in summary and "Decode" not in summary


def test_folder_split_is_deterministic_and_by_relative_path(messy_folder, tmp_path):
    first = data.folder_image_set(messy_folder, val_fraction=0.5, verbose=0)
    second = data.folder_image_set(messy_folder, val_fraction=0.5, verbose=0)
    assert first.train == second.train and first.val == second.val
    assert first.val and first.train  # 11 files, half expected on each side
    # The split does not depend on where the folder lives.
    import shutil

    moved = tmp_path / "elsewhere"
    shutil.copytree(messy_folder, moved)
    third = data.folder_image_set(moved, val_fraction=0.5, verbose=0)
    assert names(third.val) == names(first.val)


def test_sample_set_splits_by_photo_id():
    import csv

    image_set = data.sample_image_set(verbose=0)
    assert len(image_set.train) + len(image_set.val) == 201
    assert not image_set.skipped and not image_set.grayscale
    with open(data.sample_photos_dir() / "manifest.csv", newline="") as handle:
        photo_of = {row["file"]: row["photo_id"] for row in csv.DictReader(handle)}
    train_ids = {photo_of[Path(p).name] for p in image_set.train}
    val_ids = {photo_of[Path(p).name] for p in image_set.val}
    assert val_ids and not train_ids & val_ids
    assert (data.sample_photos_dir() / "ATTRIBUTION.md").exists()


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_unusable_data_argument_is_a_clear_error(tmp_path, kind):
    target = tmp_path / "photos"
    if kind == "empty":
        target.mkdir()
        (target / "readme.txt").write_text("no images here")
    elif kind == "file":
        target.write_text("x")
    with pytest.raises(data.DataError, match=str(target)):
        data.load_image_set(str(target), verbose=0)


def test_folder_of_only_bad_or_gray_images_is_a_clear_error(tmp_path):
    (tmp_path / "x.jpg").write_text("nope")
    from PIL import Image

    Image.new("L", (64, 64), 128).save(tmp_path / "gray.png")
    with pytest.raises(data.DataError, match="no usable colour images"):
        data.load_image_set(str(tmp_path), verbose=0)


def test_coco_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("COCO_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(data.DataError) as raised:
        data.load_image_set("coco", verbose=0, tfds_data_dir=str(tmp_path / "tfds"))
    message = str(raised.value)
    for needed in ("train2017.zip", "unlabeled2017.zip", "--coco-dir", "--data sample", "--tfds-data-dir"):
        assert needed in message
    with pytest.raises(data.DataError, match="expected train2017/ and val2017/"):
        data.load_image_set("coco", verbose=0, coco_dir=str(tmp_path))


@pytest.fixture(scope="module")
def coco_folder(tmp_path_factory):
    """The official COCO layout, in miniature: a grayscale and a CMYK image among the JPEGs."""
    from conftest import sample_photo_paths
    from PIL import Image

    root = tmp_path_factory.mktemp("coco")
    photos = [Image.open(p).convert("RGB").resize((64, 48)) for p in sample_photo_paths(8)]
    layout = {"train2017": photos[:3], "unlabeled2017": photos[3:5], "val2017": photos[5:7], "test2017": photos[7:]}
    for folder, images in layout.items():
        (root / folder).mkdir()
        for index, image in enumerate(images):
            image.save(root / folder / f"{index:012d}.jpg")
    photos[0].convert("L").save(root / "train2017" / "gray_000.jpg")
    photos[1].convert("CMYK").save(root / "train2017" / "cmyk_000.jpg")
    return root


def test_coco_folder_found_without_flags(coco_folder, monkeypatch):
    monkeypatch.setenv("COCO_DIR", str(coco_folder))
    image_set = data.load_image_set("coco", verbose=0)
    assert len(image_set.train) == 6 and str(coco_folder) in image_set.source


def test_coco_folder_uses_train_and_unlabeled(coco_folder, tmp_path):
    image_set = data.load_image_set("coco", verbose=0, coco_dir=str(coco_folder), cache_dir=tmp_path)
    assert len(image_set.train) == 6  # 3 + CMYK in train2017, 2 in unlabeled2017; gray left out
    assert len(image_set.val) == 2 and len(image_set.test) == 1
    assert names(image_set.grayscale) == {"gray_000.jpg"} and "cmyk_000.jpg" in names(image_set.train)
    assert "1 grayscale left out" in image_set.summary()
    # The scan is cached: a second look decodes nothing (the cache says so even if files vanish).
    assert list(tmp_path.glob("scan_*.json"))
    again = data.load_image_set("coco", verbose=0, coco_dir=str(coco_folder), cache_dir=tmp_path)
    assert again.train == image_set.train


def test_coco_from_tensorflow_datasets_mock(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=7):
        image_set = data.load_image_set("coco", verbose=0, cache_dir=tmp_path)
        # Mock images are random noise of random sizes: the tiny ones are skipped, by index.
        assert isinstance(image_set.train, data.TfdsSplit) and len(image_set.train) >= 4
        for split, ours in (("train", image_set.train), ("validation", image_set.val), ("test", image_set.test)):
            skipped = [name for name in image_set.skipped if name.startswith(f"coco/2017:{split}[")]
            assert len(ours) + len(skipped) == 7
            assert all("too small" in image_set.skipped[name] for name in skipped)
        full = batches(data.make_train_dataset(image_set.train, 32, batch_size=2, seed=3), 6)
        resumed = batches(data.make_train_dataset(image_set.train, 32, batch_size=2, seed=3, start_step=4), 2)
        for expected, got in zip(full[4:], resumed):
            np.testing.assert_array_equal(expected[0], got[0])
        assert full[0][0].shape == (2, 32, 32, 1)
        val = list(data.make_eval_dataset(image_set.val, 32, batch_size=4))
        assert sum(len(l) for l, _ in val) == len(image_set.val)


def batches(dataset, count):
    return [tuple(t.numpy() for t in batch) for batch in dataset.take(count)]


def test_train_stream_shapes_ranges_and_flips(messy_folder):
    files = data.folder_image_set(messy_folder, val_fraction=0.0, verbose=0).train
    stream = data.make_train_dataset(files, 32, batch_size=4, seed=1)
    lightness, ab = batches(stream, 1)[0]
    assert lightness.shape == (4, 32, 32, 1) and ab.shape == (4, 32, 32, 2)
    assert lightness.min() >= -1 and lightness.max() <= 1 and np.abs(ab).max() <= 1
    assert np.abs(ab).mean() > 0.01  # colour photos: ab is not all zero
    # Over several passes each image shows up both flipped and not flipped.
    plain = data.make_eval_dataset([files[0]], 32, 1)
    reference = next(iter(plain))[0].numpy()[0]
    seen = [batch_l for batch_l, _ in batches(data.make_train_dataset([files[0]], 32, 1, seed=3), 12)]
    flipped = sum(np.allclose(b[0], reference[:, ::-1], atol=1e-5) for b in seen)
    unflipped = sum(np.allclose(b[0], reference, atol=1e-5) for b in seen)
    assert flipped + unflipped == 12 and flipped > 0 and unflipped > 0


def test_train_stream_resumes_exactly_where_it_stopped(messy_folder):
    """Batches from start_step=k equal batches k, k+1, ... of the full stream (across passes)."""
    files = data.folder_image_set(messy_folder, val_fraction=0.0, verbose=0).train  # 11 files
    full = batches(data.make_train_dataset(files, 32, batch_size=3, seed=7), 9)  # > 2 passes
    resumed = batches(data.make_train_dataset(files, 32, batch_size=3, seed=7, start_step=5), 4)
    for expected, got in zip(full[5:], resumed):
        np.testing.assert_array_equal(expected[0], got[0])
        np.testing.assert_array_equal(expected[1], got[1])
    other_seed = batches(data.make_train_dataset(files, 32, batch_size=3, seed=8), 1)
    assert not np.array_equal(other_seed[0][0], full[0][0])


@pytest.mark.parametrize("workers, replicas_per_worker", [(2, 1), (2, 2)])
def test_worker_streams_are_shares_of_the_global_batches(messy_folder, workers, replicas_per_worker):
    """Multi-worker input: each worker's pipeline (per-replica batches, resumed at a step) holds
    exactly its replicas' slices of the single-device global batches, in replica order."""
    import tensorflow as tf

    files = data.folder_image_set(messy_folder, val_fraction=0.0, verbose=0).train
    replicas = workers * replicas_per_worker
    global_batches = batches(data.make_train_dataset(files, 32, batch_size=4, seed=7, start_step=2), 3)
    streams = [
        batches(data.make_train_dataset(files, 32, batch_size=4, seed=7, start_step=2, input_context=context), 3 * replicas_per_worker)
        for context in (
            tf.distribute.InputContext(workers, worker, replicas) for worker in range(workers)
        )
    ]
    for step, (lightness, ab) in enumerate(global_batches):
        # Replica r of worker w is global replica w * replicas_per_worker + r.
        pieces = [stream[step * replicas_per_worker + r] for stream in streams for r in range(replicas_per_worker)]
        np.testing.assert_array_equal(np.concatenate([piece[0] for piece in pieces]), lightness)
        np.testing.assert_array_equal(np.concatenate([piece[1] for piece in pieces]), ab)


def test_each_pass_shows_every_image_once(messy_folder):
    files = data.folder_image_set(messy_folder, val_fraction=0.0, verbose=0).train
    stream = data.make_train_dataset(files, 32, batch_size=1, seed=5)
    one_pass = [l[0] for l, _ in batches(stream, len(files))]
    means = sorted(round(float(np.abs(x).mean()), 4) for x in one_pass)  # flip-invariant
    expected = sorted(
        round(float(np.abs(l[0]).mean()), 4) for l, _ in batches(data.make_eval_dataset(files, 32, 1), len(files))
    )
    assert means == expected


def test_eval_dataset_covers_every_file_once_in_order(messy_folder):
    files = data.folder_image_set(messy_folder, val_fraction=0.0, verbose=0).train
    got = list(data.make_eval_dataset(files, 32, batch_size=4))
    assert [len(l) for l, _ in got] == [4, 4, 3]


def test_a_name_that_is_not_utf8_is_scanned_and_read(tmp_path):
    """Old zips from Windows hold Latin-1 names (b'\\xe9t\\xe9.jpg'): scanned, split and read as any other."""
    import os

    folder = sample_photo_folder(tmp_path / "photos", 6)
    latin1 = os.fsdecode(os.fsencode(str(folder)) + b"/\xe9t\xe9.jpg")
    shutil.copy(sample_photo_paths(7)[-1], latin1)
    image_set = load_image_set(str(folder), 0.0, verbose=0)
    assert latin1 in image_set.train and len(image_set.train) == 7
    batches = list(make_eval_dataset(image_set.train, 32, 7))
    assert batches[0][0].shape == (7, 32, 32, 1)


def test_a_photo_with_a_colour_profile_trains_from_its_managed_colours(tmp_path):
    """TensorFlow's decoders ignore ICC profiles: a CMYK JPEG with its profile is read from an sRGB
    copy in the run's scan cache, whose colours are the managed ones (`read_image`'s)."""
    from PIL import ImageCms

    from pix2color.photos import read_image

    profile = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")
    assert profile.exists(), "install Debian's libgs-common (.ci/run does)"
    folder = sample_photo_folder(tmp_path / "photos", 4)
    rgb = Image.open(sample_photo_paths(5)[-1]).convert("RGB")
    ImageCms.profileToProfile(rgb, ImageCms.createProfile("sRGB"), ImageCms.ImageCmsProfile(str(profile)),
                              outputMode="CMYK").save(folder / "cmyk.jpg", icc_profile=profile.read_bytes())
    image_set = load_image_set(str(folder), 0.0, verbose=0, cache_dir=tmp_path / "cache")
    copies = [path for path in image_set.train if "srgb" in path]
    assert len(image_set.train) == 5 and len(copies) == 1 and copies[0].startswith(str(tmp_path / "cache"))
    np.testing.assert_array_equal(np.asarray(Image.open(copies[0])), read_image(folder / "cmyk.jpg"))
    again = load_image_set(str(folder), 0.0, verbose=0, cache_dir=tmp_path / "cache")  # the cache knows the copy
    assert again.train == image_set.train


def test_a_symlinked_folder_inside_the_data_is_left_out_and_said_so(tmp_path):
    folder = sample_photo_folder(tmp_path / "photos", 4)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(sample_photo_paths(5)[-1], elsewhere / "q.jpg")
    (folder / "linked").symlink_to(elsewhere)
    image_set = load_image_set(str(folder), 0.0, verbose=0)
    assert len(image_set.train) == 4
    assert f"left out {folder / 'linked'}: a symlink to a folder, not searched" in image_set.summary()
