"""The paper's claims as paired tests on the test items every compared model scores.

A claim "A localizes better than B" is tested on the per-item errors both models made on the same test
items of a localization task (great-circle degrees; the Nat-HEAR binaural and FOA suites hold the same item
ids, so models of different formats pair up): the difference is the mean over items of ``error of B - error
of A`` (> 0: A is better), its 95 % interval a paired bootstrap over the shared items (the per-item
differences resampled, so the difficulty of an item, which both models share, cancels). The medians of
both models are shown beside it. The verdict is ``holds`` when the interval lies above 0, ``reversed``
below 0, ``unresolved`` when it contains 0. A table makes many claims at once, so the Bonferroni verdict
repeats each test at level 1 - 0.05 / (number of comparisons).

Claims about classification are tested the same way on per-item correctness (1 = right class): on one task
the difference is the accuracy of A minus that of B on the shared items, in points; on a suite ("HEAR
average") the average over its multiclass tasks of those per-task differences, each task's items resampled
on their own. The event task (dcase, onset F-measure) is not an average of items and is left out of the
suite averages, which the table says. ``naive`` hears the FOA suite's W channel: its Nat-HEAR items are
the same scenes as the binaural suite's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.tasks import NATIVE_SUITE
from .results import clip_errors, item_correct

LOC_TASKS = ("words-loc", "events-loc")
ABLATION_LOC_TASKS = ("words-loc",)  # the ablation variants are scored on this localization task only


CLASS_TASKS = ("count", "events", "family", "pitch", "words")  # multiclass tasks: accuracy is a mean over items
ABLATION_CLASS_TASKS = ("words",)


@dataclass(frozen=True)
class Comparison:
    claim: str  # the paper's claim, in words
    better: str  # the model the claim says is better
    worse: str
    tasks: tuple[str, ...] = LOC_TASKS  # localization: one test per task
    suites: tuple[str, ...] = ()  # classification: one test per suite ("hear", "native"), averaged over ``tasks``

    @property
    def measure(self) -> str:
        return "accuracy" if self.suites else "doa"


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


def classification_comparisons() -> list[Comparison]:
    """Every comparison of the paper's claims on classification accuracy (suite averages, or words)."""
    both, avg = ("hear", "native"), CLASS_TASKS
    out = [Comparison("pre-trained > random init (average)", "gram-binaural", "random-gram", avg, both)]
    out += [Comparison("GRAMs > naive (average)", m, "naive", avg, both)
            for m in ("gram-binaural", "gram-binaural-time", "gram-ambisonics", "gram-clean")]
    out += [Comparison("naturalistic > clean pre-training on Nat-HEAR (average)", m, "gram-clean", avg, ("native",))
            for m in ("gram-binaural", "gram-ambisonics")]
    out += [Comparison("patch (frame) masking > time masking (average)", "gram-binaural", "gram-binaural-time", avg, both)]
    words = ABLATION_CLASS_TASKS
    out += [Comparison("binaural: more naturalistic data (lower λ) is better (words)", "abl-binaural", m, words, both)
            for m in ("bin-lambda-025", "bin-lambda-050", "bin-lambda-075", "bin-lambda-100")]
    out += [Comparison("Ambisonics: a clean/naturalistic mixture beats λ = 0 (words)", m, "abl-ambisonics", words, both)
            for m in ("foa-lambda-025", "foa-lambda-050", "foa-lambda-075")]
    out += [Comparison("Transformer > Mamba (words)", "abl-binaural", "mamba", words, both)]
    out += [Comparison("more in-batch samples better (words)", "abl-binaural", m, words, both)
            for m in ("crops-04", "crops-08")]
    out += [Comparison("masking ratio 0.6 is the optimum (words)", "mask-060", m, words, both)
            for m in ("mask-040", "abl-binaural", "mask-090")]
    return out


UNTESTED = (  # not an average over items: no paired test on items
    "event detection (dcase onset F-measure) in any comparison",)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, statistic=np.mean, *, n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """``statistic(b - a)`` of paired samples and its percentile interval when the pairs are resampled:
    (difference, low, high)."""
    return paired_bootstrap_tasks([(a, b)], statistic, n_boot=n_boot, level=level, seed=seed)


