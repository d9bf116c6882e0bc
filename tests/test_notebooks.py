"""Every notebook runs top to bottom, offline, in a tiny configuration; outputs are stripped."""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TINY_TRAINING = 'IMAGE_SIZE = 32\nEPOCHS = 1\nSTEPS_PER_EPOCH = 2\nUSE_DRIVE = False\n'  # notebook 01's, RUN_NAME apart


def execute(name: str, overrides: str, workdir: Path):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(overrides))
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return notebook


def outputs_text(notebook) -> str:
    return "\n".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("notebooks")


def train_tiny_run_unless_there(workdir: Path) -> None:
    """Notebook 01's tiny run (runs/tiny), which later notebooks read: trained here unless
    test_01_train trained it already."""
    if not (workdir / "runs" / "tiny" / "generator.keras").exists():
        execute("01_train_colorizer.ipynb", TINY_TRAINING + 'RUN_NAME = "tiny"', workdir)


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebooks_are_stripped_and_have_a_badge(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in notebook.cells if cell.cell_type == "code")
    assert "colab.research.google.com" in notebook.cells[0].source
    assert any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells)


@pytest.mark.slow
def test_01_train(workdir):
    notebook = execute("01_train_colorizer.ipynb", TINY_TRAINING + 'RUN_NAME = "tiny"', workdir)
    text = outputs_text(notebook)
    assert "1 epochs, 2 steps" in text
    assert (workdir / "runs" / "tiny" / "generator.keras").exists()
    picked = re.search(r"Precision: (float32|bfloat16|float16) \(auto: [^)]+\)", text)  # what auto picked, and why
    assert picked and f"trained in {picked.group(1)}" in text, text[-2000:]


@pytest.mark.slow
def test_02_colorize_and_export(workdir):
    train_tiny_run_unless_there(workdir)
    notebook = execute("02_colorize_and_export.ipynb", 'MODEL = "runs/tiny"\nTFLITE_VARIANTS = ("float32",)', workdir)
    text = outputs_text(notebook)
    assert "sizes kept: True" in text and "generator_deterministic_float32.tflite" in text
    assert len(list((workdir / "colorized").glob("*.png"))) == 4
    assert (workdir / "exported" / "savedmodel" / "saved_model.pb").exists()


@pytest.mark.slow
def test_01_with_the_resnet18_generator(workdir):
    """Notebook 01's path with the pretrained variant (its encoder untrained: no ImageNet here). What
    notebook 02 does with such a run, colorize and export, test_training's ResNet-18 run does."""
    notebook = execute("01_train_colorizer.ipynb", TINY_TRAINING + 'RUN_NAME = "tiny-resnet"\nGENERATOR = "resnet18"\n'
                       'ENCODER_WEIGHTS = "none"', workdir)
    assert "1 epochs, 2 steps" in outputs_text(notebook)
    assert json.loads((workdir / "runs" / "tiny-resnet" / "run.json").read_text())["generator"] == "resnet18"


@pytest.mark.slow
def test_03_evaluate(workdir):
    train_tiny_run_unless_there(workdir)
    notebook = execute("03_evaluate.ipynb", 'MODEL = "runs/tiny"\nABLATION_CONFIGS = ("4", "11")\nABLATION_STEPS = 2\n'
                       'ABLATION_IMAGE_SIZE = 32\nFEATURE_WEIGHTS = "none"', workdir)
    assert "Inception-v3 with random weights" in outputs_text(notebook)
    assert (workdir / "worst.png").exists()
    assert "| 11 (l1-only)" in (workdir / "runs" / "ablation" / "ablation.md").read_text()


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_every_name_a_notebook_imports_from_pix2color_is_there(name):
    """The fast tier's guard for the slow runs below: each `from pix2color... import a, b` of a
    code cell names a module and names that exist (a renamed module breaks a notebook first)."""
    import importlib

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    missing = []
    for cell in notebook.cells:
        for module, names in re.findall(r"^\s*from (pix2color[\w.]*) import ([\w, ]+)$", cell.source, re.M):
            try:
                imported = importlib.import_module(module)
            except ImportError:
                missing.append(module)
                continue
            missing += [f"{module}.{item}" for item in (n.strip().split(" as ")[0] for n in names.split(","))
                        if not hasattr(imported, item) and importlib.util.find_spec(f"{module}.{item}") is None]
    assert not missing, missing
