"""Probe inputs: task embeddings and labels as arrays, and frame predictions back to events.

:func:`encode_split` turns one split's ``{file: embedding}`` and ``{file: label}`` (the HEAR
``<split>.json`` values, see DESIGN.md for the localization and T60 layouts) into a :class:`SplitData`;
:func:`frames_to_events` is heareval's event post-processing of one file (median filter, threshold,
grouping of consecutive frames, minimum duration), re-implemented from its description.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import median_filter

POSTPROCESSING_GRID = {"median_filter_ms": [250.0], "min_duration": [125.0, 250.0]}  # HEAR 2021's
EVENT_THRESHOLD = 0.5
EVENT_END_TOL_MS = 1e-4  # heareval's IntervalTree(start, end + 0.0001): a frame at t == end is inside


@dataclass
class SplitData:
    """Probe inputs of one or more splits. Events: frames of a file are contiguous, in time order."""

    x: np.ndarray  # (n, D) float32: clips, or frames for event tasks
    y: np.ndarray  # multiclass (n,) int; multilabel/event (n, K) 0/1; localization (n, 3); regression (n,)
    files: list[str]
    bounds: np.ndarray | None = None  # events: frames of files[i] are bounds[i]:bounds[i+1]
    ts: np.ndarray | None = None  # events: (n,) frame timestamps in ms
    events: dict = field(default_factory=dict)  # events: {file: target events}


def encode_label(label, kind: str, index: dict[str, int], where: str):
    """The probe target of one clip's label (see :class:`SplitData`)."""
    if kind == "localization":
        item = label[0] if isinstance(label, list) and label and isinstance(label[0], dict) else label
        if isinstance(item, dict):
            if {"x", "y", "z"} <= set(item):
                vec = np.array([item["x"], item["y"], item["z"]], np.float64)
            else:
                az, el = np.radians(item["azimuth_deg"]), np.radians(item["elevation_deg"])
                vec = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        else:
            vec = np.asarray(label, np.float64).reshape(-1)
        if vec.shape != (3,) or not np.isfinite(vec).all() or np.linalg.norm(vec) == 0:
            raise ValueError(f"{where}: a localization label needs a non-zero direction; got {label!r}")
        return vec / np.linalg.norm(vec)
    if kind == "regression":
        item = label[0] if isinstance(label, list) else label
        value = float(item["rt60_s"] if isinstance(item, dict) else item)
        if not np.isfinite(value):
            raise ValueError(f"{where}: regression label is not finite: {label!r}")
        return value
    names = [label] if isinstance(label, str) else list(label)
    unknown = [str(n) for n in names if str(n) not in index]
    if unknown:
        raise ValueError(f"{where}: label(s) {unknown} are not in the vocabulary {list(index)[:12]}...")
    if kind == "multiclass":
        if len(names) != 1:
            raise ValueError(f"{where}: a multiclass clip needs exactly one label; got {names!r}")
        return index[str(names[0])]
    hot = np.zeros(len(index), np.float32)
    hot[[index[str(n)] for n in names]] = 1.0
    return hot


def _array(value, where: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != ndim or arr.size == 0:
        raise ValueError(f"{where}: expected a non-empty {ndim}-D embedding, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: embedding contains NaN or inf")
    return arr


def encode_split(split: str, embeddings: dict, labels: dict, kind: str, vocabulary: list[str],
                 timestamps: dict | None) -> SplitData:
    """Stack one split's embeddings and encode its labels; files in sorted order."""
    emb, lab = embeddings.get(split), labels.get(split)
    if not emb:
        raise ValueError(f"split {split!r} has no embeddings (splits given: {sorted(embeddings)})")
    if lab is None or set(emb) != set(lab):
        missing = sorted(set(emb) ^ set(lab or {}))[:5]
        raise ValueError(f"split {split!r}: embeddings and labels cover different files, e.g. {missing}")
    index, files = {v: i for i, v in enumerate(vocabulary)}, sorted(emb)
    if kind != "event":
        x = np.stack([_array(emb[f], f"{split}/{f}", 1) for f in files])
        y = np.array([encode_label(lab[f], kind, index, f"{split}/{f}") for f in files])
        return SplitData(x, y, files)
    if timestamps is None or split not in timestamps:
        raise ValueError(f"event task: timestamps of split {split!r} are missing")
    xs, ys, tss, events = [], [], [], {}
    for f in files:
        x, ts = _array(emb[f], f"{split}/{f}", 2), np.asarray(timestamps[split].get(f, []), np.float64)
        if ts.shape != (len(x),):
            raise ValueError(f"{split}/{f}: {len(x)} embedding frames but timestamps of shape {ts.shape}")
        order = np.argsort(ts, kind="stable")
        events[f] = [dict(e, label=str(e["label"])) for e in lab[f]]
        encode_label([e["label"] for e in events[f]], "multilabel", index, f"{split}/{f}")  # vocabulary check
        y = np.zeros((len(ts), len(vocabulary)), np.float32)
        for e in events[f]:
            y[(ts[order] >= e["start"]) & (ts[order] <= e["end"] + EVENT_END_TOL_MS), index[e["label"]]] = 1.0
        xs.append(x[order]), ys.append(y), tss.append(ts[order])
    bounds = np.cumsum([0] + [len(t) for t in tss])
    return SplitData(np.concatenate(xs), np.concatenate(ys), files, bounds, np.concatenate(tss), events)


def concat(parts: list[SplitData]) -> SplitData:
    """Several splits as one (e.g. the train folds)."""
    if len(parts) == 1:
        return parts[0]
    out = SplitData(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]),
                    [f for p in parts for f in p.files])
    if parts[0].bounds is not None:
        offsets = np.cumsum([0] + [len(p.x) for p in parts[:-1]])
        out.bounds = np.concatenate([[0]] + [p.bounds[1:] + o for p, o in zip(parts, offsets)])
        out.ts = np.concatenate([p.ts for p in parts])
        out.events = {k: v for p in parts for k, v in p.events.items()}
    return out


# ------------------------------------------------------------------------------------ event post-processing
def frames_to_events(probs: np.ndarray, ts_ms: np.ndarray, vocabulary: list[str], median_filter_ms: float,
                     min_duration: float, threshold: float = EVENT_THRESHOLD) -> list[dict]:
    """One file's frame probabilities ``(T, K)`` at ``ts_ms`` (sorted) -> events ``{label, start, end}`` in ms."""
    if median_filter_ms and len(ts_ms) > 1:
        width = int(round(median_filter_ms / float(np.mean(np.diff(ts_ms)))))
        if width:
            probs = median_filter(probs, size=(width, 1))
    events = []
    for k, label in enumerate(vocabulary):
        active = np.flatnonzero(probs[:, k] > threshold)
        if not len(active):
            continue
        cuts = np.flatnonzero(np.diff(active) > 1)
        for first, last in zip(active[np.r_[0, cuts + 1]], active[np.r_[cuts, len(active) - 1]]):
            if ts_ms[last] - ts_ms[first] >= min_duration:
                events.append({"label": label, "start": float(ts_ms[first]), "end": float(ts_ms[last])})
    return sorted(events, key=lambda e: (e["start"], e["label"]))


def postprocessing_grid(metadata: dict) -> list[dict]:
    """Event post-processing settings: the task's ``evaluation_params.event_postprocessing_grid`` or HEAR's."""
    grid = (metadata.get("evaluation_params") or {}).get("event_postprocessing_grid", POSTPROCESSING_GRID)
    keys = sorted(grid)
    return [dict(zip(keys, v)) for v in itertools.product(*(grid[k] for k in keys))]