def paired_bootstrap_tasks(pairs: list[tuple[np.ndarray, np.ndarray]], statistic=np.mean, *, n_boot: int = 1000,
                           level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """The average over tasks of ``statistic(b - a)``, for one (a, b) pair of per-item samples per task, and its
    percentile interval when each task's pairs are resampled on their own: (difference, low, high)."""
    if not pairs:
        raise ValueError("paired_bootstrap_tasks: no tasks")
    diffs = []
    for a, b in pairs:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
            raise ValueError(f"paired samples must be two 1-D arrays of the same length >= 2; got {a.shape} and {b.shape}")
        diffs.append(b - a)
    if not 0.0 < level < 1.0 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1; got level={level}, n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    boot = np.mean([statistic(d[rng.integers(0, len(d), (n_boot, len(d)))], axis=1) for d in diffs], axis=0)
    tail = 100.0 * (1.0 - level) / 2.0
    return (float(np.mean([statistic(d) for d in diffs])), float(np.percentile(boot, tail)),
            float(np.percentile(boot, 100 - tail)))


def verdict(low: float, high: float) -> str:
    return "holds" if low > 0 else "reversed" if high < 0 else "unresolved"


def _entry(details: dict, model: str, suite: str, task: str) -> dict | None:
    """``model``'s detail entry of ``task`` in ``suite`` ("hear", or "native": its own Nat-HEAR suite)."""
    entry = details.get(model)
    if entry is None:
        return None
    if suite == "native":
        suite = NATIVE_SUITE.get(entry.get("format") or "mono", "nathear-foa")
    found = entry.get("tasks", {}).get(f"{suite}/{task}")
    return found if found and found.get("predictions") else None


def item_errors(details: dict, model: str, task: str) -> dict[str, float] | None:
    """{test item: error} of ``model`` on ``task`` in its native Nat-HEAR suite, or None if not scored."""
    found = _entry(details, model, "native", task)
    return None if found is None else dict(zip(found["predictions"]["files"], clip_errors(found)))


def item_scores(details: dict, model: str, suite: str, task: str) -> dict[str, float] | None:
    """{test item: 1 if right else 0} of ``model`` on classification ``task`` of ``suite``, or None."""
    found = _entry(details, model, suite, task)
    if found is None or found.get("kind") != "multiclass":
        return None
    return dict(zip(found["predictions"]["files"], item_correct(found)))


def _pairs(a: dict | None, b: dict | None) -> tuple[list[str], str | None]:
    """The shared items of two {item: value} maps, or the reason there are none."""
    if a is None or b is None:
        return [], "not scored"
    shared = sorted(set(a) & set(b))
    return (shared, None) if len(shared) >= 2 else ([], "no shared test items")


def claims_table(details: dict[str, dict], *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (comparison, task or suite) with the paired difference, its intervals and verdicts, then
    one row per claim that cannot be tested. ``details``: the ``results/eval/<name>.detail.json`` contents."""
    rows, tests = [], []
    for comp in paper_comparisons():
        for task in comp.tasks:
            a, b = item_errors(details, comp.better, task), item_errors(details, comp.worse, task)
            row = {"claim": comp.claim, "better": comp.better, "worse": comp.worse, "task": task, "measure": "doa"}
            shared, why = _pairs(a, b)
            if why:
                rows.append(row | {"n_items": 0, "verdict": "unresolved", "note": why})
                continue
            ea, eb = np.array([a[k] for k in shared]), np.array([b[k] for k in shared])
            row |= {"n_items": len(shared), "score_better": float(np.median(ea)), "score_worse": float(np.median(eb))}
            tests.append((len(rows), [(ea, eb)]))  # b - a: the worse model's extra error, degrees
            rows.append(row)
    for comp in classification_comparisons():
        for suite in comp.suites:
            row = {"claim": comp.claim, "better": comp.better, "worse": comp.worse, "measure": "accuracy",
                   "task": f"{suite}: " + "+".join(comp.tasks)}
            pairs, why = [], None
            for task in comp.tasks:
                a, b = item_scores(details, comp.better, suite, task), item_scores(details, comp.worse, suite, task)
                shared, why = _pairs(a, b)
                if why:
                    break
                pairs.append((100.0 * np.array([b[k] for k in shared]), 100.0 * np.array([a[k] for k in shared])))
            if why:
                rows.append(row | {"n_items": 0, "verdict": "unresolved", "note": why})
                continue
            row |= {"n_items": sum(len(p[0]) for p in pairs), "score_better": float(np.mean([p[1].mean() for p in pairs])),
                    "score_worse": float(np.mean([p[0].mean() for p in pairs]))}
            tests.append((len(rows), pairs))  # b - a with a = worse: the better-claimed model's extra accuracy
            rows.append(row)
    k = max(1, len({(rows[i]["better"], rows[i]["worse"], rows[i]["task"]) for i, _ in tests}))  # distinct tests
    for i, pairs in tests:
        diff, low, high = paired_bootstrap_tasks(pairs, n_boot=n_boot, seed=seed)
        _, blow, bhigh = paired_bootstrap_tasks(pairs, n_boot=n_boot, level=1 - 0.05 / k, seed=seed)
        note = ("mean per-item DoA error difference, degrees (scores: median errors)" if rows[i]["measure"] == "doa"
                else f"accuracy difference, points, averaged over {len(pairs)} task(s) (scores: mean accuracy %)")
        rows[i] |= {"difference": diff, "ci95_low": low, "ci95_high": high, "verdict": verdict(low, high),
                    "bonferroni_verdict": verdict(blow, bhigh), "note": note}
    rows += [{"claim": c, "verdict": "unresolved", "note": "not an average over items (no paired item test)"}
             for c in UNTESTED]
    columns = ["claim", "better", "worse", "task", "measure", "n_items", "score_better", "score_worse", "difference",
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
    note = (f"\n{tested} paired tests on shared test items (difference > 0: the claim's direction; localization: the "
            f"worse-claimed model's mean DoA error minus the better-claimed one's, degrees; accuracy: the better-claimed "
            f"model's accuracy minus the other's, points, averaged over the suite's multiclass tasks; 95 % paired "
            f"bootstrap, {n_boot} resamples); verdicts: "
            f"{counts}. With {tested} tests at 95 %, about {0.05 * tested:.1f} would come out 'holds' or "
            "'reversed' by chance if no claim were true: the Bonferroni column tests each at "
            f"{100 * (1 - 0.05 / max(1, tested)):.2f} %.\n")
    (out_dir / "claims.md").write_text("\n".join(lines) + "\n" + note)
    return [out_dir / "claims.csv", out_dir / "claims.md"]
