"""The package's import graph: no cycles, and the library never imports the benchmark harness.

Read from the source (AST), imports inside functions included, so a cycle that only closes
when some command runs is caught too.
"""

import ast
from pathlib import Path

import pix2color

PACKAGE = Path(pix2color.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(name: str, path: Path) -> set[str]:
    """The pix2color modules `name` imports: for `from a import b`, a.b if that is a module, else a."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target.startswith("pix2color") and target != name:
                found.add(target)
    return found


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def test_the_graph_is_read():
    assert "pix2color.networks.unet" in GRAPH["pix2color.networks"]
    assert "pix2color.networks.common" in GRAPH["pix2color.networks.unet"]
    assert "pix2color.training.gan" in GRAPH["pix2color.training.run"]


def test_no_import_cycles():
    """A module's own package __init__ runs before it, but that is not counted: only the
    imports written in the source are edges."""
    cycles = []
    state = {}  # name -> "open" while on the DFS path, "done" after

    def visit(name, path):
        state[name] = "open"
        for target in sorted(GRAPH.get(name, ())):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_library_never_imports_the_benchmarks():
    library = {name: targets for name, targets in GRAPH.items()
               if not (name == "pix2color.bench" or name.startswith("pix2color.bench."))}
    offenders = {name: sorted(t for t in targets if t == "pix2color.bench" or t.startswith("pix2color.bench."))
                 for name, targets in library.items()}
    assert not {name: targets for name, targets in offenders.items() if targets}
