"""`pix2color colorize` as a user runs it."""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, on_a_full_disk, sample_photo_paths
from helpers import colorize, file_hashes, one_line
from PIL import Image


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
        assert produced.size == (size or original.size), name
        assert produced.mode == ("RGBA" if name == "sub/alpha.png" else "RGB"), name  # transparency kept in PNG
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


@pytest.mark.slow
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


@pytest.mark.slow  # several commands in their own processes (test_bad_inputs has the fast ones)
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
    """The device's runner where only ai-edge-litert, numpy and pillow (and what they need) are
    installed: a virtualenv given the copies already on this machine, so no network. The one
    `export` writes beside the .tflite files runs alone, copied to a folder of its own with them."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    linked = link_installed_distributions(["ai-edge-litert", "numpy", "pillow"], site_packages)
    assert "tensorflow" not in " ".join(linked) and "keras" not in linked, linked
    assert subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True).returncode != 0
    out = tmp_path / "out"
    device = tmp_path / "device"  # nothing of pix2color but what export wrote
    shutil.copytree(exported / "tflite", device)
    script = device / "colorize_tflite.py"
    for variant in ("float32", "int8"):
        result = subprocess.run(
            [str(python), str(script), str(device / f"generator_deterministic_{variant}.tflite"),
             str(photo_folder / "small.png"), str(photo_folder / "broken.jpg"), "-o", str(out / variant)],
            capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 1 and "broken.jpg" in result.stderr, result.stderr
        assert Image.open(out / variant / "small.png").size == (120, 90)


# --------------------------------------------------------------------------- nothing a user owns is lost


def colorize_here(capsys, *args):
    """`pix2color colorize ARGS` in this process: (exit status, stdout, stderr)."""
    from pix2color.cli.colorize import main

    try:
        status = main([*map(str, args), "--verbose", "0"])
    except SystemExit as refused:  # argparse's refusal of a flag's value
        status = refused.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def small_photos(folder, names):
    """A 48x36 photo for each name below `folder` (its suffix picks the format)."""
    for name, source in zip(names, sample_photo_paths(len(names))):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(source).convert("RGB").resize((48, 36)).save(folder / name)
    return folder


def test_colorizing_a_folder_into_itself_never_touches_an_input(small_generator_file, tmp_path, capsys):
    """-o the input folder: each output that would be an input is NAME_colorized.EXT. A second run
    leaves the first run's outputs out of its inputs (NAME_colorized.EXT beside NAME.*) and skips
    the inputs whose outputs exist; a third, with --overwrite, replaces those outputs and nothing
    else: never an input, never NAME_colorized_colorized."""
    album = small_photos(tmp_path / "album", ["a.jpg", "sub/b.png"])
    originals = file_hashes(album)
    outputs = {"a_colorized.jpg", "sub/b_colorized.png"}
    for run, extra in enumerate(([], [], ["--overwrite"])):
        before = file_hashes(album)
        status, out, err = colorize_here(capsys, album, "-o", album, "--model", small_generator_file, *extra)
        now = file_hashes(album)
        assert status == 0 and "0 failed" in out, err
        assert {name: now[name] for name in originals} == originals  # every input: the same bytes
        assert set(now) == set(originals) | outputs  # no NAME_colorized_colorized, no NAME_colorized-2
        if run == 1:
            assert "0 colorized" in out and "2 skipped" in out and now == before, out
        else:
            assert "2 colorized" in out, out
            notes = [line for line in err.splitlines() if line.startswith("note:")]
            a, renamed = album / "a.jpg", album / "a_colorized.jpg"
            assert len(notes) == 2 and f"note: {a} -> {renamed} ({a} is one of the inputs)" in notes


def test_an_input_file_and_links_to_inputs_are_never_written_through(small_generator_file, tmp_path, capsys):
    inputs = small_photos(tmp_path / "in", ["x.jpg", "y.png"])
    before = file_hashes(inputs)
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.jpg").symlink_to(inputs / "x.jpg")  # an output name that is an input through a symlink
    os.link(inputs / "y.png", out / "y.png")  # ... and through a hard link
    for extra in ([], ["--overwrite"]):
        status, stdout, stderr = colorize_here(capsys, inputs / "x.jpg", inputs / "y.png", "-o", out, "--model",
                                               small_generator_file, *extra)
        assert status == 0 and "2 colorized" in stdout, stderr
        assert file_hashes(inputs) == before and os.readlink(out / "x.jpg") == str(inputs / "x.jpg")
        assert Image.open(out / "x_colorized.jpg").size == Image.open(out / "y_colorized.png").size == (48, 36)
        assert f"note: {inputs / 'y.png'} -> {out / 'y_colorized.png'} ({out / 'y.png'} is one of the inputs)" in stderr
    # A file named on its own, -o its folder.
    status, stdout, stderr = colorize_here(capsys, inputs / "x.jpg", "-o", inputs, "--model", small_generator_file)
    assert status == 0 and "1 colorized" in stdout, stderr
    assert {name: file_hashes(inputs)[name] for name in before} == before and (inputs / "x_colorized.jpg").exists()


def test_existing_outputs_and_comparisons_are_skipped_unless_overwrite(small_generator_file, tmp_path, capsys):
    inputs = small_photos(tmp_path / "in", ["x.jpg", "y.jpg"])
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(b"a file the symlink points to")
    (out / "x.jpg").symlink_to(elsewhere)
    (out / "y_compare.jpg").write_bytes(b"mine")
    arguments = [inputs, "-o", out, "--model", small_generator_file, "--compare"]

    status, stdout, stderr = colorize_here(capsys, *arguments)
    assert status == 0, stderr
    assert "1 colorized" in stdout and "1 skipped (their outputs exist; --overwrite replaces them), 0 failed" in stdout
    skipped = [line for line in stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2 and all("--overwrite replaces it" in line for line in skipped)
    assert str(out / "x.jpg") in skipped[0] and str(out / "y_compare.jpg") in skipped[1]
    assert (out / "x.jpg").is_symlink() and (out / "y_compare.jpg").read_bytes() == b"mine"
    assert not (out / "x_compare.jpg").exists() and Image.open(out / "y.jpg").size == (48, 36)

    status, stdout, stderr = colorize_here(capsys, *arguments)  # everything there: nothing to do, nothing failed
    assert status == 0 and "0 colorized" in stdout and "2 skipped" in stdout, stderr

    status, stdout, stderr = colorize_here(capsys, *arguments, "--overwrite")
    assert status == 0 and "2 colorized" in stdout and "skipped:" not in stderr, stderr
    assert not (out / "x.jpg").is_symlink() and elsewhere.read_bytes() == b"a file the symlink points to"
    assert Image.open(out / "x.jpg").size == (48, 36) and Image.open(out / "y_compare.jpg").size == (144, 36)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_inputs_with_the_same_name_get_their_own_outputs(small_generator_file, tmp_path, capsys):
    inputs = small_photos(tmp_path / "in", ["a/x.jpg", "b/x.jpg", "c/x.bmp", "c/x.gif"])
    model = ["--model", small_generator_file]

    status, stdout, stderr = colorize_here(capsys, inputs / "a/x.jpg", inputs / "b/x.jpg", "-o", tmp_path / "files",
                                           *model)
    assert status == 0 and "2 colorized" in stdout, stderr
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["x-2.jpg", "x.jpg"]
    assert (f"note: {inputs / 'b/x.jpg'} -> {tmp_path / 'files/x-2.jpg'} "
            f"({tmp_path / 'files/x.jpg'} is {inputs / 'a/x.jpg'}'s output)") in stderr

    status, stdout, stderr = colorize_here(capsys, f"{inputs}/*/x.jpg", "-o", tmp_path / "glob", *model)
    assert status == 0 and "2 colorized" in stdout and "note:" not in stderr, stderr
    assert file_hashes(tmp_path / "glob").keys() == {"a/x.jpg", "b/x.jpg"}  # the folders below the glob's literal part

    status, stdout, stderr = colorize_here(capsys, inputs / "c", "-o", tmp_path / "same", "--format", "same", *model)
    assert status == 0 and "2 colorized" in stdout, stderr
    assert file_hashes(tmp_path / "same").keys() == {"x.png", "x-2.png"}


@pytest.mark.parametrize("silent", [False, True], ids=["enospc", "short-write"])
def test_a_full_disk_fails_the_photo_and_leaves_no_file(small_generator_file, tmp_path, capsys, monkeypatch, silent):
    photo = small_photos(tmp_path / "in", ["x.jpg"]) / "x.jpg"
    out = tmp_path / "out"
    on_a_full_disk(monkeypatch, silent)
    status, stdout, stderr = colorize_here(capsys, photo, "-o", out, "--model", small_generator_file, "--compare")
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert status == 1 and "0 colorized" in stdout and "1 failed" in stdout, stdout + stderr
    assert errors == [errors[0]] and f"could not write {out / 'x.jpg'}" in errors[0], stderr
    assert list(out.iterdir()) == []


def test_inputs_that_are_not_regular_files_fail_in_one_line_each(small_generator_file, tmp_path):
    """A FIFO named or found as an input would block its reader forever; it, a broken symlink and
    a symlinked folder named like a photo are failed inputs, one line each, counted."""
    photos = small_photos(tmp_path / "in", ["a.jpg"])
    os.mkfifo(photos / "fifo.jpg")
    (photos / "broken.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "album").mkdir()
    (photos / "linked.jpg").symlink_to(tmp_path / "album")
    os.mkfifo(tmp_path / "named.jpg")
    result = colorize(photos, tmp_path / "named.jpg", "-o", tmp_path / "out", "--model", small_generator_file,
                      timeout=120)
    errors = sorted(line for line in result.stderr.splitlines() if line.strip())
    assert errors == [f"error: {photos / 'broken.png'}: a broken symlink (to {tmp_path / 'gone.png'})",
                      f"error: {photos / 'fifo.jpg'}: not a regular file (a FIFO)",
                      f"error: {photos / 'linked.jpg'}: a symlink to a folder, not searched",
                      f"error: {tmp_path / 'named.jpg'}: not a regular file (a FIFO)"], result.stderr
    assert result.returncode == 1 and "1 colorized" in result.stdout and "4 failed" in result.stdout, result.stdout
    assert file_hashes(tmp_path / "out").keys() == {"a.jpg"}


def test_messages_say_what_is_wrong_in_one_line_each(small_generator_file, tmp_path, capsys):
    """No blank line without a progress bar; a tiny pixel limit in pixels, not "0.0 megapixels";
    an output name that is a folder is left as it is, --overwrite or not."""
    photos = small_photos(tmp_path / "in", ["x.jpg", "y.jpg"])
    out = tmp_path / "out"
    (out / "y.jpg").mkdir(parents=True)
    for extra in ([], ["--overwrite"]):
        status, stdout, stderr = colorize_here(capsys, photos, "-o", out, "--model", small_generator_file,
                                               "--max-pixels", "1000", *extra)
        assert status == 1 and "0 colorized" in stdout and "1 skipped" in stdout and "1 failed" in stdout, stdout
        assert stderr.splitlines() == [
            f"skipped: {out / 'y.jpg'} is a folder; left as it is (no option replaces a folder)",
            f"error: {photos / 'x.jpg'}: 48x36 is 1,728 pixels, more than the limit of 1,000; --max-pixels raises the "
            "limit"], stderr
        assert (out / "y.jpg").is_dir()


def a_file(tmp_path):
    (tmp_path / "a_file").write_text("")
    return tmp_path / "a_file"


def path_under_a_file(tmp_path):
    return a_file(tmp_path) / "out"


def read_only_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes in a read-only folder; path_under_a_file covers an unwritable -o for root")
    folder = tmp_path / "read_only"
    folder.mkdir(mode=0o500)
    return folder


@pytest.mark.parametrize("option, value, named", [
    ("--batch-size", "0", "--batch-size"), ("--batch-size", "-3", "--batch-size"),
    ("--quality", "0", "--quality"), ("--quality", "101", "--quality"),
    ("--max-pixels", "0", "--max-pixels"), ("--max-pixels", "-1", "--max-pixels"),
    ("-o", a_file, "a_file"),
    ("-o", path_under_a_file, "a_file"),
    ("-o", read_only_folder, "read_only"),
])
def test_bad_options_and_output_folders_are_one_line_and_status_2(option, value, named, small_generator_file,
                                                                   tmp_path, capsys):
    photo = small_photos(tmp_path / "in", ["x.jpg"]) / "x.jpg"
    value = value(tmp_path) if callable(value) else value
    arguments = [photo, "--model", small_generator_file, option, value]
    status, _, stderr = colorize_here(capsys, *arguments, *([] if option == "-o" else ["-o", tmp_path / "out"]))
    line = one_line(stderr)
    assert status == 2 and named in line, stderr


# --------------------------------------------------------------------------- real photos, real folders

ICC = Path("/usr/share/color/icc")  # Debian's icc-profiles-free and libgs-common (.ci/run installs them)
ADOBE_RGB, CMYK = ICC / "compatibleWithAdobeRGB1998.icc", ICC / "ghostscript" / "default_cmyk.icc"


def profiled(rgb: np.ndarray, profile: Path, mode: str):
    """`rgb` (sRGB) converted into `profile`'s colour space (a managed conversion), as an image."""
    from PIL import ImageCms

    return ImageCms.profileToProfile(Image.fromarray(rgb), ImageCms.createProfile("sRGB"),
                                     ImageCms.ImageCmsProfile(str(profile)), outputMode=mode)


