"""Evaluate an embedding model (a GRAM checkpoint or a baseline) on HEAR and Nat-HEAR.

Suites: ``hear`` (the dry task suite, mono), ``nathear-binaural`` (2 ch) and ``nathear-foa``
(4 ch, ambiX). Each (model, suite, task) is embedded once, then scored with the HEAR probe protocol
(:mod:`gramlib.eval.probes`).

Input formats (paper §1.5 and the authors' runtime): a model gets its own channel count when the
suite has it; mono HEAR audio is duplicated to a multichannel model's channels; a single-channel model
gets the W channel of FOA and the mean of the two ears of binaural audio; a binaural model given FOA
gets W (duplicated), an FOA model given binaural audio the ear mean (duplicated). Every result records
which adaptation was used. A model's *native* Nat-HEAR suite is its own format; single-channel models
are scored natively on the FOA suite's W channel, as the paper prescribes.

Embeddings: scene tasks use the scene embedding (mean over time), event tasks the timestamp
embeddings, localization and T60 tasks the mean CLS token over 2-s chunks (GRAM) or the scene
embedding (models without a CLS token).

The model is any HEAR 2021 module (:class:`gramlib.eval.hearmodule.HearModel`). Tasks are read at the
module's ``sample_rate`` (the task's folder of that rate, or resampled from the rate it has), and every clip
is padded with zeros or cut to the task's ``sample_duration``, as heareval does; a clip whose channel count
differs from the task's first clip is an error naming the file.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core import config
from ..core.config import EvaluateConfig
from ..core.numerics import describe
from ..core.sourcefiles import tasks_source
from ..core.tasks import ERROR_KINDS, NATIVE_SUITE, TaskError, list_tasks, read_task, task_kind
from ..model import hear
from . import baselines, metrics, probes
from .hearmodule import HearModel

def suites(tasks_dir: Path, nathear_dir: Path) -> dict[str, Path]:
    """The suite folders that exist."""
    found = {"hear": Path(tasks_dir), "nathear-binaural": Path(nathear_dir) / "binaural",
             "nathear-foa": Path(nathear_dir) / "foa"}
    return {name: path for name, path in found.items() if path.is_dir()}


def adapt(audio: torch.Tensor, model_channels: int) -> tuple[torch.Tensor, str]:
    """Map ``(n, C, S)`` suite audio to what a model with ``model_channels`` takes (see module doc)."""
    channels = audio.shape[1]
    if channels == model_channels:
        return audio, "native"
    if channels == 1:
        return audio, "mono duplicated" if model_channels > 1 else "native"
    mono, note = (audio[:, :1], "W channel") if channels == 4 else (audio.mean(dim=1, keepdim=True), "ear mean")
    return mono, note if model_channels == 1 else f"{note} duplicated"


def embedding_kind(metadata: dict) -> str:
    """The embedding a task's probe reads: timestamps (event tasks), CLS (localization, T60) or scene."""
    kind = task_kind(metadata)
    return "timestamp" if kind == "event" else "cls" if kind in ERROR_KINDS else "scene"


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """``(C, S)`` audio zero-padded at the end or cut to ``n_samples`` (heareval's treatment of clip length)."""
    if audio.shape[1] >= n_samples:
        return audio[:, :n_samples]
    return np.pad(audio, ((0, 0), (0, n_samples - audio.shape[1])))


def load_batch(task, split: str, files: list[str], channels: list) -> np.ndarray:
    """Clips ``(n, C, S)`` of one batch, each fitted to the task's ``sample_duration`` (the longest clip of
    the batch when the task has none). ``channels`` holds the task's channel count once the first clip is read."""
    clips = []
    for name in files:
        clip = task.load(split, name)
        if not channels:
            channels.append(clip.shape[0])
        if clip.shape[0] != channels[0]:
            raise TaskError(f"{task.audio_path(split, name)} has {clip.shape[0]} channel(s); the task's clips have "
                            f"{channels[0]} (its first clip's count)")
        clips.append(clip)
    duration = task.metadata.get("sample_duration")
    n_samples = int(round(float(duration) * task.sample_rate_hz)) if duration else max(c.shape[1] for c in clips)
    return np.stack([fit_length(c, n_samples) for c in clips])


