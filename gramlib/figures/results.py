"""Every model's metrics JSON -> one tidy table, s(m), and the numbers the paper figures plot.

Input: ``results/eval/<name>.json`` as :func:`gramlib.eval.evaluation.write_results` writes them (and the
``.detail.json`` sidecars for per-clip predictions). :func:`tidy` gives one row per model x suite x
task x metric with the columns of :data:`COLUMNS`:

* ``model`` the model's name (a seed family is named after its lowest-seed member), ``label`` the
  display name (the variant value for main GRAMs, e.g. ``GRAM-Binaural``; else the name);
* ``kind``, ``format``, ``axis``, ``axis_value`` (the variant's value on its ablation axis), ``budget``,
  ``seed``; ``points``: every (axis, value) the model stands for (its own and its ``also`` list);
* ``suite``, ``task``, ``metric``, ``value`` (the raw metric: accuracy as a fraction, errors in deg or
  s), ``std`` (sd across folds, NaN without folds), ``n_folds``, ``first`` (the task's first metric),
  ``prediction_type``, ``native`` (``hear``, or the model's own Nat-HEAR suite: binaural -> binaural,
  foa/clean/mono -> foa);
* ``n_seeds``, ``seed_values`` (one value per seed) and ``seed_std`` (sd across seeds, NaN for one).

The suite name ``"nathear"`` stands for each model on its native Nat-HEAR suite (the paper's Table 1).
Scores and averages count classification tasks only (their first metric, in %); localization and T60
tasks are errors and are reported apart, as the evaluation stage does.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import section
from ..core.tasks import ERROR_KINDS, NATIVE_SUITE
from ..eval.metrics import METRICS, angular_errors_deg, higher_is_better

COLUMNS = ["model", "label", "kind", "format", "axis", "axis_value", "budget", "seed", "points", "suite", "task",
           "metric", "value", "std", "n_folds", "first", "prediction_type", "native", "n_seeds", "seed_values",
           "seed_std"]
SUITE_LABELS = {"hear": "HEAR", "nathear": "Nat-HEAR", "nathear-binaural": "Nat-HEAR (binaural)",
                "nathear-foa": "Nat-HEAR (FOA)"}
EVENT_METRICS = {"event_onset_200ms_fms", "segment_1s_er"}  # event tasks (DCASE): out of HEAR - Nat-HEAR


class ResultsError(ValueError):
    """A metrics file that does not follow the evaluation schema."""


# ---------------------------------------------------------------------------------------- loading
def load_results(eval_dir: Path | str, *, detail: bool = False, only=None) -> dict[str, dict]:
    """``{name: metrics dict}`` of every ``<name>.json`` (or ``<name>.detail.json``) in ``eval_dir``.

    ``only``: the model names to keep (the pipeline passes its current variants, baselines and
    ``figures.extra_models``). Files of other names -- e.g. those a removed variant left behind -- are
    skipped with a warning naming them, so they never enter a table or figure.
    """
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        raise FileNotFoundError(f"no metrics folder {eval_dir}; run the evaluate@<variant> and baselines stages")
    keep = None if only is None else set(only)
    out: dict[str, dict] = {}
    skipped: list[str] = []
    for path in sorted(eval_dir.glob("*.detail.json" if detail else "*.json")):
        if not detail and path.name.endswith(".detail.json"):
            continue
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path}: not valid JSON ({err})") from err
        check_result(data, path)
        if keep is not None and data["name"] not in keep:
            skipped.append(path.name)
            continue
        if data["name"] in out:
            raise ResultsError(f"{path}: model name {data['name']!r} appears in two files")
        out[data["name"]] = data
    if skipped:
        warnings.warn(f"{eval_dir}: skipped {skipped}: not a current variant, baseline or figures.extra_models entry",
                      stacklevel=2)
    if keep is not None and (missing := sorted(keep - set(out))):
        warnings.warn(f"{eval_dir}: no metrics yet for {missing}", stacklevel=2)
    return out


def pipeline_models(params: dict) -> list[str]:
    """The names whose metrics the figures stage reads: every variant, every baseline, and
    ``figures.extra_models`` (models evaluated outside the pipeline)."""

    return [*params.get("variants", {}), *section(params, "baselines").names, *section(params, "figures").extra_models]


def check_result(data, path) -> None:
    """Raise :class:`ResultsError` naming ``path`` and the key when ``data`` breaks the schema."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ResultsError(f"{path}: {what}")
    need(isinstance(data, dict), "top level must be an object")
    need(isinstance(data.get("name"), str), "missing string key 'name'")
    need(data.get("kind") in ("gram", "baseline"), f"'kind' must be 'gram' or 'baseline', got {data.get('kind')!r}")
    need(isinstance(data.get("tasks"), dict), "missing object 'tasks'")
    if data["kind"] == "gram":
        var = data.get("variant")
        need(isinstance(var, dict) and {"axis", "value"} <= set(var), "a gram result needs 'variant' with axis, value")
    for key, entry in data["tasks"].items():
        need("/" in key, f"task key {key!r} is not '<suite>/<task>'")
        need(isinstance(entry, dict) and "first_metric" in entry, f"task {key!r} lacks 'first_metric'")
        need(isinstance(entry.get(entry["first_metric"]), (int, float)), f"task {key!r} lacks its first metric value")


