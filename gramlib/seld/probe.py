"""The SELD probe on frozen embeddings: ACCDOA / multi-ACCDOA targets, the head, ADPIT, decoding,
and :func:`run_seld_probe` (train on train recordings, select on validation ones, score the test ones).

* Embeddings at any hop are pooled to the 100-ms label grid by :func:`pool_to_label_frames`: a label
  frame is the average of the embedding frames whose spans overlap it (a frame's span reaches half
  way to its neighbours' timestamps), weighted by the overlap -- GRAM's 80-ms columns become 100-ms
  frames.
* The head (``cfg.head``: linear, or one hidden layer of 256) has tanh outputs and learns on
  standardised inputs (train statistics): ACCDOA -- per class a 3-vector whose norm is the activity
  and whose direction the DoA (MSE) -- or multi-ACCDOA, 3 tracks x classes with the ADPIT loss (the
  permutation-invariant loss with auxiliary duplicated targets: per frame and class, the least MSE
  over the 13 ways of spreading 1-3 reference sources over the 3 tracks; an inactive class targets
  zero on every track).
* Model selection uses validation recordings only -- the epoch with the least validation loss, then
  the activity threshold with the best validation SELD score; the test recordings are scored once.
"""
from __future__ import annotations

import copy
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.config import SeldConfig
from .labels import LABEL_HOP_S, SeldLabels, direction_deg, write_frame_csv
from .metrics import seld_metrics, seld_metrics_2021

N_TRACKS = 3  # multi-ACCDOA tracks per class
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
MERGE_DEG = 15.0  # same-class tracks closer than this are one source (as the DCASE baseline's unify step)
MLP_HIDDEN = 256
HOP_MS = LABEL_HOP_S * 1000.0


