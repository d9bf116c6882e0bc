"""`pytest --reach`: the run fails unless the fast tier called into every module of pix2color.

    python -m pytest --reach          # what .ci/run runs: the whole suite, the fast tier measured

coverage.py measures the package while the fast tier's tests run, in the test processes and in
every subprocess they start (the commands run as users run them), and not while slow tests run.
A module counts as reached when a line inside one of its functions ran: importing a module runs
its `def` lines, so coverage above zero would prove nothing. Modules without functions (package
`__init__` files, data) need no call. Loaded by conftest.py as a pytest plugin.
"""

from __future__ import annotations

import ast
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# coverage.py is imported by the hooks that need it: the suite runs without it, `--reach` does not.

PACKAGE = Path(__file__).resolve().parent.parent / "pix2color"
FOLDER_VARIABLE = "PIX2COLOR_REACH_DATA"  # the data folder, shared by the workers and their subprocesses
REACH = pytest.StashKey[dict]()


def function_body_lines(source: str) -> set[int]:
    """Line numbers of the statements inside the module's functions and methods."""
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for statement in node.body:
                lines.update(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
    return lines


def modules_with_functions(package: Path = PACKAGE) -> dict[Path, set[int]]:
    modules = {module: function_body_lines(module.read_text(encoding="utf-8")) for module in sorted(package.rglob("*.py"))}
    return {module: lines for module, lines in modules.items() if lines}


def unreached_modules(data, package: Path = PACKAGE) -> list[str]:
    """The package's modules with functions, none of which ran (`data`: coverage.CoverageData), as
    paths relative to the package's parent."""
    ran = {Path(name).resolve(): set(data.lines(name) or ()) for name in data.measured_files()}
    return [str(module.relative_to(package.parent)) for module, bodies in modules_with_functions(package).items()
            if not bodies & ran.get(module.resolve(), set())]


def pytest_addoption(parser):
    parser.addoption("--reach", action="store_true",
                     help="fail unless the fast tier (not slow) calls into every module of pix2color (coverage.py)")


def pytest_configure(config):
    if not config.getoption("reach"):
        return
    import coverage

    worker = hasattr(config, "workerinput")  # an xdist worker, not the run's first process
    # The first process makes the run's own folder, even when it inherited one: a pytest run that a
    # test starts (tests/test_reach.py) must not combine, nor remove, the outer run's data.
    # xdist's workers use their first process's.
    if not worker:
        os.environ[FOLDER_VARIABLE] = tempfile.mkdtemp(prefix="pix2color-reach-")
    folder = os.environ[FOLDER_VARIABLE]
    settings = Path(folder) / "coveragerc"
    if not settings.exists():
        settings.write_text(f"[run]\nsource_pkgs = pix2color\nparallel = true\ndata_file = {folder}/.coverage\n"
                            "disable_warnings = module-not-measured, no-data-collected\n")
    os.environ["COVERAGE_PROCESS_START"] = str(settings)  # coverage's .pth starts it in every new process
    # An xdist worker is such a process: its coverage runs already (starting it again would stack it
    # twice, and pausing it for slow tests would then pause nothing); the first process starts its own.
    measure = coverage.Coverage.current() if worker else None
    if measure is None:
        measure = coverage.Coverage(config_file=str(settings))
        measure.start()
    config.stash[REACH] = {"folder": folder, "settings": str(settings), "coverage": measure}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item):
    reach = item.config.stash.get(REACH, None)
    if reach is None or item.get_closest_marker("slow") is None:
        yield
        return
    reach["coverage"].stop()  # setup, call and teardown of a slow test are not the fast tier's
    os.environ.pop("COVERAGE_PROCESS_START", None)
    try:
        yield
    finally:
        os.environ["COVERAGE_PROCESS_START"] = reach["settings"]
        reach["coverage"].start()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker reports that it has finished
def pytest_sessionfinish(session):
    reach = session.config.stash.get(REACH, None)
    if reach is None:
        return
    reach["coverage"].stop()
    reach["coverage"].save()
    if hasattr(session.config, "workerinput"):
        return  # the controller checks, once every worker has saved
    # Removed at exit: a worker started by the .pth saves again at its own exit, after this check.
    atexit.register(shutil.rmtree, reach["folder"], True)
    if session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or session.config.option.collectonly:
        return  # interrupted, nothing collected, a usage error: pytest's own status says it
    import coverage

    combined = coverage.Coverage(config_file=reach["settings"])
    combined.combine([reach["folder"]])
    reach["unreached"] = unreached_modules(combined.get_data())
    if reach["unreached"]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    reach = config.stash.get(REACH, None)
    if reach is None or "unreached" not in reach:
        return
    count = len(modules_with_functions())
    if reach["unreached"]:
        terminalreporter.write_line(f"--reach: the fast tier called into {count - len(reach['unreached'])} of the "
                                    f"{count} modules with functions; not into:", red=True)
        for module in reach["unreached"]:
            terminalreporter.write_line(f"  {module}", red=True)
    else:
        terminalreporter.write_line(f"--reach: the fast tier called into every one of the {count} modules with functions")
