"""`pix2color colorize` as a user runs it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import sample_photo_paths

ROOT = Path(__file__).resolve().parents[1]


def colorize(*args):
    return subprocess.run([sys.executable, "-m", "pix2color.cli", "colorize", *map(str, args), "--verbose", "0"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    photos = [Image.open(p).convert("RGB") for p in sample_photo_paths(4)]
    photos[0].resize((4000, 3000), Image.Resampling.BICUBIC).save(folder / "big.jpg", quality=90)
    photos[1].resize((120, 90)).save(folder / "small.png")
    photos[2].convert("L").save(folder / "old_gray.jpg")
    rgba = photos[3].convert("RGBA")
    rgba.putalpha(128)
    (folder / "sub").mkdir()
    rgba.save(folder / "sub" / "alpha.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def test_colorize_folder_full_resolution_and_reports_the_bad_file(photo_folder, small_generator_file, tmp_path):
    out = tmp_path / "out"
    result = colorize(photo_folder, "-o", out, "--model", small_generator_file)
    assert result.returncode == 1  # something failed
    assert "broken.jpg" in result.stderr and "4 colorized" in result.stdout and "1 failed" in result.stdout
    expected = {"big.jpg": (4000, 3000), "small.png": (120, 90), "old_gray.jpg": None, "sub/alpha.png": None}
    for name, size in expected.items():
        produced = Image.open(out / name)
        original = Image.open(photo_folder / name)
        assert produced.size == (size or original.size) and produced.mode == "RGB", name
    assert not (out / "broken.jpg").exists()
    # Colour comes from the network; lightness is the original's, at full resolution.
    gray_in = np.asarray(Image.open(photo_folder / "old_gray.jpg"), np.float32)
    gray_out = np.asarray(Image.open(out / "old_gray.jpg").convert("L"), np.float32)
    assert np.abs(gray_in - gray_out).mean() < 4


def test_colorize_single_file_from_savedmodel_with_comparison(photo_folder, exported, tmp_path):
    out = tmp_path / "out"
    result = colorize(photo_folder / "small.png", "-o", out, "--model", exported / "savedmodel", "--compare",
                      "--format", "jpg", "--mode", "paper")
    assert result.returncode == 0, result.stderr
    assert Image.open(out / "small.jpg").size == (120, 90)
    assert Image.open(out / "small_compare.jpg").size == (360, 90)  # gray | colorized | input


def test_colorize_from_a_run_folder_and_pixel_limit(photo_folder, tmp_path):
    run = tmp_path / "run"
    train = subprocess.run([sys.executable, "train.py", "--data", "sample", "--image-size", "32", "--epochs", "1",
                            "--steps-per-epoch", "1", "--out", str(run), "--verbose", "0"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr
    out = tmp_path / "out"
    result = colorize(photo_folder / "big.jpg", photo_folder / "small.png", "-o", out, "--model", run,
                      "--max-pixels", "1000000")
    assert result.returncode == 1
    assert "big.jpg: 4000x3000 is 12.0 megapixels" in result.stderr
    assert (out / "small.png").exists() and not (out / "big.jpg").exists()


def test_colorize_without_inputs_or_model_is_a_clear_error(tmp_path):
    missing = colorize(tmp_path / "nothing_here", "-o", tmp_path / "out", "--model", tmp_path)
    assert missing.returncode == 2 and "no input photos or videos" in missing.stderr and "Traceback" not in missing.stderr
    photo = tmp_path / "p.jpg"
    Image.open(sample_photo_paths(1)[0]).save(photo)
    bad_model = colorize(photo, "-o", tmp_path / "out", "--model", tmp_path / "no_model")
    assert bad_model.returncode == 2 and "no_model" in bad_model.stderr and "Traceback" not in bad_model.stderr


def link_installed_distributions(names: list[str], site_packages: Path) -> list[str]:
    """Make the installed distributions `names` and everything they need at run time (extras
    left out) importable from another environment, by linking their files into
    `site_packages`: the packages already on this machine, no index needed. Returns the
    distributions linked."""
    from importlib import metadata

    from packaging.requirements import Requirement

    linked, todo = [], list(names)
    while todo:
        name = todo.pop()
        distribution = metadata.distribution(name)
        canonical = distribution.metadata["Name"].lower().replace("_", "-")
        if canonical in linked:
            continue
        linked.append(canonical)
        for requirement in map(Requirement, distribution.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
        tops = {Path(str(file)).parts[0] for file in distribution.files}
        for top in tops - {"..", "__pycache__"}:
            source = Path(distribution.locate_file(top))
            target = site_packages / top
            if source.exists() and not target.exists():
                target.symlink_to(source)
    return linked


def test_tflite_script_in_an_environment_without_tensorflow(exported, photo_folder, tmp_path):
    """export/colorize_tflite.py where only ai-edge-litert, numpy and pillow (and what they need)
    are installed: a virtualenv given the copies already on this machine, so no network."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    linked = link_installed_distributions(["ai-edge-litert", "numpy", "pillow"], site_packages)
    assert "tensorflow" not in " ".join(linked) and "keras" not in linked, linked
    assert subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True).returncode != 0
    out = tmp_path / "out"
    for variant in ("float32", "int8"):
        result = subprocess.run(
            [str(python), str(ROOT / "export" / "colorize_tflite.py"),
             str(exported / "tflite" / f"generator_deterministic_{variant}.tflite"),
             str(photo_folder / "small.png"), str(photo_folder / "broken.jpg"), "-o", str(out / variant)],
            capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 1 and "broken.jpg" in result.stderr, result.stderr
        assert Image.open(out / variant / "small.png").size == (120, 90)
