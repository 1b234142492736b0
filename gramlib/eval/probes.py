"""The HEAR 2021 downstream protocol on pre-computed embeddings, in plain torch.

A re-implementation (no heareval code) of ``heareval.predictions`` 2021.1.3 as read from its source and
``reference/hear-and-sources.md`` §A2, extended to the Nat-HEAR regression tasks:

1. Splits: ``trainvaltest`` is one split; k-fold (``presplit_kfold``/``new_split_kfold``) sorts the folds
   and, for i = 0..k-1, tests on fold i, validates on fold (i+1) mod k and trains on the rest.
2. Grid: heareval's 16 points (hidden_layers {1, 2} x init {xavier_uniform, xavier_normal} x lr {3.2e-3,
   1e-3, 3.2e-4, 1e-4}; hidden 1024, dropout 0.1, batch 1024) in sklearn ``ParameterGrid`` order, shuffled
   by ``random.Random(42)``; ``full`` takes the first 8 as heareval; ``reduced`` the first 3 with
   lr >= 1e-3 (<= 200 epochs, often one full batch each, are too few steps for lr 1e-4) with 512 hidden
   units instead of 1024 (3.5x faster on CPU); ``cpu`` and ``smoke`` the first of those only (the cpu
   profile probes ~30 models x ~20 tasks in minutes; the grid search is what it gives up).
3. Model (as ``FullyConnectedPrediction``): per hidden layer Linear -> BatchNorm1d -> Dropout -> ReLU,
   then Linear; xavier weights with gain 1 on the first layer and sqrt(2) after a ReLU, default biases;
   Adam without weight decay. Heads: multiclass softmax + CE; multilabel and event frames sigmoid + BCE;
   localization Tanh + MSE on the (x, y, z) unit vector (the authors' head, with the activation applied
   before the loss as the fixed listen-eval-kit), predictions normalised for scoring; T60 a scalar
   regression on standardised targets (MSE).
4. Each grid point trains on split 0; validation every ``check_every`` epochs on the task's FIRST metric;
   the best check's weights are kept (strictly better only) and training stops after ``patience_checks``
   checks without improvement. The point with the best validation score (first on ties) is retrained on
   the other folds; each fold's best weights are scored on its test split; mean and sample std over folds.
5. Event tasks: frame-wise multilabel on timestamp embeddings (a frame at t carries every event with
   start <= t <= end); per file, median filter of round(250 ms / mean hop) frames, threshold > 0.5,
   consecutive active frames form an event from the first to the last frame's timestamp, events shorter
   than the min duration (125 or 250 ms) are dropped; the setting is chosen on validation at every check
   and the test uses the one of the best check.

Deliberate differences from heareval: inputs are standardised with the train split's mean and std when
``cfg.standardize_inputs`` (heareval feeds them raw; the first Linear -> BatchNorm makes this nearly
neutral); the train batches are reshuffled each epoch (heareval means to, but passes a list where it tests
for the string "train", so it never does; identical whenever the train split fits one 1024-batch); a
final batch of one item is merged into the previous one (BatchNorm cannot train on it); a run shorter
than ``check_every`` epochs is validated at its last epoch; the post-processing is chosen with the
metric's own direction (heareval always maximises it); ``std`` is 0.0 for a single split.
"""
from __future__ import annotations

import copy
import itertools
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core import stats
from ..core.config import EvaluateConfig
from ..core.tasks import task_kind
from . import metrics
from .probe_data import SplitData, concat, encode_split, frames_to_events, postprocessing_grid

