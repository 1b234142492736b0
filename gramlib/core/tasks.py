"""HEAR 2021 task layout: read, write and validate.

A task folder holds ::

    task_metadata.json        task_name, embedding_type, prediction_type, split_mode, splits, ...
    labelvocabulary.csv       "idx,label" (empty but for the header for localization/regression)
    <split>.json              {"clip.wav": labels}
    <sample_rate>/<split>/*.wav

Labels per ``prediction_type`` (embedding_type ``scene`` unless said):

* ``multiclass`` / ``multilabel``: ``["label", ...]`` (one label for multiclass);
* ``multilabel`` with embedding_type ``event``: ``[{"label": l, "start": ms, "end": ms}, ...]``;
* ``localization``: ``[{"azimuth_deg", "elevation_deg", "x", "y", "z"[, "distance_m", "rt60_s"]}]``;
* ``regression`` (T60): ``[{"rt60_s": t}]``.

Real HEAR 2021 task folders (several rate folders, hashed file names) read unchanged; multichannel
tasks (Nat-HEAR) use the same layout with multichannel WAVs.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from .audio import read_wav, write_wav

REQUIRED_KEYS = ("task_name", "embedding_type", "prediction_type", "split_mode", "sample_duration", "evaluation")
PREDICTION_TYPES = ("multiclass", "multilabel", "localization", "regression")
LOCALIZATION_KEYS = ("azimuth_deg", "elevation_deg", "x", "y", "z")
ERROR_KINDS = ("localization", "regression")  # scored as errors, kept out of the averages
# the Nat-HEAR suite whose scenes a model of each input format hears (a mono model: the FOA scenes' W)
NATIVE_SUITE = {"binaural": "nathear-binaural", "foa": "nathear-foa", "clean": "nathear-foa", "mono": "nathear-foa"}
VOCAB_FILE, METADATA_FILE = "labelvocabulary.csv", "task_metadata.json"


class TaskError(ValueError):
    """A task folder that does not follow the HEAR layout; the message names the file and the problem."""


def default_splits(metadata: dict) -> list[str]:
    """The splits a metadata dict declares, or the ones its split_mode implies."""
    if metadata.get("splits"):
        return list(metadata["splits"])
    if metadata.get("split_mode") == "trainvaltest":
        return ["train", "valid", "test"]
    if "nfolds" in metadata:
        return [f"fold{i:02d}" for i in range(int(metadata["nfolds"]))]
    raise TaskError(f"{METADATA_FILE}: no 'splits' and no 'nfolds' for split_mode {metadata.get('split_mode')!r}")


def _has_vocabulary(metadata: dict) -> bool:
    return metadata.get("prediction_type") in ("multiclass", "multilabel")


def _sort_labels(labels) -> list[str]:
    """Sorted label strings; numerically when every label is a number (MIDI pitch, counts)."""
    labels = sorted(set(labels))
    try:
        return sorted(labels, key=float)
    except ValueError:
        return labels


def task_kind(metadata: dict) -> str:
    """What a task asks for, from ``embedding_type`` and ``prediction_type``: ``event`` (timestamped labels) or
    a scene task's prediction type (multiclass, multilabel, localization, regression)."""
    emb, pred = metadata.get("embedding_type"), metadata.get("prediction_type")
    if emb == "event" and pred in ("multilabel", "multiclass"):
        return "event"
    if emb == "scene" and pred in ("multiclass", "multilabel", "localization", "regression"):
        return pred
    raise ValueError(f"unsupported embedding_type {emb!r} with prediction_type {pred!r}; accepted: scene with "
                     "multiclass/multilabel/localization/regression, event with multilabel")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
