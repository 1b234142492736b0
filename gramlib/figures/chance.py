"""Chance rows: what a constant predictor, fitted on each task's training labels, scores on its test items.

A model's score means little until it is set beside what needs no audio at all. For each task of each
suite, per fold as the probes split it (:func:`gramlib.eval.probes.data_splits`), the constant is fitted on
that fold's train and valid labels and scored on its test items with the task's own metrics:

=================  ============================================================================
classification      the majority class (ties: the first in vocabulary order)
localization        the best constant direction: of 4,096 near-uniform directions on the sphere and
                    the mean label direction, the one with the lowest median angular error on the
                    training labels
T60 (regression)    the median training label (what minimises the absolute error)
events (dcase)      no event at all (no interval: the score of an empty prediction)
=================  ============================================================================

The result has the shape of a metrics file (``name`` "constant", ``kind`` "constant"), with per-item
predictions and 95 % bootstrap intervals, so the tables show it as a row beside the models.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import stats
from ..core.sourcefiles import tasks_source
from ..core.tasks import list_tasks, read_task, task_kind
from ..eval import metrics
from ..eval.probe_data import encode_label
from ..eval.probes import data_splits

NAME = "constant"
N_DIRECTIONS = 4096


def sphere_directions(n: int = N_DIRECTIONS) -> np.ndarray:
    """(n, 3) unit vectors spread near-uniformly over the sphere (a Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + 5 ** 0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def best_direction(train: np.ndarray) -> np.ndarray:
    """The constant direction with the lowest median angular error on the (n, 3) unit ``train`` labels."""
    mean = train.mean(axis=0)
    candidates = sphere_directions()
    if np.linalg.norm(mean) > 0:
        candidates = np.vstack([mean / np.linalg.norm(mean), candidates])
    cos = np.clip(train @ candidates.T, -1.0, 1.0)  # (n, candidates)
    return candidates[int(np.argmin(np.median(np.degrees(np.arccos(cos)), axis=0)))]


def _fit_predict(kind: str, train_y: np.ndarray, n_test: int, n_classes: int) -> np.ndarray:
    if kind == "multiclass":
        majority = np.bincount(train_y.astype(np.int64), minlength=n_classes).argmax()
        return np.eye(n_classes)[np.full(n_test, majority)]  # one-hot scores: argmax is the majority class
    if kind == "localization":
        return np.tile(best_direction(train_y), (n_test, 1))
    if kind == "regression":
        return np.full(n_test, float(np.median(train_y)))
    raise ValueError(f"no constant predictor for task kind {kind!r}")


def constant_task(task_dir: Path | str, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """One task's entry (the shape of a metrics file's ``tasks`` value) for the constant predictor."""
    task = read_task(task_dir)
    kind, names = task_kind(task.metadata), list(task.metadata["evaluation"])
    index = {label: i for i, label in enumerate(task.vocabulary)}
    per_fold, items = [], []
    for split in data_splits(task.metadata):
        if kind == "event":  # no event predicted in any test file
            test = split["test"][0]
            truth = {f: [dict(e, label=str(e["label"])) for e in task.labels(test)[f]] for f in task.files(test)}
            per_fold.append({n: metrics.score(n, {f: [] for f in truth}, truth) for n in names})
            items.append((list(truth), {f: [] for f in truth}, truth))
            continue
        fit = [s for part in ("train", "valid") for s in split[part]]
        train_y = np.array([encode_label(task.labels(s)[f], kind, index, f"{s}/{f}") for s in fit for f in task.files(s)])
        test = split["test"][0]
        files = task.files(test)
        true = np.array([encode_label(task.labels(test)[f], kind, index, f"{test}/{f}") for f in files])
        pred = _fit_predict(kind, train_y, len(files), len(task.vocabulary))
        per_fold.append({n: metrics.score(n, pred, true, vocabulary=task.vocabulary) for n in names})
        items.append((files, pred, true))
    entry = {"task": task.metadata.get("task_name"), "kind": kind}
    for n in names:
        values = np.array([f[n] for f in per_fold], np.float64)
        entry[n], entry[f"{n}_std"] = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
    if kind == "event":  # a constant F-measure of an empty prediction: no interval to draw
        return entry | {"n_test": sum(len(f) for f, _, _ in items), "n_folds": len(per_fold), "first_metric": names[0],
                        "prediction_type": task.metadata.get("prediction_type"), "training": "none (no event predicted)"}
    lo, hi = stats.bootstrap_interval(
        lambda idx: float(np.mean([metrics.score(names[0], p[i], t[i], vocabulary=task.vocabulary)
                                   for (_, p, t), i in zip(items, idx)])),
        [len(f) for f, _, _ in items], n_boot=n_boot, seed=seed)
    entry[f"{names[0]}_ci95_low"], entry[f"{names[0]}_ci95_high"] = lo, hi
    files = [f for fs, _, _ in items for f in fs]
    true = np.concatenate([t for _, _, t in items])
    pred = np.concatenate([p for _, p, _ in items])
    if kind == "multiclass":
        pred, true = pred.argmax(axis=1), true.astype(np.int64)
    entry["predictions"] = {"files": files, "true": true.tolist(), "pred": pred.tolist()}
    return entry | {"n_test": len(files), "n_folds": len(per_fold), "first_metric": names[0],
                    "prediction_type": task.metadata.get("prediction_type"),
                    "training": "constant fitted on train + valid labels"}


def constant_results(suites: dict[str, Path], *, n_boot: int = 1000, seed: int = 0) -> dict:
    """The constant predictor on every task of ``suites`` ({suite name: folder of task folders})."""
    tasks = {f"{suite}/{path.name}": constant_task(path, n_boot=n_boot, seed=seed)
             for suite, folder in suites.items() for path in list_tasks(folder)}
    return {"name": NAME, "kind": NAME, "format": "mono", "variant": None, "tasks": tasks}


def suite_dirs(paths) -> dict[str, Path]:
    """The suites a single-channel model is scored on (as :func:`gramlib.eval.evaluation.suites` finds them): the
    dry tasks and the FOA Nat-HEAR suite, whose labels equal the binaural suite's, item for item."""
    found = {"hear": tasks_source(paths.sources), "nathear-foa": paths.nathear / "foa"}
    return {name: folder for name, folder in found.items() if folder.is_dir()}
