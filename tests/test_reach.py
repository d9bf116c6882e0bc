"""tests/reach.py: a module is reached when one of its functions ran, not when it was imported."""

from pathlib import Path

import coverage
import pytest
from reach import FOLDER_VARIABLE, function_body_lines, unreached_modules


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


@pytest.mark.slow  # two pytest runs in subprocesses
def test_a_module_only_slow_tests_call_is_unreached_on_one_worker_and_on_two(pytester, monkeypatch):
    """The plugin pauses measuring during slow tests in the first process and in xdist's workers
    (whose coverage the .pth started before the plugin ran)."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # where the plugin is
    outer = pytester.mkdir("outer-run")  # an outer --reach run's folder, as a test under `pytest --reach` sees
    (outer / "coveragerc").write_text("[run]\n")
    monkeypatch.setenv(FOLDER_VARIABLE, str(outer))
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    pytester.makepyfile(test_probe='''
        import pytest
        from pix2color import outputs

        def test_fast():
            pass

        @pytest.mark.slow
        def test_slow():
            assert outputs.summary(1, 0, 0)
    ''')
    for workers in ("0", "2"):
        result = pytester.runpytest_subprocess("-p", "reach", "--reach", "-n", workers, "-p", "no:cacheprovider")
        assert result.ret == 1, workers
        unreached = [line.strip() for line in result.outlines if line.startswith("  pix2color/")]
        assert "pix2color/outputs.py" in unreached, (workers, result.outlines[-20:])
        assert sorted(path.name for path in outer.iterdir()) == ["coveragerc"], workers  # untouched
