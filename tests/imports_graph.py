"""The import graph of gramlib, read with ast (imports inside functions included), for the layering and
stage-dependency tests. Modules are named "<layer>.<module>" (e.g. "scenes.rooms")."""
import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gramlib"


def modules() -> set[str]:
    return {f"{p.parent.name}.{p.stem}" for p in PACKAGE.glob("*/*.py") if p.stem != "__init__"}


def _resolve(parts: list[str], names: list[str]) -> list[str]:
    """Modules named by ``from gramlib.<parts> import <names>``."""
    if len(parts) >= 2:
        return [".".join(parts[:2])]
    if len(parts) == 1:
        return [f"{parts[0]}.{n}" for n in names]
    return []  # from gramlib import __version__


def imports(module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every gramlib import in ``module``."""
    layer = module.split(".")[0]
    path = PACKAGE / (module.replace(".", "/") + ".py")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level == 0 and (node.module or "").split(".")[0] == "gramlib":
                parts = node.module.split(".")[1:]
            elif node.level == 1:
                parts = [layer] + (node.module.split(".") if node.module else [])
            elif node.level == 2:
                parts = node.module.split(".") if node.module else []
            elif node.level > 2:
                raise AssertionError(f"{path}:{node.lineno}: an import above the gramlib package")
            else:
                continue
            found += [(node.lineno, m) for m in _resolve(parts, names)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, ".".join(a.name.split(".")[1:3])) for a in node.names
                      if a.name.startswith("gramlib.")]
    return [(line, m) for line, m in found if m in modules()]


def notebook_imports(path: Path) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    found = set()
    for layer, module, names in re.findall(r"^\s*from gramlib\.(\w+)(?:\.(\w+))? import ([\w, ()]+)", code, re.M):
        found |= {f"{layer}.{module}"} if module else {f"{layer}.{n.strip(' ()')}" for n in names.split(",")}
    found |= {".".join(m) for m in re.findall(r"^\s*import gramlib\.(\w+)\.(\w+)", code, re.M)}
    return found & modules()


def closure(start: set[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(m for _, m in imports(module))
    return seen