# --------------------------------------------------------------------------------------------
# Embedding frames -> label frames
# --------------------------------------------------------------------------------------------
def pool_to_label_frames(emb: np.ndarray, timestamps_ms: np.ndarray, n_frames: int) -> np.ndarray:
    """(T, D) embeddings at their timestamps -> (n_frames, D) at the 100-ms label grid.

    Each embedding frame spans half way to its neighbours; a label frame averages the frames that
    overlap it, weighted by the overlap (the nearest frame where none does).
    """
    t = np.asarray(timestamps_ms, np.float64)
    if len(t) == 1:
        return np.repeat(np.asarray(emb, np.float32), n_frames, axis=0)
    mid = (t[1:] + t[:-1]) / 2
    lo = np.r_[t[0] - (t[1] - t[0]) / 2, mid]
    hi = np.r_[mid, t[-1] + (t[-1] - t[-2]) / 2]
    f_lo = np.arange(n_frames) * HOP_MS
    overlap = np.clip(np.minimum(f_lo[:, None] + HOP_MS, hi[None]) - np.maximum(f_lo[:, None], lo[None]), 0, None)
    empty = overlap.sum(1) == 0
    nearest = np.abs(f_lo[:, None] + HOP_MS / 2 - t[None]).argmin(1)
    overlap[empty, nearest[empty]] = 1.0
    return ((overlap / overlap.sum(1, keepdims=True)) @ np.asarray(emb, np.float64)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Targets, head, loss, decoding
# --------------------------------------------------------------------------------------------
def accdoa_targets(labels: SeldLabels, n_classes: int) -> np.ndarray:
    """(F, C, 3): unit DoA of the class's first track where active, else 0."""
    y = np.zeros((labels.n_frames, n_classes, 3), np.float32)
    xyz = labels.unit_vectors()
    for i in range(len(labels) - 1, -1, -1):  # reverse: the lowest track index is written last
        y[labels.frame[i], labels.class_idx[i]] = xyz[i]
    return y


def multi_accdoa_targets(labels: SeldLabels, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference slots (F, C, 3, 3) -- up to 3 same-class DoAs by track order -- and their counts (F, C)."""
    refs = np.zeros((labels.n_frames, n_classes, N_TRACKS, 3), np.float32)
    counts = np.zeros((labels.n_frames, n_classes), np.int64)
    for (f, c), v in zip(zip(labels.frame, labels.class_idx), labels.unit_vectors()):
        if counts[f, c] < N_TRACKS:
            refs[f, c, counts[f, c]] = v
            counts[f, c] += 1
    return refs, counts


def _adpit_patterns() -> tuple[torch.Tensor, torch.Tensor]:
    """(P, 3) reference slot per track, and (P,) reference count: 1 + 1 + 6 + 6 = 14 patterns."""
    pats = [((0, 0, 0), 0), ((0, 0, 0), 1)]
    pats += [(p, 2) for p in itertools.product((0, 1), repeat=3) if len(set(p)) == 2]
    pats += [(p, 3) for p in itertools.permutations((0, 1, 2))]
    return torch.tensor([p for p, _ in pats]), torch.tensor([n for _, n in pats])


ADPIT_SLOTS, ADPIT_COUNTS = _adpit_patterns()


def adpit_loss(pred: torch.Tensor, refs: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """pred (B, 3, C, 3) tracks; refs (B, C, 3, 3); counts (B, C) -> mean over (B, C) of the least
    MSE among the patterns valid for the count (duplicated references fill the spare tracks)."""
    pred = pred.permute(0, 2, 1, 3)  # (B, C, tracks, 3)
    targets = refs[:, :, ADPIT_SLOTS, :] * (ADPIT_COUNTS > 0).float()[:, None, None]  # (B, C, P, tracks, 3)
    err = ((pred[:, :, None] - targets) ** 2).mean(dim=(-1, -2))  # (B, C, P)
    valid = counts.clamp(max=N_TRACKS)[..., None] == ADPIT_COUNTS  # (B, C, P)
    return err.masked_fill(~valid, float("inf")).min(dim=-1).values.mean()


class SeldHead(nn.Module):
    """Frame embeddings (B, D) -> tanh ACCDOA vectors (B, tracks, C, 3)."""

    def __init__(self, dim: int, n_classes: int, n_tracks: int, head: str):
        super().__init__()
        out = n_tracks * n_classes * 3
        self.shape = (n_tracks, n_classes, 3)
        self.net = nn.Linear(dim, out) if head == "linear" else nn.Sequential(
            nn.Linear(dim, MLP_HIDDEN), nn.GELU(), nn.Linear(MLP_HIDDEN, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x)).view(-1, *self.shape)


def decode(vectors: np.ndarray, threshold: float) -> SeldLabels:
    """(F, tracks, C, 3) outputs of one recording -> predicted labels.

    A track is active when its norm exceeds ``threshold``; active same-class tracks within
    MERGE_DEG of a stronger one are averaged into it.
    """
    n_frames = vectors.shape[0]
    norms = np.linalg.norm(vectors, axis=-1)  # (F, tracks, C)
    rows = []
    for f, c in sorted({(f, c) for f, _, c in zip(*np.nonzero(norms > threshold))}):
        order = np.argsort(-norms[f, :, c])
        kept: list[np.ndarray] = []
        for k in order:
            if norms[f, k, c] <= threshold:
                break
            u = vectors[f, k, c] / norms[f, k, c]
            close = [j for j, v in enumerate(kept) if np.dot(v / np.linalg.norm(v), u) > np.cos(np.deg2rad(MERGE_DEG))]
            if close:
                kept[close[0]] = kept[close[0]] + u
            else:
                kept.append(u)
        for track, v in enumerate(kept):
            az, el = direction_deg(v)
            rows.append((f, c, track, float(az), float(el)))
    return SeldLabels.from_rows(rows, n_frames)


# --------------------------------------------------------------------------------------------
# The probe
# --------------------------------------------------------------------------------------------
def _targets(labels: list[SeldLabels], n_classes: int, output: str):
    if output == "accdoa":
        return (torch.from_numpy(np.concatenate([accdoa_targets(lab, n_classes) for lab in labels]))[:, None],)
    refs, counts = zip(*(multi_accdoa_targets(lab, n_classes) for lab in labels))
    return torch.from_numpy(np.concatenate(refs)), torch.from_numpy(np.concatenate(counts))


def _loss(pred: torch.Tensor, target: tuple) -> torch.Tensor:
    return ((pred - target[0]) ** 2).mean() if len(target) == 1 else adpit_loss(pred, *target)


def _frames(emb, labels, ts):
    """Per-recording (n_frames_i, D) arrays, pooled from timestamps when given."""
    out = []
    for i, (e, lab) in enumerate(zip(emb, labels)):
        e = np.asarray(e, np.float32)
        if ts is not None:
            e = pool_to_label_frames(e, ts[i], lab.n_frames)
        if e.shape[0] != lab.n_frames:
            raise ValueError(f"recording {i}: {e.shape[0]} embedding frames but {lab.n_frames} label frames; "
                             f"pass its timestamps (ts_*) to pool them to the 100-ms grid")
        out.append(e)
    return out


def _predict(model, x: np.ndarray, mean, std) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy((x - mean) / std)).numpy()


def carve_validation(n_train: int, val_fraction: float, seed: int) -> np.ndarray:
    """Indices of the train recordings held out for model selection (at least one if n_train >= 2)."""
    n_val = min(n_train - 1, max(1, int(round(val_fraction * n_train)))) if n_train >= 2 else 0
    return np.sort(np.random.default_rng(seed).permutation(n_train)[:n_val])


def run_seld_probe(emb_train, labels_train: list[SeldLabels], emb_test, labels_test: list[SeldLabels],
                   cfg: SeldConfig, seed: int, output: str | None = None, *, ts_train=None, ts_test=None,
                   emb_val=None, labels_val=None, ts_val=None, n_classes: int | None = None,
                   out_dir=None, test_names: list[str] | None = None, return_predictions: bool = False) -> dict:
    """Train a SELD head on frozen embeddings and score it on the test recordings.

    ``emb_*``: per recording, (T_i, D) embeddings -- already on the 100-ms label grid, or at any hop
    with their ``ts_*`` timestamps in ms (then pooled). A (n_files, T, D) array works as well.
    Without ``emb_val``, ``cfg.val_fraction`` of the train recordings are held out for model
    selection. Returns the test metrics (both families), the chosen epoch and threshold, and sizes;
    with ``out_dir``, the test predictions go to ``<out_dir>/<name>.csv`` in the DCASE output format.
    """
    output = output or cfg.output
    if output not in ("accdoa", "multi-accdoa"):
        raise ValueError(f"output must be 'accdoa' or 'multi-accdoa', got {output!r}")
    if cfg.epochs < 1:
        raise ValueError(f"seld.epochs must be at least 1, got {cfg.epochs}")
    train_x, test_x = _frames(emb_train, labels_train, ts_train), _frames(emb_test, labels_test, ts_test)
    if emb_val is None:
        held = set(carve_validation(len(train_x), cfg.val_fraction, seed).tolist())
        keep = [i not in held for i in range(len(train_x))]
        val_x = [x for x, k in zip(train_x, keep) if not k]
        labels_val = [lab for lab, k in zip(labels_train, keep) if not k]
        train_x = [x for x, k in zip(train_x, keep) if k]
        labels_train = [lab for lab, k in zip(labels_train, keep) if k]
    else:
        val_x = _frames(emb_val, labels_val, ts_val)
    if not val_x:
        raise ValueError("model selection needs a validation split: give emb_val or at least 2 train recordings")
    all_labels = [*labels_train, *labels_val, *labels_test]
    n_classes = n_classes or 1 + max((int(lab.class_idx.max()) for lab in all_labels if len(lab)), default=0)
    t0 = time.time()
    head, norm, fit = _train_head(train_x, labels_train, val_x, labels_val, n_classes, output, cfg, seed)
    threshold, val_seld = _select_threshold(head, norm, val_x, labels_val, n_classes)
    preds = [decode(_predict(head, x, *norm), threshold) for x in test_x]
    if out_dir is not None:
        for name, p in zip(test_names or [f"test_{i:04d}" for i in range(len(preds))], preds):
            write_frame_csv(Path(out_dir) / f"{name}.csv", p, with_distance=False)
    result = {**seld_metrics(labels_test, preds, n_classes), "output": output, "head": cfg.head,
              "threshold": threshold, **fit, "val_SELD": val_seld, "n_classes": n_classes,
              "n_train_frames": sum(len(x) for x in train_x), "n_val_frames": sum(len(x) for x in val_x),
              "n_test_frames": sum(len(x) for x in test_x), "train_s": round(time.time() - t0, 2)}
    if return_predictions:
        result["predictions"] = preds
    return result


def _train_head(train_x, labels_train, val_x, labels_val, n_classes: int, output: str, cfg: SeldConfig, seed: int):
    """Adam on shuffled frames; the state with the least validation loss. -> (head, (mean, std), info)."""
    torch.manual_seed(seed)
    x_tr = np.concatenate(train_x)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6  # train statistics only
    xt, yt = torch.from_numpy((x_tr - mean) / std), _targets(labels_train, n_classes, output)
    xv, yv = torch.from_numpy((np.concatenate(val_x) - mean) / std), _targets(labels_val, n_classes, output)
    head = SeldHead(x_tr.shape[1], n_classes, 1 if output == "accdoa" else N_TRACKS, cfg.head)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    best = (float("inf"), -1, None)
    for epoch in range(cfg.epochs):
        head.train()
        for idx in torch.randperm(len(xt), generator=gen).split(cfg.batch_frames):
            loss = _loss(head(xt[idx]), tuple(y[idx] for y in yt))
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            val_loss = float(_loss(head(xv), yv))
        if val_loss < best[0]:
            best = (val_loss, epoch, copy.deepcopy(head.state_dict()))
    head.load_state_dict(best[2])
    return head.eval(), (mean, std), {"best_epoch": best[1], "val_loss": best[0]}


def _select_threshold(head, norm, val_x, labels_val, n_classes: int) -> tuple[float, float]:
    """The activity threshold with the least validation SELD score (DCASE 2021+), and that score."""
    outputs = [_predict(head, x, *norm) for x in val_x]
    scores = {thr: seld_metrics_2021(labels_val, [decode(o, thr) for o in outputs], n_classes)["SELD"]
              for thr in THRESHOLDS}
    best = min(scores, key=scores.get)
    return best, scores[best]
