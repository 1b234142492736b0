"""The paper's tables from the tidy metrics (:mod:`gramlib.figures.results`): scores per suite with s(m) and Avg
(Tables 1 and 6), localization and T60 errors, training cost, SELD; CSV + markdown + a summary JSON.

Numbers in the score tables are the first metric of each task in %, mean +- sd: the sd across seeds
where a model has several seeds, else across folds (the paper: folds). s(m) and Avg carry the sd across
seeds. Models scored on only some tasks (ablations) are averaged over the tasks they have.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .results import classification, in_suite, summary, tidy

SCORE_SUITES = ("hear", "nathear", "nathear-binaural", "nathear-foa")
TABLES = tuple(f"{stem}.{ext}" for stem in [f"scores_{s}" for s in SCORE_SUITES] + ["localization", "training_cost",
                                                                                 "sensitivity"]
               for ext in ("csv", "md")) + ("summary.json",)  # always written; seld.{csv,md} when SELD ran
SELD_METRICS = ("ER20", "F20", "LE_CD_deg", "LR_CD", "SELD", "ER_1s", "F_1s", "DOA_error_deg", "frame_recall",
                "ER", "F", "LE", "LR")


def _models(df: pd.DataFrame, pool, include_ablations: bool) -> list[str]:
    """Pool first (its order), then other GRAMs, then baselines."""
    keep = df if include_ablations else df[df["budget"] != "ablation"]
    found = list(dict.fromkeys(keep["model"]))
    kind = dict(zip(keep["model"], keep["kind"]))
    rest = sorted((m for m in found if m not in pool), key=lambda m: (kind[m] != "gram", m))
    return [m for m in pool if m in found] + rest


def table_scores(df: pd.DataFrame, suite: str, pool, naive: str = "naive", *, include_ablations: bool = False
                 ) -> pd.DataFrame:
    """Models x tasks (first metric, %) with ``<task>_std``, then s(m), s(m)_std, Avg, Avg_std."""
    rows = classification(in_suite(df, suite))
    models = [m for m in _models(df, list(pool), include_ablations) if m in set(rows["model"])]
    tasks = list(dict.fromkeys(rows["task"]))
    spread = np.where(rows["n_seeds"] > 1, rows["seed_std"], rows["std"]) * 100
    cells = rows.assign(spread=spread).set_index(["model", "task"])
    stats = summary(df, pool, naive, suites=(suite,)).set_index("model")
    out = {}
    for model in models:
        row = {}
        for task in tasks:
            hit = (model, task) in cells.index
            row[task] = cells.loc[(model, task), "pct"] if hit else np.nan
            row[f"{task}_std"] = cells.loc[(model, task), "spread"] if hit else np.nan
        st = stats.loc[model]
        row |= {"s(m)": st["s_m"], "s(m)_std": st["s_m_std"], "Avg": st["avg"], "Avg_std": st["avg_std"]}
        out[st["label"] if st["label"] not in out else model] = row  # seeds kept apart: their own names
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("model")


def table_localization(df: pd.DataFrame, *, include_ablations: bool = False) -> pd.DataFrame:
    """Models x (task metric): DoA errors (deg) and T60 errors (s) on each model's native Nat-HEAR suite."""
    rows = in_suite(df, "nathear")
    rows = rows[rows["prediction_type"].isin(("localization", "regression"))]
    models = [m for m in _models(df, [], include_ablations) if m in set(rows["model"])]
    out = {}
    for model in models:
        part = rows[rows["model"] == model]
        row = {"suite": df[(df["model"] == model) & df["native"] & (df["suite"] != "hear")]["suite"].iloc[0]}
        for r in part.itertuples():
            row[f"{r.task} {r.metric}"] = r.value
            row[f"{r.task} {r.metric}_std"] = r.seed_std if r.n_seeds > 1 else r.std
        out[part["label"].iloc[0] if part["label"].iloc[0] not in out else model] = row
    table = pd.DataFrame.from_dict(out, orient="index").rename_axis("model")
    values = [c for c in table.columns if c != "suite" and not c.endswith("_std")]
    return table[["suite"] + [c for v in values for c in (v, f"{v}_std")]] if len(table) else table


def table_training_cost(results: dict[str, dict]) -> pd.DataFrame:
    """One row per trained GRAM (seeds apart): steps, scenes and crops seen, wall time, device, parameters."""
    rows = {}
    for name, res in results.items():
        if res["kind"] != "gram":
            continue
        var, train = res["variant"], res.get("train") or {}
        rows[name] = {"axis": var.get("axis"), "axis_value": var.get("value"), "budget": var.get("budget"),
                      "seed": var.get("seed", 0), "format": res.get("format"),
                      **{k: train.get(k) for k in ("steps", "scenes_seen", "crops_seen", "wall_s", "device",
                                                   "parameters", "final_loss")}}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")
    if len(table):
        table.insert(table.columns.get_loc("wall_s") + 1, "wall_h", pd.to_numeric(table["wall_s"]) / 3600)
    return table


