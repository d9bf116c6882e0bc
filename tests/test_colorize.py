"""`pix2color colorize` as a user runs it."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import on_a_full_disk, sample_photo_paths

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


def hashes(folder):
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_colorizing_a_folder_into_itself_never_touches_an_input(small_generator_file, tmp_path, capsys):
    """-o the input folder: each output that would be an input is NAME_colorized.EXT. A second
    run takes the first run's outputs as inputs too: it colorizes them (NAME_colorized_colorized)
    and gives the originals NAME_colorized-2; a third, with --overwrite, likewise replaces nothing."""
    album = small_photos(tmp_path / "album", ["a.jpg", "sub/b.png"])
    expected_new = [{"a_colorized.jpg", "sub/b_colorized.png"},
                    {"a_colorized-2.jpg", "a_colorized_colorized.jpg", "sub/b_colorized-2.png",
                     "sub/b_colorized_colorized.png"}, None]
    before = hashes(album)
    for new, extra in zip(expected_new, ([], [], ["--overwrite"])):
        status, out, err = colorize_here(capsys, album, "-o", album, "--model", small_generator_file, *extra)
        now = hashes(album)
        assert status == 0 and f"{len(before)} colorized" in out and "0 failed" in out, err
        assert {name: now[name] for name in before} == before  # every file there before: the same bytes
        assert len(now) == 2 * len(before) and (new is None or set(now) - set(before) == new)
        notes = [line for line in err.splitlines() if line.startswith("note:")]
        assert len(notes) == len(before)  # every input renamed, one line each
        if new == expected_new[0]:
            a, renamed = album / "a.jpg", album / "a_colorized.jpg"
            assert f"note: {a} -> {renamed} ({a} is one of the inputs)" in notes
        before = now


def test_an_input_file_and_links_to_inputs_are_never_written_through(small_generator_file, tmp_path, capsys):
    inputs = small_photos(tmp_path / "in", ["x.jpg", "y.png"])
    before = hashes(inputs)
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.jpg").symlink_to(inputs / "x.jpg")  # an output name that is an input through a symlink
    os.link(inputs / "y.png", out / "y.png")  # ... and through a hard link
    for extra in ([], ["--overwrite"]):
        status, stdout, stderr = colorize_here(capsys, inputs / "x.jpg", inputs / "y.png", "-o", out, "--model",
                                               small_generator_file, *extra)
        assert status == 0 and "2 colorized" in stdout, stderr
        assert hashes(inputs) == before and os.readlink(out / "x.jpg") == str(inputs / "x.jpg")
        assert Image.open(out / "x_colorized.jpg").size == Image.open(out / "y_colorized.png").size == (48, 36)
        assert f"note: {inputs / 'y.png'} -> {out / 'y_colorized.png'} ({out / 'y.png'} is one of the inputs)" in stderr
    # A file named on its own, -o its folder.
    status, stdout, stderr = colorize_here(capsys, inputs / "x.jpg", "-o", inputs, "--model", small_generator_file)
    assert status == 0 and "1 colorized" in stdout, stderr
    assert {name: hashes(inputs)[name] for name in before} == before and (inputs / "x_colorized.jpg").exists()


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
    assert hashes(tmp_path / "glob").keys() == {"a/x.jpg", "b/x.jpg"}  # the folders below the glob's literal part

    status, stdout, stderr = colorize_here(capsys, inputs / "c", "-o", tmp_path / "same", "--format", "same", *model)
    assert status == 0 and "2 colorized" in stdout, stderr
    assert hashes(tmp_path / "same").keys() == {"x.png", "x-2.png"}


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
    result = subprocess.run([sys.executable, "-m", "pix2color.cli", "colorize", str(photos), str(tmp_path / "named.jpg"),
                             "-o", str(tmp_path / "out"), "--model", str(small_generator_file), "--verbose", "0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    errors = sorted(line for line in result.stderr.splitlines() if line.strip())
    assert errors == [f"error: {photos / 'broken.png'}: a broken symlink (to {tmp_path / 'gone.png'})",
                      f"error: {photos / 'fifo.jpg'}: not a regular file (a FIFO)",
                      f"error: {photos / 'linked.jpg'}: a symlink to a folder, not searched",
                      f"error: {tmp_path / 'named.jpg'}: not a regular file (a FIFO)"], result.stderr
    assert result.returncode == 1 and "1 colorized" in result.stdout and "4 failed" in result.stdout, result.stdout
    assert hashes(tmp_path / "out").keys() == {"a.jpg"}


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
            f"error: {photos / 'x.jpg'}: 48x36 is 1,728 pixels, more than the limit of 1,000"], stderr
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
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and named in lines[0] and "Traceback" not in stderr, stderr
