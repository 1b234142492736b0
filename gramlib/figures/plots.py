"""The paper's figures, one function per figure, numbered as the seed paper (v3/v4):

1 method (:func:`figure_1`) · 2 data quantity and HEAR - Nat-HEAR (:func:`figure_2`) · 3 localization,
confusion matrices, T60 (:func:`figure_3`) · 4 lambda, masking strategy, Mamba vs Transformer
(:func:`figure_4`) · 5 in-batch samples and masking ratio (:func:`figure_5`) · 6 in-batch sampling vs
gradient accumulation at equal effective batch (:func:`figure_6`, the later version's Fig 7).

Each function draws only from what it is given (the tidy frame of :func:`gramlib.figures.results.tidy`, the
metrics/detail dicts, or the scene dict of Figure 1) and returns the Figure; a panel whose input is
missing says so instead of failing. Figures 1, 3, 6 and the SELD figure live in :mod:`gramlib.figures.panels`;
:func:`gramlib.figures.render.render_all` draws them all. One style for all: :data:`gramlib.core.views.STYLE`. Error bars: the sd across seeds
where a point has two or more seeds, else the fold sds propagated to the task average.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import matplotlib


def _no_backend_chosen() -> bool:
    try:  # matplotlib keeps a sentinel until a backend is picked (MPLBACKEND, matplotlibrc, use(), a kernel)
        return matplotlib.rcParams._get("backend") is matplotlib.rcsetup._auto_backend_sentinel
    except AttributeError:  # private API moved: fall back to the environment
        return "MPLBACKEND" not in os.environ


if _no_backend_chosen():
    matplotlib.use("Agg")  # headless only when nothing chose a backend, so a notebook keeps its own
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .results import SUITE_LABELS, axis_metric, axis_scores, hear_minus_nathear  # noqa: E402
from ..core.views import STYLE  # noqa: E402

NAMES = tuple(f"figure_{k}" for k in range(1, 7)) + ("figure_seld",)
FIGURES = tuple(f"{name}.{ext}" for name in NAMES for ext in ("png", "pdf"))  # what the figures stage declares
SUITE_COLORS = {"hear": "C0", "nathear": "C1"}
LOC_COLOR = "0.35"
MAX_PNG_KB = 300


def styled(fn):
    """Draw inside the shared style, whatever the caller's rcParams are."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


