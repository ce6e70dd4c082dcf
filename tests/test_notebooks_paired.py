"""Every chapter exists as a jupytext percent .py (source of truth) and an output-free .ipynb in sync."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
REQUIRED_PARAMETERS = {"DATASET", "DATA_ROOT", "CATEGORIES", "QUICK", "DEVICE", "SEED"}


def _cells(notebook):
    return [
        (cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", []))) for cell in notebook.cells
    ]


def test_there_are_chapters():
    assert SOURCES, f"no chapter sources in {NOTEBOOKS}"
    assert SOURCES[0].stem == "00_introduction"


def test_every_ipynb_has_a_source():
    for path in NOTEBOOKS.glob("*.ipynb"):
        assert path.with_suffix(".py").exists(), f"{path.name} has no paired .py source"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync_and_without_outputs(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{source.name} has no paired {paired.name}: run `jupytext --sync {source}`"
    from_py = jupytext.read(source)
    from_ipynb = nbformat.read(paired, as_version=4)
    assert _cells(from_py) == _cells(from_ipynb), (
        f"{source.name} and {paired.name} differ: run `jupytext --sync {source}` and commit both"
    )
    outputs = sum(len(cell.get("outputs", [])) for cell in from_ipynb.cells if cell.cell_type == "code")
    assert outputs == 0, f"{paired.name} carries {outputs} outputs; commit it without outputs"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_parameters_cell(source):
    notebook = jupytext.read(source)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{source.name} needs exactly one cell tagged 'parameters', found {len(tagged)}"
    assigned = {
        target.id
        for node in ast.parse(tagged[0].source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert REQUIRED_PARAMETERS <= assigned, (
        f"{source.name} parameters cell lacks {REQUIRED_PARAMETERS - assigned}"
    )