@torch.no_grad()
def embed_task(embedder: HearModel, task, cfg: EvaluateConfig) -> tuple[dict, dict | None, str]:
    """Embeddings of every clip of every split: ({split: {file: array}}, timestamps or None, input note)."""
    kind = embedding_kind(task.metadata)
    embeddings, stamps, note, channels = {}, ({} if kind == "timestamp" else None), "native", []
    for split in task.splits:
        files = task.files(split)
        embeddings[split] = {}
        if stamps is not None:
            stamps[split] = {}
        for start in range(0, len(files), cfg.embed_batch):
            chunk = files[start:start + cfg.embed_batch]
            audio = torch.from_numpy(load_batch(task, split, chunk, channels))
            audio, note = adapt(audio, embedder.audio_channels)
            if kind == "timestamp":
                emb, ts = pool_frames(*embedder.timestamp_embeddings(audio), cfg.event_hop_ms)
                stamps[split].update({f: t.cpu().numpy() for f, t in zip(chunk, ts)})
            elif kind == "cls" and embedder.has_cls:
                emb = embedder.cls_embeddings(audio)
            else:
                emb = embedder.scene_embeddings(audio)
            embeddings[split].update({f: e.cpu().numpy().astype(np.float32) for f, e in zip(chunk, emb)})
    return embeddings, stamps, note


