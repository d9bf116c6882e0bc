"""The TensorFlow-free side: photo reading and the numpy Lab conversion."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import sample_photo_paths
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
        assert "200x100" in str(raised.value)


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
