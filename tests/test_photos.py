"""Photos without TensorFlow: reading them, the NumPy Lab conversion and the full-resolution recipe."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import sample_photo_paths
from PIL import Image

from pix2color import color, photos
from pix2color.colorizing import recipe
from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.photos import ImageError, read_image


def test_numpy_lab_matches_the_training_conversion():
    rgb = np.stack([photos.read_image(p) for p in sample_photo_paths(4)]) / 255.0
    np.testing.assert_allclose(recipe.rgb_to_lab(rgb), color.rgb_to_lab(rgb).numpy(), atol=3e-4)
    rng = np.random.default_rng(0)
    lab = rng.uniform([-10, -200, -200], [120, 200, 200], (20000, 3)).astype(np.float32)
    np.testing.assert_allclose(recipe.lab_to_rgb(lab), color.lab_to_rgb(lab).numpy(), atol=1e-5)


def test_read_image_applies_exif_orientation(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = photos.read_image(tmp_path / "rotated.jpg")
    assert upright.shape == (40, 20, 3)
    assert upright[:20, :, 0].mean() > 200 and upright[20:, :, 0].mean() < 50  # red now on top


def test_read_image_modes(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = rgba[..., 3] = 255
    rgba[:, :4, 3] = 0  # left half transparent -> white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = photos.read_image(tmp_path / "a.png")
    assert out.shape == (8, 8, 3) and (out[:, :4] == 255).all() and (out[:, 4:] == (255, 0, 0)).all()
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(deep).save(tmp_path / "g16.png")
    gray = photos.read_image(tmp_path / "g16.png")
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
    with pytest.raises(photos.ImageError, match=str(path)) as raised:
        photos.read_image(path, max_pixels=10_000)
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
    with pytest.raises(photos.ImageError) as raised:
        photos.read_image(path)
    return str(raised.value)


def test_photos_module_imports_no_tensorflow():
    code = "import sys, pix2color.photos; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_recipe_keeps_size_and_full_resolution_lightness():
    """The network sees S x S, the output keeps the photo's size and its own L exactly."""
    seen = []

    def network(lightness):
        seen.append(lightness.shape)
        return np.zeros(lightness.shape[:3] + (2,), np.float32)  # gray: output L must equal input L

    colorizer = recipe.FullResolutionColorizer(network, 32)
    photo = photos.read_image(sample_photo_paths(1)[0])
    big = np.asarray(Image.fromarray(photo).resize((301, 157)))
    outputs = colorizer.colorize_batch([big, photo])
    assert seen == [(2, 32, 32, 1)]
    assert outputs[0].shape == (157, 301, 3) and outputs[1].shape == photo.shape
    np.testing.assert_allclose(
        recipe.rgb_to_lab(outputs[0] / 255.0)[..., 0], recipe.rgb_to_lab(big / 255.0)[..., 0], atol=0.6
    )


