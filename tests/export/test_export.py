"""SavedModel and TFLite exports: built-in ops only, parity with Keras, any image size."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, sample_photo_paths
from helpers import op_names, run_cli

from pix2color.colorizing.loading import load_generator, load_network
from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.export.litert_runner import LiteColorizer
from pix2color.networks.paper_mode import paper_mode_generator
from pix2color.networks.unet import ChannelDropout
from pix2color.photos import read_image

# Max |ab| difference to Keras (network units; 1.0 = 110 Lab units), per TFLite variant.
TOLERANCE = {"float32": 1e-4, "float16": 2e-3, "dynamic": 1e-2, "int8": 0.06}


@pytest.fixture(scope="module")
def generator(small_generator_file):
    return load_generator(small_generator_file)


@pytest.fixture(scope="module")
def lightness_batch():
    photos = np.stack([read_image(p) for p in sample_photo_paths(3)])
    recipe = FullResolutionColorizer(None, 32)
    return np.stack([recipe.prepare(photo)[1] for photo in photos]).astype(np.float32)


def run_tflite(path, lightness):
    return LiteColorizer(path)._run(lightness)


@pytest.mark.slow  # exports every variant of both modes
def test_every_variant_is_written_with_builtin_ops_only(exported_every_variant):
    exported = exported_every_variant
    files = sorted(p.name for p in (exported / "tflite").glob("*.tflite"))
    assert files == sorted(f"generator_{m}_{v}.tflite" for m in ("deterministic", "paper") for v in TOLERANCE)
    for path in (exported / "tflite").glob("*.tflite"):
        ops = op_names(path)
        assert not any(op.startswith("Flex") or op in ("CUSTOM", "VAR_HANDLE", "READ_VARIABLE") for op in ops), (path, ops)
        assert "TRANSPOSE_CONV" not in ops and "DEPTH_TO_SPACE" in ops, (path, ops)  # tflite_layers.litert_generator
    assert "RANDOM_UNIFORM" in op_names(exported / "tflite" / "generator_paper_float32.tflite")
    sizes = {v: (exported / "tflite" / f"generator_deterministic_{v}.tflite").stat().st_size for v in TOLERANCE}
    assert sizes["float16"] < 0.6 * sizes["float32"] and sizes["int8"] < 0.35 * sizes["float32"]


@pytest.mark.parametrize("variant", [pytest.param(v, marks=pytest.mark.slow) if v in ("float16", "dynamic") else v
                                     for v in TOLERANCE])
def test_tflite_matches_keras(request, generator, lightness_batch, variant):
    exported = request.getfixturevalue("exported" if variant in ("float32", "int8") else "exported_every_variant")
    expected = generator(lightness_batch, training=False).numpy()
    got = run_tflite(exported / "tflite" / f"generator_deterministic_{variant}.tflite", lightness_batch)
    assert np.abs(got - expected).max() <= TOLERANCE[variant]


@pytest.mark.slow  # needs the paper-mode export
def test_paper_mode_tflite_is_the_report_mode(exported_every_variant, generator, lightness_batch, tmp_path):
    """Dropout on (random) and BatchNorm on the batch's statistics, as the Keras paper model."""
    path = exported_every_variant / "tflite" / "generator_paper_float32.tflite"
    first, second = run_tflite(path, lightness_batch), run_tflite(path, lightness_batch)
    assert not np.allclose(first, second)  # dropout is on
    assert np.isfinite(first).all() and np.abs(first).max() <= 1.0
    # With the dropout rate at 0 the paper model is deterministic: TFLite must match Keras.
    from pix2color.export import tflite

    paper = paper_mode_generator(generator)
    for layer in paper.layers:
        if isinstance(layer, ChannelDropout):
            layer.rate = 0.0
    tflite_file = tmp_path / "paper_no_dropout.tflite"
    tflite_file.write_bytes(tflite.tflite_model(paper, 32, "float32"))
    for image in lightness_batch:
        expected = paper(image[None]).numpy()
        np.testing.assert_allclose(run_tflite(tflite_file, image[None]), expected, atol=1e-4)
    assert np.abs(expected - generator(image[None], training=False).numpy()).max() > 1e-3  # not the same mode


@pytest.mark.slow  # a TFLite conversion and a SavedModel loaded twice
def test_exports_draw_afresh_in_every_process_whatever_the_exporting_process_seeded(generator, lightness_batch, tmp_path):
    """A notebook that seeds TensorFlow, trains, then exports: the paper mode's random ops must not
    keep that seed, or every phone would draw the same dropout masks in the same order."""
    from pix2color.export import savedmodel, tflite

    tf.random.set_seed(7)
    paper = paper_mode_generator(generator)
    tflite_file = tmp_path / "paper.tflite"
    tflite_file.write_bytes(tflite.tflite_model(paper, 32, "float32"))
    # Each LiteColorizer is a new interpreter, as a new process on a phone would be.
    assert not np.allclose(run_tflite(tflite_file, lightness_batch[:1]), run_tflite(tflite_file, lightness_batch[:1]))
    savedmodel.export_savedmodel(generator, tmp_path / "savedmodel")
    first, second = (tf.saved_model.load(str(tmp_path / "savedmodel")).signatures["ab_paper"] for _ in range(2))
    assert not np.allclose(first(lightness=tf.constant(lightness_batch))["ab"], second(lightness=tf.constant(lightness_batch))["ab"])
    tf.random.set_seed(7)  # the process's own seed still rules its own random ops
    seeded = tf.random.uniform([3]).numpy()
    tf.random.set_seed(7)
    np.testing.assert_array_equal(tf.random.uniform([3]).numpy(), seeded)