def pool_frames(emb: torch.Tensor, ts: torch.Tensor, hop_ms: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Average groups of ``floor(hop_ms / model hop)`` consecutive frames and their timestamps.

    Event probes train on every frame: a 20-ms model (time patching) gives 4x the frames of an 80-ms one.
    ``hop_ms`` = 0, or a hop no longer than the model's, leaves the frames as they are; a shorter last
    group is averaged too. emb (n, T, D), ts (n, T) in ms.
    """
    if hop_ms <= 0 or ts.shape[1] < 2:
        return emb, ts
    group = int(hop_ms // float(ts[0, 1] - ts[0, 0]))
    if group <= 1:
        return emb, ts
    starts = range(0, ts.shape[1], group)
    return (torch.stack([emb[:, i:i + group].mean(dim=1) for i in starts], dim=1),
            torch.stack([ts[:, i:i + group].mean(dim=1) for i in starts], dim=1))


def evaluate_task(embedder: HearModel, task_dir: Path, cfg: EvaluateConfig, seed: int) -> dict:
    """Embed one task (read at the module's rate) and run the probe protocol on it."""
    task = read_task(task_dir, sample_rate_hz=embedder.sample_rate)
    t0 = time.perf_counter()
    embeddings, stamps, note = embed_task(embedder, task, cfg)
    labels = {s: task.labels(s) for s in task.splits}
    result = probes.evaluate_task(embeddings, task.metadata, labels, task.vocabulary, cfg, stamps, seed=seed)
    if cfg.sensitivity_rel > 0:  # float-noise check: the same probes on embeddings moved by a relative 1e-6
        result["sensitivity"] = probes.sensitivity(result, embeddings, task.metadata, labels, task.vocabulary, cfg,
                                                   stamps, seed=seed)
        first = task.metadata["evaluation"][0]
        result[f"{first}_sensitivity"] = abs(result["sensitivity"]["delta"][first])
    folds = [f["predictions"] for f in result.get("folds", []) if "predictions" in f]
    if folds:  # per-item predictions of every test fold: error distributions, confusion matrices, paired tests
        result["predictions"] = {k: sum((f[k] for f in folds), []) for k in ("files", "true", "pred")}
    result.update(input=note, embed_seconds=time.perf_counter() - t0,
                  prediction_type=task.metadata.get("prediction_type"),
                  first_metric=task.metadata["evaluation"][0])
    return result


def score_localizer(localizer, task_dir: Path, split: str = "test") -> dict:
    """A training-free localizer (``localize(audio) -> (n, 3)``) scored on a localization task's test split."""
    task = read_task(task_dir, sample_rate_hz=localizer.sample_rate)
    files = task.files(split)
    audio = torch.from_numpy(np.stack([task.load(split, f) for f in files]))
    predicted = np.asarray(localizer.localize(audio), dtype=np.float64)
    labels = task.labels(split)
    truth = np.array([[labels[f][0][k] for k in ("x", "y", "z")] for f in files])
    out = {name: metrics.score(name, predicted, truth) for name in task.metadata["evaluation"]}
    out["predictions"] = {"files": files, "true": truth.tolist(), "pred": predicted.tolist()}
    return out | {"n_test": len(files), "input": "native", "prediction_type": "localization",
                  "first_metric": task.metadata["evaluation"][0], "training": "none"}


def average(results: dict) -> dict:
    """Per suite: the plain average (in %) of each task's first metric over the classification tasks.

    Where the probes were re-run on perturbed embeddings, ``average_sensitivity`` is how far that moves
    the average (points).
    """
    out: dict[str, dict] = {}
    for key, res in results.items():
        suite, _ = key.split("/", 1)
        if res.get("prediction_type") in ERROR_KINDS or "first_metric" not in res:
            continue
        entry = out.setdefault(suite, {"scores": [], "perturbed": []})
        entry["scores"].append(100.0 * res[res["first_metric"]])
        entry["perturbed"].append(100.0 * res["sensitivity"]["perturbed"] if "sensitivity" in res else np.nan)
    summary = {}
    for suite, v in out.items():
        summary[suite] = {"average": float(np.mean(v["scores"])), "n_tasks": len(v["scores"])}
        if np.isfinite(v["perturbed"]).all():
            summary[suite]["average_sensitivity"] = float(abs(np.mean(v["perturbed"]) - np.mean(v["scores"])))
    return summary


def evaluate_model(name: str, embedder: HearModel, suite_dirs: dict[str, Path], cfg: EvaluateConfig, seed: int,
                   *, only: tuple[str, ...] | None = None, suites_used: tuple[str, ...] | None = None,
                   meta: dict | None = None) -> dict:
    """Every task of every suite (or the named subset) for one embedder; returns the results dict."""
    results = {}
    jobs = [(s, t) for s, d in suite_dirs.items() if suites_used is None or s in suites_used
            for t in list_tasks(d) if only is None or t.name in only]
    bar = tqdm(jobs, desc=f"evaluate {name}", unit="task", dynamic_ncols=True)
    for suite, task_dir in bar:
        bar.set_postfix_str(f"{suite}/{task_dir.name}", refresh=False)  # shown with the next redraw
        results[f"{suite}/{task_dir.name}"] = evaluate_task(embedder, task_dir, cfg, seed)
    settings = {k: v for k, v in describe().items() if k not in ("cpu", "cores")}  # same on every machine
    return {"name": name, **(meta or {}), "numerics": settings, "tasks": results, "aggregate": average(results)}


def summary_table(results: dict[str, dict]):
    """Models x (suite/task) table of each task's first metric (classification in %)."""
    import pandas as pd  # only the notebooks' table needs it

    rows = {}
    for name, res in results.items():
        for key, r in res["tasks"].items():
            metric = r["first_metric"]
            value = r[metric] * (1 if r.get("prediction_type") in ERROR_KINDS else 100)
            rows.setdefault(name, {})[f"{key} ({metric})"] = round(value, 3)
    return pd.DataFrame(rows).T.sort_index(axis=1)


def write_results(path: Path, results: dict) -> Path:
    """Write the metrics JSON (a DVC metrics file); folds and grids go to a sidecar detail file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    slim = {k: v for k, v in results.items() if k != "tasks"}
    slim["tasks"] = {key: {m: v for m, v in res.items() if isinstance(v, (int, float, str))}
                     for key, res in results["tasks"].items()}
    path.write_text(json.dumps(slim, indent=1, default=float))
    detail = path.with_suffix(".detail.json")
    detail.write_text(json.dumps(results, default=_jsonable))
    return path


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


# ---------------------------------------------------------------------- pipeline entry points
def evaluate_variant(slug: str, params: dict, paths) -> dict:
    """The ``evaluate@<variant>`` stage: every task for main models, the named subset for ablations."""
    variant, _, _ = config.resolve_variant(params, slug)
    cfg = config.section(params, "evaluate")
    embedder = HearModel.load(hear, str(paths.model(slug)))
    dirs = suites(tasks_source(paths.sources), paths.nathear)
    only = None if variant.budget == "main" else tuple(cfg.ablation_tasks)
    used = None if variant.budget == "main" and cfg.suites == "all" else ("hear", NATIVE_SUITE[variant.format])
    meta = {"kind": "gram", "format": variant.format,
            "variant": {"axis": variant.axis, "value": variant.value, "budget": variant.budget,
                        "seed": variant.seed, "also": variant.also},
            "train": _read_json(paths.model(slug) / "train_summary.json")}
    results = evaluate_model(slug, embedder, dirs, cfg, int(params["seed"]), only=only, suites_used=used, meta=meta)
    if slug in cfg.curve_variants:
        results["curve"] = learning_curve(paths.model(slug), dirs, cfg, int(params["seed"]), variant.format)
    write_results(paths.eval_json(slug), results)
    return results


def learning_curve(model_dir: Path, dirs: dict[str, Path], cfg: EvaluateConfig, seed: int, fmt: str) -> list[dict]:
    """Probe scores of the weight snapshots in ``model_dir/curve`` on ``cfg.curve_tasks`` (Figure 6)."""
    points = []
    for ckpt in sorted(Path(model_dir, "curve").glob("step-*")):
        embedder = HearModel.load(hear, str(ckpt))
        res = evaluate_model(ckpt.name, embedder, dirs, cfg, seed, only=tuple(cfg.curve_tasks),
                             suites_used=("hear", NATIVE_SUITE[fmt]))
        point = {"step": int(ckpt.name.split("-")[1])}
        point.update({k: r[r["first_metric"]] for k, r in res["tasks"].items()})
        points.append(point)
    return points


def evaluate_baselines(params: dict, paths) -> dict[str, dict]:
    """The ``baselines`` stage: each reference model through the same code, one JSON each."""
    cfg = config.section(params, "evaluate")
    bcfg = config.section(params, "baselines")
    dirs = suites(tasks_source(paths.sources), paths.nathear)
    out = {}
    for name in bcfg.names:
        model = baselines.baseline(name, params)
        if hasattr(model.model, "localize"):
            out[name] = localizer_results(name, model.model, dirs)
        else:
            fmt = getattr(model.model, "format", "mono")
            used = None if cfg.suites == "all" else ("hear", NATIVE_SUITE[fmt])
            out[name] = evaluate_model(name, model, dirs, cfg, int(params["seed"]), suites_used=used,
                                       meta={"kind": "baseline", "format": fmt})
        write_results(paths.eval_json(name), out[name])
    return out


def localizer_results(name: str, localizer, dirs: dict[str, Path]) -> dict:
    """A training-free localizer on the localization tasks of the suites it can read."""
    wanted = {"intensity": "nathear-foa", "gcc-hrtf": "nathear-binaural"}.get(name)
    results = {}
    for suite, folder in dirs.items():
        if suite == "hear" or (wanted and suite != wanted):
            continue
        for task_dir in list_tasks(folder):
            if read_task(task_dir).metadata.get("prediction_type") == "localization":
                results[f"{suite}/{task_dir.name}"] = score_localizer(localizer, task_dir)
    return {"name": name, "kind": "baseline", "format": wanted.split("-")[1] if wanted else "mono",
            "tasks": results, "aggregate": {}}


def _read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}


def run_stage(params: dict, paths, *, variant: str | None = None, baselines: bool = False) -> dict[str, dict]:
    """The ``evaluate@<variant>`` stage, or with ``baselines`` the ``baselines`` stage; {name: results}."""
    if baselines:
        return evaluate_baselines(params, paths)
    if variant is None:
        raise ValueError("run_stage: name the variant to evaluate (or baselines=True)")
    return {variant: evaluate_variant(variant, params, paths)}
