"""Dry source clips for the synthetic SELD set: classes from the embedded HEAR-format tasks, or a
procedural stand-in when no task suite is given (tests, or a machine without ``data/tasks``).

Classes are drawn round-robin from the tasks of :data:`TASK_ORDER` -- everyday events, spoken
words, instrument notes, like STARSS23's mix of sounds, speech and music -- each task contributing
labels spread evenly over its sorted vocabulary (so the notes span the pitch range rather than
neighbouring semitones); 13 classes give 5 events, 4 words and 4 notes. Classes are named
``"<task>:<label>"``. A task's ``test`` split feeds the test fold, every other split (``train``,
``valid``, or all but the last ``foldNN``) the train folds, so no clip is heard in both. Clips are
trimmed to where they sound (-40 dB below their peak on a 10-ms envelope), set to -20 dBFS RMS, and
resampled to the set's rate. Tasks are read with :func:`gramlib.core.tasks.read_task` (HEAR 2021 layout).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.audio import normalize_rms, resample_audio
from ..core.tasks import read_task

TASK_ORDER = ("events", "words", "pitch")
MAX_CLIPS_PER_CLASS = 24  # per role; bounds memory and build time
PROCEDURAL_CLIPS = 8  # per class and role
TRIM_DB = -40.0
TASK_RATE_HZ = 32000  # the rate folder read when a task has several


def source_clips(tasks_dir, n_classes: int, role: str, sample_rate_hz: int, seed: int
                 ) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    """Class names and mono float clips per class for ``role`` ("train" or "test")."""
    if tasks_dir is None:
        return _procedural(n_classes, role, sample_rate_hz, seed)
    tasks_dir = Path(tasks_dir)
    if not tasks_dir.is_dir():
        raise FileNotFoundError(f"task suite folder not found: {tasks_dir} (build the `sources` stage first)")
    train = {t: _task_files(tasks_dir / t, "train") for t in TASK_ORDER if (tasks_dir / t).is_dir()}
    pools = train if role == "train" else {t: _task_files(tasks_dir / t, "test") for t in train}
    names, clips = [], {}
    for task, labels in _choose_labels(train, n_classes, tasks_dir).items():
        for label in labels:  # a label without test clips borrows its train clips
            loaders = pools[task].get(label) or train[task][label]
            names.append(f"{task}:{label}")
            clips[names[-1]] = [_prepare(load(), sample_rate_hz) for load in loaders[:MAX_CLIPS_PER_CLASS]]
    return names, clips


def _choose_labels(train: dict, n_classes: int, tasks_dir: Path) -> dict[str, list[str]]:
    """Round-robin quotas over the tasks, labels spread evenly over each task's sorted vocabulary."""
    available = sum(len(v) for v in train.values())
    if available < n_classes:
        raise ValueError(f"{tasks_dir} holds {available} source classes in tasks {list(train)}; "
                         f"seld.classes asks for {n_classes}")
    quota = dict.fromkeys(train, 0)
    while sum(quota.values()) < n_classes:
        for t in train:
            if sum(quota.values()) < n_classes and quota[t] < len(train[t]):
                quota[t] += 1
    chosen = {}
    for task, q in quota.items():
        labels = sorted(train[task], key=_label_key)
        chosen[task] = [labels[i] for i in np.linspace(0, len(labels) - 1, q).round().astype(int)] if q else []
    return chosen


def _label_key(label: str):
    return (0, float(label), "") if label.replace(".", "", 1).isdigit() else (1, 0.0, label)


def _task_files(task_dir: Path, role: str) -> dict[str, list]:
    """label -> loaders (callables returning (mono audio, rate)) of one scene task's clips for ``role``;
    empty for a task whose labels are not class names (localization, regression)."""
    rates = sorted(int(d.name) for d in task_dir.iterdir() if d.is_dir() and d.name.isdigit())
    if not rates:
        raise FileNotFoundError(f"{task_dir} has no <sample_rate>/ audio folder")
    rate = TASK_RATE_HZ if TASK_RATE_HZ in rates else rates[-1]
    task = read_task(task_dir, sample_rate_hz=rate)
    out: dict[str, list] = {}
    for split in _role_splits(task.splits, role):
        labels = task.labels(split)
        for f in task.files(split):
            label = _first_label(labels[f])
            if label is not None:
                out.setdefault(label, []).append(lambda s=split, f=f: (task.load(s, f).mean(0), rate))
    return out


def _role_splits(splits: list[str], role: str) -> list[str]:
    if "test" in splits:
        return ["test"] if role == "test" else [s for s in splits if s != "test"]
    folds = sorted(s for s in splits if s.startswith("fold"))
    return folds[-1:] if role == "test" else folds[:-1]


def _first_label(labels):
    """The clip's class: the first label of a scene task; None for localization/regression labels."""
    first = labels[0] if isinstance(labels, list) and labels else labels
    if isinstance(first, dict):
        first = first.get("label")
    return str(first) if isinstance(first, (str, int)) else None


def _prepare(loaded, sample_rate_hz: int) -> np.ndarray:
    audio, rate = loaded
    if rate != sample_rate_hz:
        audio = resample_audio(audio, rate, sample_rate_hz)
    hop = max(1, sample_rate_hz // 100)
    env = np.sqrt(np.convolve(audio.astype(np.float64) ** 2, np.ones(hop) / hop, mode="same"))
    loud = np.flatnonzero(env > env.max() * 10 ** (TRIM_DB / 20))
    audio = audio[loud[0]:loud[-1] + 1] if len(loud) else audio
    return normalize_rms(audio.astype(np.float32), -20.0)


def _procedural(n_classes: int, role: str, sample_rate_hz: int, seed: int):
    """Stand-in classes: tones, noise bursts, amplitude-modulated tones and chirps of distinct pitch."""
    names = [f"synth:{k:02d}" for k in range(n_classes)]
    clips = {}
    for k, name in enumerate(names):
        rng = np.random.default_rng([seed, k, 0 if role == "train" else 1])
        clips[name] = [_procedural_clip(k, rng, sample_rate_hz) for _ in range(PROCEDURAL_CLIPS)]
    return names, clips


def _procedural_clip(k: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    dur = rng.uniform(0.5, 2.0)
    t = np.arange(int(dur * rate)) / rate
    f0 = 180.0 * 1.3 ** (k % 10) * rng.uniform(0.97, 1.03)
    kind = k % 4
    if kind == 0:  # harmonic tone
        sig = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5))
    elif kind == 1:  # band of noise around 4 f0
        spec = np.fft.rfft(rng.standard_normal(len(t)))
        f = np.fft.rfftfreq(len(t), 1 / rate)
        spec *= np.exp(-0.5 * (np.log(np.maximum(f, 1) / (4 * f0)) / 0.25) ** 2)
        sig = np.fft.irfft(spec, n=len(t))
    elif kind == 2:  # tone amplitude-modulated at 4-12 Hz
        sig = np.sin(2 * np.pi * f0 * t) * (1 + np.sin(2 * np.pi * (4 + k % 9) * t)) / 2
    else:  # upward chirp over one octave
        sig = np.sin(2 * np.pi * f0 * (t + t ** 2 / (2 * dur)))
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return normalize_rms((sig * env).astype(np.float32), -20.0)
