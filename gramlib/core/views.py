"""Pictures a person would rather look at than read, for the notebooks: spectrograms, RIRs,
direction and RT60 distributions, reconstructions. Paper figures live in :mod:`gramlib.figures.plots`.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .formats import AMBIX, EARS
from .tasks import list_tasks, read_task

STYLE = {"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False, "font.size": 9,
         "axes.titlesize": 9, "axes.labelsize": 9, "image.cmap": "magma"}
plt.rcParams.update(STYLE)


def channel_names(n_channels: int) -> tuple[str, ...]:
    return {1: ("mono",), 2: EARS, 4: AMBIX}.get(n_channels, tuple(f"ch{i}" for i in range(n_channels)))


def log_mel(audio: np.ndarray, sample_rate_hz: int = 32000, n_mels: int = 128) -> np.ndarray:
    """(C, S) audio -> (C, F, T) log-mel in dB, for display (torchaudio, 32-ms window, 10-ms hop)."""
    import torch  # torch loads only where it is used
    import torchaudio  # torch loads only where the figure needs it

    mel = torchaudio.transforms.MelSpectrogram(sample_rate_hz, n_fft=1024, hop_length=sample_rate_hz // 100,
                                               n_mels=n_mels, f_min=50.0, f_max=sample_rate_hz / 2)
    with torch.no_grad():
        spec = mel(torch.as_tensor(np.asarray(audio, np.float32)))
    return (10 * torch.log10(spec + 1e-10)).numpy()


def task_examples(tasks_dir: Path, split_index: int = -1) -> dict[str, tuple[str, np.ndarray]]:
    """One (label, audio) example per task: the first clip of the last split (test or the last fold)."""
    out = {}
    for path in list_tasks(tasks_dir):
        task = read_task(path)
        split = task.splits[split_index]
        first = task.files(split)[0]
        out[task.name] = (str(task.labels(split)[first]), task.load(split, first))
    return out


def spectrogram_grid(examples: dict[str, tuple[str, np.ndarray]], *, sample_rate_hz: int = 32000,
                     title: str = ""):
    """One row per example, one column per channel."""
    n_ch = max(a.shape[0] for _, a in examples.values())
    fig, axes = plt.subplots(len(examples), n_ch, figsize=(3.2 * n_ch, 1.6 * len(examples)), squeeze=False)
    for row, (name, (label, audio)) in zip(axes, examples.items()):
        spec = log_mel(audio, sample_rate_hz)
        names = channel_names(audio.shape[0])
        for c, ax in enumerate(row):
            if c >= spec.shape[0]:
                ax.axis("off")
                continue
            dur = audio.shape[-1] / sample_rate_hz
            ax.imshow(spec[c], origin="lower", aspect="auto", extent=(0, dur, 0, spec.shape[1]),
                      vmin=spec.max() - 80, vmax=spec.max())
            ax.set_title(f"{name} · {names[c]} · {label[:40]}")
            ax.set_ylabel("mel bin")
        row[0].set_xlabel("time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def rir_plot(rirs: np.ndarray, sample_rate_hz: int = 32000, *, title: str = "", ms: float = 120.0):
    """The first ``ms`` of each channel of one RIR (C, L), and its energy decay curve."""
    n = rirs.shape[0]
    t = np.arange(rirs.shape[1]) / sample_rate_hz
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    keep = t <= ms / 1000
    for c, name in enumerate(channel_names(n)):
        axes[0].plot(1000 * t[keep], rirs[c, keep] + 0.0, lw=0.8, label=name)
    axes[0].set(xlabel="time (ms)", ylabel="amplitude", title=title or "early response")
    axes[0].legend(ncol=n, fontsize=7)
    edc = np.cumsum(np.square(rirs[0].astype(np.float64))[::-1])[::-1]
    axes[1].plot(t, 10 * np.log10(edc / edc[0] + 1e-12), lw=1)
    axes[1].set(xlabel="time (s)", ylabel="energy decay (dB)", ylim=(-70, 2), title=f"Schroeder curve, {channel_names(n)[0]}")
    fig.tight_layout()
    return fig


def distributions(manifest, columns: list[str], *, title: str = ""):
    """Histograms of manifest columns (RT60, azimuth, elevation, distance...)."""
    fig, axes = plt.subplots(1, len(columns), figsize=(2.8 * len(columns), 2.4))
    for ax, col in zip(np.atleast_1d(axes), columns):
        for split, part in manifest.groupby("split") if "split" in manifest else [("", manifest)]:
            ax.hist(part[col], bins=20, alpha=0.6, label=str(split))
        ax.set_xlabel(col)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reconstruction(crop: np.ndarray, mask_image: np.ndarray, recon: np.ndarray, *, channels: tuple[str, ...],
                   title: str = ""):
    """Per channel: the input crop, the masked input, and the reconstruction (all (C, T, F)).

    At most four channels are drawn (FOA: W, X and the x/y intensity-vector channels), so the executed
    notebooks stay small enough to commit.
    """
    shown = [0, 3, 4, 5] if crop.shape[0] == 7 else list(range(min(4, crop.shape[0])))
    n = len(shown)
    fig, axes = plt.subplots(n, 3, figsize=(8, 1.5 * n), squeeze=False, dpi=72)
    lo, hi = np.percentile(crop, [1, 99])
    for row, c in zip(axes, shown):
        for ax, img, name in zip(row, (crop[c], np.where(mask_image[c], np.nan, crop[c]), recon[c]),
                                 ("input", "visible patches", "reconstruction")):
            ax.imshow(img.T, origin="lower", aspect="auto", vmin=lo, vmax=hi)
            ax.set_title(f"{channels[c]} · {name}")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _tsv(path: Path):
    import pandas as pd  # pandas loads only for the tables

    return pd.read_csv(path, sep="\t") if Path(path).is_file() else None


def training_curves(live_dir: Path, *, title: str = ""):
    """Loss, learning rate and throughput logged by DVCLive during pre-training."""
    base = Path(live_dir) / "plots" / "metrics" / "train"
    names = [("loss", "masked-patch MSE"), ("lr", "learning rate"), ("crops_per_s", "2-s crops / s")]
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.6))
    for ax, (name, label) in zip(axes, names):
        df = _tsv(base / f"{name}.tsv")
        if df is None:
            ax.text(0.5, 0.5, f"no {name}.tsv in {base}", ha="center", transform=ax.transAxes)
            continue
        ax.plot(df["step"], df[name], lw=1)
        ax.set(xlabel="step", ylabel=label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def doa_scatter(result: dict, *, title: str = ""):
    """Predicted vs true azimuth and elevation of every localization task with stored predictions."""
    tasks = {k: r for k, r in result.get("tasks", {}).items() if r.get("predictions")
             and r.get("prediction_type") == "localization"}
    if not tasks:
        return None
    fig, axes = plt.subplots(2, len(tasks), figsize=(3 * len(tasks), 5.4), squeeze=False)
    for col, (key, r) in enumerate(sorted(tasks.items())):
        true = np.asarray(r["predictions"]["true"], float)
        pred = np.asarray(r["predictions"]["pred"], float)
        for row, (fn, name, lim) in enumerate(((_azimuth, "azimuth", 180), (_elevation, "elevation", 90))):
            ax = axes[row, col]
            ax.scatter(fn(true), fn(pred), s=6, alpha=0.6)
            ax.plot([-lim, lim], [-lim, lim], color="grey", lw=0.6)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel=f"true {name} (deg)", ylabel=f"predicted {name}")
            if row == 0:
                ax.set_title(f"{key}\nmedian error {r.get('median_angular_error_deg', float('nan')):.1f} deg")
    fig.suptitle(f"{title} (azimuth: 0 = front, +90 = left)")
    fig.tight_layout()
    return fig


def _azimuth(v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(v[:, 1], v[:, 0]))


def _elevation(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=1).clip(1e-12)
    return np.degrees(np.arcsin(np.clip(v[:, 2] / norm, -1, 1)))


def same_item(tasks_dir: Path, nathear_dir: Path, task_name: str) -> dict[str, tuple[str, np.ndarray]]:
    """The first test item of a task as dry HEAR audio and as each Nat-HEAR format (same file name)."""
    dry = read_task(Path(tasks_dir) / task_name)
    split = dry.splits[-1]
    first = dry.files(split)[0]
    out = {f"HEAR · {task_name}": (str(dry.labels(split)[first]), dry.load(split, first))}
    for fmt in ("binaural", "foa"):
        path = Path(nathear_dir) / fmt / task_name
        if path.is_dir():
            task = read_task(path)
            out[f"Nat-HEAR {fmt}"] = (str(task.labels(split)[first]), task.load(split, first))
    return out


def task_items(nathear_dir: Path, task_names: list[str]):
    """The ``items.csv`` sidecars of Nat-HEAR tasks in both formats, stacked (format and task columns)."""
    import pandas as pd  # pandas loads only for the tables

    frames = []
    for fmt in ("binaural", "foa"):
        for name in task_names:
            path = Path(nathear_dir) / fmt / name / "items.csv"
            if path.is_file():
                frames.append(pd.read_csv(path).assign(format=fmt, task=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def feature_maps(feats: np.ndarray, channels: tuple[str, ...], *, title: str = ""):
    """Model input features (C, T, F) at 10 ms per frame, one panel per channel: log-mels in the
    colour map of the spectrograms, FOA intensity-vector channels (I_x, I_y, I_z, in [-1, 1]) diverging."""
    n = feats.shape[0]
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.0 * rows), squeeze=False)
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.axis("off")
            continue
        intensity = channels[c].startswith("I_")
        img = ax.imshow(feats[c].T, origin="lower", aspect="auto", extent=(0, feats.shape[1] / 100, 0, feats.shape[2]),
                        cmap="RdBu_r" if intensity else None, vmin=-1 if intensity else None, vmax=1 if intensity else None)
        ax.set(title=channels[c], xlabel="time (s)", ylabel="mel bin" if c % cols == 0 else None)
        if intensity:
            fig.colorbar(img, ax=ax, fraction=0.05)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def doa_polar(estimates: dict[str, dict], *, truth: dict | None = None, title: str = ""):
    """Directions on a top-view polar plot: azimuth around (0° = front at the top, +90° = left,
    counter-clockwise), radius cos(elevation) (the rim is the horizon, the centre straight up or down;
    hollow markers lie below the horizon). ``estimates``: {label: {"azimuth_deg", "elevation_deg"}}."""
    fig = plt.figure(figsize=(4.2, 4.2))
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(1)  # counter-clockwise: +90° (left) on the left
    points = ([("true", truth, "k", "*")] if truth else []) + \
        [(label, d, f"C{i}", "o") for i, (label, d) in enumerate(estimates.items())]
    for label, d, colour, marker in points:
        el = float(d["elevation_deg"])
        ax.plot(np.radians(d["azimuth_deg"]), np.cos(np.radians(el)), marker, ms=12 if marker == "*" else 9,
                color=colour, mfc=colour if el >= 0 else "none",
                label=f"{label}: az {d['azimuth_deg']:.0f}°, el {el:.0f}°")
    ax.set_ylim(0, 1.05)
    ax.set_yticks([np.cos(np.radians(60)), np.cos(np.radians(30)), 1.0], ["60°", "30°", "0°"], fontsize=7)
    ax.set_xticks(np.radians([0, 90, 180, 270]), ["front 0°", "left 90°", "back 180°", "right 270°"])
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    ax.set_title(title or "direction of arrival (top view; radius = cos elevation)")
    fig.tight_layout()
    return fig
