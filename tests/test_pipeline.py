"""The integration test: the whole `dvc repro` in the `smoke` profile, in a clean copy of the repo.

Runs every stage's notebook through papermill (sources -> rooms -> nathear -> pretrain@* ->
evaluate@* -> baselines -> seld -> figures), then checks that every declared metrics file parses,
every declared figure and table exists, and the metrics carry real numbers. About 10 minutes on 2 cores.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # a whole pipeline / notebook run: `make test-fast` skips it

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def project_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return [f for f in out if (ROOT / f).is_file() and not f.startswith(("results/", "figures/"))]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A copy of the tracked sources (no results, data or models), run with profile: smoke."""
    work = tmp_path_factory.mktemp("smoke") / "repo"
    for name in project_files():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, work / name)
    params = (work / "params.yaml").read_text()
    (work / "params.yaml").write_text(params.replace("\nprofile: cpu\n", "\nprofile: smoke\n", 1))
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "TQDM_MININTERVAL": "5",
           "GRAM_PARAMS_READ_LOG": str(work / "params-read.log")}
    env.pop("MPLBACKEND", None)
    subprocess.run(["dvc", "config", "--local", "core.no_scm", "true"], cwd=work, env=env, check=True)
    proc = subprocess.run(["dvc", "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"dvc repro failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return work, env


def interpolate(work: Path, text: str, key: str | None = None) -> str:
    """``text`` with dvc.yaml's ``${key}`` (a foreach key) and ``${a.b}`` (a params.yaml value) filled in."""
    params = yaml.safe_load((work / "params.yaml").read_text())

    def value(path: str):
        node = params
        for part in path.split("."):
            node = node[part]
        return node

    return re.sub(r"\$\{([\w.]+)\}", lambda m: key if m.group(1) == "key" else str(value(m.group(1))), text)


def declared(work: Path, key: str) -> list[Path]:
    """Every metrics/plots path that dvc.yaml declares, with foreach stages expanded."""
    dvc = yaml.safe_load((work / "dvc.yaml").read_text())
    variants = yaml.safe_load((work / "params.yaml").read_text())["variants"]
    paths = []
    for stage in dvc["stages"].values():
        body, keys = (stage["do"], list(variants)) if "foreach" in stage else (stage, [None])
        for k in keys:
            for entry in body.get(key, []):
                name = next(iter(entry)) if isinstance(entry, dict) else entry
                paths.append(work / interpolate(work, name, k))
    return paths


def test_pipeline_declared_metrics_parse(smoke_run):
    work, _ = smoke_run
    metrics = declared(work, "metrics")
    assert len(metrics) > 50
    for path in metrics:
        assert path.is_file(), path
        json.loads(path.read_text())


def test_dvc_metrics_show_reads_everything(smoke_run):
    work, env = smoke_run
    out = subprocess.run(["dvc", "metrics", "show", "--json"], cwd=work, env=env, check=True,
                         capture_output=True, text=True).stdout
    shown = json.loads(out)
    files = {Path(f).as_posix(): v for run in shown.values() for f, v in run.get("data", {}).items()}
    declared_files = {p.relative_to(work).as_posix() for p in declared(work, "metrics")}
    missing = sorted(declared_files - set(files))
    assert not missing, f"dvc metrics show does not list {len(missing)} declared files, e.g. {missing[:5]}"
    broken = sorted(f for f in declared_files if "error" in files[f] or not files[f].get("data"))
    assert not broken, f"dvc metrics show could not read {broken[:5]}"


def test_every_figure_and_table_exists(smoke_run):
    from gramlib.figures.plots import FIGURES
    from gramlib.figures.tables import TABLES

    work, _ = smoke_run
    for name in FIGURES:
        assert (work / "figures" / name).stat().st_size > 1000, name
    for name in TABLES:
        assert (work / "results" / "tables" / name).is_file(), name


def test_metrics_hold_real_numbers(smoke_run):
    work, _ = smoke_run
    result = json.loads((work / "results" / "eval" / "gram-ambisonics.json").read_text())
    first = result["tasks"]["nathear-foa/words-loc"]
    assert 0.0 <= first["median_angular_error_deg"] <= 180.0
    scores = [r[r["first_metric"]] for r in result["tasks"].values()]
    assert all(math.isfinite(s) for s in scores)
    train = json.loads((work / "models" / "gram-ambisonics" / "train_summary.json").read_text())
    assert math.isfinite(train["final_loss"]) and train["steps"] > 0


def test_pretrain_plots_are_declared_and_written(smoke_run):
    work, _ = smoke_run
    for path in declared(work, "plots"):
        assert (path / "train" / "loss.tsv").is_file(), path


def listed_params(work: Path, label: str) -> set[str]:
    """The params dvc.yaml lists for stage ``label`` ("pretrain@mamba", "figures"), interpolations resolved."""
    dvc = yaml.safe_load((work / "dvc.yaml").read_text())
    name, _, key = label.partition("@")
    body = dvc["stages"][name].get("do", dvc["stages"][name])
    return {interpolate(work, p, key) for p in body.get("params", [])}


def test_every_params_key_a_stage_reads_is_listed_for_it(smoke_run):
    """A section, seed or variant a stage's code reads and dvc.yaml does not list would not make it stale."""
    work, _ = smoke_run
    reads: dict[str, set[str]] = {}
    for line in (work / "params-read.log").read_text().splitlines():
        label, key = line.split("\t")
        if label != "?":  # the stage runner's own reads, before the kernel starts
            reads.setdefault(label, set()).add(key)
    assert {"sources", "rooms", "nathear", "figures", "baselines", "seld"} <= set(reads)
    missing = {}
    for label, keys in sorted(reads.items()):
        listed = listed_params(work, label)
        unlisted = sorted(k for k in keys if not any(l == k or l.startswith(k + ".") or k.startswith(l + ".")
                                                     for l in listed))
        if unlisted:
            missing[label] = unlisted
    assert not missing, f"stages read params that dvc.yaml does not list for them: {missing}"


def test_every_table_and_figure_the_figures_stage_writes_is_declared(smoke_run):
    work, _ = smoke_run
    outs = {next(iter(o)) if isinstance(o, dict) else o
            for o in yaml.safe_load((work / "dvc.yaml").read_text())["stages"]["figures"]["outs"]}
    written = {str(p.relative_to(work)) for folder in ("results/tables", "figures") for p in (work / folder).iterdir()}
    assert written - {"results/tables/summary.json"} <= outs, sorted(written - outs)


def test_every_model_folder_has_a_card_with_its_scores(smoke_run):
    """The cards stage: models/<variant>/README.md, its model-index equal to results/eval/<variant>.json."""
    work, _ = smoke_run
    for variant in yaml.safe_load((work / "params.yaml").read_text())["variants"]:
        card = (work / "models" / variant / "README.md").read_text()
        front = yaml.safe_load(card.split("---\n")[1])
        metrics = json.loads((work / "results" / "eval" / f"{variant}.json").read_text())
        results = front["model-index"][0]["results"]
        assert front["model-index"][0]["name"] == variant and results
        for result in results:
            task = metrics["tasks"][result["dataset"]["type"]]
            assert result["metrics"][0]["value"] == pytest.approx(task[task["first_metric"]], abs=1e-6)
        assert "hear.load_model" in card


def test_gram_pretrain_trains_and_resumes_a_variant_outside_dvc(smoke_run, tmp_path):
    """`gram pretrain` on the smoke run's data, in another project folder: trains, then resumes to the same bits."""
    work, env = smoke_run
    (tmp_path / "params.yaml").write_text((work / "params.yaml").read_text())
    (tmp_path / "data").symlink_to(work / "data")
    steps = yaml.safe_load((work / "params.yaml").read_text())["profiles"]["smoke"]["train"]["steps_main"]
    weights = tmp_path / "models" / "gram-binaural" / "model.safetensors"

    def pretrain(*args) -> bytes:
        done = subprocess.run([str(BIN / "gram"), "pretrain", "--variant", "gram-binaural", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.strip().splitlines()[-1])["steps"] == steps
        return weights.read_bytes()

    assert pretrain("--fresh") == pretrain()  # resuming a finished run changes nothing
