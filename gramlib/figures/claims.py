"""The paper's claims as paired tests on the test items every compared model scores.

A claim "A localizes better than B" is tested on the per-item errors both models made on the same test
items of a localization task (great-circle degrees; the Nat-HEAR binaural and FOA suites hold the same item
ids, so models of different formats pair up): the difference is the mean over items of ``error of B - error
of A`` (> 0: A is better), its 95 % interval a paired bootstrap over the shared items (the per-item
differences resampled, so the difficulty of an item, which both models share, cancels). The medians of
both models are shown beside it. The verdict is ``holds`` when the interval lies above 0, ``reversed``
below 0, ``unresolved`` when it contains 0. A table makes many claims at once, so the Bonferroni verdict
repeats each test at level 1 - 0.05 / (number of comparisons).

Claims about classification scores need per-item scores, which the metrics files do not keep yet: they are
listed with the verdict ``unresolved`` and the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.tasks import NATIVE_SUITE
from .results import clip_errors

LOC_TASKS = ("words-loc", "events-loc")
ABLATION_LOC_TASKS = ("words-loc",)  # the ablation variants are scored on this localization task only


@dataclass(frozen=True)
class Comparison:
    claim: str  # the paper's claim, in words
    better: str  # the model the claim says is better
    worse: str
    tasks: tuple[str, ...] = LOC_TASKS


def paper_comparisons() -> list[Comparison]:
    """Every comparison of the paper's claims that the per-item localization errors can test."""
    out = [Comparison("pre-trained > random init (localization)", "gram-binaural", "random-gram")]
    out += [Comparison("GRAMs > naive on Nat-HEAR (localization)", m, "naive")
            for m in ("gram-binaural", "gram-binaural-time", "gram-ambisonics", "gram-clean")]
    out += [Comparison("naturalistic > clean pre-training on Nat-HEAR (localization)", m, "gram-clean")
            for m in ("gram-binaural", "gram-ambisonics")]
    out += [Comparison("GRAM-Ambisonics localizes best among learned models", "gram-ambisonics", m)
            for m in ("gram-binaural", "gram-binaural-time", "gram-clean")]
    out += [Comparison("time masking better for binaural localization", "gram-binaural-time", "gram-binaural")]
    out += [Comparison("binaural: more naturalistic data (lower λ) is better on Nat-HEAR", "abl-binaural", m,
                       ABLATION_LOC_TASKS) for m in ("bin-lambda-025", "bin-lambda-050", "bin-lambda-075",
                                                     "bin-lambda-100")]
    out += [Comparison("Ambisonics: a clean/naturalistic mixture beats λ = 0", m, "abl-ambisonics",
                       ABLATION_LOC_TASKS) for m in ("foa-lambda-025", "foa-lambda-050", "foa-lambda-075")]
    out += [Comparison("Transformer > Mamba", "abl-binaural", "mamba", ABLATION_LOC_TASKS)]
    out += [Comparison("more in-batch samples better", "abl-binaural", m, ABLATION_LOC_TASKS)
            for m in ("crops-04", "crops-08")]
    out += [Comparison("masking ratio 0.6 is the optimum", "mask-060", m, ABLATION_LOC_TASKS)
            for m in ("mask-040", "abl-binaural", "mask-090")]
    return out


