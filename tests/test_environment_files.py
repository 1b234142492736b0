"""The install routes agree: Binder's environment.yml pins what pyproject.toml pins (CPU builds of torch),
and postBuild installs the same no-deps extras the Makefile does."""
import os
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)\s*(#.*)?", line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_environment_yml_pins_what_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda and "pip" in conda
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = pins(pip_lines)
    got = {name: version.removesuffix("+cpu") for name, version in env_pins.items()}
    assert got == wanted, {k: (got.get(k), wanted.get(k)) for k in got.keys() | wanted.keys()
                           if got.get(k) != wanted.get(k)}
    assert env_pins["torch"].endswith("+cpu") and env_pins["torchaudio"].endswith("+cpu")


def test_postbuild_installs_the_no_deps_extras_and_the_package():
    post = ROOT / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    assert "pip install --no-deps -r requirements-nodeps.txt" in text and "pip install --no-deps -e ." in text
    assert "requirements-nodeps.txt" in (ROOT / "Makefile").read_text()
    assert pins((ROOT / "requirements-nodeps.txt").read_text().splitlines())  # pinned, not floating
