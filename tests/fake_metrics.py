"""Synthetic metrics JSONs in the exact schema of gramlib.eval.evaluation.write_results, for the results,
tables and plots tests. Scores are simple functions of a per-model ``base`` so tests can predict them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# task: (prediction_type, metrics (first first), n_folds)
HEAR_TASKS = {"words": ("multiclass", ["top1_acc"], 1), "pitch": ("multiclass", ["pitch_acc", "chroma_acc"], 1),
              "events": ("multiclass", ["top1_acc", "mAP", "d_prime"], 5), "count": ("multiclass", ["top1_acc"], 1),
              "family": ("multiclass", ["top1_acc"], 1),
              "dcase": ("multilabel", ["event_onset_200ms_fms", "segment_1s_er"], 1)}
ERROR_TASKS = {"words-loc": ("localization", ["median_angular_error_deg", "mean_angular_error_deg"]),
               "events-loc": ("localization", ["median_angular_error_deg", "mean_angular_error_deg"]),
               "words-t60": ("regression", ["median_abs_error_s"]),
               "events-t60": ("regression", ["median_abs_error_s"])}
TASK_OFFSET = {"words": 0.0, "pitch": 0.05, "events": -0.05, "count": 0.1, "family": -0.1, "dcase": 0.02}
NATIVE = {"binaural": "nathear-binaural", "foa": "nathear-foa", "clean": "nathear-foa", "mono": "nathear-foa"}


def entry(ptype: str, metrics: list[str], value: float, n_folds: int = 1, std: float = 0.02) -> dict:
    out = {}
    for k, m in enumerate(metrics):
        out[m] = value if k == 0 else value * 0.9
        out[f"{m}_std"] = std if n_folds > 1 else 0.0
    return out | {"n_test": 40, "n_folds": n_folds, "input": "native", "prediction_type": ptype,
                  "first_metric": metrics[0]}


def task_entries(suites, base: float, *, only=None, loc_error: float = 40.0, t60_error: float = 0.05) -> dict:
    tasks = {}
    for suite in suites:
        drop = 0.0 if suite == "hear" else 0.1
        for task, (ptype, metrics, folds) in HEAR_TASKS.items():
            if only is None or task in only:
                tasks[f"{suite}/{task}"] = entry(ptype, metrics, base + TASK_OFFSET[task] - drop, folds)
        if suite == "hear":
            continue
        for task, (ptype, metrics) in ERROR_TASKS.items():
            if only is None or task in only:
                tasks[f"{suite}/{task}"] = entry(ptype, metrics, loc_error if ptype == "localization" else t60_error)
    return tasks


def gram(name, axis, value, fmt, budget="ablation", seed=0, also=(), base=0.6, **kw) -> dict:
    suites = ["hear", "nathear-binaural", "nathear-foa"] if budget == "main" else ["hear", NATIVE[fmt]]
    only = None if budget == "main" else ("words", "words-loc")
    return {"name": name, "kind": "gram", "format": fmt,
            "variant": {"axis": axis, "value": value, "budget": budget, "seed": seed, "also": [list(p) for p in also]},
            "train": {"steps": 300 if budget == "ablation" else 1200, "crops_seen": 19200, "scenes_seen": 1200,
                      "wall_s": 600.0, "device": "cpu", "final_loss": 0.5, "parameters": 1_000_000},
            "tasks": task_entries(suites, base, only=only, **kw), "aggregate": {}}


def baseline(name, fmt="mono", base=0.3, **kw) -> dict:
    return {"name": name, "kind": "baseline", "format": fmt,
            "tasks": task_entries(["hear", "nathear-binaural", "nathear-foa"], base, **kw), "aggregate": {}}


def localizer(name, suite, error=30.0) -> dict:
    tasks = {f"{suite}/{t}": entry("localization", ERROR_TASKS[t][1], error) | {"training": "none"}
             for t in ("words-loc", "events-loc")}
    return {"name": name, "kind": "baseline", "format": suite.split("-")[1], "tasks": tasks, "aggregate": {}}


def all_results(**overrides) -> dict[str, dict]:
    """Every main model, seed, baseline and ablation variant of params.yaml; ``overrides``: name -> base."""
    b = {"gram-binaural": 0.7, "gram-binaural-s1": 0.68, "gram-binaural-time": 0.65, "gram-binaural-time-s1": 0.63,
         "gram-ambisonics": 0.66, "gram-ambisonics-s1": 0.64, "gram-clean": 0.62, "gram-clean-s1": 0.6,
         "naive": 0.3, "abl-binaural": 0.5, "abl-ambisonics": 0.45} | overrides
    res = {
        "gram-binaural": gram("gram-binaural", "main", "GRAM-Binaural", "binaural", "main", also=[("masking", "frame")],
                              base=b["gram-binaural"]),
        "gram-binaural-s1": gram("gram-binaural-s1", "main", "GRAM-Binaural", "binaural", "main", 1,
                                 base=b["gram-binaural-s1"]),
        "gram-binaural-time": gram("gram-binaural-time", "main", "GRAM-Binaural-Time", "binaural", "main",
                                   also=[("masking", "time")], base=b["gram-binaural-time"], loc_error=30.0),
        "gram-binaural-time-s1": gram("gram-binaural-time-s1", "main", "GRAM-Binaural-Time", "binaural", "main", 1,
                                      base=b["gram-binaural-time-s1"]),
        "gram-ambisonics": gram("gram-ambisonics", "main", "GRAM-Ambisonics", "foa", "main", base=b["gram-ambisonics"],
                                loc_error=15.0),
        "gram-ambisonics-s1": gram("gram-ambisonics-s1", "main", "GRAM-Ambisonics", "foa", "main", 1,
                                   base=b["gram-ambisonics-s1"], loc_error=17.0),
        "gram-clean": gram("gram-clean", "main", "GRAM-Clean", "clean", "main", base=b["gram-clean"], loc_error=80.0),
        "gram-clean-s1": gram("gram-clean-s1", "main", "GRAM-Clean", "clean", "main", 1, base=b["gram-clean-s1"]),
        "naive": baseline("naive", base=b["naive"], loc_error=90.0),
        "intensity": localizer("intensity", "nathear-foa", 20.0),
        "gcc-hrtf": localizer("gcc-hrtf", "nathear-binaural", 35.0),
        "abl-binaural": gram("abl-binaural", "reference", "binaural", "binaural", base=b["abl-binaural"],
                             also=[("lambda-binaural", 0.0), ("mask-ratio", 0.8), ("in-batch", 16),
                                   ("data-fraction", 1.0), ("encoder", "transformer"), ("batching", "in-batch")]),
        "abl-ambisonics": gram("abl-ambisonics", "reference", "foa", "foa", base=b["abl-ambisonics"],
                               also=[("lambda-foa", 0.0)]),
    }
    ablations = {"bin-lambda-050": ("lambda-binaural", 0.5, "binaural"),
                 "bin-lambda-100": ("lambda-binaural", 1.0, "binaural"),
                 "foa-lambda-050": ("lambda-foa", 0.5, "foa"), "mask-060": ("mask-ratio", 0.6, "binaural"),
                 "mask-090": ("mask-ratio", 0.9, "binaural"), "crops-04": ("in-batch", 4, "binaural"),
                 "crops-08": ("in-batch", 8, "binaural"), "data-010": ("data-fraction", 0.1, "binaural"),
                 "data-030": ("data-fraction", 0.3, "binaural"), "mamba": ("encoder", "mamba", "binaural"),
                 "grad-accum": ("batching", "grad-accum", "binaural")}
    for k, (name, (axis, value, fmt)) in enumerate(ablations.items()):
        res[name] = gram(name, axis, value, fmt, base=b.get(name, 0.4 + 0.01 * k))
    return res


def with_details(res: dict, rng: np.random.Generator, n: int = 60) -> dict:
    """The .detail.json form: folds plus per-clip predictions whose errors scale with the entry's value."""
    out = json.loads(json.dumps(res))
    for entry_ in out["tasks"].values():
        first = entry_["first_metric"]
        entry_["folds"] = [{"scores": {first: entry_[first]}} for _ in range(entry_["n_folds"])]
        if entry_["prediction_type"] == "localization":
            true = rng.normal(size=(n, 3))
            true /= np.linalg.norm(true, axis=1, keepdims=True)
            pred = true + np.radians(entry_[first]) * rng.normal(size=(n, 3)) / np.sqrt(2)
            entry_["predictions"] = predictions(true, pred)
        elif entry_["prediction_type"] == "regression":
            true = rng.uniform(0.2, 0.8, n)
            pred = true + entry_[first] * rng.choice([-1.0, 1.0], n) * rng.uniform(0.0, 2.0, n)
            entry_["predictions"] = predictions(true, pred)
    return out


def predictions(true: np.ndarray, pred: np.ndarray) -> dict:
    return {"files": [f"{i}.wav" for i in range(len(true))], "true": true.tolist(), "pred": pred.tolist()}


def write(eval_dir: Path, results: dict, details: dict | None = None) -> Path:
    eval_dir.mkdir(parents=True, exist_ok=True)
    for name, res in results.items():
        (eval_dir / f"{name}.json").write_text(json.dumps(res))
    for name, res in (details or {}).items():
        (eval_dir / f"{name}.detail.json").write_text(json.dumps(res))
    return eval_dir