@dataclass
class Task:
    """One task folder. ``name`` is the folder name (``metadata["task_name"]`` for HEAR's own name)."""

    path: Path
    metadata: dict
    splits: list[str]
    vocabulary: list[str]
    sample_rate_hz: int = 32000
    _labels: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    def labels(self, split: str) -> dict[str, Any]:
        """``{filename: labels}`` of one split, as stored in ``<split>.json``."""
        if split not in self.splits:
            raise TaskError(f"{self.path}: unknown split {split!r}; splits: {self.splits}")
        if split not in self._labels:
            self._labels[split] = _read_json(self.path / f"{split}.json")
        return self._labels[split]

    def files(self, split: str) -> list[str]:
        return sorted(self.labels(split))

    @property
    def stored_rate_hz(self) -> int:
        """The rate folder clips are read from: ``sample_rate_hz`` when the task has it (HEAR tasks ship several
        rates), else the highest rate it has (resampled at load time)."""
        if (self.path / str(self.sample_rate_hz)).is_dir():
            return self.sample_rate_hz
        rates = sorted(int(p.name) for p in self.path.iterdir() if p.is_dir() and p.name.isdigit())
        if not rates:
            raise TaskError(f"{self.path}: no audio folder (<rate>/<split>/...); expected {self.sample_rate_hz}/")
        return rates[-1]

    def audio_path(self, split: str, filename: str) -> Path:
        return self.path / str(self.stored_rate_hz) / split / filename

    def load(self, split: str, filename: str) -> np.ndarray:
        """The clip as float32 ``(C, S)`` at ``sample_rate_hz`` (resampled if the task has no folder at that rate)."""
        stored = self.stored_rate_hz
        return read_wav(self.audio_path(split, filename), sample_rate_hz=self.sample_rate_hz,
                        resample=stored != self.sample_rate_hz)


def _read_json(path: Path):
    if not path.is_file():
        raise TaskError(f"{path}: file missing")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise TaskError(f"{path}: not valid JSON ({err})") from err


def read_vocabulary(path: Path) -> list[str]:
    """Labels of ``labelvocabulary.csv`` in idx order (header ``idx,label``)."""
    if not path.is_file():
        raise TaskError(f"{path}: file missing")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0][:2]] != ["idx", "label"]:
        raise TaskError(f"{path}: the first line must be the header 'idx,label', got {rows[:1]}")
    body = [r for r in rows[1:] if r]
    if [r[0] for r in body] != [str(i) for i in range(len(body))]:
        raise TaskError(f"{path}: idx must run 0, 1, 2, ... in order")
    return [r[1] for r in body]


def read_task(path: Path | str, sample_rate_hz: int = 32000) -> Task:
    """Open a task folder (metadata and vocabulary now, labels on first use)."""
    path = Path(path)
    metadata = _read_json(path / METADATA_FILE)
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise TaskError(f"{path / METADATA_FILE}: missing key(s) {missing}; required: {list(REQUIRED_KEYS)}")
    vocab_path = path / VOCAB_FILE
    vocabulary = read_vocabulary(vocab_path) if _has_vocabulary(metadata) or vocab_path.is_file() else []
    return Task(path, metadata, default_splits(metadata), vocabulary, sample_rate_hz)


def list_tasks(tasks_dir: Path | str) -> list[Path]:
    """The task folders (holding task_metadata.json) directly under ``tasks_dir``, sorted."""
    tasks_dir = Path(tasks_dir)
    if not tasks_dir.is_dir():
        raise TaskError(f"{tasks_dir}: tasks directory not found")
    return sorted(p for p in tasks_dir.iterdir() if (p / METADATA_FILE).is_file())


