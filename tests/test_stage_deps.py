"""dvc.yaml lists, for every stage, the gramlib layer folders its notebook can reach (directly or through
other gramlib modules, imports inside functions included) -- all of them, and no others -- so editing a
module makes exactly the stages that can run it stale."""
from pathlib import Path

import re

import pytest
import yaml

from imports_graph import ROOT, closure, notebook_imports

PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
STAGES = {name: stage.get("do", stage) for name, stage in PIPELINE.items()}  # a foreach stage: its `do` body


def entry_modules(name: str) -> set[str]:
    """What a stage runs: its notebook's gramlib imports, or the module of a ``python -m gramlib.<layer>.<m>``."""
    notebooks = [ROOT / d for d in STAGES[name]["deps"] if d.endswith(".ipynb")]
    if notebooks:
        return set().union(*map(notebook_imports, notebooks))
    module = re.match(r"python -m gramlib\.(\w+\.\w+)", STAGES[name]["cmd"])
    assert module, f"stage {name} runs neither a notebook listed in its deps nor python -m gramlib.<layer>.<module>"
    return {module.group(1)}


def needed_layers(name: str) -> set[str]:
    return {m.split(".")[0] for m in closure(entry_modules(name))}


def listed_code(name: str) -> set[str]:
    return {d for d in STAGES[name]["deps"] if d.startswith("gramlib")}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_every_layer_it_reaches_and_no_other(name):
    listed = listed_code(name)
    assert "gramlib/__init__.py" in listed, f"stage {name}: gramlib/__init__.py (it pins the numerics) is a dep"
    for dep in listed - {"gramlib/__init__.py"}:
        assert (ROOT / dep).is_dir(), f"stage {name}: code dep {dep} is not a layer folder"
    listed = {Path(d).name for d in listed - {"gramlib/__init__.py"}}
    needed = needed_layers(name)
    assert not needed - listed, f"stage {name}: add to its deps in dvc.yaml: " + ", ".join(
        f"gramlib/{m}" for m in sorted(needed - listed))
    assert not listed - needed, f"stage {name}: its notebook no longer reaches, remove from dvc.yaml: " + ", ".join(
        f"gramlib/{m}" for m in sorted(listed - needed))


def test_editing_a_layer_re_runs_only_its_stages():
    """The layering's promise, stage by stage: figures code re-runs only the reports (`figures` and the model
    `cards`); training code no `evaluate`."""
    reaching = {layer: {n for n in STAGES if layer in needed_layers(n)} for layer in ("figures", "train", "corpus")}
    assert reaching["figures"] == {"figures", "cards"}
    assert "evaluate" not in reaching["train"] and "baselines" not in reaching["train"]
    assert reaching["corpus"] == {"sources"}  # later stages read the corpus through core.sourcefiles


def test_pycache_is_kept_out_of_folder_hashes():
    ignored = (ROOT / ".dvcignore").read_text().split()
    assert "__pycache__/" in ignored and "*.pyc" in ignored


def test_lock_holds_only_stages_the_pipeline_defines():
    """dvc repro keeps lock entries of removed variants; they must be pruned with the variant's results."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    variants = yaml.safe_load((ROOT / "params.yaml").read_text())["variants"]
    defined = {n for n, s in PIPELINE.items() if "foreach" not in s}
    defined |= {f"{n}@{v}" for n, s in PIPELINE.items() if "foreach" in s for v in variants}
    assert set(lock) <= defined, f"dvc.lock has stages dvc.yaml no longer defines: {sorted(set(lock) - defined)}"
