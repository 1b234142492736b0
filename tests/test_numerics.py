"""Pinned numerics (gramlib.core.numerics): the settings come from params.yaml, and under them an embedding
pass, GRAM training steps and the probes give the same bits with other work loading the CPU, with
fewer cores available and with MKL restricted to a smaller instruction set (what another CPU looks
like to it). The ridge probe's bits do not depend on the thread count either; the rest does, which is
why thread counts come from params."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gramlib.core import config, numerics

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "tests" / "numerics_workload.py"


def pinned_env(threads: int, **extra: str) -> dict:
    params = config.load_params(ROOT / "params.yaml")
    env = dict(os.environ, **numerics.environment(config.section(params, "numerics"), threads), **extra)
    env.pop("MKL_ENABLE_INSTRUCTIONS", None) if "MKL_ENABLE_INSTRUCTIONS" not in extra else None
    return env


def run_workload(env: dict, prefix: tuple[str, ...] = ()) -> dict:
    done = subprocess.run([*prefix, sys.executable, str(WORKLOAD)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def digests(out: dict) -> dict:
    return {k: v for k, v in out.items() if k != "settings"}


@pytest.fixture(scope="module")
def reference():
    return run_workload(pinned_env(2))


def test_settings_come_from_params():
    params = config.load_params(ROOT / "params.yaml")
    cfg = config.section(params, "numerics")
    env = numerics.environment(cfg, numerics.stage_threads(params, "evaluate"))
    assert env["ATEN_CPU_CAPABILITY"] == cfg.cpu_capability and env["MKL_CBWR"] == cfg.mkl_cbwr
    assert env["OMP_NUM_THREADS"] == str(cfg.threads["evaluate"])
    train_threads = config.resolve_variant(params, "gram-binaural")[2].torch_threads
    assert numerics.stage_threads(params, "pretrain", "gram-binaural") == train_threads
    with pytest.raises(config.ConfigError, match="unknown stage"):
        numerics.stage_threads(params, "training")
    with pytest.raises(config.ConfigError, match="needs its variant"):
        numerics.stage_threads(params, "pretrain")


def test_the_dataclass_defaults_are_params_yaml():
    raw = config.load_params(ROOT / "params.yaml")["numerics"]
    assert config.build(config.NumericsConfig, raw, "numerics") == config.NumericsConfig()


def test_every_stage_runs_through_the_pinning_runner():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    no_kernels = {"cards": "python -m gramlib.figures.cards "}  # reads JSON, writes markdown: nothing to pin
    for name, stage in stages.items():
        cmd = stage.get("do", stage)["cmd"]
        assert cmd.startswith(no_kernels.get(name, f"python -m gramlib.core.stage {name} ")), f"stage {name}: {cmd}"
    cards = (ROOT / "gramlib" / "figures" / "cards.py").read_text()
    assert not re.search(r"^\s*(import|from) (torch|numpy)", cards, re.M)  # it stays a stage without numerics


@pytest.mark.slow  # subprocess workloads
def test_the_workload_runs_the_pinned_kernels(reference):
    settings = reference["settings"]
    assert settings["pinned"] and settings["capability"] == "AVX2" and not settings["onednn"]
    assert settings["threads"] == 2 and settings["MKL_CBWR"] == "COMPATIBLE"


@pytest.mark.slow  # subprocess workloads
def test_same_bits_under_concurrent_load(reference):
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded = run_workload(pinned_env(2))
    finally:
        for proc in busy:
            proc.kill()
    assert digests(loaded) == digests(reference)


@pytest.mark.slow  # subprocess workloads
@pytest.mark.skipif(shutil.which("taskset") is None or (os.cpu_count() or 1) < 2, reason="needs taskset, 2 cores")
def test_same_bits_on_one_core_with_the_same_thread_count(reference):
    assert digests(run_workload(pinned_env(2), ("taskset", "-c", "0"))) == digests(reference)


@pytest.mark.slow  # subprocess workloads
def test_same_bits_when_mkl_sees_a_smaller_cpu(reference):
    assert digests(run_workload(pinned_env(2, MKL_ENABLE_INSTRUCTIONS="AVX2"))) == digests(reference)


@pytest.mark.slow  # subprocess workloads
def test_ridge_probe_bits_do_not_depend_on_the_thread_count(reference):
    one = run_workload(pinned_env(1))
    assert one["ridge"] == reference["ridge"]
    assert one["settings"]["threads"] == 1


def test_pinning_after_torch_was_imported_is_refused():
    code = ("import os, torch\nfrom gramlib.core import numerics\n"
            "try:\n    numerics.apply_environment({'ATEN_CPU_CAPABILITY': 'avx2'})\n"
            "except numerics.NumericsError as err:\n    print('refused:', err)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "GRAM_PINNED")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "refused: torch was imported before" in done.stdout, done.stderr[-1000:]


def test_a_process_that_missed_the_pinned_capability_is_stopped():
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    env.update(GRAM_PINNED="1", OMP_NUM_THREADS="1")
    code = ("import os, torch\ntorch.ones(8).exp().sum()  # the kernels are chosen here, unpinned\n"
            "os.environ['ATEN_CPU_CAPABILITY'] = 'avx2'\nimport gramlib\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if "AVX512" not in subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu."
                                       "get_cpu_capability())"], env=env, capture_output=True, text=True).stdout:
        pytest.skip("this CPU runs AVX2 kernels by default: nothing to miss")
    assert done.returncode != 0 and "not the pinned AVX2" in done.stderr, done.stderr[-1000:]


def test_stage_log_prefixes_lines_and_throttles_progress_bars():
    import io

    from gramlib.core.stage import StageLog

    now = [0.0]
    out = io.StringIO()
    log = StageLog("pretrain@x", out, every_s=5.0, clock=lambda: now[0])
    log.write("hello\n")
    for step in range(1, 11):  # a bar redrawn every second for 10 s
        now[0] = float(step)
        log.write(f"\rpretrain: {step}/10")
    log.write("half a ")
    log.write("line\n")
    log.write("\rlast: 10/10")
    log.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "pretrain@x | hello" and all(line.startswith("pretrain@x | ") for line in lines)
    bars = [line for line in lines if "pretrain:" in line]
    assert bars == ["pretrain@x | pretrain: 1/10", "pretrain@x | pretrain: 6/10",  # at most one per 5 s ...
                    "pretrain@x | pretrain: 10/10"]  # ... and the bar's last state before the next line
    assert "pretrain@x | half a line" in lines and lines[-1] == "pretrain@x | last: 10/10"


def test_a_failing_stage_names_the_stage_the_cell_and_the_error(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('working')"), nbformat.v4.new_code_cell("1 / 0")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "bad.ipynb")
    done = subprocess.run([sys.executable, "-m", "gramlib.core.stage", "figures", str(tmp_path / "bad.ipynb"),
                           str(tmp_path / "out.ipynb")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "figures | working" in lines
    assert "stage figures failed" in lines[-1] and "cell 2" in lines[-1] and "ZeroDivisionError" in lines[-1]
    assert "TCP" not in done.stderr