def families(results: dict[str, dict]) -> dict[str, list[str]]:
    """Seed siblings (same kind, axis, value, format, budget) grouped, lowest seed first."""
    groups: dict[tuple, list[str]] = {}
    for name, res in results.items():
        var = res.get("variant") or {}
        key = ("gram", var.get("axis"), str(var.get("value")), res.get("format"), var.get("budget")) \
            if res["kind"] == "gram" else ("baseline", name)
        groups.setdefault(key, []).append(name)
    ordered = [sorted(v, key=lambda n: ((results[n].get("variant") or {}).get("seed", 0), n)) for v in groups.values()]
    return {members[0]: members for members in ordered}


# ------------------------------------------------------------------------------------------- tidy
def tidy(results: dict[str, dict], *, seeds: str = "mean") -> pd.DataFrame:
    """One row per model x suite x task x metric (see the module docstring). ``seeds="mean"``: seed
    siblings become one model (mean, with ``seed_std``); ``"separate"``: one row set per file."""
    if seeds not in ("mean", "separate"):
        raise ValueError(f"seeds must be 'mean' or 'separate', got {seeds!r}")
    groups = families(results) if seeds == "mean" else {n: [n] for n in results}
    rows = [row for name, members in groups.items() for row in _family_rows(name, [results[m] for m in members])]
    return pd.DataFrame(rows, columns=COLUMNS)


def _family_rows(name: str, members: list[dict]) -> list[dict]:
    head, var = members[0], members[0].get("variant") or {}
    points = {(var["axis"], var["value"])} if var else set()
    points |= {tuple(p) for m in members for p in (m.get("variant") or {}).get("also", [])}
    fmt = head.get("format")
    base = {"model": name, "label": str(var["value"]) if var.get("axis") == "main" else name, "kind": head["kind"],
            "format": fmt, "axis": var.get("axis"), "axis_value": var.get("value"), "budget": var.get("budget"),
            "seed": var.get("seed", 0), "points": tuple(sorted(points, key=str))}
    rows = []
    for key in dict.fromkeys(k for m in members for k in m["tasks"]):
        entries = [m["tasks"][key] for m in members if key in m["tasks"]]
        suite, task = key.split("/", 1)
        for metric in _metric_names(entries[0]):
            vals = [float(e[metric]) for e in entries if metric in e]
            stds = [float(e[f"{metric}_std"]) for e in entries if f"{metric}_std" in e]
            n_folds = int(entries[0].get("n_folds", 1))
            rows.append(base | {
                "suite": suite, "task": task, "metric": metric, "value": float(np.mean(vals)),
                "std": float(np.mean(stds)) if stds and n_folds > 1 else np.nan, "n_folds": n_folds,
                "first": metric == entries[0]["first_metric"], "prediction_type": entries[0].get("prediction_type"),
                "native": suite == "hear" or suite == NATIVE_SUITE.get(fmt), "n_seeds": len(vals),
                "seed_values": tuple(vals), "seed_std": float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan})
    return rows


def _metric_names(entry: dict) -> list[str]:
    return [k for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and not k.endswith("_std") and (k in METRICS or f"{k}_std" in entry)]


