"""The errors home: every exception class of the library is defined in `pix2color.errors`."""

import ast
from pathlib import Path

import pix2color

PACKAGE = Path(pix2color.__file__).parent


def exception_classes() -> dict[str, str]:
    """{class name: module file} of every class the package defines that derives, directly or
    through another of its classes, from a built-in exception or a framework's one."""
    bases, where = {}, {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [ast.unparse(base).split(".")[-1] for base in node.bases]
                where[node.name] = str(path.relative_to(PACKAGE))

    def is_exception(name, seen=()):
        if name in bases and name not in seen:
            return any(is_exception(base, (*seen, name)) for base in bases[name])
        return name.endswith(("Error", "Exception", "Exit", "Interrupt")) or name in {"Exception", "BaseException"}

    return {name: where[name] for name in bases if any(is_exception(base) for base in bases[name])}


def test_every_exception_class_is_defined_in_errors():
    found = exception_classes()
    assert "ImageError" in found and "Pix2colorError" in found  # the scan sees the home itself
    elsewhere = {name: module for name, module in found.items() if module != "errors.py"}
    assert not elsewhere, elsewhere

