"""Scores of the HEAR 2021 protocol and of the Nat-HEAR localization and T60 tasks.

Every score is a plain function of predictions and targets; :func:`score` dispatches on the names that
``task_metadata.json`` lists under ``"evaluation"`` and :func:`higher_is_better` says which way is
better. Input kinds (:data:`INPUT_KIND`):

* ``"scores"`` -- class scores ``(n, K)`` (probabilities or logits) against targets given either as
  class indices ``(n,)`` or a one/multi-hot matrix ``(n, K)``;
* ``"events"`` -- ``{file: [{"label", "start", "end"}, ...]}`` with times in **ms** (HEAR layout);
* ``"vectors"`` -- direction vectors ``(n, 3)`` in our frame (x front, y left, z up);
* ``"scalars"`` -- values ``(n,)`` in seconds.

Where we differ from ``heareval`` 2021.1.3 (its ``score.py``), on purpose:

* ``d_prime``: per-class AUC is clipped to ``[AUC_CLIP, 1 - AUC_CLIP]`` before ``sqrt(2) Phi^-1(AUC)``,
  so a perfectly separated class gives ``+6.72``, not ``inf`` (an ``inf`` poisons fold means);
  ``d_prime`` and ``aucroc`` average over the classes whose AUC is defined (both a positive and a
  negative present) instead of returning NaN for the whole fold. ``mAP`` is sklearn's macro average
  as heareval (a class with no positive counts as AP 0).
* ``chroma_acc`` compares pitch classes of the *labels* (MIDI numbers or note names) when the
  vocabulary is given; heareval compares ``index mod 12``, which gives the same verdicts whenever the
  vocabulary is a gap-free run of semitones, but not when notes are missing from it. Without a
  vocabulary we fall back to ``index mod 12``.
* Event F-measure: ``2 Ntp / (Nsys + Nref)`` (= ``2PR / (P + R)``) is 0, not NaN, when either the
  system or the reference has no event (sed_eval: NaN); NaN only when neither has any. Otherwise F, P,
  R and the segment error rate equal sed_eval 0.2.1's as called by heareval (checked on 200 random
  multi-file cases).
* Angular error of an all-zero predicted vector (no direction) is 90 deg, the mean error of a
  uniformly random guess on the sphere.
"""
from __future__ import annotations

import math
import re
import warnings
from typing import Callable

import numpy as np
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

AUC_CLIP = 1e-6  # d' of a perfectly separated class: sqrt(2) * Phi^-1(1 - 1e-6) = 6.72
ONSET_COLLAR_S = 0.2
SEGMENT_S = 1.0
NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


# ------------------------------------------------------------------------------------ input helpers
def _class_scores(predictions, targets) -> tuple[np.ndarray, np.ndarray]:
    """``(n, K)`` float scores and ``(n, K)`` 0/1 targets from indices or one/multi-hot targets."""
    pred = np.asarray(predictions, dtype=np.float64)
    if pred.ndim != 2 or len(pred) == 0:
        raise ValueError(f"class scores must be a non-empty (n, K) array; got shape {pred.shape}")
    tgt = np.asarray(targets)
    if tgt.ndim == 1:
        if tgt.shape[0] != len(pred) or tgt.min() < 0 or tgt.max() >= pred.shape[1]:
            raise ValueError(f"class-index targets must be (n,) = ({len(pred)},) in [0, {pred.shape[1]}); "
                             f"got shape {tgt.shape}, range [{tgt.min()}, {tgt.max()}]")
        tgt = np.eye(pred.shape[1], dtype=np.int64)[tgt.astype(np.int64)]
    if tgt.shape != pred.shape:
        raise ValueError(f"targets {tgt.shape} do not match predictions {pred.shape}")
    return pred, (tgt > 0.5).astype(np.int64)


def _target_index(tgt: np.ndarray) -> np.ndarray:
    return tgt.argmax(axis=1)