def in_suite(df: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Rows of one suite; ``"nathear"`` = each model's native Nat-HEAR suite, relabelled ``nathear``."""
    if suite != "nathear":
        return df[df["suite"] == suite]
    return df[df["suite"].str.startswith("nathear") & df["native"]].assign(suite="nathear")


def classification(df: pd.DataFrame) -> pd.DataFrame:
    """First-metric rows of the scored (non-error) tasks, with ``pct`` = value in %."""
    rows = df[df["first"] & ~df["prediction_type"].isin(ERROR_KINDS)]
    return rows.assign(pct=100.0 * rows["value"])


def ablation_points(data, axis: str) -> pd.DataFrame:
    """Rows of every model standing for a point on ``axis`` (its own or an ``also`` point), with
    ``axis``/``axis_value`` set to that point. ``data``: a results dict or a :func:`tidy` frame."""
    df = data if isinstance(data, pd.DataFrame) else tidy(data)
    hits = [(i, v) for i, pts in df["points"].items() for a, v in pts if a == axis]
    out = df.loc[[i for i, _ in hits]].copy()
    out["axis"], out["axis_value"] = axis, [v for _, v in hits]
    return out.reset_index(drop=True)


# ------------------------------------------------------------------------------ s(m) and averages
def s_m(df: pd.DataFrame, pool, naive: str = "naive", suites=("hear", "nathear")) -> pd.DataFrame:
    """SUPERB-style s(m) in %: per task (score - naive) / (best of ``pool`` - naive), clipped to [0, 1],
    averaged over the suite's scored tasks. Only ``pool`` sets the denominators, so adding models never
    changes anyone's s(m). Direction-aware (:func:`gramlib.eval.metrics.higher_is_better`). ``s_m_std``: sd
    across seeds (each seed scored against the same denominators). Returns model, label, suite, s_m,
    s_m_std, n_tasks; NaN where the suite has no ``naive`` row."""
    out = []
    for suite in suites:
        rows = classification(in_suite(df, suite))
        ref = rows[rows["model"] == naive].set_index("task")["value"]
        best = {}
        for task, part in rows[rows["model"].isin(list(pool))].groupby("task"):
            if task in ref.index:
                sign = 1.0 if higher_is_better(part["metric"].iloc[0]) else -1.0
                best[task] = (sign, ref[task], max(float((sign * (part["value"] - ref[task])).max()), 0.0))
        for (model, label), part in rows.groupby(["model", "label"], sort=False):
            part = part[part["task"].isin(list(best))]
            ratios = [_ratio(np.array((r.value,) + r.seed_values), *best[r.task]) for r in part.itertuples()]
            per_seed = _per_seed([r[1:] for r in ratios])
            out.append({"model": model, "label": label, "suite": suite, "n_tasks": len(ratios),
                        "s_m": 100 * float(np.mean([r[0] for r in ratios])) if ratios else np.nan,
                        "s_m_std": 100 * float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else np.nan})
    return pd.DataFrame(out, columns=["model", "label", "suite", "s_m", "s_m_std", "n_tasks"])


def _ratio(values: np.ndarray, sign: float, naive: float, best: float) -> np.ndarray:
    gain = sign * (values - naive)
    if best <= 0:  # nobody in the pool beats naive: any gain is full marks
        return (gain > 0).astype(float)
    return np.clip(gain / best, 0.0, 1.0)


def _per_seed(per_task: list) -> np.ndarray:
    """Mean over tasks of per-seed values (seed count = the smallest any task has)."""
    if not per_task:
        return np.array([])
    n = min(len(v) for v in per_task)
    return np.mean([np.asarray(v[:n]) for v in per_task], axis=0)


def averages(df: pd.DataFrame, suites=("hear", "nathear")) -> pd.DataFrame:
    """Plain average (in %) of each model's scored tasks per suite, with the sd across seeds."""
    out = []
    for suite in suites:
        for (model, label), part in classification(in_suite(df, suite)).groupby(["model", "label"], sort=False):
            per_seed = 100 * _per_seed([r.seed_values for r in part.itertuples()])
            out.append({"model": model, "label": label, "suite": suite, "avg": float(part["pct"].mean()),
                        "avg_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else np.nan,
                        "n_tasks": len(part)})
    return pd.DataFrame(out, columns=["model", "label", "suite", "avg", "avg_std", "n_tasks"])


def summary(df: pd.DataFrame, pool, naive: str = "naive", suites=("hear", "nathear")) -> pd.DataFrame:
    """s(m) and Avg per model per suite (one row each)."""
    keys = ["model", "label", "suite", "n_tasks"]
    return averages(df, suites).merge(s_m(df, pool, naive, suites), on=keys, how="left")


def axis_scores(df: pd.DataFrame, axis: str, suites=("hear", "nathear")) -> pd.DataFrame:
    """Per point of ``axis`` and suite: the average score (%) over the tasks every point has, and its
    spread: the sd across seeds where every model there has >= 2 seeds, else the fold sds propagated to
    the mean (sqrt(sum sd_i^2) / n, tasks taken as independent). Sorted by value when numeric."""
    pts = classification(ablation_points(df, axis))
    out = []
    for suite in suites:
        rows = in_suite(pts, suite)
        common = set.intersection(*[set(p["task"]) for _, p in rows.groupby("axis_value", sort=False)]) \
            if len(rows) else set()
        for value, part in rows[rows["task"].isin(common)].groupby("axis_value", sort=False):
            per_seed = 100 * _per_seed([r.seed_values for r in part.itertuples()])
            fold = 100 * np.sqrt(np.nansum(np.square(part["std"]))) / len(part) if part["std"].notna().any() else np.nan
            out.append({"axis_value": value, "suite": suite, "score": float(part["pct"].mean()),
                        "spread": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float(fold),
                        "n_tasks": part["task"].nunique(), "n_seeds": int(part["n_seeds"].min()),
                        "models": ", ".join(dict.fromkeys(part["model"]))})
    return sort_axis(pd.DataFrame(out, columns=["axis_value", "suite", "score", "spread", "n_tasks", "n_seeds",
                                                "models"]))


def axis_metric(df: pd.DataFrame, axis: str, task: str, metric: str) -> pd.DataFrame:
    """Per point of ``axis``: ``metric`` of ``task`` on the model's native Nat-HEAR suite (e.g. DoA error)."""
    rows = in_suite(ablation_points(df, axis), "nathear")
    rows = rows[(rows["task"] == task) & (rows["metric"] == metric)]
    out = rows.groupby("axis_value", sort=False).agg(value=("value", "mean"), std=("std", "mean")).reset_index()
    return sort_axis(out)


def sort_axis(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by ``axis_value``: numerically when every value is a number, else in first-seen order."""
    numeric = pd.to_numeric(df["axis_value"], errors="coerce")
    if len(df) and numeric.notna().all() and not df["axis_value"].map(lambda v: isinstance(v, bool)).any():
        return df.assign(_k=numeric).sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)
    return df.reset_index(drop=True)


def hear_minus_nathear(df: pd.DataFrame) -> pd.DataFrame:
    """Per model and scored task (event tasks such as DCASE excluded, as the paper): HEAR minus
    native Nat-HEAR, in percentage points. Columns model, label, task, diff_pp."""
    rows = classification(df)
    rows = rows[~rows["metric"].isin(EVENT_METRICS)]
    hear, nat = in_suite(rows, "hear"), in_suite(rows, "nathear")
    both = hear.merge(nat, on=["model", "label", "task"], suffixes=("_hear", "_nat"))
    return both.assign(diff_pp=both["pct_hear"] - both["pct_nat"])[["model", "label", "task", "diff_pp"]]


# ------------------------------------------------------------------------------ per-clip errors
def clip_errors(entry: dict) -> np.ndarray:
    """Per-clip errors of one detail task entry: great-circle degrees (localization) or |error| in s (T60)."""
    if entry.get("kind") == "multiclass":
        raise ValueError(f"clip_errors: task {entry.get('task')!r} is a classification task; use item_correct")
    pred = entry.get("predictions")
    if not pred:
        return np.array([])
    true, est = np.asarray(pred["true"], np.float64), np.asarray(pred["pred"], np.float64)
    return angular_errors_deg(est, true) if true.ndim == 2 else np.abs(est - true)


def item_correct(entry: dict) -> np.ndarray:
    """Per-clip 1 (right class) or 0 of one classification detail entry, in its ``predictions`` order."""
    pred = entry.get("predictions")
    if entry.get("kind") != "multiclass" or not pred:
        return np.array([])
    return (np.asarray(pred["true"], np.int64) == np.asarray(pred["pred"], np.int64)).astype(np.float64)


def direction_deg(xyz) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) vectors (x front, y left, z up) -> azimuth (deg, counter-clockwise from front, +90 = left)
    and elevation (deg, up positive)."""
    v = np.asarray(xyz, np.float64)
    norm = np.linalg.norm(v, axis=1)
    return np.degrees(np.arctan2(v[:, 1], v[:, 0])), np.degrees(np.arcsin(np.clip(v[:, 2] / norm, -1, 1)))


def doa_confusion(true_xyz, pred_xyz, step_deg: float = 30.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Counts [true bin, predicted bin] for azimuth and elevation, ``{name: (counts, bin centres)}``.
    Bins are centred on multiples of ``step_deg``: azimuth -180 .. 180 - step (180 folds onto -180),
    elevation -90 .. 90 (the pole bins are half as wide)."""
    out = {}
    for k, (lo, n) in enumerate(((-180.0, int(round(360 / step_deg))), (-90.0, int(round(180 / step_deg)) + 1))):
        centres = lo + step_deg * np.arange(n)
        idx = [np.floor((direction_deg(v)[k] - lo) / step_deg + 0.5).astype(int) for v in (true_xyz, pred_xyz)]
        idx = [i % n if k == 0 else np.clip(i, 0, n - 1) for i in idx]
        counts = np.zeros((n, n), int)
        np.add.at(counts, (idx[0], idx[1]), 1)
        out["azimuth" if k == 0 else "elevation"] = (counts, centres)
    return out
