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
    """Imported alone (no TensorFlow) with every other way to pix2color blocked, it imports: the
    list `CARRIED` is whole, and the installed package is never reached."""
    (tmp_path / DEVICE_RUNNER).write_bytes(device_runner())
    code = NO_TENSORFLOW + (
        "import importlib.abc\n"
        "class NotCarried(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pix2color':\n"
        "            raise ImportError(f'{name} is not carried')\n"
        "sys.meta_path.insert(0, NotCarried())\n"
        "import colorize_tflite\n"
        "print(colorize_tflite.LiteColorizer.__module__, colorize_tflite._runner.__spec__.origin)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pix2color.export.litert_runner",
                                     f"{tmp_path / DEVICE_RUNNER}:pix2color.export.litert_runner"]


def test_a_failure_inside_the_one_file_shows_the_carried_line(tmp_path):
    """Tracebacks (Python's `traceback`, as loggers and pytest print them) show the carried
    modules' own lines, as the installed package's would."""
    (tmp_path / DEVICE_RUNNER).write_bytes(device_runner())
    failing = "try:\n    runner.quoted(None)\nexcept TypeError:\n    import traceback; traceback.print_exc(); exit(1)\n"
    carried = subprocess.run([sys.executable, "-c", "import colorize_tflite\nrunner = colorize_tflite._runner\n" + failing],
                             cwd=tmp_path, capture_output=True, text=True)
    installed = subprocess.run([sys.executable, "-c", "from pix2color.export import litert_runner as runner\n" + failing],
                               capture_output=True, text=True)
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


# --------------------------------------------------------------------------- the one file beside another pix2color


def test_the_one_file_neither_uses_nor_replaces_an_installed_pix2color(tmp_path):
    """Imported into a process that has pix2color already (another version, say), the runner runs
    on what it carries, and the process's own pix2color modules stay what they were."""
    (tmp_path / DEVICE_RUNNER).write_bytes(device_runner())
    code = ("import sys, pix2color.photos, pix2color.config\n"
            "installed = dict(sys.modules)\n"
            "import colorize_tflite\n"
            "assert colorize_tflite.LiteColorizer.__module__ == 'pix2color.export.litert_runner'\n"
            "assert colorize_tflite._runner.__spec__.origin.endswith('colorize_tflite.py:pix2color.export.litert_runner')\n"
            "assert all(sys.modules.get(name) is module for name, module in installed.items())\n"
            "assert 'pix2color.export.litert_runner' not in sys.modules\n"
            "import pix2color.training.precision  # the installed package still imports\n"
            "from pix2color.export.one_file import device_runner; device_runner()\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_without_its_libraries_the_one_file_says_what_to_install(tmp_path):
    (tmp_path / DEVICE_RUNNER).write_bytes(device_runner())
    for missing in ("numpy", "ai_edge_litert"):
        code = (f"import sys, runpy; sys.modules[{missing!r}] = None\n"
                f"sys.argv = [{DEVICE_RUNNER!r}, 'model.tflite', 'photo.jpg']\n"
                f"runpy.run_path({DEVICE_RUNNER!r}, run_name='__main__')\n")
        (tmp_path / "model.tflite").write_bytes(b"")
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and "pip install" in lines[0], result.stderr


# --------------------------------------------------------------------------- files that are no pix2color generator


def tflite_of(function, tmp_path, name: str, input_shape=(1, 32, 32, 1)):
    """A .tflite file of a tf.function of one float32 input."""
    import tensorflow as tf

    concrete = tf.function(function, input_signature=[tf.TensorSpec(input_shape, tf.float32)]).get_concrete_function()
    path = tmp_path / name
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
    return path


@pytest.mark.parametrize("kind", ["three-channels", "other-size", "not-finite", "one-pixel"])
def test_a_model_that_is_no_pix2color_generator_is_refused_before_any_photo(kind, tmp_path, capfd):
    import tensorflow as tf

    made = {
        "three-channels": lambda: tflite_of(lambda x: tf.concat([x, x, x], -1), tmp_path, "rgb.tflite"),
        "other-size": lambda: tflite_of(lambda x: tf.concat([x, x], -1)[:, :16, :16], tmp_path, "small.tflite"),
        "not-finite": lambda: tflite_of(lambda x: tf.concat([x, x], -1) * float("nan"), tmp_path, "nan.tflite"),
        "one-pixel": lambda: tflite_of(lambda x: tf.concat([x, x], -1), tmp_path, "pixel.tflite", (1, 1, 1, 1)),
    }
    model = made[kind]()
    photo = tmp_path / "x.png"
    Image.open(sample_photo_paths(1)[0]).resize((40, 30)).save(photo)
    status = litert_runner.main([str(model), str(photo), "-o", str(tmp_path / "out")])
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and model.name in lines[0], lines
    assert ("not finite" if kind == "not-finite" else "not a pix2color generator") in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_model_not_finite_on_some_photo_stops_in_one_line(tmp_path, capfd):
    """Finite on the load's probe (gray), NaN on a dark photo: one line naming the model, status 2."""
    import tensorflow as tf

    model = tflite_of(lambda x: tf.concat([tf.math.log(x + 0.9)] * 2, -1), tmp_path, "dark_nan.tflite")
    dark = tmp_path / "dark.png"
    Image.new("RGB", (40, 30)).save(dark)
    status = litert_runner.main([str(model), str(dark), "-o", str(tmp_path / "out")])
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and "dark_nan.tflite" in lines[0] and "not finite" in lines[0], lines
