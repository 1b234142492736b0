"""SELD metrics, written from their published definitions and tested on hand-computed cases.

Inputs are per-recording :class:`gramlib.seld.data.SeldLabels` (reference and prediction, 100-ms
frames). Errors are great-circle angles in degrees between unit vectors.

**DCASE 2021+ (STARSS, TAU-NIGENS)** -- :func:`seld_metrics_2021`. Each recording is cut into 1-s
segments (10 label frames). In a segment, for each class, the reference tracks (distinct track
indices of that class) are associated with the predicted ones frame by frame: in every frame where
both have the class, the Hungarian algorithm pairs same-class reference and predicted DoAs at least
total angle, and each reference track's error is the mean over its paired frames. Then, per class:

* a paired reference track is a localization hit (its error enters LE_CD, it counts in LR_CD) and a
  location-aware true positive if its error is <= 20 deg (``<=`` as the DCASE code), else a false
  positive;
* a reference track never paired is a false negative and a localization miss; predicted tracks
  beyond the number of paired reference tracks are false positives. So a class in the reference
  only gives N_ref misses, in the prediction only N_pred false positives, and in both but never in
  the same frame both. (The DCASE code counts misses as N_ref - N_pred instead; the two agree
  whenever each predicted track pairs with one reference track, and ours does not punish a
  single-track ACCDOA output for two same-class events that follow each other within a segment.)

Per segment S = min(FP, FN), D = max(0, FN - FP), I = max(0, FP - FN) over classes;
ER20 = sum(S + D + I) / N_ref over the whole set. F20 = 2TP / (2TP + FP + FN), LE_CD = mean error of
the hits (180 deg for a class without any hit), LR_CD = hits / (hits + misses); the three are
computed per class and macro-averaged over the classes that occur in the reference (the DCASE
2022/2023 default; ``*_micro`` keys give the pooled versions). SELD = mean(ER20, 1 - F20, LE_CD/180,
1 - LR_CD).

**DCASE 2019 style (TUT-2018, TAU-2019)** -- :func:`seld_metrics_2019`. Detection ignores location:
on 1-s segments a class is active if it is active in any of its frames; ER and F pooled over
segments and classes (as sed_eval's overall segment-based metrics). Localization ignores class: in
every frame the predicted DoAs are paired with the reference DoAs by the Hungarian algorithm, and
the DoA error is the mean angle over all pairs; the frame recall is the share of all frames (silent
ones included) whose number of predicted sources equals the reference count. The 2019 challenge
scored 20-ms frames; we score the 100-ms label frames every reader gives, so frame recall and DoA
error are comparable in kind, not to the last digit, with the published TUT-2018/TAU-2019 numbers.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from .labels import SeldLabels

SEGMENT_FRAMES = 10  # 1-s segments of 100-ms frames
DOA_THRESHOLD_DEG = 20.0


def angular_distance_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise great-circle angles (deg) between unit vectors a (n, 3) and b (m, 3): (n, m)."""
    return np.rad2deg(np.arccos(np.clip(a @ b.T, -1.0, 1.0)))