def test_what_a_photo_carries_is_carried_to_its_colorization(small_generator_file, tmp_path, capsys):
    """EXIF (Orientation 1, the pixels upright), DPI, an sRGB profile when the input had one,
    transparency in PNG and WebP (said once where the format has none), a lossless WebP lossless."""
    rgb = np.asarray(Image.open(sample_photo_paths(1)[0]).convert("RGB").resize((60, 40)))
    photos = tmp_path / "scans"
    photos.mkdir()
    exif = Image.Exif()
    exif[0x0132], exif[0x0112], exif[0x010F] = "1950:06:01 10:00:00", 6, "Kodak"  # DateTime, Orientation, Make
    profiled(rgb, ADOBE_RGB, "RGB").save(photos / "scan.jpg", exif=exif.tobytes(), dpi=(600, 600),
                                         icc_profile=(ADOBE_RGB).read_bytes(), quality=95)
    rgba = np.dstack([rgb, np.where(np.arange(60) < 20, 0, 255).astype(np.uint8)[None, :].repeat(40, 0)])
    Image.fromarray(rgba).save(photos / "logo.png")
    Image.fromarray(rgba).save(photos / "logo.webp", lossless=True)
    status, out, err = colorize_here(capsys, photos, "-o", tmp_path / "out", "--model", small_generator_file)
    assert status == 0 and "3 colorized" in out, err
    scan = Image.open(tmp_path / "out" / "scan.jpg")
    assert scan.size == (40, 60)  # upright: Orientation 6 turned it
    kept = scan.getexif()
    assert (kept[0x0132], kept[0x010F], kept.get(0x0112)) == ("1950:06:01 10:00:00", "Kodak", 1)
    assert scan.info["dpi"] == (600, 600)
    from PIL import ImageCms

    described = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(scan.info["icc_profile"])))
    assert described.lower().startswith("srgb")
    for name in ("logo.png", "logo.webp"):
        output = Image.open(tmp_path / "out" / name)
        assert output.mode == "RGBA" and np.array_equal(np.asarray(output)[..., 3], rgba[..., 3]), name
    assert b"VP8L" in (tmp_path / "out" / "logo.webp").read_bytes()[:64]  # still lossless
    status, out, err = colorize_here(capsys, photos / "logo.png", "-o", tmp_path / "jpeg", "--format", "jpg",
                                     "--model", small_generator_file)
    notes = [line for line in err.splitlines() if "transparency" in line]
    assert status == 0 and len(notes) == 1 and "--format png or webp keeps it" in notes[0], err


