"""Notebooks stay thin: a parameters cell, calls into gramlib, plots -- and no stored outputs."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
FORBIDDEN = re.compile(r"^\s*(def |class |async def |lambda\b)|sys\.path|^\s*(from \S+ )?import \*", re.M)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7, [n.name for n in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_thin_and_stripped(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    assert nb["cells"][0]["cell_type"] == "markdown", f"{path.name}: starts with a title cell"
    for cell in code:
        src = "".join(cell["source"])
        assert not FORBIDDEN.search(src), f"{path.name}: def/class/lambda/sys.path/star import in:\n{src}"
        assert not cell.get("outputs"), f"{path.name}: outputs must be stripped"
        assert cell.get("execution_count") is None, f"{path.name}: execution counts must be stripped"


def test_forbidden_pattern_catches_what_it_should():
    for bad in ["def f():\n pass", "class A: pass", "import sys; sys.path.append('x')", "from os import *"]:
        assert FORBIDDEN.search(bad), bad
    assert not FORBIDDEN.search("from gramlib import plots\nplots.figure_2(df)")
