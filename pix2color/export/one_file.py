"""The device's runner as one file: `litert_runner` and the package modules it imports, their
sources unchanged, in a `colorize_tflite.py` that `pix2color export` writes beside the `.tflite`
files.

A phone or a small board gets one file to copy, and it runs the very code `pix2color colorize`
runs: the generated file holds each module's source as text and serves it to Python's import
system (`importlib`'s finder and loader protocols), so `import pix2color.photos` inside it finds
the copy it carries. Nothing is rewritten; `python colorize_tflite.py --help` is
`python -m pix2color.export.litert_runner --help`, and `import colorize_tflite` gives its
`LiteColorizer` and `main`.
"""

from __future__ import annotations

import importlib.util
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
carried as text and imported from this file, so this one file runs alone.
"""

import importlib.abc
import importlib.util
import sys

SOURCES = {{}}  # module name -> its source
PACKAGES = {packages!r}

'''

_LOADER = '''

class _CarriedModules(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Finds and loads the modules in SOURCES (tracebacks show their lines too)."""

    def find_spec(self, name, path=None, target=None):
        if name in SOURCES:
            return importlib.util.spec_from_loader(name, self, origin=f"{__file__}:{name}", is_package=name in PACKAGES)
        return None

    def get_source(self, name):
        return SOURCES[name]

    def exec_module(self, module):
        exec(compile(SOURCES[module.__name__], module.__spec__.origin, "exec"), module.__dict__)


if not any(isinstance(finder, _CarriedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _CarriedModules())

from pix2color.export.litert_runner import LiteColorizer, main  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(main())
'''


def _module_source(name: str) -> str:
    return Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")


def _text_literal(source: str) -> str:
    """`source` as a triple-quoted literal that reads like the file (backslashes and quotes escaped)."""
    return '"""' + source.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '"""'


def device_runner() -> bytes:
    """The text of `colorize_tflite.py`."""
    packages = sorted(name for name in CARRIED if importlib.util.find_spec(name).submodule_search_locations)
    parts = [_HEAD.format(version=pix2color.__version__, packages=tuple(packages))]
    for name in CARRIED:
        parts.append(f"\nSOURCES[{name!r}] = {_text_literal(_module_source(name))}\n")
    parts.append(_LOADER)
    return "".join(parts).encode("utf-8")