@pytest.mark.parametrize("profile, mode, lightness_error", [(ADOBE_RGB, "RGB", 0.6), (CMYK, "CMYK", 2.5)])
def test_a_photo_with_a_colour_profile_is_colorized_from_its_managed_lightness(small_generator_file, tmp_path,
                                                                               capsys, profile, mode, lightness_error):
    """The lightness the network sees and the output keeps is that of the managed colours: a CMYK
    JPEG read without its profile comes out 26 L* too dark; an Adobe RGB one 1.2 L* off."""
    from pix2color.colorizing.recipe import lightness_of_8bit

    assert profile.exists(), f"{profile}: install Debian's icc-profiles-free and libgs-common (.ci/run does)"
    rgb = np.asarray(Image.open(sample_photo_paths(4)[3]).convert("RGB"))  # strong colours: read unmanaged, 4 L* off
    profiled(rgb, profile, mode).save(tmp_path / "photo.jpg", icc_profile=profile.read_bytes(), quality=95)
    status, out, err = colorize_here(capsys, tmp_path / "photo.jpg", "-o", tmp_path / "out", "--model",
                                     small_generator_file)
    assert status == 0, err
    output = np.asarray(Image.open(tmp_path / "out" / "photo.jpg").convert("RGB"))
    assert np.abs(lightness_of_8bit(output) - lightness_of_8bit(rgb)).mean() < lightness_error