def test_savedmodel_raw_signature_matches_keras(exported, generator, lightness_batch):
    loaded = tf.saved_model.load(str(exported / "savedmodel"))
    got = loaded.signatures["ab"](lightness=tf.constant(lightness_batch))["ab"].numpy()
    np.testing.assert_allclose(got, generator(lightness_batch, training=False).numpy(), atol=1e-5)
    network = load_network(exported / "savedmodel")
    assert network.image_size == 32
    np.testing.assert_allclose(network.predict_ab(lightness_batch), got, atol=1e-6)


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 20, 1), (31, 31, 4), (480, 640, 3), (1, 1, 3)])
def test_serving_signature_round_trips_any_size(exported, generator, shape):
    loaded = tf.saved_model.load(str(exported / "savedmodel"))
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    out = loaded.signatures["serving_default"](image=tf.constant(image))["colorized"].numpy()
    assert out.shape == shape[:2] + (3,) and out.dtype == np.uint8
    rgb = np.repeat(image[..., :1], 3, -1) if shape[-1] < 3 else image[..., :3]
    recipe = FullResolutionColorizer(lambda l: generator(l, training=False).numpy(), 32)
    expected = recipe.colorize(rgb)
    diff = np.abs(out.astype(int) - expected)
    assert diff.max() <= 3  # in-graph recipe == numpy recipe, to rounding
    if diff.size >= 100:  # a 1x1 image's 3 values: two off by one already make a mean of 0.67
        assert diff.mean() < 0.5


def test_lite_colorizer_runs_the_whole_recipe(exported, generator):
    photo = read_image(sample_photo_paths(1)[0])
    tflite_out = LiteColorizer(exported / "tflite" / "generator_deterministic_float32.tflite").colorize(photo)
    keras_out = FullResolutionColorizer(lambda l: generator(l, training=False).numpy(), 32).colorize(photo)
    assert np.abs(tflite_out.astype(int) - keras_out).max() <= 1


@pytest.mark.slow
def test_export_command(small_generator_file, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "exported"
    result = subprocess.run([sys.executable, str(ROOT / "export" / "export_model.py"), "--model", str(small_generator_file),
                             "--out", str(out), "--variants", "float32,int8", "--modes", "deterministic"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (out / "savedmodel" / "saved_model.pb").exists()
    assert sorted(p.name for p in (out / "tflite").glob("*")) == [  # the models, and the device's runner beside them
        "colorize_tflite.py", "generator_deterministic_float32.tflite", "generator_deterministic_int8.tflite"]
    bad = run_cli("export", "--model", tmp_path / "nope", "--out", tmp_path / "elsewhere")
    assert bad.returncode == 2 and "nope" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run_cli("export", "--variants", "int4")
    assert unknown.returncode == 2 and "int4" in unknown.stderr


def test_overwrite_replaces_an_export_never_a_folder_of_the_user_s(generator, tmp_path):
    """`export --overwrite` replaces a savedmodel/ folder that holds an export's files only: one with
    a file of the user's in it (or in variables/) is left whole."""
    from pix2color.export import savedmodel

    for extra in ("notes.txt", "variables/mine.txt", "assets/photo.jpg"):
        folder = tmp_path / extra.replace("/", "_") / "savedmodel"
        (folder / "variables").mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"an earlier export")
        (folder / extra).parent.mkdir(exist_ok=True)
        (folder / extra).write_text("mine")
        assert savedmodel.not_an_export(folder) == [extra]
        with pytest.raises(FileExistsError, match="holds what no export writes"):
            savedmodel.export_savedmodel(generator, folder, overwrite=True)
        assert (folder / extra).read_text() == "mine" and (folder / "saved_model.pb").read_bytes() == b"an earlier export"


def test_overwrite_replaces_the_runner_an_export_wrote_never_one_edited_or_the_user_s(tmp_path):
    from pix2color.export.folder import not_written_by_export
    from pix2color.export.one_file import DEVICE_RUNNER, NOT_REPLACEABLE, device_runner

    runner = tmp_path / DEVICE_RUNNER
    runner.write_bytes(device_runner())
    assert not_written_by_export(runner) == []  # as an export wrote it: --overwrite replaces it
    runner.write_bytes(device_runner().replace(b"import sys\n", b"import sys  # my change\n", 1))
    assert not_written_by_export(runner) == [NOT_REPLACEABLE]
    runner.write_text("print('mine')\n")
    assert not_written_by_export(runner) == [NOT_REPLACEABLE]


def test_the_library_export_never_replaces_a_runner_of_the_user_s(generator, tmp_path):
    """`export_tflite(..., overwrite=True)` (what notebook 02 calls) refuses before any work too."""
    from pix2color.export.one_file import DEVICE_RUNNER
    from pix2color.export.tflite import export_tflite

    (tmp_path / DEVICE_RUNNER).write_text("# my own runner\n")
    with pytest.raises(FileExistsError, match="holds what no export writes"):
        export_tflite(generator, tmp_path, ("float32",), ("deterministic",), overwrite=True)
    assert (tmp_path / DEVICE_RUNNER).read_text() == "# my own runner\n"
    assert not list(tmp_path.glob("*.tflite"))
