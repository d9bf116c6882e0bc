"""The TensorFlow-free side: photo reading and the numpy Lab conversion."""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import on_a_full_disk, sample_photo_paths
from pix2color import color, lite


def test_numpy_lab_matches_the_training_conversion():
    photos = np.stack([lite.read_image(p) for p in sample_photo_paths(4)]) / 255.0
    np.testing.assert_allclose(lite.rgb_to_lab(photos), color.rgb_to_lab(photos).numpy(), atol=3e-4)
    rng = np.random.default_rng(0)
    lab = rng.uniform([-10, -200, -200], [120, 200, 200], (20000, 3)).astype(np.float32)
    np.testing.assert_allclose(lite.lab_to_rgb(lab), color.lab_to_rgb(lab).numpy(), atol=1e-5)


def test_read_image_applies_exif_orientation(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = lite.read_image(tmp_path / "rotated.jpg")
    assert upright.shape == (40, 20, 3)
    assert upright[:20, :, 0].mean() > 200 and upright[20:, :, 0].mean() < 50  # red now on top


def test_read_image_modes(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = rgba[..., 3] = 255
    rgba[:, :4, 3] = 0  # left half transparent -> white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = lite.read_image(tmp_path / "a.png")
    assert out.shape == (8, 8, 3) and (out[:, :4] == 255).all() and (out[:, 4:] == (255, 0, 0)).all()
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(deep).save(tmp_path / "g16.png")
    gray = lite.read_image(tmp_path / "g16.png")
    assert gray.shape == (8, 8, 3) and gray[..., 0].max() == round(63000 / 257) and (gray[..., 0] == gray[..., 2]).all()


@pytest.mark.parametrize("kind", ["text", "corrupt", "huge", "missing"])
def test_read_image_errors_name_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "text":
        path.write_text("hello")
    elif kind == "corrupt":
        path.write_bytes(open(sample_photo_paths(1)[0], "rb").read()[:300])
    elif kind == "huge":
        Image.new("RGB", (200, 100)).save(path)
    with pytest.raises(lite.ImageError, match=str(path)) as raised:
        lite.read_image(path, max_pixels=10_000)
    if kind == "huge":
        assert "200x100 is 20,000 pixels, more than the limit of 10,000" in str(raised.value)


def test_read_image_refuses_what_is_not_a_regular_file_without_opening_it(tmp_path):
    """A FIFO would block its reader forever (until something writes into it), a device might
    never end: they are refused from what `stat` says, in one line naming them."""
    import socket
    import threading

    os.mkfifo(tmp_path / "fifo.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "socket.jpg"))
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "gone.jpg")
    (tmp_path / "folder.jpg").mkdir()
    cases = {"fifo.jpg": "not a regular file (a FIFO)", "socket.jpg": "not a regular file (a socket)",
             "broken.jpg": "a broken symlink", "folder.jpg": "is a folder"}
    for name, reason in [*cases.items(), ("/dev/null", "not a regular file (a device)")]:
        path = tmp_path / name
        answer = []
        reader = threading.Thread(target=lambda: answer.append(refusal(path)), daemon=True)
        reader.start()
        reader.join(10)
        if reader.is_alive():  # blocked in open(): let it go, then fail
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(10)
            pytest.fail(f"{path}: reading it blocked")
        assert answer[0].startswith(f"{path}: {reason}") and "\n" not in answer[0], answer
    server.close()


def refusal(path):
    with pytest.raises(lite.ImageError) as raised:
        lite.read_image(path)
    return str(raised.value)


def test_lite_module_imports_no_tensorflow():
    code = "import sys, pix2color.lite; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_recipe_keeps_size_and_full_resolution_lightness():
    """The network sees S x S, the output keeps the photo's size and its own L exactly."""
    seen = []

    def network(lightness):
        seen.append(lightness.shape)
        return np.zeros(lightness.shape[:3] + (2,), np.float32)  # gray: output L must equal input L

    recipe = lite.FullResolutionColorizer(network, 32)
    photo = lite.read_image(sample_photo_paths(1)[0])
    big = np.asarray(Image.fromarray(photo).resize((301, 157)))
    outputs = recipe.colorize_batch([big, photo])
    assert seen == [(2, 32, 32, 1)]
    assert outputs[0].shape == (157, 301, 3) and outputs[1].shape == photo.shape
    np.testing.assert_allclose(
        lite.rgb_to_lab(outputs[0] / 255.0)[..., 0], lite.rgb_to_lab(big / 255.0)[..., 0], atol=0.6
    )


def whole_image_recipe(rgb: np.ndarray, predict_ab, size: int) -> np.ndarray:
    """The full-resolution recipe on whole-image float planes, with the public Lab formulas."""
    lightness = lite.rgb_to_lab(rgb / 255.0)[..., 0]
    small = np.asarray(Image.fromarray(lightness, "F").resize((size, size), Image.Resampling.BOX)) / 50.0 - 1.0
    ab = predict_ab(small[None, ..., None].astype(np.float32))[0] * 110.0
    height, width = lightness.shape
    a, b = (np.asarray(Image.fromarray(np.ascontiguousarray(ab[..., k]), "F").resize(
        (width, height), Image.Resampling.BILINEAR)) for k in range(2))
    return np.round(lite.lab_to_rgb(np.stack([lightness, a, b], -1)) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("band_pixels", [1, 100, 1000, 1 << 40])  # a pixel, part of a row, a few rows, the whole image
def test_the_recipe_in_bands_gives_the_whole_image_recipe_s_pixels(monkeypatch, band_pixels):
    """The full-resolution half works on tiles (its memory stays bounded): the pixels are
    the whole-image recipe's, within one level of 255, whatever the band."""
    monkeypatch.setattr(lite, "BAND_PIXELS", band_pixels)
    rng = np.random.default_rng(5)

    def network(lightness):  # colours that vary across the image, from its lightness
        return np.tanh(np.concatenate([lightness * 1.7, rng.uniform(-1, 1, lightness.shape)], -1)).astype(np.float32)

    photo = lite.read_image(sample_photo_paths(1)[0])
    for size in [(301, 157), (37, 403)]:
        rgb = np.asarray(Image.fromarray(photo).resize(size))
        state = rng.bit_generator.state
        banded = lite.FullResolutionColorizer(network, 32).colorize(rgb)
        rng.bit_generator.state = state  # the same "prediction" for the reference
        reference = whole_image_recipe(rgb, network, 32)
        assert banded.shape == reference.shape == (size[1], size[0], 3)
        assert np.abs(banded.astype(int) - reference).max() <= 1


def test_a_panorama_s_long_row_is_worked_on_in_tiles(monkeypatch):
    """A row longer than a band (a 49-megapixel PNG can be one row) is cut into tiles too: the
    float planes of the whole row never exist at once."""
    import tracemalloc

    monkeypatch.setattr(lite, "BAND_PIXELS", 10_000)
    width = 400_000
    lightness = np.linspace(0, 100, width, dtype=np.float32)[None]  # (1, W)
    ab = np.full((4, 4, 2), 0.3, np.float32)
    tracemalloc.start()
    rgb = lite.FullResolutionColorizer.finish(lightness, ab)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rgb.shape == (1, width, 3)
    assert peak < rgb.nbytes + 2_000_000, peak  # the output, and a tile's planes (a whole row's: ~16 MB)


# --------------------------------------------------------------------------- outputs: nothing a user owns is lost


def test_write_output_never_replaces_unasked_and_leaves_nothing_when_it_fails(tmp_path):
    def fails(handle):
        handle.write(b"half a file")
        raise OSError("disk full")

    existing = tmp_path / "existing.png"
    existing.write_bytes(b"mine")
    with pytest.raises(lite.OutputExists):
        lite.write_output(existing, lambda handle: handle.write(b"new"))
    assert existing.read_bytes() == b"mine"
    for overwrite in (False, True):
        with pytest.raises(OSError, match="disk full"):
            lite.write_output(tmp_path / "new.png", fails, overwrite)
        with pytest.raises(OSError, match="disk full"):
            lite.write_output(existing, fails, overwrite=True)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.png"] and existing.read_bytes() == b"mine"
    finished = lite.reserve_temporary(tmp_path / "video.mp4")  # a file finished after `existing` appeared
    with pytest.raises(lite.OutputExists):
        lite.move_into_place(finished, existing)
    assert not finished.exists() and existing.read_bytes() == b"mine"
    link = tmp_path / "link.png"
    link.symlink_to(existing)
    lite.write_output(link, lambda handle: handle.write(b"new"), overwrite=True)
    assert not link.is_symlink() and link.read_bytes() == b"new" and existing.read_bytes() == b"mine"


@pytest.mark.parametrize("silent", [False, True], ids=["enospc", "short-write"])
@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_a_full_disk_fails_the_write_and_leaves_no_file(tmp_path, monkeypatch, image_format, silent):
    """Pillow's JPEG encoder writes straight to a file's descriptor and may not notice a full disk:
    the image is encoded in memory, and its bytes written and counted by Python's file API."""
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    on_a_full_disk(monkeypatch, silent)
    for overwrite in (False, True):
        with pytest.raises(OSError) as raised:
            lite.write_output(tmp_path / "x.img", lambda handle: Image.fromarray(pixels).save(handle, image_format),
                              overwrite)
        assert raised.value.errno == errno.ENOSPC, raised.value
        assert list(tmp_path.iterdir()) == []


def lite_alone(folder, *args):
    """lite.py copied on its own into `folder` and run from there."""
    return subprocess.run([sys.executable, "lite.py", *map(str, args)], cwd=folder, capture_output=True, text=True,
                          timeout=300)


def test_lite_copied_alone_follows_the_output_rules(exported, tmp_path):
    """The rules of `pix2color colorize`: an input is never written (NAME_colorized.png), two
    inputs never share an output (NAME-2.png), an existing output is skipped unless --overwrite."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(Path(lite.__file__), alone / "lite.py")
    model = exported / "tflite" / "generator_deterministic_float32.tflite"
    photos = tmp_path / "photos"
    for name, source in zip(["x.png", "y.jpg", "a/z.jpg", "b/z.jpg"], sample_photo_paths(4)):
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(source).convert("RGB").resize((40, 30)).save(photos / name)
    originals = {name: (photos / name).read_bytes() for name in ["x.png", "y.jpg", "a/z.jpg", "b/z.jpg"]}
    arguments = [model, *(photos / name for name in originals), "-o", photos]
    outputs = ["x_colorized.png", "y.png", "z.png", "z-2.png"]

    first = lite_alone(alone, *arguments)
    assert first.returncode == 0 and "4 colorized" in first.stdout, first.stderr
    assert all(Image.open(photos / name).size == (40, 30) for name in outputs)
    assert f"{photos / 'x.png'} is one of the inputs" in first.stderr
    assert f"{photos / 'b/z.jpg'} -> {photos / 'z-2.png'} ({photos / 'z.png'} is {photos / 'a/z.jpg'}'s output)" in first.stderr
    written = {name: (photos / name).read_bytes() for name in outputs}
    (photos / "z.png").write_bytes(b"changed by hand")

    again = lite_alone(alone, *arguments)
    assert again.returncode == 0 and "0 colorized, 4 skipped" in again.stdout, again.stderr
    assert len([line for line in again.stderr.splitlines() if "--overwrite replaces it" in line]) == 4
    assert (photos / "z.png").read_bytes() == b"changed by hand"

    replaced = lite_alone(alone, *arguments, "--overwrite")
    assert replaced.returncode == 0 and "4 colorized" in replaced.stdout, replaced.stderr
    assert {name: (photos / name).read_bytes() for name in originals} == originals
    assert {name: (photos / name).read_bytes() for name in outputs} == written  # the same colours again

    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "x.png").symlink_to(photos / "x.png")
    through_link = lite_alone(alone, model, photos / "x.png", "-o", linked, "--overwrite")
    assert through_link.returncode == 0 and (linked / "x.png").is_symlink(), through_link.stderr
    assert (photos / "x.png").read_bytes() == originals["x.png"] and (linked / "x_colorized.png").exists()


def test_lite_colorizes_an_input_named_twice_once(exported, tmp_path, capsys):
    photo = tmp_path / "x.png"
    Image.open(sample_photo_paths(1)[0]).resize((40, 30)).save(photo)
    (tmp_path / "link.png").symlink_to(photo)
    model = exported / "tflite" / "generator_deterministic_float32.tflite"
    status = lite.main([str(model), str(photo), str(tmp_path / "." / "x.png"), str(tmp_path / "link.png"),
                        "-o", str(tmp_path / "out")])
    assert status == 0 and "1 colorized" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.png"]


def test_a_successful_run_says_nothing_on_stderr(exported, tmp_path, capfd):
    """LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every model load is
    dropped; anything else written to stderr while the model loads is passed on."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(Path(lite.__file__), alone / "lite.py")
    photo = tmp_path / "x.png"
    Image.open(sample_photo_paths(1)[0]).resize((40, 30)).save(photo)
    result = lite_alone(alone, exported / "tflite" / "generator_deterministic_float32.tflite", photo, "-o",
                        tmp_path / "out")
    assert result.returncode == 0 and result.stderr == "" and "1 colorized" in result.stdout, result.stderr
    with lite._without_delegate_notice():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nsomething else\n")
    assert capfd.readouterr().err == "something else\n"


def a_folder(tmp_path):
    (tmp_path / "folder.tflite").mkdir()
    return tmp_path / "folder.tflite"


def corrupt_model(tmp_path):
    (tmp_path / "corrupt.tflite").write_bytes(b"TFL3" + bytes(range(256)) * 4)
    return tmp_path / "corrupt.tflite"


def an_output_file(tmp_path):
    (tmp_path / "taken").write_text("")
    return tmp_path / "taken"


@pytest.mark.parametrize("model, options, named", [
    (corrupt_model, [], "corrupt.tflite"),
    (lambda tmp_path: tmp_path / "missing.tflite", [], "missing.tflite"),
    ("keras", [], "generator.keras"),
    (a_folder, [], "folder.tflite"),
    ("tflite", ["--threads", "0"], "--threads"),
    ("tflite", ["--max-pixels", "0"], "--max-pixels"),
    ("tflite", ["-o", an_output_file], "taken"),
], ids=["corrupt", "missing", "keras", "folder", "threads", "max-pixels", "out-is-a-file"])
def test_bad_model_or_option_is_one_line_and_status_2(model, options, named, exported, small_generator_file,
                                                      tmp_path, capfd):
    models = {"keras": small_generator_file, "tflite": exported / "tflite" / "generator_deterministic_float32.tflite"}
    model = models[model] if isinstance(model, str) else model(tmp_path)
    options = [option(tmp_path) if callable(option) else option for option in options]
    photo = tmp_path / "x.png"
    Image.open(sample_photo_paths(1)[0]).resize((40, 30)).save(photo)
    out = [] if "-o" in options else ["-o", tmp_path / "out"]
    status = lite.main([str(argument) for argument in [model, photo, *out, *options]])
    stderr = capfd.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and named in lines[0] and "Traceback" not in stderr, stderr