def pitch_class(label: str) -> int:
    """Pitch class 0-11 (C = 0) of a MIDI note number (``"60"``) or a note name (``"C#4"``, ``"Eb3"``)."""
    text = str(label).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text) % 12
    match = re.fullmatch(r"([A-Ga-g])([#b]*)(-?\d*)", text)
    if not match:
        raise ValueError(f"cannot read a pitch from label {label!r}; use MIDI numbers or note names like 'C#4'")
    step, accidentals = match.group(1).upper(), match.group(2)
    return (NOTE_NAMES[step] + accidentals.count("#") - accidentals.count("b")) % 12


# ------------------------------------------------------------------------------------ classification
def top1_acc(predictions, targets) -> float:
    """Share of items whose highest score is the target class (first hot class for multi-hot)."""
    pred, tgt = _class_scores(predictions, targets)
    return float(np.mean(pred.argmax(axis=1) == _target_index(tgt)))


def pitch_acc(predictions, targets) -> float:
    """HEAR's name for top-1 accuracy on pitch tasks."""
    return top1_acc(predictions, targets)


def chroma_acc(predictions, targets, vocabulary: list | None = None) -> float:
    """Top-1 accuracy up to octave errors: predicted and target pitch classes agree.

    With ``vocabulary`` (the label of each class index) the pitch class comes from the label, so a
    vocabulary that starts on any note works; without it, ``index mod 12`` as heareval.
    """
    pred, tgt = _class_scores(predictions, targets)
    if vocabulary is None:
        classes = np.arange(pred.shape[1]) % 12
    else:
        if len(vocabulary) != pred.shape[1]:
            raise ValueError(f"vocabulary has {len(vocabulary)} labels; predictions have {pred.shape[1]} classes")
        classes = np.array([pitch_class(label) for label in vocabulary])
    return float(np.mean(classes[pred.argmax(axis=1)] == classes[_target_index(tgt)]))


