"""`pix2color/lite.py`, the one-file LiteRT runner: its command, the output rules it follows when
copied alone, and its copies of `pix2color.photos` and `pix2color.outputs`, kept equal to them."""

import ast
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import sample_photo_paths
from pix2color import lite, outputs, photos


def test_lite_module_imports_no_tensorflow():
    code = "import sys, pix2color.lite; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --------------------------------------------------------------------------- lite.py's copies

# A heading of lite.py: a section copied from a library module, or the file's own code.
SECTION = re.compile(r"^# (?:Copied verbatim from pix2color/(?P<module>\w+)\.py:|This file's own:)")
LIBRARY = {"photos": photos, "outputs": outputs}


def lite_sections() -> dict[str | None, list[ast.stmt]]:
    """lite.py's top-level statements under each heading: {the module a section copies from, or
    None for the file's own code: [statement]}. Above the first heading stand only the docstring
    and the imports."""
    source = Path(lite.__file__).read_text(encoding="utf-8")
    headings = [(number, match["module"]) for number, line in enumerate(source.splitlines(), start=1)
                if (match := SECTION.match(line))]
    sections = {}
    for node in ast.parse(source).body:
        above = [module for number, module in headings if number < node.lineno]
        if not above:
            assert isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr)), f"lite.py:{node.lineno}: above headings"
            continue
        sections.setdefault(above[-1], []).append(node)
    return sections


def defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return [target.id for target in targets if isinstance(target, ast.Name)]


def same_value(copy, original) -> bool:
    """Module-level constants compared by value; an object that has none (a lock) by its type."""
    if isinstance(copy, np.ndarray):
        return isinstance(original, np.ndarray) and copy.dtype == original.dtype and np.array_equal(copy, original)
    if type(copy).__eq__ is object.__eq__:
        return type(copy) is type(original)
    return type(copy) is type(original) and copy == original


def copied_definitions() -> dict[str, tuple[str, ast.stmt]]:
    """{name: (the library module it is copied from, its statement in lite.py)}."""
    return {name: (module, node) for module, nodes in lite_sections().items() if module
            for node in nodes for name in defined_names(node)}


def test_lite_copies_match():
    """lite.py runs alone, so it holds copies of the library's reader, recipe and output rules:
    each must be its original to the letter (a constant: the same value), so that the tests of
    `pix2color.photos` and `pix2color.outputs` speak for lite.py too."""
    sections = lite_sections()
    assert set(sections) == {"photos", "outputs", None}, sorted(sections, key=str)
    differ = []
    for module, nodes in sections.items():
        for node in nodes if module else []:
            assert defined_names(node), f"lite.py:{node.lineno}: a copied section holds definitions only"
            for name in defined_names(node):
                copy, original = getattr(lite, name), getattr(LIBRARY[module], name, None)
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    same = original is not None and inspect.getsource(copy) == inspect.getsource(original)
                else:
                    same = same_value(copy, original)
                if not same:
                    differ.append(f"{name} (pix2color/{module}.py)")
    assert not differ, f"lite.py's copies differ from their originals (or have none): {', '.join(differ)}"


def test_lite_copies_only_what_it_uses_and_redefines_nothing():
    """Every copy is reached from lite.py's own code (the runner and its command), and that code
    defines no name of the library modules: one implementation, and one checked copy of it."""
    copied = copied_definitions()
    own = lite_sections()[None]
    library_names = {name for module in LIBRARY.values() for name in vars(module) if not name.startswith("__")}
    assert not {name for node in own for name in defined_names(node)} & library_names

    def names_used(nodes):
        return {node.id for statement in nodes for node in ast.walk(statement) if isinstance(node, ast.Name)}

    reached, todo = set(), names_used(own)
    while todo:
        name = todo.pop()
        if name in copied and name not in reached:
            reached.add(name)
            todo |= names_used([copied[name][1]])
    assert not set(copied) - reached, f"copied but not used by lite.py: {sorted(set(copied) - reached)}"


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
