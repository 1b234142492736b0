"""The install routes agree: one lock (requirements.lock) of exact versions, installed without a resolver by
the Makefile and postBuild (Binder: the CPU builds of the same torch release); pyproject.toml's ranges, which
a library install into another environment resolves, admit every locked version."""
import os
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s#;]+)", line.strip())
        assert match, f"requirements.lock: {line!r} is not an exact pin (name==version)"
        found[norm(match.group(1))] = match.group(2)
    return found


def test_the_lock_pins_every_declared_dependency_inside_its_range():
    lock = locked()
    declared = PROJECT["dependencies"] + [r for extra in PROJECT["optional-dependencies"].values() for r in extra]
    for line in declared:
        req = Requirement(line)
        assert norm(req.name) in lock, f"{req.name} is declared in pyproject.toml but not locked"
        assert req.specifier.contains(lock[norm(req.name)], prereleases=True), \
            f"{req.name}=={lock[norm(req.name)]} (locked) is outside pyproject's range {req.specifier}"
    for name in ("slab", "tinysoundfont", "hearvalidator", "torch", "torchaudio"):  # the no-deps ones, and torch
        assert name in lock, f"{name} is not locked"
    assert lock["torch"] == lock["torchaudio"], "torch and torchaudio must be the same release"


def test_library_install_is_not_pinned_and_admits_python_3_11_to_3_13():
    assert PROJECT["requires-python"] == ">=3.11,<3.14"
    for line in PROJECT["dependencies"]:
        assert "==" not in line, f"pyproject pins {line}: a library install must fit other environments"


def test_every_route_installs_the_lock_without_a_resolver():
    make = (ROOT / "Makefile").read_text()
    assert "pip install -q --no-deps --ignore-requires-python -r requirements.lock" in make
    assert "$(STAMP): pyproject.toml requirements.lock" in make  # a changed lock re-installs
    post = ROOT / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    assert "requirements.lock" in text and "--no-deps" in text and "pip install --no-deps -e ." in text
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["dependencies"] == ["python=3.11", "pip"], "environment.yml keeps no pins of its own: the lock has them"
    assert not (ROOT / "requirements-nodeps.txt").exists()


def test_postbuild_turns_the_lock_into_cpu_torch_of_the_same_release(tmp_path):
    """Run postBuild's filter (its grep and sed) on the lock: CUDA wheels out, torch/torchaudio +cpu."""
    text = (ROOT / "postBuild").read_text()
    grep = re.search(r"grep -v -E '([^']+)'", text).group(1)
    sed = re.search(r"sed -E '([^']+)'", text).group(1)
    pattern, repl = re.fullmatch(r"s/(.+)/(.+)/", sed).groups()
    lines = [ln for ln in (ROOT / "requirements.lock").read_text().splitlines() if not re.match(grep, ln)]
    lines = [re.sub(pattern, repl.replace(r"\1", r"\g<1>").replace(r"\2", r"\g<2>"), ln) for ln in lines]
    lock = locked()
    assert f"torch=={lock['torch']}+cpu" in lines and f"torchaudio=={lock['torchaudio']}+cpu" in lines
    assert not [ln for ln in lines if ln.startswith(("nvidia-", "triton=="))]