def table_seld(seld_dir: Path | str) -> pd.DataFrame:
    """SELD metrics of every ``*.json`` / ``*/metrics.json`` under ``seld_dir``: one row per file and
    system (``probe``, ``intensity_oracle``, ...), columns from :data:`SELD_METRICS` that are present."""
    rows = []
    for path in sorted(Path(seld_dir).glob("*.json")) + sorted(Path(seld_dir).glob("*/metrics.json")):
        data = json.loads(path.read_text())
        name = path.parent.name if path.name == "metrics.json" else path.stem
        systems = {"model": data} if any(k in data for k in SELD_METRICS) else \
            {k: v for k, v in data.items() if isinstance(v, dict) and any(m in v for m in SELD_METRICS)}
        rows += [{"run": name, "system": k, **{m: v[m] for m in SELD_METRICS if m in v}} for k, v in systems.items()]
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, digits: int = 1, best: str | None = "max", note: str = "") -> str:
    """A markdown table: ``X`` and ``X_std`` become ``X ± S``, NaN becomes "–", the best value of each
    numeric column (``best`` = ``"max"`` / ``"min"`` / None) is bold. Columns in seconds (a name ending
    in ``_s``) get at least 3 decimals."""
    cols = [c for c in table.columns if not str(c).endswith("_std")]
    header = [table.index.name or ""] + [str(c) for c in cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for idx, row in table.iterrows():
        cells = [str(idx)]
        for c in cols:
            cells.append(_cell(table, row, c, digits, best))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + (f"\n\n{note}\n" if note else "\n")


def _cell(table, row, col, digits, best) -> str:
    v = row[col]
    if isinstance(v, str) or v is None:
        return "–" if v is None else v
    if pd.isna(v):
        return "–"
    digits = max(digits, 3) if str(col).endswith("_s") else digits
    text = f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v)
    sd = row.get(f"{col}_std", np.nan)
    text += f" ± {sd:.{digits}f}" if pd.notna(sd) else ""
    column = pd.to_numeric(table[col], errors="coerce")
    is_best = best and column.notna().sum() > 1 and v == (column.max() if best == "max" else column.min())
    return f"**{text}**" if is_best else text


def table_sensitivity(results: dict[str, dict]) -> pd.DataFrame:
    """Per model and task: the first metric, its 95 % interval, and how far re-running the probes on
    embeddings perturbed by a relative ``evaluate.sensitivity_rel`` moved it (also as a share of the
    interval's width); per model and suite, how far it moved the average (points). Empty without the check."""
    rows = []
    for name, res in sorted(results.items()):
        for key, task in sorted(res.get("tasks", {}).items()):
            metric = task.get("first_metric")
            if metric is None or f"{metric}_sensitivity" not in task:
                continue
            lo, hi = task.get(f"{metric}_ci95_low", np.nan), task.get(f"{metric}_ci95_high", np.nan)
            moved, width = task[f"{metric}_sensitivity"], hi - lo
            rows.append({"model": name, "task": key, "metric": metric, "score": task[metric], "ci95_low": lo,
                         "ci95_high": hi, "moved": moved, "moved_per_ci_width": moved / width if width > 0 else np.nan})
        for suite, agg in sorted(res.get("aggregate", {}).items()):
            if "average_sensitivity" in agg:
                rows.append({"model": name, "task": f"{suite}/average", "metric": "average (points)",
                             "score": agg["average"], "moved": agg["average_sensitivity"]})
    return pd.DataFrame(rows).set_index(["model", "task"]) if rows else pd.DataFrame()


def write_tables(out_dir: Path | str, results: dict[str, dict], pool, naive: str = "naive", *,
                 seld_dir: Path | str | None = None) -> list[Path]:
    """Every table as CSV and markdown in ``out_dir``, and ``summary.json`` (s(m) and Avg per model per
    suite, a DVC metrics file). Returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df, written = tidy(results), []
    spread = "± is the sd across seeds where a model has several, else across folds."
    if "constant" in results:  # the chance row (gramlib.figures.chance)
        spread += (" `constant`: a constant predictor fitted on each task's training labels (majority class, best "
                   "constant direction, median T60, no event).")

    def put(stem: str, table: pd.DataFrame, best: str | None, note: str, digits: int = 1) -> None:
        table.to_csv(out_dir / f"{stem}.csv")
        (out_dir / f"{stem}.md").write_text(to_markdown(table, digits, best, note))
        written.extend([out_dir / f"{stem}.csv", out_dir / f"{stem}.md"])

    for suite in SCORE_SUITES:
        put(f"scores_{suite}", table_scores(df, suite, pool, naive), "max",
            f"First metric of each task in %; s(m) over the pool {list(pool)} (naive = {naive}). {spread}")
    put("localization", table_localization(df), "min", f"Errors on each model's native Nat-HEAR suite. {spread}")
    put("training_cost", table_training_cost(results), None, "Wall time as measured on the device named.", 2)
    sensitivity = table_sensitivity(results)
    put("sensitivity", sensitivity, None, "Float-noise check: every probe re-run on embeddings x (1 + 1e-6 z); "
        "`moved` = |score change| (classification as a fraction, errors in their unit; averages in points)."
        if len(sensitivity) else "No float-noise check in these results (evaluate.sensitivity_rel = 0).", 6)
    if seld_dir is not None and Path(seld_dir).is_dir():
        put("seld", table_seld(seld_dir), None, "SELD metrics (DCASE 2021 style: ER20, F20, LE_CD, LR_CD).", 3)
    stats = summary(df, pool, naive)
    metrics: dict = {}
    for r in stats.itertuples():
        metrics.setdefault(r.model, {})[r.suite] = {"s_m": _num(r.s_m), "avg": _num(r.avg), "n_tasks": int(r.n_tasks)}
    (out_dir / "summary.json").write_text(json.dumps(metrics, indent=1))
    return written + [out_dir / "summary.json"]


def _num(v) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), 3)
