"""dvc.yaml lists, for every stage, each gramlib module its notebook can import (directly or through other
gramlib modules, including imports inside functions), so editing any of them makes the stage stale."""
import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gramlib"


def is_module(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file()


def module_imports(name: str) -> set[str]:
    """gramlib modules that ``gramlib/<name>.py`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("gramlib")):
            module = (node.module or "").removeprefix("gramlib").lstrip(".")
            found |= {module.split(".")[0]} if module else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("gramlib.")}
    return {m for m in found if is_module(m)}


def notebook_imports(path: Path) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    found = set(re.findall(r"\bgramlib\.(\w+)", code))
    for names in re.findall(r"from gramlib import ([\w, ()]+)", code):
        found |= {n.strip(" ()") for n in names.split(",")}
    return {m for m in found if is_module(m)}


def closure(modules: set[str]) -> set[str]:
    seen, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(module_imports(module))
    return seen


PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
STAGES = {name: stage.get("do", stage) for name, stage in PIPELINE.items()}  # a foreach stage: its `do` body


def test_the_import_scan_sees_known_imports():
    assert {"config", "paths"} <= closure(notebook_imports(ROOT / "notebooks" / "01_sources.ipynb"))
    assert "mamba" in closure({"model"}) and "model" in module_imports("train")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_every_module_it_imports(name):
    deps = STAGES[name]["deps"]
    notebooks = [ROOT / d for d in deps if d.endswith(".ipynb")]
    assert notebooks, f"stage {name} runs no notebook listed in its deps"
    needed = closure(set().union(*map(notebook_imports, notebooks)))
    listed = {Path(d).stem for d in deps if d.startswith("gramlib/")}
    assert not needed - listed, f"stage {name}: add to its deps in dvc.yaml: " + ", ".join(
        f"gramlib/{m}.py" for m in sorted(needed - listed))


def test_lock_holds_only_stages_the_pipeline_defines():
    """dvc repro keeps lock entries of removed variants; they must be pruned with the variant's results."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    variants = yaml.safe_load((ROOT / "params.yaml").read_text())["variants"]
    defined = {n for n, s in PIPELINE.items() if "foreach" not in s}
    defined |= {f"{n}@{v}" for n, s in PIPELINE.items() if "foreach" in s for v in variants}
    assert set(lock) <= defined, f"dvc.lock has stages dvc.yaml no longer defines: {sorted(set(lock) - defined)}"