def hungarian_pairs(ref_xyz: np.ndarray, pred_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal pairing (least total angle): reference rows, predicted rows, their angles (deg)."""
    cost = angular_distance_deg(ref_xyz, pred_xyz)
    if cost.shape == (1, 1):
        return np.zeros(1, int), np.zeros(1, int), cost[0]
    rows, cols = linear_sum_assignment(cost)
    return rows, cols, cost[rows, cols]


def _by_frame(labels: SeldLabels) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """frame -> (classes (k,), tracks (k,), unit vectors (k, 3))."""
    xyz = labels.unit_vectors()
    out = {}
    starts = np.flatnonzero(np.r_[True, np.diff(labels.frame) != 0]) if len(labels) else []
    bounds = list(starts) + [len(labels)]
    for s, e in zip(bounds[:-1], bounds[1:]):
        out[int(labels.frame[s])] = (labels.class_idx[s:e], labels.track[s:e], xyz[s:e])
    return out


def _check_pairs(references: list[SeldLabels], predictions: list[SeldLabels]) -> None:
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference recordings but {len(predictions)} predictions")
    for i, (r, p) in enumerate(zip(references, predictions)):
        if r.n_frames != p.n_frames:
            raise ValueError(f"recording {i}: reference has {r.n_frames} frames, prediction {p.n_frames}")


# --------------------------------------------------------------------------------------------
# DCASE 2021+
# --------------------------------------------------------------------------------------------
def _segment_class_counts(ref_seg: dict, pred_seg: dict, c: int) -> tuple[int, int, list[float]]:
    """(N_ref tracks, N_pred tracks, mean error of each paired reference track) of class c."""
    ref_tracks, pred_tracks, errors = set(), set(), defaultdict(list)
    for f in set(ref_seg) | set(pred_seg):
        rc = ref_seg.get(f)
        pc = pred_seg.get(f)
        r_mask = rc[0] == c if rc is not None else np.zeros(0, bool)
        p_mask = pc[0] == c if pc is not None else np.zeros(0, bool)
        if r_mask.any():
            ref_tracks.update(rc[1][r_mask].tolist())
        if p_mask.any():
            pred_tracks.update(pc[1][p_mask].tolist())
        if r_mask.any() and p_mask.any():
            rows, _, dist = hungarian_pairs(rc[2][r_mask], pc[2][p_mask])
            for row, d in zip(rows, dist):
                errors[int(rc[1][r_mask][row])].append(float(d))
    return len(ref_tracks), len(pred_tracks), [float(np.mean(v)) for v in errors.values()]


def seld_metrics_2021(references: list[SeldLabels], predictions: list[SeldLabels], n_classes: int,
                      doa_threshold_deg: float = DOA_THRESHOLD_DEG) -> dict:
    """Location-aware detection (ER20, F20) and class-dependent localization (LE_CD, LR_CD)."""
    _check_pairs(references, predictions)
    tp, fp, fn, n_ref = (np.zeros(n_classes) for _ in range(4))
    hits, misses, err_sum = np.zeros(n_classes), np.zeros(n_classes), np.zeros(n_classes)
    sdi = 0.0
    for ref, pred in zip(references, predictions):
        ref_f, pred_f = _by_frame(ref), _by_frame(pred)
        for seg in range(int(np.ceil(ref.n_frames / SEGMENT_FRAMES))):
            frames = range(seg * SEGMENT_FRAMES, (seg + 1) * SEGMENT_FRAMES)
            ref_seg = {f: ref_f[f] for f in frames if f in ref_f}
            pred_seg = {f: pred_f[f] for f in frames if f in pred_f}
            present = {int(c) for seg_rows in (*ref_seg.values(), *pred_seg.values()) for c in seg_rows[0]}
            seg_fp = seg_fn = 0
            for c in present:
                nr, npd, errors = _segment_class_counts(ref_seg, pred_seg, c)
                n_ref[c] += nr
                good = sum(e <= doa_threshold_deg for e in errors)
                c_fp = (len(errors) - good) + max(0, npd - len(errors))  # too far + surplus predictions
                c_fn = nr - len(errors)  # reference tracks never paired
                tp[c] += good
                hits[c] += len(errors)
                err_sum[c] += sum(errors)
                fp[c] += c_fp
                fn[c] += c_fn
                misses[c] += c_fn
                seg_fp += c_fp
                seg_fn += c_fn
            sdi += min(seg_fp, seg_fn) + max(0, seg_fn - seg_fp) + max(0, seg_fp - seg_fn)
    return _summarize_2021(tp, fp, fn, n_ref, hits, misses, err_sum, sdi)


def _summarize_2021(tp, fp, fn, n_ref, hits, misses, err_sum, sdi) -> dict:
    present = n_ref > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        f_c = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        le_c = np.where(hits > 0, err_sum / np.maximum(hits, 1), 180.0)
        lr_c = np.where(hits + misses > 0, hits / np.maximum(hits + misses, 1), 0.0)
    total_ref = float(n_ref.sum())
    er = sdi / total_ref if total_ref else float("nan")
    macro = (lambda v: float(np.mean(v[present])) if present.any() else float("nan"))
    f, le, lr = macro(f_c), macro(le_c), macro(lr_c)
    pooled = 2 * tp.sum() + fp.sum() + fn.sum()
    return {
        "ER20": er, "F20": f, "LE_CD_deg": le, "LR_CD": lr,
        "SELD": float(np.mean([er, 1 - f, le / 180.0, 1 - lr])),
        "F20_micro": float(2 * tp.sum() / pooled) if pooled else float("nan"),
        "LE_CD_micro_deg": float(err_sum.sum() / hits.sum()) if hits.sum() else 180.0,
        "LR_CD_micro": float(hits.sum() / (hits.sum() + misses.sum())) if hits.sum() + misses.sum() else 0.0,
        "n_reference_tracks": int(total_ref),
        "classwise": {"F20": f_c.tolist(), "LE_CD_deg": le_c.tolist(), "LR_CD": lr_c.tolist(),
                      "n_reference_tracks": n_ref.astype(int).tolist()},
    }


# --------------------------------------------------------------------------------------------
# DCASE 2019 style
# --------------------------------------------------------------------------------------------
def _segment_activity(labels: SeldLabels, n_classes: int) -> np.ndarray:
    """(n_segments, n_classes) bool: class active in any frame of the 1-s segment."""
    n_seg = int(np.ceil(labels.n_frames / SEGMENT_FRAMES))
    act = np.zeros((n_seg, n_classes), bool)
    act[labels.frame // SEGMENT_FRAMES, labels.class_idx] = True
    return act


def seld_metrics_2019(references: list[SeldLabels], predictions: list[SeldLabels], n_classes: int) -> dict:
    """Segment-based ER/F (1 s), class-agnostic Hungarian DoA error and frame recall."""
    _check_pairs(references, predictions)
    tp = fp = fn = n_ref = sdi = 0
    doa_sum, doa_pairs, good_frames, n_frames = 0.0, 0, 0, 0
    for ref, pred in zip(references, predictions):
        r_act, p_act = _segment_activity(ref, n_classes), _segment_activity(pred, n_classes)
        seg_tp = (r_act & p_act).sum(1)
        seg_fp, seg_fn = (p_act & ~r_act).sum(1), (r_act & ~p_act).sum(1)
        tp, fp, fn, n_ref = tp + seg_tp.sum(), fp + seg_fp.sum(), fn + seg_fn.sum(), n_ref + r_act.sum()
        sdi += (np.minimum(seg_fp, seg_fn) + np.maximum(0, seg_fn - seg_fp) + np.maximum(0, seg_fp - seg_fn)).sum()
        ref_f, pred_f = _by_frame(ref), _by_frame(pred)
        n_frames += ref.n_frames
        good_frames += ref.n_frames - len(set(ref_f) | set(pred_f))  # silent in both
        for f in set(ref_f) | set(pred_f):
            nr = len(ref_f[f][0]) if f in ref_f else 0
            npd = len(pred_f[f][0]) if f in pred_f else 0
            good_frames += nr == npd
            if nr and npd:
                _, _, dist = hungarian_pairs(ref_f[f][2], pred_f[f][2])
                doa_sum += float(dist.sum())
                doa_pairs += len(dist)
    er = float(sdi / n_ref) if n_ref else float("nan")
    f = float(2 * tp / (2 * tp + fp + fn)) if 2 * tp + fp + fn else float("nan")
    doa = doa_sum / doa_pairs if doa_pairs else 180.0
    recall = good_frames / n_frames if n_frames else float("nan")
    return {"ER_1s": er, "F_1s": f, "DOA_error_deg": float(doa), "frame_recall": float(recall),
            "SELD_2019": float(np.mean([er, 1 - f, doa / 180.0, 1 - recall])), "n_doa_pairs": int(doa_pairs)}


def seld_metrics(references: list[SeldLabels], predictions: list[SeldLabels], n_classes: int) -> dict:
    """Both metric families in one flat dict (the 2021+ keys and the 2019-style keys)."""
    return {**seld_metrics_2021(references, predictions, n_classes),
            **seld_metrics_2019(references, predictions, n_classes)}
