"""The device's runner: `pix2color.export.litert_runner` (its command and the output rules it
follows) and `colorize_tflite.py`, the one file `pix2color export` makes of it and the modules it
imports, which runs alone."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import sample_photo_paths
from PIL import Image

from pix2color.export import litert_runner
from pix2color.export.one_file import CARRIED, DEVICE_RUNNER, device_runner

NO_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None  # importing it now fails\n"


def test_the_runner_imports_no_tensorflow():
    code = NO_TENSORFLOW + "import pix2color.export.litert_runner"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def carried_sources(runner: bytes) -> dict[str, str]:
    """The module sources a `colorize_tflite.py` holds, read from its text."""
    sources = {}
    for node in ast.parse(runner).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            sources[ast.literal_eval(node.targets[0].slice)] = ast.literal_eval(node.value)
    return sources


def test_the_one_file_carries_the_package_modules_unchanged():
    """One source: each module in the runner is the package's file, byte for byte."""
    sources = carried_sources(device_runner())
    assert list(sources) == list(CARRIED)
    for name, source in sources.items():
        module = __import__(name, fromlist=["_"])
        assert source == Path(module.__file__).read_text(encoding="utf-8"), name


def test_the_one_file_runs_on_what_it_carries(tmp_path):
    """Imported alone (no TensorFlow), every pix2color module it uses is one it carries: the list
    `CARRIED` is whole, and the installed package is never reached."""
    (tmp_path / DEVICE_RUNNER).write_bytes(device_runner())
    code = NO_TENSORFLOW + (
        "import colorize_tflite\n"
        "modules = {name: type(module.__loader__).__name__ for name, module in sys.modules.items()\n"
        "           if name.split('.')[0] == 'pix2color'}\n"
        "assert all(loader == '_CarriedModules' for loader in modules.values()), modules\n"
        "print(sorted(modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ast.literal_eval(result.stdout) == sorted(CARRIED)


def test_a_failure_inside_the_one_file_shows_the_carried_line(tmp_path):
    """Tracebacks (Python's `traceback`, as loggers and pytest print them) show the carried
    modules' own lines, as the installed package's would."""
    (tmp_path / DEVICE_RUNNER).write_bytes(device_runner())
    failing = "try:\n    pix2color.outputs.quoted(None)\nexcept TypeError:\n    import traceback; traceback.print_exc(); exit(1)\n"
    carried = subprocess.run([sys.executable, "-c", "import colorize_tflite, pix2color.outputs\n" + failing],
                             cwd=tmp_path, capture_output=True, text=True)
    installed = subprocess.run([sys.executable, "-c", "import pix2color.outputs\n" + failing], capture_output=True,
                               text=True)
    assert carried.returncode == installed.returncode == 1
    assert f'"{tmp_path / DEVICE_RUNNER}:pix2color.outputs"' in carried.stderr, carried.stderr
    assert carried.stderr.splitlines()[-3:] == installed.stderr.splitlines()[-3:], carried.stderr


def runner_alone(exported, folder, *args):
    """The `colorize_tflite.py` that `pix2color export` wrote, copied on its own into `folder` and
    run from there."""
    (folder / DEVICE_RUNNER).write_bytes((exported / "tflite" / DEVICE_RUNNER).read_bytes())
    return subprocess.run([sys.executable, DEVICE_RUNNER, *map(str, args)], cwd=folder, capture_output=True,
                          text=True, timeout=300)


def test_the_runner_alone_follows_the_output_rules(exported, tmp_path):
    """The rules of `pix2color colorize`: an input is never written (NAME_colorized.png), two
    inputs never share an output (NAME-2.png), an existing output is skipped unless --overwrite."""
    alone = tmp_path / "alone"
    alone.mkdir()
    model = exported / "tflite" / "generator_deterministic_float32.tflite"
    photos = tmp_path / "photos"
    for name, source in zip(["x.png", "y.jpg", "a/z.jpg", "b/z.jpg"], sample_photo_paths(4)):
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(source).convert("RGB").resize((40, 30)).save(photos / name)
    originals = {name: (photos / name).read_bytes() for name in ["x.png", "y.jpg", "a/z.jpg", "b/z.jpg"]}
    arguments = [model, *(photos / name for name in originals), "-o", photos]
    outputs = ["x_colorized.png", "y.png", "z.png", "z-2.png"]

    first = runner_alone(exported, alone, *arguments)
    assert first.returncode == 0 and "4 colorized" in first.stdout, first.stderr
    assert all(Image.open(photos / name).size == (40, 30) for name in outputs)
    assert f"{photos / 'x.png'} is one of the inputs" in first.stderr
    assert f"{photos / 'b/z.jpg'} -> {photos / 'z-2.png'} ({photos / 'z.png'} is {photos / 'a/z.jpg'}'s output)" in first.stderr
    written = {name: (photos / name).read_bytes() for name in outputs}
    (photos / "z.png").write_bytes(b"changed by hand")

    again = runner_alone(exported, alone, *arguments)
    assert again.returncode == 0 and "0 colorized, 4 skipped" in again.stdout, again.stderr
    assert len([line for line in again.stderr.splitlines() if "--overwrite replaces it" in line]) == 4
    assert (photos / "z.png").read_bytes() == b"changed by hand"

    replaced = runner_alone(exported, alone, *arguments, "--overwrite")
    assert replaced.returncode == 0 and "4 colorized" in replaced.stdout, replaced.stderr
    assert {name: (photos / name).read_bytes() for name in originals} == originals
    assert {name: (photos / name).read_bytes() for name in outputs} == written  # the same colours again

    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "x.png").symlink_to(photos / "x.png")
    through_link = runner_alone(exported, alone, model, photos / "x.png", "-o", linked, "--overwrite")
    assert through_link.returncode == 0 and (linked / "x.png").is_symlink(), through_link.stderr
    assert (photos / "x.png").read_bytes() == originals["x.png"] and (linked / "x_colorized.png").exists()


def test_the_runner_colorizes_an_input_named_twice_once(exported, tmp_path, capsys):
    photo = tmp_path / "x.png"
    Image.open(sample_photo_paths(1)[0]).resize((40, 30)).save(photo)
    (tmp_path / "link.png").symlink_to(photo)
    model = exported / "tflite" / "generator_deterministic_float32.tflite"
    status = litert_runner.main([str(model), str(photo), str(tmp_path / "." / "x.png"), str(tmp_path / "link.png"),
                        "-o", str(tmp_path / "out")])
    assert status == 0 and "1 colorized" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.png"]


def test_a_successful_run_says_nothing_on_stderr(exported, tmp_path, capfd):
    """LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every model load is
    dropped; anything else written to stderr while the model loads is passed on."""
    alone = tmp_path / "alone"
    alone.mkdir()
    photo = tmp_path / "x.png"
    Image.open(sample_photo_paths(1)[0]).resize((40, 30)).save(photo)
    result = runner_alone(exported, alone, exported / "tflite" / "generator_deterministic_float32.tflite", photo, "-o",
                        tmp_path / "out")
    assert result.returncode == 0 and result.stderr == "" and "1 colorized" in result.stdout, result.stderr
    with litert_runner._without_delegate_notice():
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
    status = litert_runner.main([str(argument) for argument in [model, photo, *out, *options]])
    stderr = capfd.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and named in lines[0] and "Traceback" not in stderr, stderr
