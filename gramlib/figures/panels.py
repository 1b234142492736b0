"""Figures 1 (method, from real pipeline data), 3 (localization and T60) and 6 (in-batch sampling vs
gradient accumulation); they share the style and helpers of :mod:`gramlib.figures.plots`."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from ..core.tasks import ERROR_KINDS, NATIVE_SUITE
from ..core.views import channel_names
from .plots import boxes, message, styled
from .results import SUITE_LABELS, clip_errors, doa_confusion, families

CONVENTION_NOTE = "our convention: 0° = front, +90° = left (the paper's Fig 3 plots +90° as right)"


# ----------------------------------------------------------------------------------------- Figure 1
@styled
def figure_1(scene: dict):
    """The method on one real example. ``scene`` keys: ``room`` {``dims_m`` (L, W, H), ``listener_m``
    (x, y, z), ``listener_yaw_deg``, ``source_m`` (x, y, z) or a list, ``noise_m`` list of (x, y, z)};
    ``mixture`` and ``reconstruction`` (C, T, F); ``grid`` (n_rows mel bands, n_cols time steps);
    ``mask`` (N,) bool, True = masked, frequency-major (index = row * n_cols + col, as
    :mod:`gramlib.model.gram`); optional ``channels`` (names) and ``title``."""
    mix, recon = np.asarray(scene["mixture"], float), np.asarray(scene["reconstruction"], float)
    n_rows, n_cols = scene["grid"]
    mask = np.asarray(scene["mask"], bool)
    C, T, F = mix.shape
    if recon.shape != mix.shape or T % n_cols or F % n_rows or mask.shape != (n_rows * n_cols,):
        raise ValueError(f"figure_1: mixture {mix.shape}, reconstruction {recon.shape}, grid {(n_rows, n_cols)} "
                         f"and mask {mask.shape} do not fit (need T % n_cols == 0, F % n_rows == 0, N = rows * cols)")
    names = scene.get("channels") or channel_names(C)
    masked = np.where(patch_image(mask, n_rows, n_cols, T, F), np.nan, mix)  # (C, T, F)
    fig = plt.figure(figsize=(10, 1.15 * C + 2.2))
    gs = fig.add_gridspec(C + 1, 4, height_ratios=[1] * C + [1.1], width_ratios=[1.1, 1, 1, 1])
    room_panel(fig.add_subplot(gs[:C, 0]), scene["room"])
    for c in range(C):
        lo, hi = np.nanpercentile(mix[c], [1, 99])  # per channel: log-mels and intensity vectors differ in range
        for col, (img, what) in enumerate(((mix, "mixture"), (masked, f"masked {mask.mean():.0%}"),
                                           (recon, "reconstruction")), start=1):
            ax = fig.add_subplot(gs[c, col])
            cmap = plt.get_cmap().with_extremes(bad="0.82")
            ax.imshow(img[c].T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{what} · {names[c]}" if c == 0 else names[c], fontsize=7, pad=2)
            if col == 2:
                for x in np.arange(1, n_cols) * T / n_cols:
                    ax.axvline(x - 0.5, color="w", lw=0.3)
                for y in np.arange(1, n_rows) * F / n_rows:
                    ax.axhline(y - 0.5, color="w", lw=0.3)
    schematic(fig.add_subplot(gs[C, :]), C, T, F, n_rows * n_cols, int((~mask).sum()))
    fig.suptitle(scene.get("title", "GRAM: naturalistic scene → multichannel log-mel → masked patches → MAE"))
    fig.tight_layout()
    return fig


def patch_image(mask: np.ndarray, n_rows: int, n_cols: int, T: int, F: int) -> np.ndarray:
    """(N,) patch mask (frequency-major) -> (T, F) bool image."""
    grid = mask.reshape(n_rows, n_cols)  # (rows = mel bands, cols = time steps)
    return np.kron(grid.T, np.ones((T // n_cols, F // n_rows), bool)).astype(bool)


def room_panel(ax, room: dict) -> None:
    """Top view (x-y) of a shoebox room: listener with its facing direction, source(s), noise."""
    length, width = room["dims_m"][:2]
    ax.add_patch(Rectangle((0, 0), length, width, fill=False, lw=1.2))
    lx, ly = room["listener_m"][:2]
    yaw = np.radians(room.get("listener_yaw_deg", 0.0))
    ax.plot(lx, ly, "o", color="C0", label="listener")
    ax.annotate("", (lx + 0.8 * np.cos(yaw), ly + 0.8 * np.sin(yaw)), (lx, ly),
                arrowprops={"arrowstyle": "->", "color": "C0"})
    sources = np.atleast_2d(room.get("source_m", np.empty((0, 3))))
    noises = np.atleast_2d(room.get("noise_m", np.empty((0, 3))))
    if sources.size:
        ax.plot(sources[:, 0], sources[:, 1], "*", ms=10, color="C3", label="source")
    if noises.size:
        ax.plot(noises[:, 0], noises[:, 1], "^", color="0.4", label="noise")
    ax.set(xlim=(-0.3, length + 0.3), ylim=(-0.3, width + 0.3), xlabel="x (m)", ylabel="y (m)",
           title=f"room {length:.1f} × {width:.1f} × {room['dims_m'][2]:.1f} m (top view)")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, frameon=False)


def schematic(ax, C: int, T: int, F: int, N: int, K: int) -> None:
    """The MAE as a strip of boxes, labelled with this example's sizes."""
    steps = [f"log-mel\n{C}×{T}×{F}", f"patches\nN = {N}", f"mask\nkeep K = {K}", "encoder\n(visible + CLS)",
             f"+ {N - K} mask\ntokens", "multi-window\ndecoder", "MSE on\nmasked patches"]
    ax.set_axis_off()
    xs = np.linspace(0.06, 0.94, len(steps))
    for i, (x, text) in enumerate(zip(xs, steps)):
        network = "coder" in text  # the encoder and decoder boxes stand out
        ax.text(x, 0.5, text, ha="center", va="center", fontsize=7, transform=ax.transAxes,
                bbox={"boxstyle": "round", "fc": "C0" if network else "0.93", "alpha": 0.25 if network else 1})
        if i:
            ax.annotate("", (x - 0.05, 0.5), (xs[i - 1] + 0.05, 0.5), xycoords="axes fraction",
                        arrowprops={"arrowstyle": "->"})