def mAP(predictions, targets) -> float:
    """Macro mean average precision (sklearn; a class without positives counts as AP 0, as heareval)."""
    pred, tgt = _class_scores(predictions, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No positive class found in y_true": AP = 0 by sklearn's rule
        return float(average_precision_score(tgt, pred, average="macro"))


def class_aucs(predictions, targets) -> np.ndarray:
    """Per-class ROC AUC; NaN for a class whose targets are all 0 or all 1 (AUC undefined)."""
    pred, tgt = _class_scores(predictions, targets)
    aucs = np.full(pred.shape[1], np.nan)
    for k in range(pred.shape[1]):
        if 0 < tgt[:, k].sum() < len(tgt):
            aucs[k] = roc_auc_score(tgt[:, k], pred[:, k])
    return aucs


def aucroc(predictions, targets) -> float:
    """Macro ROC AUC over the classes where it is defined (NaN if none is)."""
    aucs = class_aucs(predictions, targets)
    return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else math.nan


def d_prime(predictions, targets) -> float:
    """Mean over classes of ``sqrt(2) * Phi^-1(AUC)``, AUC clipped to ``[AUC_CLIP, 1 - AUC_CLIP]``."""
    aucs = class_aucs(predictions, targets)
    if not np.isfinite(aucs).any():
        return math.nan
    clipped = np.clip(aucs[np.isfinite(aucs)], AUC_CLIP, 1.0 - AUC_CLIP)
    return float(np.mean(np.sqrt(2.0) * norm.ppf(clipped)))


# ------------------------------------------------------------------------------------ events
def _check_events(events: dict, what: str) -> dict:
    if not isinstance(events, dict):
        raise ValueError(f"{what} must be {{file: [{{'label', 'start', 'end'}}, ...]}}; got {type(events).__name__}")
    for file, items in events.items():
        for event in items:
            if not {"label", "start", "end"} <= set(event):
                raise ValueError(f"{what}[{file!r}] has an event without label/start/end: {event!r}")
    return events


def _max_matching(hits: list[list[int]], n_right: int) -> int:
    """Size of a maximum bipartite matching (Kuhn's augmenting paths); ``hits[i]``: partners of left i."""
    owner = [-1] * n_right

    def augment(i: int, seen: list[bool]) -> bool:
        for j in hits[i]:
            if not seen[j]:
                seen[j] = True
                if owner[j] < 0 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(augment(i, [False] * n_right) for i in range(len(hits)))


def onset_matches(reference: list[dict], estimated: list[dict], collar_s: float = ONSET_COLLAR_S) -> int:
    """One file's true positives: one-to-one matches of same-label events with onsets within the collar."""
    matched = 0
    for label in {str(e["label"]) for e in reference}:
        ref = [e["start"] / 1000.0 for e in reference if str(e["label"]) == label]
        est = [e["start"] / 1000.0 for e in estimated if str(e["label"]) == label]
        hits = [[j for j, t in enumerate(est) if abs(r - t) <= collar_s] for r in ref]
        matched += _max_matching(hits, len(est))
    return matched


def event_onset_fms(predictions: dict, targets: dict, collar_s: float = ONSET_COLLAR_S) -> dict:
    """Event-based onset-only F-measure, precision and recall (sed_eval ``EventBasedMetrics``,
    ``evaluate_onset=True, evaluate_offset=False``): matched per file and class, counts pooled."""
    _check_events(predictions, "predicted events"), _check_events(targets, "target events")
    n_tp = n_sys = n_ref = 0
    for file in sorted(set(predictions) | set(targets)):
        ref, est = targets.get(file, []), predictions.get(file, [])
        n_tp, n_sys, n_ref = n_tp + onset_matches(ref, est, collar_s), n_sys + len(est), n_ref + len(ref)
    f = 2.0 * n_tp / (n_sys + n_ref) if n_sys + n_ref else math.nan
    return {"f_measure": f, "precision": n_tp / n_sys if n_sys else math.nan,
            "recall": n_tp / n_ref if n_ref else math.nan, "n_tp": n_tp, "n_sys": n_sys, "n_ref": n_ref}


def event_onset_200ms_fms(predictions: dict, targets: dict) -> float:
    """Onset-only event F-measure with a 200-ms collar."""
    return float(event_onset_fms(predictions, targets, ONSET_COLLAR_S)["f_measure"])


def _activity(events: list[dict], labels: list[str], n_segments: int, segment_s: float) -> np.ndarray:
    """(n_segments, n_labels) 0/1 roll: an event covers segments floor(on/seg) .. ceil(off/seg) - 1."""
    roll = np.zeros((n_segments, len(labels)), dtype=np.int64)
    for e in events:
        first = int(math.floor(e["start"] / 1000.0 / segment_s))
        last = int(math.ceil(e["end"] / 1000.0 / segment_s))
        roll[first:last, labels.index(str(e["label"]))] = 1
    return roll


def segment_error_counts(predictions: dict, targets: dict, segment_s: float = SEGMENT_S) -> dict:
    """Pooled S, D, I, N of sed_eval's ``SegmentBasedMetrics`` (per file, up to its last offset)."""
    _check_events(predictions, "predicted events"), _check_events(targets, "target events")
    counts = {"S": 0, "D": 0, "I": 0, "N": 0}
    for file in sorted(set(predictions) | set(targets)):
        ref, est = targets.get(file, []), predictions.get(file, [])
        labels = sorted({str(e["label"]) for e in ref + est})
        end_s = max([e["end"] / 1000.0 for e in ref + est], default=0.0)
        n_segments = int(math.ceil(end_s / segment_s))
        r, s = _activity(ref, labels, n_segments, segment_s), _activity(est, labels, n_segments, segment_s)
        n_ref, n_sys, n_tp = r.sum(axis=1), s.sum(axis=1), (r & s).sum(axis=1)
        counts["S"] += int((np.minimum(n_ref, n_sys) - n_tp).sum())
        counts["D"] += int(np.maximum(0, n_ref - n_sys).sum())
        counts["I"] += int(np.maximum(0, n_sys - n_ref).sum())
        counts["N"] += int(n_ref.sum())
    return counts


def segment_1s_er(predictions: dict, targets: dict) -> float:
    """Segment-based error rate ``(S + D + I) / N`` on 1-s segments (NaN when N = 0)."""
    c = segment_error_counts(predictions, targets, SEGMENT_S)
    return (c["S"] + c["D"] + c["I"]) / c["N"] if c["N"] else math.nan


# ------------------------------------------------------------------------------------ regression
def angular_errors_deg(predictions, targets) -> np.ndarray:
    """Great-circle angle (deg) between predicted and target directions, ``(n,)``.

    Both are normalised to unit length; a zero predicted vector scores 90 deg (see module docstring).
    """
    pred, tgt = np.asarray(predictions, np.float64), np.asarray(targets, np.float64)
    if pred.ndim != 2 or pred.shape[1] != 3 or pred.shape != tgt.shape or len(pred) == 0:
        raise ValueError(f"directions must be two matching non-empty (n, 3) arrays; got {pred.shape}, {tgt.shape}")
    if not (np.isfinite(pred).all() and np.isfinite(tgt).all()):
        raise ValueError("direction vectors contain NaN or inf")
    t_norm, p_norm = np.linalg.norm(tgt, axis=1), np.linalg.norm(pred, axis=1)
    if (t_norm < 1e-12).any():
        raise ValueError(f"target direction {tgt[np.argmin(t_norm)].tolist()} has zero length")
    zero = p_norm < 1e-12
    cos = np.einsum("nd,nd->n", pred / np.where(zero, 1.0, p_norm)[:, None], tgt / t_norm[:, None])
    return np.where(zero, 90.0, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def median_angular_error_deg(predictions, targets) -> float:
    return float(np.median(angular_errors_deg(predictions, targets)))


def mean_angular_error_deg(predictions, targets) -> float:
    return float(np.mean(angular_errors_deg(predictions, targets)))


def _abs_errors(predictions, targets) -> np.ndarray:
    pred, tgt = np.asarray(predictions, np.float64).reshape(-1), np.asarray(targets, np.float64).reshape(-1)
    if pred.shape != tgt.shape or len(pred) == 0 or not (np.isfinite(pred).all() and np.isfinite(tgt).all()):
        raise ValueError(f"scalar predictions/targets must be finite, non-empty and matching; got {pred.shape}, {tgt.shape}")
    return np.abs(pred - tgt)


def median_abs_error_s(predictions, targets) -> float:
    return float(np.median(_abs_errors(predictions, targets)))


def mean_abs_error_s(predictions, targets) -> float:
    return float(np.mean(_abs_errors(predictions, targets)))


# ------------------------------------------------------------------------------------ dispatch
METRICS: dict[str, Callable] = {
    "top1_acc": top1_acc, "pitch_acc": pitch_acc, "chroma_acc": chroma_acc, "mAP": mAP,
    "d_prime": d_prime, "aucroc": aucroc,
    "event_onset_200ms_fms": event_onset_200ms_fms, "segment_1s_er": segment_1s_er,
    "median_angular_error_deg": median_angular_error_deg, "mean_angular_error_deg": mean_angular_error_deg,
    "median_abs_error_s": median_abs_error_s, "mean_abs_error_s": mean_abs_error_s,
}
INPUT_KIND = {name: "scores" for name in ("top1_acc", "pitch_acc", "chroma_acc", "mAP", "d_prime", "aucroc")}
INPUT_KIND |= {"event_onset_200ms_fms": "events", "segment_1s_er": "events",
               "median_angular_error_deg": "vectors", "mean_angular_error_deg": "vectors",
               "median_abs_error_s": "scalars", "mean_abs_error_s": "scalars"}
LOWER_IS_BETTER = {"segment_1s_er", "median_angular_error_deg", "mean_angular_error_deg",
                   "median_abs_error_s", "mean_abs_error_s"}


def check_metric(name: str) -> str:
    """``name`` if it is a known score, else a ValueError listing the known ones."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; accepted: {list(METRICS)}")
    return name


def higher_is_better(name: str) -> bool:
    return check_metric(name) not in LOWER_IS_BETTER


def score(name: str, predictions, targets, **ctx) -> float:
    """The score ``name`` of ``predictions`` against ``targets``; ``ctx`` may hold ``vocabulary``
    (used by ``chroma_acc``, ignored by the rest)."""
    fn = METRICS[check_metric(name)]
    if name == "chroma_acc":
        return fn(predictions, targets, vocabulary=ctx.get("vocabulary"))
    return float(fn(predictions, targets))