def test_photos_are_what_pillow_opens_and_a_heic_is_named(small_generator_file, tmp_path, capsys):
    """An AVIF photo is a photo (a PNG out, not a one-frame MP4); a HEIC in a folder, which Pillow
    cannot read, is one line and counted as failed, never left out without a word."""
    photos = small_photos(tmp_path / "in", ["a.png"])
    Image.open(photos / "a.png").save(photos / "b.avif")
    (photos / "c.heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100))
    status, out, err = colorize_here(capsys, photos, "-o", tmp_path / "out", "--model", small_generator_file)
    assert status == 1 and "2 colorized" in out and "1 failed" in out, out + err
    assert Image.open(tmp_path / "out" / "b.png").size == (48, 36) and not list((tmp_path / "out").glob("*.mp4"))
    assert f"error: {photos / 'c.heic'}: a HEIC photo, a format pix2color cannot read" in err


def test_names_a_terminal_would_not_show_are_quoted_and_long_names_work(small_generator_file, tmp_path, capsys):
    """A name of 250 bytes (legal; the hidden temporary name is kept within 255), and names with a
    newline or an escape sequence, which are printed escaped and quoted: one line each."""
    photos = small_photos(tmp_path / "in", ["x" * 246 + ".png"])
    (photos / "bad\nline.jpg").write_bytes(b"not a photo")
    (photos / "bad\x1b[31mred.jpg").write_bytes(b"not a photo either")
    status, out, err = colorize_here(capsys, photos, "-o", tmp_path / "out", "--model", small_generator_file)
    assert status == 1 and "1 colorized" in out and "2 failed" in out, out + err
    assert (tmp_path / "out" / ("x" * 246 + ".png")).exists()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and len(err.strip().splitlines()) == 2, err
    assert any("'" + str(photos) + "/bad\\nline.jpg'" in line for line in errors), errors
    assert any("bad\\x1b[31mred.jpg'" in line for line in errors) and "\x1b" not in err, errors


def test_a_symlinked_folder_and_an_earlier_run_s_folder_inside_the_inputs(small_generator_file, tmp_path, capsys):
    """-o inside the input folder: a second run leaves it out ("0 colorized, 2 skipped"), never
    colorized/colorized/...; a symlinked sub-folder is not searched, and said so."""
    photos = small_photos(tmp_path / "scans", ["a.jpg", "b.png"])
    (photos / "linked").symlink_to(small_photos(tmp_path / "elsewhere", ["c.jpg"]))
    for run in range(3):
        status, out, err = colorize_here(capsys, photos, "-o", photos / "colorized", "--model", small_generator_file)
        assert status == 1, out + err  # the symlinked folder: one failed line
        assert (f"{'2 colorized' if run == 0 else '0 colorized'}" in out and "1 failed" in out
                and ("2 skipped" in out or run == 0)), out
        assert f"error: {photos / 'linked'}: a symlink to a folder, not searched" in err
    assert sorted(path.relative_to(photos).as_posix() for path in photos.rglob("*.*")) == [
        "a.jpg", "b.png", "colorized/a.jpg", "colorized/b.png"]


def test_a_comparison_that_fails_is_not_a_second_failure_of_its_photo(small_generator_file, tmp_path, capsys,
                                                                      monkeypatch):
    """Inputs are counted once: a photo written whose comparison image could not be, is colorized,
    and the comparison counted apart."""
    from pix2color.colorizing import files as colorizing

    photos = small_photos(tmp_path / "in", ["a.jpg", "b.jpg"])
    save = colorizing.save_image

    def no_room_for_comparisons(rgb, path, *args, **kwargs):
        if path.stem.endswith("_compare"):
            raise OSError(28, "No space left on device")
        return save(rgb, path, *args, **kwargs)

    monkeypatch.setattr(colorizing, "save_image", no_room_for_comparisons)
    status, out, err = colorize_here(capsys, photos, "-o", tmp_path / "out", "--compare", "--model",
                                     small_generator_file)
    assert status == 1 and "2 colorized" in out and "0 failed" in out and "2 comparison images not written" in out, out


def test_a_write_killed_midway_leaves_a_temporary_the_next_run_removes(tmp_path):
    """kill -9 while an output is written leaves .NAME.PID-RANDOM.part; the next write of that output
    removes it (its PID no longer runs), and never one of a writer still at work."""
    from pix2color import outputs

    target = tmp_path / "photo.png"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".photo.png.{dead.stdout.strip()}-0123abcd.part"
    alive = tmp_path / f".photo.png.{os.getppid()}-4567cdef.part"  # this test's parent: still running
    stale.write_bytes(b"half a photo")
    alive.write_bytes(b"being written")
    outputs.write_output(target, lambda handle: handle.write(b"the photo"))
    assert target.read_bytes() == b"the photo" and not stale.exists() and alive.exists()


def test_colorize_started_with_sigint_ignored_stops_on_kill_int(small_generator_file, tmp_path):
    """A shell script's `colorize ... &` starts with SIGINT ignored; `kill -INT` while it colorizes
    stops it still (as it stops `train`)."""
    import signal
    import time

    photos = tmp_path / "in"
    photos.mkdir()
    for index, source in enumerate(sample_photo_paths(20)):
        Image.open(source).convert("RGB").resize((1600, 1600)).save(photos / f"p{index}.jpg")
    process = subprocess.Popen(
        [sys.executable, "-m", "pix2color.cli", "colorize", str(photos), "-o", str(tmp_path / "out"), "--model",
         str(small_generator_file), "--verbose", "0", "--batch-size", "1"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert process.stdout.readline().startswith("model:")  # the model is loaded: colorizing from now on
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted" in stderr, (process.returncode, stdout, stderr[-2000:])
    assert len(list((tmp_path / "out").glob("*.jpg"))) < 20  # it stopped before the end


def test_what_a_new_user_s_photos_brought_up(small_generator_file, tmp_path, capsys):
    """From a new user's tries: an encoder's refusal is one line and the others are done; a TIFF's
    own tags, XMP, IPTC and ICC profile stay out of the output's EXIF; an RGB PNG with one colour
    marked transparent keeps it; a lossless WebP with a profile stays lossless; an sRGB-tagged
    photo's output is tagged sRGB."""
    from PIL import ImageCms, TiffImagePlugin

    photos = tmp_path / "in"
    photos.mkdir()
    rgb = np.asarray(Image.open(sample_photo_paths(1)[0]).convert("RGB").resize((60, 40)))
    Image.new("RGB", (17000, 4), (120, 90, 60)).save(photos / "too_wide.png")  # WebP stops at 16383 px
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[700] = b"<x:xmpmeta>SECRET</x:xmpmeta>"  # XMP
    tags[33723] = b"SECRET IPTC"
    tags[0x010F] = "Nikon"
    Image.fromarray(rgb).save(photos / "scan.tif", tiffinfo=tags,
                              icc_profile=Path("/usr/share/color/icc/compatibleWithAdobeRGB1998.icc").read_bytes())
    keyed = Image.fromarray(rgb)
    keyed.info["transparency"] = tuple(int(v) for v in rgb[0, 0])
    keyed.save(photos / "keyed.png", transparency=tuple(int(v) for v in rgb[0, 0]))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(photos / "tagged.jpg", icc_profile=srgb)
    Image.fromarray(rgb).save(photos / "lossless.webp", lossless=True, icc_profile=srgb)
    status, out, err = colorize_here(capsys, photos, "-o", tmp_path / "out", "--format", "webp", "--model",
                                     small_generator_file)
    assert status == 1 and "4 colorized" in out and "1 failed" in out, out + err
    assert len([line for line in err.splitlines() if "too_wide.png" in line]) == 1, err
    scan = Image.open(tmp_path / "out" / "scan.webp")
    assert scan.getexif().get(0x010F) == "Nikon" and not set(scan.getexif()) & {256, 273, 700, 33723, 34675}
    assert b"SECRET" not in (tmp_path / "out" / "scan.webp").read_bytes()
    assert Image.open(tmp_path / "out" / "keyed.webp").mode == "RGBA"
    lossless = (tmp_path / "out" / "lossless.webp").read_bytes()
    assert b"VP8L" in lossless and b"VP8 " not in lossless
    assert "icc_profile" in Image.open(tmp_path / "out" / "tagged.webp").info


def test_a_run_in_place_again_knows_its_outputs_by_their_exif(small_generator_file, tmp_path, capsys):
    """-o the photos' own folder, photos named as cameras name them (IMG_0001.JPG: its output is
    IMG_0001.jpg, not the same name): a second run knows its outputs by their EXIF Software and
    skips the photos; a photo of the user's named like an output (chart_compare.png) is a photo."""
    photos = small_photos(tmp_path / "album", ["IMG_0001.JPG", "holiday.jpeg", "chart.jpg", "chart_compare.png"])
    for run in range(2):
        status, out, err = colorize_here(capsys, photos, "-o", photos, "--format", "jpg", "--model",
                                         small_generator_file)
        assert status == 0, err
        assert ("4 colorized" in out) if run == 0 else ("0 colorized" in out and "4 skipped" in out), out
    assert sorted(path.name for path in photos.iterdir()) == sorted([
        "IMG_0001.JPG", "holiday.jpeg", "chart.jpg", "chart_compare.png", "IMG_0001.jpg", "holiday.jpg",
        "chart_colorized.jpg", "chart_compare.jpg"])


def test_profiles_of_every_kind_are_applied(tmp_path):
    """A 16-bit gray PNG with a gray profile and a palette PNG with an Adobe RGB profile are read in
    their managed colours, as their 8-bit RGB versions are."""
    from PIL import ImageCms

    from pix2color.colorizing.recipe import lightness_of_8bit
    from pix2color.photos import read_image

    rgb = np.asarray(Image.open(sample_photo_paths(4)[3]).convert("RGB").resize((64, 48)))
    gray_profile = ImageCms.ImageCmsProfile("/usr/share/color/icc/Gray.icc")
    srgb = ImageCms.createProfile("sRGB")
    gray = ImageCms.profileToProfile(Image.fromarray(rgb).convert("L").convert("RGB"), srgb, gray_profile,
                                     outputMode="L")
    Image.fromarray(np.asarray(gray).astype(np.uint16) * 257).save(tmp_path / "gray16.png",
                                                                  icc_profile=gray_profile.tobytes())
    gray.save(tmp_path / "gray8.png", icc_profile=gray_profile.tobytes())
    adobe = Path("/usr/share/color/icc/compatibleWithAdobeRGB1998.icc")
    profiled = ImageCms.profileToProfile(Image.fromarray(rgb), srgb, ImageCms.ImageCmsProfile(str(adobe)),
                                         outputMode="RGB")
    profiled.quantize(256).save(tmp_path / "palette.png", icc_profile=adobe.read_bytes())
    profiled.quantize(256).convert("RGB").save(tmp_path / "rgb.png", icc_profile=adobe.read_bytes())
    for deep, eight in (("gray16.png", "gray8.png"), ("palette.png", "rgb.png")):
        difference = lightness_of_8bit(read_image(tmp_path / deep)) - lightness_of_8bit(read_image(tmp_path / eight))
        assert np.abs(difference).mean() < 0.5, (deep, np.abs(difference).mean())


def test_a_photo_of_no_pixels_is_one_line(tmp_path):
    from pix2color.colorizing.recipe import FullResolutionColorizer

    recipe = FullResolutionColorizer(lambda lightness: np.zeros(lightness.shape[:3] + (2,), np.float32), 32)
    for empty in (Image.new("RGB", (0, 5)), Image.new("RGB", (5, 0)), np.zeros((0, 5, 3), np.uint8)):
        with pytest.raises(ValueError, match="expected a photo"):
            recipe.colorize(empty)
    assert recipe.colorize_batch([]) == []


def test_a_model_whose_output_is_not_finite_is_refused_in_one_line(tmp_path, capsys):
    """Damaged weights (a NaN) would reach the 8-bit tables as an index: refused at load instead."""
    from pix2color.networks import build_generator

    generator = build_generator(32, base_filters=4)
    kernel = generator.weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    generator.save(tmp_path / "damaged.keras")
    photo = tmp_path / "photo.png"
    Image.open(sample_photo_paths(1)[0]).resize((40, 30)).save(photo)
    for mode in ("deterministic", "paper"):  # refused at load; in paper mode by the first batch
        status, _, stderr = colorize_here(capsys, photo, "-o", tmp_path / mode, "--model", tmp_path / "damaged.keras",
                                          "--mode", mode)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert status == 2 and len(lines) == 1 and "damaged.keras" in lines[0] and "not finite" in lines[0], stderr
        assert not (tmp_path / mode).exists() or not any((tmp_path / mode).iterdir())  # no output