# ----------------------------------------------------------------------------------------- Figure 3
def _native_errors(details: dict, task: str) -> dict[str, np.ndarray]:
    """{label: per-clip errors, seeds pooled} of every non-ablation model on ``task`` of its native suite."""
    out = {}
    for name, members in families(details).items():
        head = details[name]
        if (head.get("variant") or {}).get("budget") == "ablation":
            continue
        suite = NATIVE_SUITE.get(head.get("format"))
        errs = [clip_errors(details[m]["tasks"][f"{suite}/{task}"]) for m in members
                if f"{suite}/{task}" in details[m]["tasks"]]
        errs = np.concatenate(errs) if errs else np.array([])
        if errs.size:
            label = str(head["variant"]["value"]) if head["kind"] == "gram" else name
            out[label + (f" ({len(members)} seeds)" if len(members) > 1 else "")] = errs
    return out


def _boxes(ax, data: dict[str, np.ndarray], title: str, ylabel: str) -> None:
    ax.set_title(title)
    if not data:
        message(ax, f"no per-clip predictions for {title}")
        return
    boxes(ax, data)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=35, labelsize=7)


def confusion_panel(ax, counts: np.ndarray, centres: np.ndarray, what: str) -> None:
    """Row-normalised confusion (true rows, predicted columns)."""
    rows = counts.sum(axis=1, keepdims=True)
    frac = np.where(rows > 0, counts / np.maximum(rows, 1), np.nan)
    im = ax.imshow(frac, origin="lower", cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(centres))
    ax.set_xticks(ticks[::2], [f"{c:.0f}" for c in centres[::2]])
    ax.set_yticks(ticks[::2], [f"{c:.0f}" for c in centres[::2]])
    ax.set(xlabel=f"predicted {what} (°)", ylabel=f"true {what} (°)")
    plt.colorbar(im, ax=ax, fraction=0.046, label="fraction of true bin")


@styled
def figure_3(details: dict[str, dict], *, confusion_model: str = "gram-ambisonics", confusion_task: str = "words-loc",
             loc_tasks=("words-loc", "events-loc"), t60_tasks=("words-t60", "events-t60"), step_deg: float = 30.0):
    """(A) per-clip DoA errors per model on each localization task; (B) azimuth and elevation confusion of
    ``confusion_model`` on ``confusion_task`` (``step_deg`` bins, our convention); (C) per-clip T60 absolute
    errors. ``details``: ``{name: .detail.json dict}``; each model on its native Nat-HEAR suite, seeds pooled."""
    fig, axes = plt.subplots(3, 2, figsize=(10, 11))
    for ax, task in zip(axes[0], loc_tasks):
        _boxes(ax, _native_errors(details, task), f"A · DoA error, {task}", "great-circle error (°)")
    model = details.get(confusion_model)
    entry = (model or {}).get("tasks", {}).get(f"{NATIVE_SUITE.get((model or {}).get('format'))}/{confusion_task}", {})
    if entry.get("predictions"):
        conf = doa_confusion(entry["predictions"]["true"], entry["predictions"]["pred"], step_deg)
        for ax, what in zip(axes[1], ("azimuth", "elevation")):
            confusion_panel(ax, *conf[what], what)
            ax.set_title(f"B · {what}, {confusion_model}, {confusion_task}")
        axes[1, 0].text(0.5, -0.22, CONVENTION_NOTE, transform=axes[1, 0].transAxes, ha="center", fontsize=7)
    else:
        for ax in axes[1]:
            message(ax, f"no predictions of {confusion_model} on {confusion_task}")
    for ax, task in zip(axes[2], t60_tasks):
        _boxes(ax, _native_errors(details, task), f"C · T60 error, {task}", "|T60 error| (s)")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------- Figure 6