def message(ax, text: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.3", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig, out_dir: Path | str, name: str, *, dpi: int = 150, pdf: bool = True,
         max_png_kb: int = MAX_PNG_KB) -> list[Path]:
    """Write ``<name>.png`` (and ``.pdf``) to ``out_dir``. So each file stays small enough to commit, the
    dpi (of the PNG, and of the images embedded in the PDF) is lowered until it is under ``max_png_kb``
    (floor: 50 dpi). Returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in (("png", "pdf") if pdf else ("png",))]
    for path in paths:
        now = dpi
        while True:
            fig.savefig(path, dpi=now, bbox_inches="tight")
            if path.stat().st_size <= max_png_kb * 1024 or now <= 50:
                break
            now = int(now * 0.8)
    return paths


def boxes(ax, data: dict[str, np.ndarray]) -> None:
    """One box per entry (no fliers drawn); the median and whisker lines carry ``gid`` "median:<label>"
    and "whisker:<label>" so the drawn numbers can be read back."""
    drawn = ax.boxplot(list(data.values()), tick_labels=list(data), showfliers=False)
    for k, label in enumerate(data):
        drawn["medians"][k].set_gid(f"median:{label}")
        for line in drawn["whiskers"][2 * k:2 * k + 2]:
            line.set_gid(f"whisker:{label}")


# --------------------------------------------------------------------------------- ablation panels
def axis_panel(ax, df: pd.DataFrame, axis: str, *, title: str, xlabel: str, scale: float | None = None,
               loc_task: str | None = "words-loc") -> None:
    """HEAR and Nat-HEAR average score per point of ``axis`` (lines when numeric, bars otherwise), and the
    native Nat-HEAR median DoA error of ``loc_task`` on a right-hand axis when present."""
    data = axis_scores(df, axis)
    ax.set_title(title)
    if data.empty:
        message(ax, f"no data for axis {axis!r}")
        return
    values = list(dict.fromkeys(data["axis_value"]))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    pos = {v: (float(v) * (scale or 1.0) if numeric else i) for i, v in enumerate(values)}
    width = 0.8 / max(data["suite"].nunique(), 1)
    for k, (suite, part) in enumerate(data.groupby("suite", sort=False)):
        x = np.array([pos[v] for v in part["axis_value"]])
        kw = {"color": SUITE_COLORS.get(suite), "label": SUITE_LABELS.get(suite, suite)}
        if numeric:
            ax.plot(x, part["score"], "o-", **kw)
            ax.errorbar(x, part["score"], yerr=part["spread"], fmt="none", ecolor=kw["color"], capsize=2)
        else:
            ax.bar(x + (k - 0.5) * width, part["score"], width, yerr=part["spread"], capsize=2, **kw)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("average score (%)")
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values])
    errors = axis_metric(df, axis, loc_task, "median_angular_error_deg") if loc_task else pd.DataFrame()
    if len(errors):
        twin = ax.twinx()
        twin.plot([pos[v] for v in errors["axis_value"]], errors["value"], "s--", color=LOC_COLOR, ms=4,
                  label=f"{loc_task} DoA error (right)")
        twin.set_ylabel(f"{loc_task} median DoA error (°)", color=LOC_COLOR)
        twin.set_label(f"{title} · DoA error")
    else:
        twin = ax
    for a in {ax, twin}:  # headroom for one legend strip along the top
        lo, hi = a.get_ylim()
        a.set_ylim(lo, hi + 0.3 * (hi - lo))
    handles = [h for a in dict.fromkeys((ax, twin)) for h in a.get_legend_handles_labels()[0]]
    twin.legend(handles, [h.get_label() for h in handles], loc="upper center", ncol=3, fontsize=7, frameon=False)


@styled
def figure_2(df: pd.DataFrame, *, pretrain_clips: int | None = None):
    """(A) HEAR and Nat-HEAR averages vs pre-training data quantity (the ``data-fraction`` axis, its
    reference at 1.0; x = clips when ``pretrain_clips`` is given, else the fraction); (B) per model
    (main GRAMs and baselines) the per-task HEAR - native Nat-HEAR difference, event tasks excluded."""
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    axis_panel(ax_a, df, "data-fraction", title="A · pre-training data quantity", scale=pretrain_clips,
               xlabel="pre-training clips" if pretrain_clips else "fraction of the pre-training clips", loc_task=None)
    diffs = hear_minus_nathear(df[df["budget"] != "ablation"])
    ax_b.set_title("B · HEAR − Nat-HEAR per task (event tasks excluded)")
    if diffs.empty:
        message(ax_b, "no model scored on both HEAR and its native Nat-HEAR suite")
    else:
        groups = dict(list(diffs.groupby("label", sort=False)))
        boxes(ax_b, {k: g["diff_pp"].to_numpy() for k, g in groups.items()})
        for i, (label, g) in enumerate(groups.items(), start=1):
            ax_b.plot(i + np.linspace(-0.15, 0.15, len(g)), g["diff_pp"], "o", ms=3, color="C2", alpha=0.7,
                      gid=f"points:{label}")
        ax_b.axhline(0, color="0.6", lw=0.8)
        ax_b.set_ylabel("HEAR − Nat-HEAR (points)")
        ax_b.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return fig


@styled
def figure_4(df: pd.DataFrame):
    """Ablations: λ (clean fraction) for binaural and Ambisonics, masking strategy, Mamba vs Transformer."""
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.4))
    panels = [("lambda-binaural", "A · λ, GRAM-Binaural", "λ (fraction of clean pre-training audio)"),
              ("lambda-foa", "B · λ, GRAM-Ambisonics", "λ (fraction of clean pre-training audio)"),
              ("masking", "C · masking strategy", "patching / masking"),
              ("encoder", "D · encoder", "encoder")]
    for ax, (axis, title, xlabel) in zip(axes.flat, panels):
        axis_panel(ax, df, axis, title=title, xlabel=xlabel)
    fig.tight_layout()
    return fig


@styled
def figure_5(df: pd.DataFrame):
    """Ablations: number of in-batch samples (crops per clip) and masking ratio."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axis_panel(axes[0], df, "in-batch", title="A · in-batch samples", xlabel="crops per clip")
    axis_panel(axes[1], df, "mask-ratio", title="B · masking ratio", xlabel="fraction of patches masked")
    fig.tight_layout()
    return fig