GRID_SEED = 42  # heareval: seed_everything(42); random.shuffle(confs)
HEAREVAL_GRID = {"hidden_layers": [1, 2], "initialization": ["xavier_uniform", "xavier_normal"],
                 "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4]}  # sorted keys: ParameterGrid order, last fastest
FIXED_PARAMS = {"hidden_dim": 1024, "dropout": 0.1, "batch_size": 1024}
CPU_HIDDEN_DIM = 512  # cpu/smoke grids: a 1024x1024 layer costs 25 ms a step on one core, 512 costs 7
# The ``linear`` grid: ridge read-outs solved exactly in float64, penalty alpha * n_train on standardised
# inputs, strongest first. The penalty is chosen on the validation split's squared error (the ridge's own,
# smooth loss, not the task metric, whose median or argmax jumps), by the one-standard-error rule: the
# strongest penalty whose valid error is within one standard error (over valid items) of the lowest.
RIDGE_ALPHAS = (10.0, 1.0, 0.1, 0.01, 1e-3, 1e-4)
TIE_TOL = 1e-9  # relative: validation scores closer than this are a tie (the earlier candidate stays)
KINDS = {"multiclass": "scores", "multilabel": "scores", "event": "events",
         "localization": "vectors", "regression": "scalars"}
INIT = {"xavier_uniform": nn.init.xavier_uniform_, "xavier_normal": nn.init.xavier_normal_}


# ------------------------------------------------------------------------------------ grid and splits
def probe_grid(name: str) -> list[dict]:
    """The hyper-parameter points of grid ``name`` ("full", "reduced", "cpu" or "smoke"), in trial order."""
    keys = sorted(HEAREVAL_GRID)
    points = [dict(zip(keys, v), **FIXED_PARAMS) for v in itertools.product(*(HEAREVAL_GRID[k] for k in keys))]
    random.Random(GRID_SEED).shuffle(points)
    cpu = [dict(p, hidden_dim=CPU_HIDDEN_DIM) for p in points if p["lr"] >= 1e-3][:3]
    grids = {"full": points[:8], "reduced": cpu, "cpu": cpu[:1], "smoke": cpu[:1],
             "linear": [{"probe": "ridge", "alpha": a} for a in RIDGE_ALPHAS]}
    if name not in grids:
        raise ValueError(f"unknown probe grid {name!r}; accepted: {list(grids)}")
    return grids[name]


def data_splits(metadata: dict) -> list[dict[str, list[str]]]:
    """Train/valid/test split names per fold, heareval's rotation for k-fold."""
    mode, splits = metadata.get("split_mode"), list(metadata.get("splits") or [])
    if mode == "trainvaltest":
        if sorted(splits) != ["test", "train", "valid"]:
            raise ValueError(f"split_mode trainvaltest needs splits train/valid/test; got {splits}")
        return [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]
    if mode in ("presplit_kfold", "new_split_kfold"):
        folds = sorted(splits)
        if len(folds) < 3 or len(set(folds)) != len(folds):
            raise ValueError(f"k-fold needs >= 3 distinct folds; got {splits}")
        k = len(folds)
        return [{"train": [f for f in folds if f not in (folds[i], folds[(i + 1) % k])],
                 "valid": [folds[(i + 1) % k]], "test": [folds[i]]} for i in range(k)]
    raise ValueError(f"unknown split_mode {mode!r}; accepted: trainvaltest, presplit_kfold, new_split_kfold")


# ------------------------------------------------------------------------------------ the probe
def build_probe(n_in: int, n_out: int, conf: dict) -> nn.Sequential:
    """heareval's FullyConnectedPrediction as one Sequential (global torch RNG: call under a seed)."""
    layers, width, gain = [], n_in, nn.init.calculate_gain("linear")
    for _ in range(conf["hidden_layers"]):
        linear = nn.Linear(width, conf["hidden_dim"])
        INIT[conf["initialization"]](linear.weight, gain=gain)
        layers += [linear, nn.BatchNorm1d(conf["hidden_dim"]), nn.Dropout(conf["dropout"]), nn.ReLU()]
        width, gain = conf["hidden_dim"], nn.init.calculate_gain("relu")
    head = nn.Linear(width, n_out)
    INIT[conf["initialization"]](head.weight, gain=gain)
    return nn.Sequential(*layers, head)


@dataclass
class Head:
    """Loss and output map of one task kind; ``mu``/``sd`` standardise regression targets."""

    kind: str
    mu: float = 0.0
    sd: float = 1.0

    def n_out(self, vocabulary: list[str]) -> int:
        return {"localization": 3, "regression": 1}.get(self.kind, len(vocabulary))

    def target(self, y: np.ndarray) -> torch.Tensor:
        if self.kind == "multiclass":
            return torch.as_tensor(y, dtype=torch.long)
        if self.kind == "regression":
            return torch.as_tensor((y - self.mu) / self.sd, dtype=torch.float32)[:, None]
        return torch.as_tensor(y, dtype=torch.float32)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "multiclass":
            return nn.functional.cross_entropy(logits, target)
        if self.kind in ("multilabel", "event"):
            return nn.functional.binary_cross_entropy_with_logits(logits, target)
        return nn.functional.mse_loss(self.output(logits), target)

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores as scored: probabilities, tanh directions, or standardised values."""
        return {"multiclass": lambda z: z.softmax(dim=1), "multilabel": torch.sigmoid, "event": torch.sigmoid,
                "localization": torch.tanh, "regression": lambda z: z}[self.kind](logits)

    def ridge_target(self, y: np.ndarray, n_out: int) -> np.ndarray:
        """Least-squares targets: one-hot classes, 0/1 labels, unit vectors or standardised values."""
        if self.kind == "multiclass":
            return np.eye(n_out)[np.asarray(y, np.int64)]
        if self.kind == "regression":
            return ((np.asarray(y, np.float64) - self.mu) / self.sd)[:, None]
        return np.asarray(y, np.float64)

    def predict(self, model, x: np.ndarray) -> np.ndarray:
        if isinstance(model, Ridge):
            out = model.predict(x)
            return out[:, 0] * self.sd + self.mu if self.kind == "regression" else out
        model.eval()
        with torch.no_grad():
            out = torch.cat([self.output(model(xb)) for xb in torch.from_numpy(x).split(8192)]).numpy()
        return out[:, 0] * self.sd + self.mu if self.kind == "regression" else out


@dataclass
class Ridge:
    """A linear read-out ``(x - mean) @ weight + bias``; scores, directions or standardised values."""

    mean: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) @ self.weight + self.bias


def ridge_path(x: np.ndarray, targets: np.ndarray, alphas) -> list[Ridge]:
    """Ridge solutions ``argmin |Xc W - Yc|^2 + alpha n |W|^2`` for every alpha, from one float64 SVD.

    Convex with a unique minimum, solved exactly: a float's last digit in ``x`` moves the solution by
    the same relative amount, not by the accident of where an iterative optimiser stopped.
    """
    x = np.asarray(x, np.float64)
    mean, y_mean = x.mean(axis=0), targets.mean(axis=0)
    u, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
    uty = u.T @ (targets - y_mean)
    out = []
    for alpha in alphas:
        shrink = sv / (sv ** 2 + alpha * len(x))
        out.append(Ridge(mean, vt.T @ (shrink[:, None] * uty), y_mean))
    return out


def fit_linear(grid: list[dict], train: SplitData, valid: SplitData, head: Head, metric: str,
               vocabulary: list[str], post: list[dict]) -> list["Fit"]:
    """The ridge read-out of every grid point, each scored on ``valid`` (event tasks: best post-processing)."""
    if len(train.x) < 2:
        raise ValueError(f"the probe needs at least 2 training examples; got {len(train.x)}")
    n_out = head.n_out(vocabulary)
    targets = head.ridge_target(train.y, n_out)
    valid_targets = head.ridge_target(valid.y, n_out)
    fits = []
    for readout in ridge_path(train.x, targets, [p["alpha"] for p in grid]):
        scores, setting = evaluate_split(head, readout, valid, [metric], vocabulary, post)
        errors = ((readout.predict(valid.x) - valid_targets) ** 2).mean(axis=1)  # per valid item (frame)
        se = float(errors.std(ddof=1) / np.sqrt(len(errors))) if len(errors) > 1 else 0.0
        fits.append(Fit(readout, scores[metric], -1, setting, (float(errors.mean()), se)))
    return fits


def select_ridge(fits: list["Fit"]) -> int:
    """The index of the strongest penalty (fits are strongest first) whose valid squared error is within
    one standard error of the lowest; NaN errors are never chosen unless all are NaN (then index 0)."""
    losses = [f.valid_loss for f in fits]
    finite = [i for i, (m, _) in enumerate(losses) if np.isfinite(m)]
    if not finite:
        return 0
    low = min(finite, key=lambda i: losses[i][0])
    bound = losses[low][0] + losses[low][1]
    return next(i for i in finite if losses[i][0] <= bound)


def evaluate_split(head: Head, model: nn.Module, data: SplitData, names: list[str], vocabulary: list[str],
                   post: list[dict]) -> tuple[dict[str, float], dict | None]:
    """Scores ``names`` on ``data``; event tasks try every setting of ``post`` and keep the best by names[0]."""
    pred = head.predict(model, data.x)
    if head.kind != "event":
        return {n: metrics.score(n, pred, data.y, vocabulary=vocabulary) for n in names}, None
    best = None
    for setting in post:
        events = {f: frames_to_events(pred[a:b], data.ts[a:b], vocabulary, **setting)
                  for f, a, b in zip(data.files, data.bounds[:-1], data.bounds[1:])}
        first = metrics.score(names[0], events, data.events)
        if best is None or _better(first, best[0], names[0]):
            best = (first, setting, events)
    return {n: best[0] if i == 0 else metrics.score(n, best[2], data.events) for i, n in enumerate(names)}, best[1]


def _better(new: float, old: float, name: str) -> bool:
    """Better by ``name``'s direction by more than :data:`TIE_TOL` (relative); NaN is worse than any number.

    A difference of a float's last digits is a tie, so selection (epochs, grid points) keeps the earlier
    candidate instead of jumping on rounding noise.
    """
    if np.isnan(new):
        return False
    if np.isnan(old):
        return True
    margin = TIE_TOL * max(1.0, abs(old))
    return bool(new > old + margin if metrics.higher_is_better(name) else new < old - margin)


def _batches(n: int, size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A fresh random partition of range(n) into batches; a last batch of one joins the previous one."""
    parts = list(torch.randperm(n, generator=gen).split(size))
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


@dataclass
class Fit:
    model: nn.Module
    valid_score: float
    epoch: int
    postprocessing: dict | None
    valid_loss: tuple[float, float] | None = None  # ridge: mean squared error over valid items, its SE


def train_probe(conf: dict, train: SplitData, valid: SplitData, head: Head, metric: str, vocabulary: list[str],
                cfg: EvaluateConfig, seed: int, post: list[dict]) -> Fit:
    """Train one probe with early stopping on ``metric`` over ``valid``; returns the best check's weights."""
    if len(train.x) < 2:
        raise ValueError(f"the probe needs at least 2 training examples; got {len(train.x)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_probe(train.x.shape[1], head.n_out(vocabulary), conf)
        optim = torch.optim.Adam(model.parameters(), lr=conf["lr"])
        gen = torch.Generator().manual_seed(seed)
        x, y = torch.from_numpy(train.x), head.target(train.y)
        best, wait = None, 0
        for epoch in range(cfg.max_epochs):
            model.train()
            for idx in _batches(len(x), conf["batch_size"], gen):
                optim.zero_grad()
                head.loss(model(x[idx]), y[idx]).backward()
                optim.step()
            if (epoch + 1) % cfg.check_every and not (epoch == cfg.max_epochs - 1 and best is None):
                continue
            scores, setting = evaluate_split(head, model, valid, [metric], vocabulary, post)
            if best is None or _better(scores[metric], best.valid_score, metric):
                best, wait = Fit(copy.deepcopy(model.state_dict()), scores[metric], epoch, setting), 0
            elif (wait := wait + 1) >= cfg.patience_checks:
                break
    model.load_state_dict(best.model)
    return Fit(model, best.valid_score, best.epoch, best.postprocessing)


# ------------------------------------------------------------------------------------ entry point
def _standardize(train: SplitData, *others: SplitData) -> None:
    mean, std = train.x.mean(axis=0), train.x.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    for part in (train, *others):
        part.x = ((part.x - mean) / std).astype(np.float32)


def _fold_data(data: dict[str, SplitData], split: dict, standardize: bool) -> tuple[SplitData, ...]:
    parts = [copy.copy(concat([data[s] for s in split[role]])) for role in ("train", "valid", "test")]
    if standardize:
        _standardize(*parts)
    return tuple(parts)


def _head(kind: str, train: SplitData) -> Head:
    if kind == "regression":
        return Head(kind, float(train.y.mean()), float(train.y.std()) or 1.0)
    return Head(kind)


def check_task(metadata: dict, vocabulary: list) -> tuple[str, list[str], list[str]]:
    """Task kind, metric names and vocabulary (as strings), or a ValueError saying what is wrong."""
    kind = task_kind(metadata)
    names = list(metadata.get("evaluation") or [])
    if not names:
        raise ValueError("task_metadata has no 'evaluation' metrics")
    for name in names:
        if metrics.INPUT_KIND[metrics.check_metric(name)] != KINDS[kind]:
            raise ValueError(f"metric {name!r} does not apply to a {kind} task; it scores {metrics.INPUT_KIND[name]}")
    vocab = [str(v) for v in vocabulary or []]
    if KINDS[kind] in ("scores", "events") and (not vocab or len(set(vocab)) != len(vocab)):
        raise ValueError(f"a {kind} task needs a non-empty vocabulary of distinct labels; got {vocab[:12]}")
    return kind, names, vocab


def evaluate_task(embeddings: dict, task_metadata: dict, labels: dict, vocabulary: list, cfg: EvaluateConfig,
                  timestamps: dict | None = None, *, seed: int | None = None, n_boot: int | None = None) -> dict:
    """Run the protocol on one task's embeddings; see the module docstring.

    ``embeddings[split][file]``: ``(D,)`` (scene) or ``(T, D)`` (event, with ``timestamps[split][file]``
    ``(T,)`` in ms); ``labels[split][file]``: the ``<split>.json`` value; ``vocabulary``: class labels in
    index order (unused for localization/regression). Returns ``{metric: mean, metric_std: std,
    "n_test", "n_folds", "folds", "best_params", "grid", "seconds"}``.
    """
    start, seed = time.perf_counter(), cfg.probe_seed if seed is None else seed
    n_boot = cfg.bootstrap if n_boot is None else n_boot
    kind, names, vocab = check_task(task_metadata, vocabulary)
    folds = data_splits(task_metadata)
    data = {s: encode_split(s, embeddings, labels, kind, vocab, timestamps) for s in task_metadata["splits"]}
    post = postprocessing_grid(task_metadata) if kind == "event" else []
    grid = probe_grid(cfg.probe_grid)
    train, valid, test = _fold_data(data, folds[0], cfg.standardize_inputs)
    head = _head(kind, train)
    linear = cfg.probe_grid == "linear"
    if linear:
        fits = fit_linear(grid, train, valid, head, names[0], vocab, post)
    else:
        fits = [train_probe(conf, train, valid, head, names[0], vocab, cfg, seed + i, post)
                for i, conf in enumerate(grid)]
    best = 0
    if linear:
        best = select_ridge(fits)
    else:
        for i, fit in enumerate(fits):
            best = i if _better(fit.valid_score, fits[best].valid_score, names[0]) else best
    results, items = [], []
    for k, split in enumerate(folds):
        if k:
            train, valid, test = _fold_data(data, split, cfg.standardize_inputs)
            head = _head(kind, train)
        if k == 0:
            fit = fits[best]
        elif linear:
            fit = fit_linear([grid[best]], train, valid, head, names[0], vocab, post)[0]
        else:
            fit = train_probe(grid[best], train, valid, head, names[0], vocab, cfg, seed + 1000 * k + best, post)
        setting = [fit.postprocessing] if kind == "event" else []
        scores, _ = evaluate_split(head, fit.model, test, names, vocab, setting)
        items.append(_test_items(head, fit, test, vocab))
        results.append({**split, "scores": scores, "valid_score": fit.valid_score, "epoch": fit.epoch,
                        "postprocessing": fit.postprocessing, "n_test": len(test.files)})
        if kind in ("localization", "regression"):  # per-item predictions for error plots
            results[-1]["predictions"] = {"files": list(test.files), "true": test.y.tolist(),
                                          "pred": head.predict(fit.model, test.x).tolist()}
        elif kind == "multiclass":  # per-item predicted class: paired tests of accuracy on shared items
            results[-1]["predictions"] = {"files": list(test.files), "true": np.asarray(test.y, np.int64).tolist(),
                                          "pred": np.argmax(head.predict(fit.model, test.x), axis=1).tolist()}
    out = {"task": task_metadata.get("task_name"), "kind": kind}
    for name in names:
        values = np.array([r["scores"][name] for r in results], np.float64)
        out[name], out[f"{name}_std"] = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
    if n_boot:  # 95 % interval of the fold mean of the first metric, resampling each fold's test items
        lo, hi = stats.bootstrap_interval(lambda idx: float(np.mean([_item_score(names[0], it, i, vocab)
                                                                     for it, i in zip(items, idx)])),
                                          [len(it[1]) for it in items], n_boot=n_boot, seed=seed)
        out[f"{names[0]}_ci95_low"], out[f"{names[0]}_ci95_high"] = lo, hi
    grid_log = [{"params": p, "valid_score": f.valid_score, "epoch": f.epoch}
                | ({"valid_mse": f.valid_loss[0], "valid_mse_se": f.valid_loss[1]} if f.valid_loss else {})
                for p, f in zip(grid, fits)]
    return out | {"n_test": sum(r["n_test"] for r in results), "n_folds": len(folds), "folds": results,
                  "best_params": grid[best], "grid": grid_log, "seconds": time.perf_counter() - start}


# ------------------------------------------------------------------------------------ intervals, sensitivity
def _test_items(head: Head, fit: Fit, test: SplitData, vocabulary: list[str]) -> tuple:
    """One fold's scored test items: (kind, item keys, predictions, truth) for resampling."""
    if head.kind != "event":
        return "arrays", list(test.files), head.predict(fit.model, test.x), test.y
    pred = head.predict(fit.model, test.x)
    events = {f: frames_to_events(pred[a:b], test.ts[a:b], vocabulary, **fit.postprocessing)
              for f, a, b in zip(test.files, test.bounds[:-1], test.bounds[1:])}
    return "events", list(test.files), events, test.events


def _item_score(name: str, items: tuple, idx: np.ndarray, vocabulary: list[str]) -> float:
    """``name`` on the resampled items ``idx`` of one fold (a file drawn twice counts twice)."""
    kind, files, pred, truth = items
    if kind == "arrays":
        return metrics.score(name, pred[idx], truth[idx], vocabulary=vocabulary)
    keys = [f"{files[i]}#{n}" for n, i in enumerate(idx)]
    return metrics.score(name, {k: pred[files[i]] for k, i in zip(keys, idx)},
                         {k: truth.get(files[i], []) for k, i in zip(keys, idx)})


def perturb(embeddings: dict, rel: float, seed: int = 0) -> dict:
    """Every embedding times ``1 + rel * z``, z standard normal (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    out = {}
    for split in sorted(embeddings):
        out[split] = {}
        for f in sorted(embeddings[split]):
            e = np.asarray(embeddings[split][f])
            out[split][f] = (e * (1.0 + rel * rng.standard_normal(e.shape))).astype(e.dtype)
    return out


def sensitivity(result: dict, embeddings: dict, task_metadata: dict, labels: dict, vocabulary: list,
                cfg: EvaluateConfig, timestamps: dict | None = None, *, seed: int | None = None) -> dict:
    """How far each score of ``result`` moves when every embedding is perturbed by ``cfg.sensitivity_rel``.

    The probes are re-run from scratch on the perturbed embeddings (same seeds, same grid). Returns
    ``{"rel": r, "delta": {metric: perturbed - original}, "ratio": |delta| / width of the 95 % interval}``.
    """
    moved = evaluate_task(perturb(embeddings, cfg.sensitivity_rel, seed or 0), task_metadata, labels, vocabulary,
                          cfg, timestamps, seed=seed, n_boot=0)
    names = [n for n in task_metadata["evaluation"] if n in result]
    delta = {n: float(moved[n] - result[n]) for n in names}
    first = names[0]
    width = result.get(f"{first}_ci95_high", np.nan) - result.get(f"{first}_ci95_low", np.nan)
    ratio = abs(delta[first]) / width if width and np.isfinite(width) and width > 0 else float("nan")
    return {"rel": cfg.sensitivity_rel, "delta": delta, "ratio": float(ratio), "perturbed": moved[first]}