def read_loss(train_dir: Path | str, name: str) -> pd.DataFrame | None:
    """DVCLive ``train/loss`` of one variant (columns step, loss) or None when it was not logged."""
    for path in (Path(train_dir) / name / "plots/metrics/train/loss.tsv",
                 Path(train_dir) / name / "dvclive/plots/metrics/train/loss.tsv"):
        if path.is_file():
            table = pd.read_csv(path, sep="\t")
            if not {"step", "loss"} <= set(table.columns):
                raise ValueError(f"{path}: expected DVCLive columns 'step' and 'loss', found {list(table.columns)}")
            return table[["step", "loss"]]
    return None


def _curve_models(results: dict, axis: str) -> dict[str, str]:
    """{model name: its value on ``axis``} for every model standing for a point there."""
    out = {}
    for name, res in results.items():
        var = res.get("variant") or {}
        points = [(var.get("axis"), var.get("value"))] + [tuple(p) for p in var.get("also", [])]
        out.update({name: str(v) for a, v in points if a == axis})
    return out


@styled
def figure_6(results: dict[str, dict], train_dir: Path | str, *, axis: str = "batching"):
    """In-batch sampling vs gradient accumulation at equal effective batch: probe score vs training step
    (the ``curve`` of each model on ``axis``), HEAR (top) and Nat-HEAR (bottom), and the training loss."""
    models = _curve_models(results, axis)
    keys = list(dict.fromkeys(k for n in models for p in results[n].get("curve", []) for k in p if k != "step"))
    tasks = list(dict.fromkeys(k.split("/", 1)[1] for k in keys)) or ["(none)"]
    fig = plt.figure(figsize=(3 * len(tasks) + 3.5, 5.6))
    gs = fig.add_gridspec(2, len(tasks) + 1)
    for row, suite in enumerate(("hear", "nathear")):
        for col, task in enumerate(tasks):
            ax = fig.add_subplot(gs[row, col])
            ax.set_title(f"{SUITE_LABELS[suite]} · {task}")
            drawn = False
            for k, (name, value) in enumerate(models.items()):
                curve = pd.DataFrame(results[name].get("curve", []))
                key = next((c for c in curve.columns if c.split("/", 1)[-1] == task and c.startswith(suite)), None)
                if key is None:
                    continue
                part = curve[["step", key]].dropna().sort_values("step")
                error = results[name]["tasks"].get(key, {}).get("prediction_type") in ERROR_KINDS
                ax.plot(part["step"], part[key] * (1 if error else 100), "o-", ms=3, color=f"C{k}", label=value)
                ax.set_ylabel("error" if error else "score (%)")
                drawn = True
            if drawn:
                ax.set_xlabel("training step")
                ax.legend(fontsize=7)
            else:
                message(ax, f"no learning curve for axis {axis!r}")
    ax = fig.add_subplot(gs[:, -1])
    ax.set_title("training loss")
    losses = {value: read_loss(train_dir, name) for name, value in models.items()}
    for k, (value, loss) in enumerate(losses.items()):
        if loss is not None:
            ax.plot(loss["step"], loss["loss"], color=f"C{k}", label=value)
    if any(v is not None for v in losses.values()):
        ax.set(xlabel="training step", ylabel="MSE on masked patches")
        ax.legend(fontsize=7)
    else:
        message(ax, f"no DVCLive loss logs under {train_dir} for {list(models) or 'axis ' + repr(axis)}")
    fig.tight_layout()
    return fig


@styled
def figure_seld(table: pd.DataFrame):
    """SELD on DCASE-format recordings: the frozen-GRAM probe beside the no-learning intensity baselines.

    ``table``: :func:`gramlib.figures.tables.table_seld` (one row per run and system). Panel A: the unitless
    DCASE 2021+ scores (ER20, F20, LR_CD, SELD; 1-s ER and F of the 2019 metrics); panel B: the
    localization errors in degrees (LE_CD and the 2019-style DoA error).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [3, 2]})
    if table is None or table.empty:
        for ax in axes:
            message(ax, "no SELD results (run the seld stage)")
        return fig
    labels = [f"{r.run} · {r.system}" for r in table.itertuples()]
    for ax, metrics, ylabel in ((axes[0], ["ER20", "F20", "LR_CD", "SELD", "ER_1s", "F_1s"], "score"),
                                (axes[1], ["LE_CD_deg", "DOA_error_deg"], "degrees")):
        present = [m for m in metrics if m in table and table[m].notna().any()]
        if not present:
            message(ax, "no such metrics")
            continue
        width = 0.8 / len(table)
        for i, (label, (_, row)) in enumerate(zip(labels, table.iterrows())):
            ax.bar(np.arange(len(present)) + i * width, [row.get(m, np.nan) for m in present], width, label=label)
        ax.set_xticks(np.arange(len(present)) + 0.4 - width / 2, present)
        ax.set_ylabel(ylabel)
    axes[0].set_title("A · detection and SELD scores (ER, SELD: lower is better)")
    axes[1].set_title("B · localization error")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
