"""Cross-check gramlib.eval.probes against heareval's own predictions runner on the same embeddings.

Builds a small synthetic k-fold scene task directly as pre-computed embeddings (noisy class centroids,
so the score is well below 1 and the folds disagree a little), writes it in heareval's embeddings-dir
format, runs ``heareval.predictions.runner`` on it in a separate venv, runs
:func:`gramlib.eval.probes.evaluate_task` on the same arrays with the ``full`` grid, and prints both scores,
heareval's fold-to-fold std and whether they agree (|mean difference| <= heareval's fold std).

    .venv/bin/python bench/heareval_crosscheck.py [--python /tmp/hevenv/venv/bin/python] [--workdir DIR]

heareval venv (Python 3.11, as ``reference/hear-and-sources.md`` §A0; heareval's own pins, numpy 1.19.2
and numba 0.48, cannot install on 3.11)::

    python3.11 -m venv /tmp/hevenv/venv
    /tmp/hevenv/venv/bin/pip install torch==2.13.0 "pytorch-lightning==1.9.5" "setuptools<81" click \\
        dcase-util intervaltree more-itertools numpy pandas python-slugify sed-eval soundfile torchinfo \\
        tqdm scikit-learn scipy
    /tmp/hevenv/venv/bin/pip install --no-deps heareval==2021.1.3

It is run through a small launcher written next to the task (see ``LAUNCHER``) that applies three
run-time fixes without touching site-packages: a ``tensorflow`` stub module with a ``__spec__`` (heareval
imports tensorflow at module level, torch's dynamo calls ``find_spec("tensorflow")``),
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (heareval's checkpoints hold torch classes, torch >= 2.6 refuses
them by default) and a settable ``FitLoop.current_epoch`` (needed by event tasks only; hear-eval-kit#432).
The runner gets ``--grid default --grid-points 8`` (heareval's defaults), one torch thread, and a
temporary working directory for its Lightning logs/checkpoints.

Label layout written (heareval's ``SplitMemmapDataset``): ``task_metadata.json``, ``labelvocabulary.csv``
(``idx,label``), and per fold ``<fold>.json`` (``{file: [label]}``), ``<fold>.embeddings.npy`` (a raw
float32 memmap, not an .npy file), ``<fold>.embedding-dimensions.json`` (``[n, D]``) and
``<fold>.target-labels.pkl`` (a list of label lists in embedding order).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gramlib.core.config import EvaluateConfig
from gramlib.eval.probes import evaluate_task, probe_grid

METRICS = ["top1_acc", "mAP", "d_prime", "aucroc"]
LAUNCHER = '''\
import importlib.machinery, importlib.util, os, sys, types
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
if importlib.util.find_spec("tensorflow") is None:
    stub = types.ModuleType("tensorflow")
    stub.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None)
    stub.Module = type("Module", (), {})
    stub.test = types.SimpleNamespace(is_gpu_available=lambda *a, **k: True)
    sys.modules["tensorflow"] = stub
import torch
torch.set_num_threads(1)
from pytorch_lightning.loops.fit_loop import FitLoop
if not isinstance(getattr(FitLoop, "current_epoch", None), property):
    FitLoop.current_epoch = property(lambda self: self.epoch_progress.current.completed,
                                     lambda self, v: setattr(self.epoch_progress.current, "completed", v))
from heareval.predictions.runner import runner
runner(prog_name="heareval.predictions.runner")
'''


def synthetic_task(n_folds: int, per_fold: int, n_classes: int, dim: int, noise: float, seed: int):
    """Embeddings and labels of a k-fold scene task: class centroid + isotropic noise, classes balanced."""
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(n_classes, dim))
    folds = [f"fold{i:02d}" for i in range(n_folds)]
    embeddings, labels = {f: {} for f in folds}, {f: {} for f in folds}
    for f in folds:
        for i in range(per_fold):
            c, name = i % n_classes, f"{f}-clip{i:03d}.wav"
            embeddings[f][name] = (centroids[c] + noise * rng.normal(size=dim)).astype(np.float32)
            labels[f][name] = [f"class{c}"]
    metadata = {"task_name": "crosscheck_synth", "version": "v1", "mode": "full", "embedding_type": "scene",
                "prediction_type": "multiclass", "split_mode": "new_split_kfold", "nfolds": n_folds,
                "splits": folds, "sample_duration": 1.0, "evaluation": METRICS}
    return metadata, embeddings, labels, [f"class{c}" for c in range(n_classes)]


def write_heareval_dir(task_dir: Path, metadata: dict, embeddings: dict, labels: dict, vocabulary: list) -> None:
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "task_metadata.json").write_text(json.dumps(metadata, indent=2))
    (task_dir / "labelvocabulary.csv").write_text("idx,label\n" + "".join(f"{i},{v}\n" for i, v in enumerate(vocabulary)))
    for split in metadata["splits"]:
        files = sorted(embeddings[split])
        matrix = np.stack([embeddings[split][f] for f in files]).astype(np.float32)
        matrix.tofile(task_dir / f"{split}.embeddings.npy")  # raw memmap layout
        (task_dir / f"{split}.embedding-dimensions.json").write_text(json.dumps(list(matrix.shape)))
        (task_dir / f"{split}.json").write_text(json.dumps({f: labels[split][f] for f in files}))
        with open(task_dir / f"{split}.target-labels.pkl", "wb") as fh:
            pickle.dump([labels[split][f] for f in files], fh)


def run_heareval(python: str, task_dir: Path, workdir: Path) -> tuple[dict, list[dict], float]:
    """heareval's test.predicted-scores.json, its grid order (from prediction.log) and the wall time."""
    launcher = workdir / "heareval_launcher.py"
    launcher.write_text(LAUNCHER)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    start = time.perf_counter()
    target = str(task_dir.relative_to(workdir))  # heareval writes logs/<this path>/ under its cwd
    proc = subprocess.run([python, str(launcher), target, "--grid", "default", "--grid-points", "8"],
                          cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (workdir / "heareval.out").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"heareval failed (rc={proc.returncode}); last output:\n{(proc.stdout + proc.stderr)[-3000:]}")
    grid = []
    for line in (task_dir / "prediction.log").read_text().splitlines():
        m = re.search(r"Grid point \d+ of \d+: .*'hidden_layers': (\d+).*'initialization': <function (\w+)_ .*'lr': ([\d.e-]+)", line)
        if m:
            grid.append({"hidden_layers": int(m.group(1)), "initialization": m.group(2), "lr": float(m.group(3))})
    shutil.rmtree(workdir / "logs", ignore_errors=True)  # Lightning checkpoints of every grid point (~70 MB)
    return json.loads((task_dir / "test.predicted-scores.json").read_text()), grid, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=os.environ.get("HEAREVAL_PYTHON", "/tmp/hevenv/venv/bin/python"),
                    help="python of the heareval venv")
    ap.add_argument("--workdir", default=None, help="where to write the task and heareval's logs (default: a temp dir)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--per-fold", type=int, default=40)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--noise", type=float, default=4.0)
    args = ap.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="heareval-crosscheck-"))
    metadata, embeddings, labels, vocabulary = synthetic_task(args.folds, args.per_fold, args.classes, args.dim,
                                                              args.noise, seed=0)
    task_dir = workdir / "embeddings" / "synthetic" / "crosscheck_synth-v1-full"
    write_heareval_dir(task_dir, metadata, embeddings, labels, vocabulary)
    print(f"task: {args.folds} folds x {args.per_fold} clips, {args.classes} classes, {args.dim}-D; workdir {workdir}")

    heareval, heareval_grid, he_seconds = run_heareval(args.python, task_dir, workdir)
    ours_grid = [{k: p[k] for k in ("hidden_layers", "initialization", "lr")} for p in probe_grid("full")]
    print(f"grid order identical to heareval's: {ours_grid == heareval_grid}")
    agg = heareval["aggregated_scores"]
    rows = []
    for standardize in (False, True):
        cfg = EvaluateConfig(probe_grid="full", max_epochs=500, patience_checks=20, check_every=3,
                             standardize_inputs=standardize)
        ours = evaluate_task(embeddings, metadata, labels, vocabulary, cfg)
        rows.append((standardize, ours))
    print(f"heareval: {he_seconds:.0f} s, best {heareval['hparams']['hidden_layers']} layer(s), "
          f"lr {heareval['hparams']['lr']}, init {heareval['hparams']['initialization'].split()[1]}")
    for standardize, ours in rows:
        print(f"gramlib (standardize_inputs={standardize}): {ours['seconds']:.0f} s, best {ours['best_params']}")
    print(f"{'metric':10s} {'heareval mean ± fold std':>26s} {'gramlib raw':>20s} {'gramlib std-in':>20s}  agree")
    all_agree = True
    for name in METRICS:
        h_mean, h_std = agg[f"test_{name}_mean"], agg[f"test_{name}_std"]
        cells, agree = [], True
        for _, ours in rows:
            cells.append(f"{ours[name]:.3f} ± {ours[name + '_std']:.3f}")
            agree &= abs(ours[name] - h_mean) <= h_std
        all_agree &= agree
        print(f"{name:10s} {h_mean:17.3f} ± {h_std:.3f} {cells[0]:>20s} {cells[1]:>20s}  {agree}")
    folds = sorted(k for k in heareval if k.startswith("fold"))
    print("per-fold top1 heareval:", [round(heareval[f]["test_top1_acc"], 3) for f in folds])
    for standardize, ours in rows:
        print(f"per-fold top1 gramlib (std-in={standardize}):", [round(r["scores"]["top1_acc"], 3) for r in ours["folds"]])
    print("AGREE" if all_agree else "DISAGREE", "(|gramlib mean - heareval mean| <= heareval fold std, every metric)")
    summary = {"agree": bool(all_agree), "heareval": heareval, "heareval_seconds": he_seconds,
               "gramlib": {f"standardize_inputs={s}": {k: v for k, v in o.items() if k != "grid"} for s, o in rows}}
    (workdir / "crosscheck.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"written: {workdir / 'crosscheck.json'}")


if __name__ == "__main__":
    main()