UNTESTED = (  # classification claims: the metrics files keep no per-item scores for them yet
    "pre-trained > random init (HEAR average)", "GRAMs > naive on HEAR (average)",
    "GRAMs > naive on Nat-HEAR (average)", "naturalistic > clean pre-training on Nat-HEAR (average)",
    "λ mixture vs 0 (HEAR, Nat-HEAR averages)", "patch vs time masking (HEAR, Nat-HEAR averages)",
    "Transformer > Mamba (words)", "more in-batch samples better (words)", "the masking-ratio optimum (words)")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, statistic=np.mean, *, n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """``statistic(b - a)`` of paired samples and its percentile interval when the pairs are resampled:
    (difference, low, high)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired samples must be two 1-D arrays of the same length >= 2; got {a.shape} and {b.shape}")
    if not 0.0 < level < 1.0 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1; got level={level}, n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    d = b - a
    boot = statistic(d[rng.integers(0, len(d), (n_boot, len(d)))], axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    return float(statistic(d)), float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail))


def verdict(low: float, high: float) -> str:
    return "holds" if low > 0 else "reversed" if high < 0 else "unresolved"


def item_errors(details: dict, model: str, task: str) -> dict[str, float] | None:
    """{test item: error} of ``model`` on ``task`` in its native Nat-HEAR suite, or None if not scored."""
    entry = details.get(model)
    if entry is None:
        return None
    suite = NATIVE_SUITE.get(entry.get("format") or "mono", "nathear-foa")
    found = entry.get("tasks", {}).get(f"{suite}/{task}")
    if not found or not found.get("predictions"):
        return None
    return dict(zip(found["predictions"]["files"], clip_errors(found)))


def claims_table(details: dict[str, dict], *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (comparison, task) with the paired difference, its intervals and verdicts, then one row
    per claim that cannot be tested yet. ``details``: the ``results/eval/<name>.detail.json`` contents."""
    rows, tests = [], []
    for comp in paper_comparisons():
        for task in comp.tasks:
            a, b = item_errors(details, comp.better, task), item_errors(details, comp.worse, task)
            row = {"claim": comp.claim, "better": comp.better, "worse": comp.worse, "task": task}
            shared = sorted(set(a) & set(b)) if a is not None and b is not None else []
            if len(shared) < 2:
                rows.append(row | {"n_items": len(shared), "verdict": "unresolved",
                                   "note": "not scored" if a is None or b is None else "no shared test items"})
                continue
            ea, eb = np.array([a[k] for k in shared]), np.array([b[k] for k in shared])
            row |= {"n_items": len(shared), "median_err_better": float(np.median(ea)),
                    "median_err_worse": float(np.median(eb))}
            tests.append((len(rows), ea, eb))
            rows.append(row)
    k = max(1, len({(rows[i]["better"], rows[i]["worse"], rows[i]["task"]) for i, _, _ in tests}))  # distinct tests
    for i, ea, eb in tests:
        diff, low, high = paired_bootstrap(ea, eb, n_boot=n_boot, seed=seed)
        _, blow, bhigh = paired_bootstrap(ea, eb, n_boot=n_boot, level=1 - 0.05 / k, seed=seed)
        rows[i] |= {"difference": diff, "ci95_low": low, "ci95_high": high, "verdict": verdict(low, high),
                    "bonferroni_verdict": verdict(blow, bhigh), "note": "mean per-item DoA error difference, degrees"}
    rows += [{"claim": c, "verdict": "unresolved", "note": "per-item classification scores are not saved yet"}
             for c in UNTESTED]
    columns = ["claim", "better", "worse", "task", "n_items", "median_err_better", "median_err_worse", "difference",
               "ci95_low", "ci95_high", "verdict", "bonferroni_verdict", "note"]
    return pd.DataFrame(rows).reindex(columns=columns)


def write_claims(out_dir: Path | str, details: dict[str, dict], *, n_boot: int = 1000, seed: int = 0) -> list[Path]:
    """``claims.csv`` and ``claims.md`` in ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = claims_table(details, n_boot=n_boot, seed=seed)
    table.to_csv(out_dir / "claims.csv", index=False)
    tested = len(table.dropna(subset=["ci95_low"]).drop_duplicates(subset=["better", "worse", "task"]))
    counts = table["verdict"].value_counts().to_dict()
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for r in table.itertuples(index=False):
        lines.append("| " + " | ".join("" if pd.isna(v) else f"{v:.1f}" if isinstance(v, float) else str(v)
                                       for v in r) + " |")
    note = (f"\n{tested} paired tests (difference = mean over the shared test items of the worse-claimed model's DoA "
            f"error minus the better-claimed one's, degrees; 95 % paired bootstrap, {n_boot} resamples); verdicts: "
            f"{counts}. With {tested} tests at 95 %, about {0.05 * tested:.1f} would come out 'holds' or "
            "'reversed' by chance if no claim were true: the Bonferroni column tests each at "
            f"{100 * (1 - 0.05 / max(1, tested)):.2f} %.\n")
    (out_dir / "claims.md").write_text("\n".join(lines) + "\n" + note)
    return [out_dir / "claims.csv", out_dir / "claims.md"]