def tasks_table(tasks_dir: Path | str, sample_rate_hz: int = 32000):
    """One row per task: types, split mode, classes, clips per split, clip duration."""
    import pandas as pd  # pandas loads only for the tables

    rows = []
    for path in list_tasks(tasks_dir):
        task = read_task(path, sample_rate_hz)
        counts = {s: len(task.labels(s)) for s in task.splits}
        meta = task.metadata
        rows.append({"task": task.name, "embedding_type": meta["embedding_type"],
                     "prediction_type": meta["prediction_type"], "split_mode": meta["split_mode"],
                     "classes": len(task.vocabulary), "clips": sum(counts.values()),
                     "clips_per_split": " ".join(f"{s}:{n}" for s, n in counts.items()),
                     "clip_s": meta["sample_duration"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _label_entries(label, prediction_type: str, embedding_type: str) -> list:
    """A label as stored in ``<split>.json``: always a list."""
    if prediction_type in ("localization", "regression") or embedding_type == "event":
        return [dict(label)] if isinstance(label, dict) else [dict(x) for x in label]
    if isinstance(label, (list, tuple)):
        return [str(x) for x in label]
    return [str(label)]


class TaskWriter:
    """Write a task incrementally: ``add()`` writes each WAV at once, ``close()`` the JSON and CSV.

    ``metadata`` needs the HEAR keys (task_name, embedding_type, prediction_type, split_mode,
    sample_duration, evaluation; nfolds for k-fold); splits, sample_rates, mode, default_mode,
    version and download_urls are filled in when absent. ``vocabulary`` fixes the label order (e.g.
    contiguous MIDI pitches); otherwise the labels seen are sorted, numerically if all are numbers.
    """

    def __init__(self, root: Path | str, name: str, metadata: dict, sample_rate_hz: int = 32000,
                 vocabulary: list[str] | None = None):
        missing = [k for k in REQUIRED_KEYS if k not in metadata]
        if missing:
            raise TaskError(f"metadata of task {name!r} misses {missing}; required: {list(REQUIRED_KEYS)}")
        if metadata["prediction_type"] not in PREDICTION_TYPES:
            raise TaskError(f"task {name!r}: prediction_type {metadata['prediction_type']!r} not in {PREDICTION_TYPES}")
        self.path = Path(root) / name
        self.sample_rate_hz = sample_rate_hz
        self.metadata = {"task_name": name, "version": "embedded-1", "mode": "full", "default_mode": "full",
                         "download_urls": [], **metadata, "sample_rates": [sample_rate_hz]}
        self.metadata["splits"] = default_splits(self.metadata)
        self.vocabulary = [str(v) for v in vocabulary] if vocabulary is not None else None
        self.labels: dict[str, dict] = {s: {} for s in self.metadata["splits"]}
        self.n_channels: int | None = None
        duration = self.metadata["sample_duration"]
        self.n_samples = None if duration is None else int(round(duration * sample_rate_hz))

    def add(self, split: str, filename: str, audio: np.ndarray, label) -> Path:
        """Write one clip ``(C, S)`` (or ``(S,)``) and remember its label."""
        if split not in self.labels:
            raise TaskError(f"task {self.path.name}: unknown split {split!r}; splits: {list(self.labels)}")
        audio = np.asarray(audio, dtype=np.float32)
        audio = audio[None] if audio.ndim == 1 else audio
        if self.n_samples is not None and audio.shape[-1] != self.n_samples:
            raise TaskError(f"{filename}: {audio.shape[-1]} samples; the task's clips have {self.n_samples}")
        if self.n_channels not in (None, audio.shape[0]):
            raise TaskError(f"{filename}: {audio.shape[0]} channel(s); the task's clips have {self.n_channels}")
        self.n_channels = audio.shape[0]
        self.labels[split][filename] = _label_entries(label, self.metadata["prediction_type"],
                                                      self.metadata["embedding_type"])
        return write_wav(self.path / str(self.sample_rate_hz) / split / filename, audio, self.sample_rate_hz)

    def _vocabulary(self) -> list[str]:
        if not _has_vocabulary(self.metadata):
            return []
        event = self.metadata["embedding_type"] == "event"
        seen = {e["label"] if event else e for split in self.labels.values() for v in split.values() for e in v}
        if self.vocabulary is None:
            return _sort_labels(seen)
        unknown = sorted(seen - set(self.vocabulary))
        if unknown:
            raise TaskError(f"task {self.path.name}: labels {unknown} are not in the given vocabulary")
        return self.vocabulary

    def close(self) -> Path:
        """Write the split JSONs, labelvocabulary.csv and task_metadata.json; return the task folder."""
        self.path.mkdir(parents=True, exist_ok=True)
        for split, labels in self.labels.items():
            (self.path / f"{split}.json").write_text(json.dumps(dict(sorted(labels.items())), indent=1))
        with (self.path / VOCAB_FILE).open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["idx", "label"])
            writer.writerows(enumerate(self._vocabulary()))
        (self.path / METADATA_FILE).write_text(json.dumps(self.metadata, indent=1))
        return self.path


def write_task(root: Path | str, name: str, metadata: dict, items: dict[str, dict[str, tuple]],
               sample_rate_hz: int = 32000, vocabulary: list[str] | None = None) -> Path:
    """Write a whole task: ``items[split][filename] = (audio (C, S), label)``."""
    writer = TaskWriter(root, name, metadata, sample_rate_hz, vocabulary)
    for split, clips in items.items():
        for filename, (audio, label) in clips.items():
            writer.add(split, filename, audio, label)
    return writer.close()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
def _check_label(where: str, entries, metadata: dict, vocabulary: set[str]) -> None:
    kind, event = metadata["prediction_type"], metadata["embedding_type"] == "event"
    if not isinstance(entries, list) or (kind == "multiclass" and not event and len(entries) != 1):
        raise TaskError(f"{where}: labels must be a list{' of one label' if kind == 'multiclass' else ''}, "
                        f"got {entries!r}")
    for entry in entries:
        if kind in ("localization", "regression") or event:
            if not isinstance(entry, dict):
                raise TaskError(f"{where}: each label must be an object, got {entry!r}")
        if event:
            if "start" not in entry or "end" not in entry:
                raise TaskError(f"{where}: event label {entry!r} lacks 'start'/'end' (ms)")
            if not float(entry["start"]) <= float(entry["end"]):
                raise TaskError(f"{where}: event label {entry!r} ends before it starts")
        if kind == "localization":
            missing = [k for k in LOCALIZATION_KEYS if k not in entry]
            if missing:
                raise TaskError(f"{where}: localization label {entry!r} lacks {missing}")
        if kind == "regression" and not all(isinstance(v, (int, float)) for v in entry.values()):
            raise TaskError(f"{where}: regression label {entry!r} must map target names to numbers")
        if kind in ("multiclass", "multilabel"):
            label = entry["label"] if event else entry
            if str(label) not in vocabulary:
                raise TaskError(f"{where}: label {label!r} is not in {VOCAB_FILE}")


def _check_wav(path: Path, sample_rate_hz: int, n_samples: int | None) -> int:
    """Header checks of one clip; returns its channel count."""
    if not path.is_file():
        raise TaskError(f"{path}: audio file missing")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise TaskError(f"{path}: cannot read audio ({err})") from err
    if info.samplerate != sample_rate_hz:
        raise TaskError(f"{path}: sample rate {info.samplerate} Hz, expected {sample_rate_hz} Hz")
    if n_samples is not None and info.frames != n_samples:
        raise TaskError(f"{path}: {info.frames} samples, expected {n_samples} (sample_duration x rate)")
    return info.channels


def validate_task(path: Path | str, sample_rate_hz: int = 32000, check_audio: bool = True) -> Task:
    """Check a task folder; raise :class:`TaskError` naming the file and the problem, else return it."""
    task = read_task(path, sample_rate_hz)
    meta = task.metadata
    if meta["prediction_type"] not in PREDICTION_TYPES:
        raise TaskError(f"{task.path / METADATA_FILE}: prediction_type {meta['prediction_type']!r} "
                        f"not in {PREDICTION_TYPES}")
    duration = meta["sample_duration"]
    n_samples = None if duration is None else int(round(duration * sample_rate_hz))
    vocabulary, channels = set(task.vocabulary), {}
    for split in task.splits:
        for filename, entries in task.labels(split).items():
            _check_label(f"{task.path / (split + '.json')}: {filename}", entries, meta, vocabulary)
            if check_audio:
                wav = task.audio_path(split, filename)
                channels[wav] = _check_wav(wav, sample_rate_hz, n_samples)
    if len(set(channels.values())) > 1:
        first = next(iter(channels.items()))
        odd = next((p, c) for p, c in channels.items() if c != first[1])
        raise TaskError(f"{odd[0]}: {odd[1]} channel(s), but {first[0]} has {first[1]}; a task has one count")
    return task
