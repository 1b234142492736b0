"""The embedded HEAR-format task suite: six small dry tasks in the HEAR 2021 layout, from the task world.

| task | like | type | classes | split | clip |
|---|---|---|---|---|---|
| ``words`` | Speech Commands | scene, multiclass | 10 command words | train/valid/test, voices disjoint | 1 s |
| ``pitch`` | NSynth pitch | scene, multiclass | MIDI 48-71 (C3-B4) | train/valid/test | 1 s |
| ``events`` | ESC-50 | scene, multiclass | 12 event classes | 5 folds | 2 s |
| ``count`` | LibriCount | scene, multiclass | 1-4 talkers | 5 folds | 3 s |
| ``family`` | NSynth family | scene, multiclass | 10 GM families | train/valid/test | 1 s |
| ``dcase`` | DCASE 2016 task 2 | event, multilabel | 8 classes | train/valid/test | 10 s |

Classes are balanced: item ``i`` has class ``c = i % n_classes``, and the k-th item of a class goes
to split ``SPLIT_PATTERN[(k + c) % 5]`` (60/20/20) or fold ``(k + c) % 5``. Clip ``i`` of task ``t``
is built from ``item_rng(seed, "task/t", i)`` alone. Clips are normalised to -20 dBFS RMS, peak < 1.
Variety within a class: 28 voice variants x 8 English accents with random rate, pitch and range
(speech); 40 GM programs with random velocity and hold (notes); random structure, band-limiting and
noise floor (events).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.signal import butter, sosfilt
from tqdm.auto import tqdm

from ..core.audio import normalize_rms
from ..core.config import SourcesConfig
from ..core.tasks import TaskWriter
from .backgrounds import coloured_noise
from .events import make_event
from .synth import place, random_note, random_speech
from .worlds import INSTRUMENT_FAMILIES, LEVEL_DB, TASK_AUX_WORDS, TASK_EVENT_CLASSES, TASK_WORDS, item_rng, worlds

SPLIT_PATTERN = ("train", "train", "train", "valid", "test")
NFOLDS = 5
PITCHES = tuple(str(p) for p in range(48, 72))  # starts at a C: idx % 12 is the chroma (heareval's chroma_acc)
COUNTS = ("1", "2", "3", "4")
DCASE_CLASSES = ("beep", "chirp", "clap", "glass", "knock", "phone", "speech", "water_drop")
DCASE_EVENTS_PER_CLIP = 5  # classes (5 i + j) % 8: every 8 clips hold each class 5 times
DCASE_CLIP_S = 10.0


def split_of(position: int, class_index: int, split_mode: str) -> str:
    """The split of the ``position``-th item of class ``class_index``.

    The pattern is shifted by the class, so that even a tiny task (smoke sizes) fills every split.
    """
    slot = position + class_index
    if split_mode == "trainvaltest":
        return SPLIT_PATTERN[slot % len(SPLIT_PATTERN)]
    return f"fold{slot % NFOLDS:02d}"


def voices_of_split(split: str) -> list[str]:
    """Task voices whose variant belongs to ``split`` (variants dealt out like items), so test talkers
    are never heard in training."""
    voices = worlds()["task"].voices
    variants = sorted({v.split("+")[1] for v in voices})
    mine = {v for k, v in enumerate(variants) if SPLIT_PATTERN[k % len(SPLIT_PATTERN)] == split}
    return [v for v in voices if v.split("+")[1] in mine]


def fit(rng: np.random.Generator, audio: np.ndarray, n: int) -> np.ndarray:
    """``audio`` at a random offset in ``n`` samples (cropped if longer)."""
    out = np.zeros(n)
    place(out, audio, int(rng.integers(0, max(1, n - len(audio) + 1))))
    return out


# --------------------------------------------------------------------------------------------
# One clip per task: (rng, label, split, n_samples, sr) -> audio (n_samples,)
# --------------------------------------------------------------------------------------------
def word_clip(rng, label, split, n, sr):
    audio, _ = random_speech(rng, label, voices_of_split(split), sr, rate_wpm=(120, 240))
    return fit(rng, audio, n)


def pitch_clip(rng, label, split, n, sr):
    audio, _, _ = random_note(rng, list(worlds()["task"].programs), int(label), sr, n / sr)
    return fit(rng, audio[: int(n * rng.uniform(0.9, 1.0))], n)


def family_clip(rng, label, split, n, sr):
    audio, _, _ = random_note(rng, worlds()["task"].family_programs(label), None, sr, n / sr)
    return fit(rng, audio[: int(n * rng.uniform(0.9, 1.0))], n)


def recording(rng: np.random.Generator, audio: np.ndarray, sr: int, snr_db: tuple[float, float]) -> np.ndarray:
    """A random microphone/channel: band-limited (high-pass 40-300 Hz, low-pass 3-14 kHz) with a
    coloured-noise floor at ``snr_db``, as field recordings (ESC-50) are."""
    band = [rng.uniform(40, 300), min(rng.uniform(3000, 14000), 0.45 * sr)]
    audio = sosfilt(butter(2, band, btype="bandpass", fs=sr, output="sos"), audio)
    floor = coloured_noise(rng, len(audio), sr, rng.uniform(-6.0, 0.0))
    return audio + floor * np.std(audio) * 10 ** (-rng.uniform(*snr_db) / 20)


def event_clip(rng, label, split, n, sr):
    return recording(rng, fit(rng, make_event(label, rng, sr, worlds()["task"].drum_keys), n), sr, (6.0, 30.0))


def count_clip(rng, label, split, n, sr):
    """``label`` talkers, each a different variant, saying 2-4 words, overlapping."""
    world = worlds()["task"]
    variants = sorted({v.split("+")[1] for v in world.voices})
    out = np.zeros(n)
    for variant in rng.choice(variants, size=int(label), replace=False):
        voices = [v for v in world.voices if v.endswith("+" + variant)]
        text = " ".join(rng.choice(TASK_AUX_WORDS, size=int(rng.integers(2, 5))))
        audio, _ = random_speech(rng, text, voices, sr)
        out += fit(rng, audio, n) / (np.std(audio) + 1e-9) * rng.uniform(0.6, 1.0)
    return out


@dataclass(frozen=True)
class SceneTask:
    name: str
    classes: tuple[str, ...]
    clip_s: float
    split_mode: str
    evaluation: tuple[str, ...]
    make: Callable

    def metadata(self) -> dict:
        meta = {"task_name": self.name, "embedding_type": "scene", "prediction_type": "multiclass",
                "split_mode": self.split_mode, "sample_duration": self.clip_s, "evaluation": list(self.evaluation)}
        if self.split_mode != "trainvaltest":
            meta["nfolds"] = NFOLDS
        return meta


SCENE_TASKS = (
    SceneTask("words", TASK_WORDS, 1.0, "trainvaltest", ("top1_acc",), word_clip),
    SceneTask("pitch", PITCHES, 1.0, "trainvaltest", ("pitch_acc", "chroma_acc"), pitch_clip),
    SceneTask("events", TASK_EVENT_CLASSES, 2.0, "presplit_kfold", ("top1_acc", "mAP", "d_prime"), event_clip),
    SceneTask("count", COUNTS, 3.0, "presplit_kfold", ("top1_acc",), count_clip),
    SceneTask("family", INSTRUMENT_FAMILIES, 1.0, "trainvaltest", ("top1_acc",), family_clip),
)


def build_scene_task(task: SceneTask, tasks_dir: Path, n_clips: int, seed: int, sr: int) -> int:
    classes = task.classes
    writer = TaskWriter(tasks_dir, task.name, task.metadata(), sr, vocabulary=list(classes))
    n = int(round(task.clip_s * sr))
    for i in tqdm(range(n_clips), desc=task.name, leave=False):
        label, split = classes[i % len(classes)], split_of(i // len(classes), i % len(classes), task.split_mode)
        audio = task.make(item_rng(seed, f"task/{task.name}", i), label, split, n, sr)
        writer.add(split, f"{task.name}-{i:05d}.wav", normalize_rms(audio.astype(np.float32), LEVEL_DB), label)
    writer.close()
    return n_clips


# --------------------------------------------------------------------------------------------
# The event-detection task
# --------------------------------------------------------------------------------------------
def dcase_event(rng: np.random.Generator, name: str, sr: int) -> np.ndarray:
    world = worlds()["task"]
    if name == "speech":
        text = " ".join(rng.choice(TASK_AUX_WORDS, size=int(rng.integers(1, 4))))
        audio, _ = random_speech(rng, text, list(world.voices), sr)
        return 0.9 * audio / np.abs(audio).max()
    return make_event(name, rng, sr, world.drum_keys)


def dcase_clip(rng: np.random.Generator, index: int, n: int, sr: int) -> tuple[np.ndarray, list[dict]]:
    """Non-overlapping events with random gaps over a quiet coloured-noise floor; labels in ms."""
    names = [DCASE_CLASSES[(DCASE_EVENTS_PER_CLIP * index + j) % len(DCASE_CLASSES)]
             for j in range(DCASE_EVENTS_PER_CLIP)]
    events = [(name, dcase_event(rng, name, sr)) for name in rng.permutation(names)]
    while sum(len(a) for _, a in events) > 0.8 * n:  # keep at least 20 % of the clip as gaps
        events.pop()
    gaps = rng.dirichlet(np.ones(len(events) + 1)) * (n - sum(len(a) for _, a in events))
    out, labels, cursor = np.zeros(n), [], 0.0
    for (name, audio), gap in zip(events, gaps):
        start = int(cursor + gap)
        place(out, audio, start, rng.uniform(0.5, 1.0))
        labels.append({"label": str(name), "start": round(1000 * start / sr, 1),
                       "end": round(1000 * (start + len(audio)) / sr, 1)})
        cursor = start + len(audio)
    floor = coloured_noise(rng, n, sr, rng.uniform(-6.0, -3.0)) * np.std(out) * 10 ** (-rng.uniform(20, 30) / 20)
    return out + floor, labels


def build_dcase(tasks_dir: Path, n_clips: int, seed: int, sr: int) -> int:
    meta = {"task_name": "dcase", "embedding_type": "event", "prediction_type": "multilabel",
            "split_mode": "trainvaltest", "sample_duration": DCASE_CLIP_S,
            "evaluation": ["event_onset_200ms_fms", "segment_1s_er"]}
    writer = TaskWriter(tasks_dir, "dcase", meta, sr, vocabulary=list(DCASE_CLASSES))
    for i in tqdm(range(n_clips), desc="dcase", leave=False):
        audio, labels = dcase_clip(item_rng(seed, "task/dcase", i), i, int(round(DCASE_CLIP_S * sr)), sr)
        writer.add(split_of(i, 0, "trainvaltest"), f"dcase-{i:05d}.wav",
                   normalize_rms(audio.astype(np.float32), LEVEL_DB), labels)
    writer.close()
    return n_clips


def build_suite(cfg: SourcesConfig, tasks_dir: Path | str, seed: int, sample_rate_hz: int = 32000) -> dict:
    """Write every task whose size ``cfg.task_clips`` gives (0 skips one); ``{task: clips}``."""
    known = [t.name for t in SCENE_TASKS] + ["dcase"]
    unknown = sorted(set(cfg.task_clips) - set(known))
    if unknown:
        raise ValueError(f"sources.task_clips names unknown task(s) {unknown}; accepted: {known}")
    tasks_dir, counts = Path(tasks_dir), {}
    for name in known:  # a previous build's clips would otherwise linger beside the new ones
        if cfg.task_clips.get(name, 0) > 0 and (tasks_dir / name).exists():
            shutil.rmtree(tasks_dir / name)
    for task in SCENE_TASKS:
        if cfg.task_clips.get(task.name, 0) > 0:
            counts[task.name] = build_scene_task(task, tasks_dir, cfg.task_clips[task.name], seed, sample_rate_hz)
    if cfg.task_clips.get("dcase", 0) > 0:
        counts["dcase"] = build_dcase(tasks_dir, cfg.task_clips["dcase"], seed, sample_rate_hz)
    return counts
