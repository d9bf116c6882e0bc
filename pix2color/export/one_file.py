"""The device's runner as one file: `litert_runner` and the package modules it imports, their
sources unchanged, in a `colorize_tflite.py` that `pix2color export` writes beside the `.tflite`
files.

A phone or a small board gets one file to copy, and it runs the very code `pix2color colorize`
runs: the generated file holds each module's source as text and serves it to Python's import
system (`importlib`'s finder and loader protocols) while it imports its runner, so `import
pix2color.photos` inside it finds the copy it carries, and a pix2color installed beside it is
neither used nor replaced. Nothing is rewritten; `python colorize_tflite.py --help` is
`python -m pix2color.export.litert_runner --help`, and `import colorize_tflite` gives its
`LiteColorizer` and `main`.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
from pathlib import Path

import pix2color

DEVICE_RUNNER = "colorize_tflite.py"

# The runner and everything it imports from the package (a test checks that the list is whole:
# the runner, run alone from its file, imports no other module of the package).
CARRIED = (
    "pix2color",
    "pix2color.errors",
    "pix2color.outputs",
    "pix2color.photos",
    "pix2color.colorizing",
    "pix2color.colorizing.recipe",
    "pix2color.export",
    "pix2color.export.litert_runner",
)

_HEAD = '''#!/usr/bin/env python3
"""Colorize photos with a pix2color `.tflite` generator: LiteRT, numpy and Pillow only.

    python colorize_tflite.py generator_deterministic_float32.tflite photo.jpg -o colorized/

Written by `pix2color export` (pix2color {version}): the modules below are pix2color's own,
carried as text and imported from this file, so this one file runs alone. Its last line signs
it: `pix2color export --overwrite` replaces it only while it is unchanged.
"""

import importlib
import importlib.abc
import importlib.util
import sys

SOURCES = {{}}  # module name -> its source
PACKAGES = {packages!r}

'''

_LOADER = '''

class _CarriedModules(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Finds and loads the modules in SOURCES."""

    def find_spec(self, name, path=None, target=None):
        if name in SOURCES:
            return importlib.util.spec_from_loader(name, self, origin=f"{__file__}:{name}", is_package=name in PACKAGES)
        return None

    def get_source(self, name):
        return SOURCES[name]

    def exec_module(self, module):
        exec(compile(SOURCES[module.__name__], module.__spec__.origin, "exec"), module.__dict__)


def _carried(name):
    """Module `name` imported from SOURCES alone: a pix2color installed beside this file, imported
    before or after it, is neither used nor replaced."""
    installed = {module: sys.modules.pop(module) for module in list(sys.modules) if module.split(".")[0] == "pix2color"}
    finder = _CarriedModules()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(name)
    finally:
        sys.meta_path.remove(finder)
        for module in [module for module in sys.modules if module.split(".")[0] == "pix2color"]:
            del sys.modules[module]
        sys.modules.update(installed)


try:
    _runner = _carried("pix2color.export.litert_runner")
except ImportError as missing:
    if __name__ != "__main__":
        raise
    print(f"colorize_tflite.py: error: it needs numpy, pillow and ai-edge-litert ({missing}): "
          "pip install ai-edge-litert numpy pillow", file=sys.stderr)
    sys.exit(2)
LiteColorizer, main = _runner.LiteColorizer, _runner.main

if __name__ == "__main__":
    sys.exit(main(prog="colorize_tflite.py"))
'''

_SIGNATURE = "# Written by pix2color export. sha256 of the lines above: "
NOT_REPLACEABLE = ("a runner no export wrote, one edited since, or one from before runners were signed: "
                   "remove it to have a new one written")


def _module_source(name: str) -> str:
    return Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")


def _text_literal(source: str) -> str:
    """`source` as a triple-quoted literal that reads like the file (backslashes and quotes escaped)."""
    return '"""' + source.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '"""'


def device_runner() -> bytes:
    """The text of `colorize_tflite.py`, signed on its last line (`is_unedited_runner`)."""
    packages = sorted(name for name in CARRIED if importlib.util.find_spec(name).submodule_search_locations)
    parts = [_HEAD.format(version=pix2color.__version__, packages=tuple(packages))]
    for name in CARRIED:
        parts.append(f"\nSOURCES[{name!r}] = {_text_literal(_module_source(name))}\n")
    parts.append(_LOADER)
    text = "".join(parts).encode("utf-8")
    return text + f"{_SIGNATURE}{hashlib.sha256(text).hexdigest()}\n".encode("ascii")


def is_unedited_runner(path: str | os.PathLike) -> bool:
    """Whether `path` is a `colorize_tflite.py` as some `pix2color export` wrote it, unchanged since:
    `export --overwrite` replaces only such a file, never one of the user's or one they edited."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    text, _, last = data.rstrip(b"\n").rpartition(b"\n")
    signature = _SIGNATURE.encode("ascii")
    return last.startswith(signature) and last[len(signature):] == hashlib.sha256(text + b"\n").hexdigest().encode()


def refuse_to_replace_unsigned(path: str | os.PathLike) -> None:
    """`FileExistsError` if `path` holds a file that is not an unchanged runner (`is_unedited_runner`):
    an export writes over its own runner only."""
    if os.path.lexists(path) and not is_unedited_runner(path):
        raise FileExistsError(errno.EEXIST, f"holds what no export writes ({NOT_REPLACEABLE}): left as it is, "
                                            "--overwrite or not", str(path))