def whole_image_recipe(rgb: np.ndarray, predict_ab, size: int) -> np.ndarray:
    """The full-resolution recipe on whole-image float planes, with the public Lab formulas."""
    lightness = recipe.rgb_to_lab(rgb / 255.0)[..., 0]
    small = np.asarray(Image.fromarray(lightness, "F").resize((size, size), Image.Resampling.BOX)) / 50.0 - 1.0
    ab = predict_ab(small[None, ..., None].astype(np.float32))[0] * 110.0
    height, width = lightness.shape
    a, b = (np.asarray(Image.fromarray(np.ascontiguousarray(ab[..., k]), "F").resize(
        (width, height), Image.Resampling.BILINEAR)) for k in range(2))
    return np.round(recipe.lab_to_rgb(np.stack([lightness, a, b], -1)) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("band_pixels", [pytest.param(1, marks=pytest.mark.slow), 100, 1000, 1 << 40])  # a pixel, part of a row, a few rows, the whole image
def test_the_recipe_in_bands_gives_the_whole_image_recipe_s_pixels(monkeypatch, band_pixels):
    """The full-resolution half works on tiles (its memory stays bounded): the pixels are
    the whole-image recipe's, within one level of 255, whatever the band."""
    monkeypatch.setattr(recipe, "BAND_PIXELS", band_pixels)
    rng = np.random.default_rng(5)

    def network(lightness):  # colours that vary across the image, from its lightness
        return np.tanh(np.concatenate([lightness * 1.7, rng.uniform(-1, 1, lightness.shape)], -1)).astype(np.float32)

    photo = photos.read_image(sample_photo_paths(1)[0])
    for size in [(301, 157), (37, 403)]:
        rgb = np.asarray(Image.fromarray(photo).resize(size))
        state = rng.bit_generator.state
        banded = recipe.FullResolutionColorizer(network, 32).colorize(rgb)
        rng.bit_generator.state = state  # the same "prediction" for the reference
        reference = whole_image_recipe(rgb, network, 32)
        assert banded.shape == reference.shape == (size[1], size[0], 3)
        assert np.abs(banded.astype(int) - reference).max() <= 1


def test_a_panorama_s_long_row_is_worked_on_in_tiles(monkeypatch):
    """A row longer than a band (a 49-megapixel PNG can be one row) is cut into tiles too: the
    float planes of the whole row never exist at once."""
    import tracemalloc

    monkeypatch.setattr(recipe, "BAND_PIXELS", 10_000)
    width = 400_000
    lightness = np.linspace(0, 100, width, dtype=np.float32)[None]  # (1, W)
    ab = np.full((4, 4, 2), 0.3, np.float32)
    tracemalloc.start()
    rgb = recipe.FullResolutionColorizer.finish(lightness, ab)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rgb.shape == (1, width, 3)
    assert peak < rgb.nbytes + 2_000_000, peak  # the output, and a tile's planes (a whole row's: ~16 MB)


@pytest.mark.parametrize("made", ["PIL L", "PIL P", "array HxW", "array HxWx1", "float 0..1", "RGBA", "uint16"])
def test_the_recipe_takes_what_a_program_passes(made):
    """docs/export.md's example passes what Pillow and NumPy give: every such photo is colorized at
    its size, with the lightness of the 8-bit RGB it stands for."""
    from pix2color.photos import as_8bit_rgb

    rgb = np.asarray(Image.open(sample_photo_paths(1)[0]).convert("RGB").resize((40, 30)))
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    given, expected = {
        "PIL L": (Image.fromarray(gray), np.dstack([gray] * 3)),
        "PIL P": (Image.fromarray(rgb).convert("P"), np.asarray(Image.fromarray(rgb).convert("P").convert("RGB"))),
        "array HxW": (gray, np.dstack([gray] * 3)),
        "array HxWx1": (gray[..., None], np.dstack([gray] * 3)),
        "float 0..1": (rgb / 255.0, rgb),
        "RGBA": (np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), rgb),
        "uint16": (rgb.astype(np.uint16) * 257, rgb),
    }[made]
    np.testing.assert_array_equal(as_8bit_rgb(given), expected)
    colorizer = FullResolutionColorizer(lambda lightness: np.zeros(lightness.shape[:3] + (2,), np.float32), 32)
    assert colorizer.colorize(given).shape == (30, 40, 3)


def test_the_recipe_refuses_what_is_no_photo_in_one_line():
    from pix2color.photos import as_8bit_rgb

    for given in (np.zeros((3, 4, 5)), np.zeros(7), np.array([["a"]])):
        with pytest.raises(ValueError, match=r"^expected a photo: .* \(got an array of"):
            as_8bit_rgb(given)


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty.jpg: an empty file \(0 bytes\)$"):
        read_image(tmp_path / "empty.jpg")


@pytest.mark.parametrize("scale", [1.0, 255.0, 65535.0])
def test_a_float_tiff_is_read_in_its_range(tmp_path, scale):
    """A one-channel float TIFF in 0..1 (the convention), 0..255 or 0..65535 reads as its gray,
    not as a black image."""
    gray = np.linspace(0.0, 1.0, 20 * 30, dtype=np.float32).reshape(20, 30)
    Image.fromarray(gray * scale, "F").save(tmp_path / "scan.tif")
    read = read_image(tmp_path / "scan.tif")
    assert read.shape == (20, 30, 3) and abs(read[..., 0].astype(float).mean() - 127.5) < 1


def test_a_photo_read_from_memory_is_named_by_what_it_is():
    """A binary file object (an upload) without a name: read, and an error names the object."""
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buffer, "PNG")
    assert read_image(io.BytesIO(buffer.getvalue())).shape == (6, 8, 3)
    with pytest.raises(ImageError, match="BytesIO"):
        read_image(io.BytesIO(b"not an image"))


def test_an_srgb_profile_is_told_by_what_it_does():
    """A profile that maps colours as sRGB does leaves a photo's pixels as they are (most phone
    photos carry one: no transform of the whole photo); Adobe RGB, CMYK and gray ones do not."""
    from pathlib import Path

    from PIL import ImageCms

    from pix2color.photos import is_srgb_profile

    icc = Path("/usr/share/color/icc")
    assert is_srgb_profile(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert is_srgb_profile((icc / "sRGB.icc").read_bytes())
    for other in ("compatibleWithAdobeRGB1998.icc", "ghostscript/default_cmyk.icc", "Gray.icc"):
        assert not is_srgb_profile((icc / other).read_bytes()), other
    assert not is_srgb_profile(b"not a profile")
