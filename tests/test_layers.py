"""gramlib's layers: each subpackage imports only from its own layer and the ones below it (gramlib.LAYERS),
no import circles, no re-export façades, and no pipeline stage reaches the `interactive` layer."""
import ast

import pytest

import gramlib
from imports_graph import PACKAGE, ROOT, closure, imports, modules, notebook_imports

PIPELINE_NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def test_every_module_lives_in_a_declared_layer():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"], "modules belong in a layer's folder"
    folders = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders == set(gramlib.LAYERS), f"layer folders {sorted(folders)} vs gramlib.LAYERS {gramlib.LAYERS}"


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_imports_only_its_layer_and_those_below(module):
    rank = gramlib.LAYERS.index(module.split(".")[0])
    upward = [f"gramlib/{module.replace('.', '/')}.py:{line} imports gramlib.{target}"
              for line, target in imports(module) if gramlib.LAYERS.index(target.split(".")[0]) > rank]
    assert not upward, "an import against the layer order (gramlib.LAYERS, lowest first):\n" + "\n".join(upward)


def test_no_import_circles():
    graph = {m: {t for _, t in imports(m)} for m in modules()}
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_scan_sees_imports_of_every_form():
    assert {"core.config", "scenes.hrtf"} <= {t for _, t in imports("scenes.rirbank")}  # from ..core / from .
    assert {"model.gram", "model.mamba"} <= closure({"model.hear"})
    assert "train.loop" in closure(notebook_imports(ROOT / "notebooks" / "04_pretrain.ipynb"))


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_reexport_facades(module):
    tree = ast.parse((PACKAGE / (module.replace(".", "/") + ".py")).read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "__getattr__" not in names, f"gramlib.{module} forwards attributes with a module __getattr__"
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.lineno > 1:
            line = (PACKAGE / (module.replace(".", "/") + ".py")).read_text().splitlines()[node.lineno - 1]
            assert "re-export" not in line, f"gramlib.{module}:{node.lineno} re-exports: {line.strip()}"


def test_layer_packages_are_empty():
    for init in PACKAGE.glob("*/__init__.py"):
        body = [n for n in ast.parse(init.read_text()).body if not isinstance(n, ast.Expr)]
        assert not body, f"{init.relative_to(ROOT)} holds code: modules are imported by their own path"


@pytest.mark.parametrize("notebook", PIPELINE_NOTEBOOKS, ids=lambda p: p.stem)
def test_no_pipeline_stage_reaches_the_interactive_layer(notebook):
    reached = sorted(m for m in closure(notebook_imports(notebook)) if m.startswith("interactive."))
    assert not reached, f"{notebook.name} reaches {reached}: a pipeline stage must not import gramlib.interactive"


@pytest.mark.parametrize("module", sorted(modules()))
def test_an_import_inside_a_function_says_why(module):
    path = PACKAGE / (module.replace(".", "/") + ".py")
    lines = path.read_text().splitlines()
    silent = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    here, above = lines[sub.lineno - 1], lines[sub.lineno - 2].strip()
                    if "#" not in here and not above.startswith("#"):
                        silent.append(f"gramlib/{module.replace('.', '/')}.py:{sub.lineno}: {here.strip()}")
    assert not silent, "imports belong at the module top unless a comment says why they wait:\n" + "\n".join(silent)
