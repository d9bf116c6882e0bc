"""tests/reach.py: a module is reached when one of its functions ran, not when it was imported."""

import coverage

from reach import function_body_lines, unreached_modules


def test_a_module_counts_as_reached_only_when_a_function_body_ran(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("NAME = 'pkg'\n")  # no functions: needs no call
    (package / "called.py").write_text("import os\n\n\ndef f():\n    return os.sep\n")
    (package / "imported.py").write_text("def g(\n    x,\n):\n    return (\n        x\n    )\n")
    assert function_body_lines((package / "imported.py").read_text()) == {4, 5, 6}
    data = coverage.CoverageData(basename=str(tmp_path / ".coverage"))
    data.add_lines({str(package / "called.py"): [1, 4, 5], str(package / "imported.py"): [1]})  # def lines only
    assert unreached_modules(data, package) == ["pkg/imported.py"]
    data.add_lines({str(package / "imported.py"): [5]})
    assert unreached_modules(data, package) == []
