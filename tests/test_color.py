import numpy as np
import pytest
from conftest import sample_photo_paths
from PIL import Image
from skimage import color as skcolor

from pix2color import color


@pytest.fixture(scope="module")
def photos():
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sample_photo_paths(6)]) / 255.0


def test_rgb_to_lab_matches_skimage_on_real_photos(photos):
    ours = color.rgb_to_lab(photos).numpy()
    reference = skcolor.rgb2lab(photos, illuminant="D65", observer="2")
    assert np.abs(ours - reference).max() < 2e-3


def test_lab_to_rgb_matches_skimage_on_real_photos(photos):
    lab = skcolor.rgb2lab(photos)
    ours = color.lab_to_rgb(lab).numpy()
    reference = np.clip(skcolor.lab2rgb(lab), 0, 1)
    assert np.abs(ours - reference).max() < 1e-3
    assert np.abs(ours - photos).max() < 1e-3  # and the round trip restores the photos


def test_normalisation_ranges_and_inverse(photos):
    lightness, ab = color.rgb_to_model_inputs(photos)
    assert lightness.shape == photos.shape[:-1] + (1,) and ab.shape == photos.shape[:-1] + (2,)
    assert -1.0 <= lightness.numpy().min() and lightness.numpy().max() <= 1.0
    assert np.abs(ab.numpy()).max() <= 1.0
    lab = color.rgb_to_lab(photos).numpy()
    np.testing.assert_allclose(lightness.numpy()[..., 0], lab[..., 0] / 50 - 1, atol=1e-5)
    np.testing.assert_allclose(ab.numpy(), lab[..., 1:] / 110, atol=1e-6)
    np.testing.assert_allclose(color.denormalize_lab(lightness, ab).numpy(), lab, atol=1e-4)
    np.testing.assert_allclose(color.model_outputs_to_rgb(lightness, ab).numpy(), photos, atol=1e-3)


def test_lab_to_rgb_never_nan_or_out_of_range():
    grid = np.linspace(-1.5, 1.5, 31, dtype=np.float32)
    lightness, a, b = np.meshgrid(grid, grid, grid, indexing="ij")
    rgb = color.model_outputs_to_rgb(lightness[..., None], np.stack([a, b], -1)).numpy()
    assert np.isfinite(rgb).all()
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    # a, b beyond the normalisation range are clipped to it, and L to [0, 100].
    beyond = color.lab_to_rgb([[50.0, 300.0, -250.0], [120.0, 0.0, 0.0]]).numpy()
    edge = color.lab_to_rgb([[50.0, 110.0, -110.0], [100.0, 0.0, 0.0]]).numpy()
    np.testing.assert_allclose(beyond, edge, atol=1e-6)


def test_mean_chroma_separates_gray_from_colour(photos):
    gray = np.repeat(photos.mean(-1, keepdims=True), 3, axis=-1)
    assert np.all(color.mean_chroma(gray).numpy() < 0.5)
    assert np.all(color.mean_chroma(photos).numpy() > 3.0)


def test_import_does_not_leak_tfio_warnings():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import pix2color.color"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "libtensorflow_io" not in result.stderr and "file system plugins" not in result.stderr


def test_clear_error_when_tfio_cannot_be_imported(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name.startswith("tensorflow_io"):
            raise ImportError("simulated: no module named tensorflow_io")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(ImportError, match="pip install 'tensorflow-io"):
        color._import_tfio_color()
