"""The embedded source corpus: pre-training pool, pre-training and Nat-HEAR noise, and the task suite.

* ``pretrain/``: 10-s clips of sentences, melodies and events of the pre-training world (the
  AudioSet stand-in), with ``manifest.csv`` (file, duration_s, content);
* ``noise/{train,test}/``: WHAM!-like backgrounds (:mod:`gramlib.corpus.backgrounds`), train from the
  pre-training world, test (Nat-HEAR) from the task world, with ``manifest.csv`` (file, split, kind);
* the HEAR-format task suite (:mod:`gramlib.corpus.suite`) under its own folder.

The worlds and their disjointness are in :mod:`gramlib.corpus.worlds`. Real data plugs in through
``sources.paths`` (:class:`gramlib.core.config.DataPaths`): the manifests then point at the real files,
which are read at any rate and channel count and turned into 32-kHz mono at load time
(:func:`gramlib.core.sourcefiles.load_source`); a real HEAR tasks directory replaces the embedded suite.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from ..core.audio import normalize_rms, write_wav
from ..core.config import SourcesConfig, section
from ..core.tasks import list_tasks
from .backgrounds import KINDS, NoiseWorld, make_noise
from .events import make_event
from .suite import build_suite
from .synth import note_renderer, place, random_speech
from .worlds import LEVEL_DB, World, item_rng, worlds

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")


# --------------------------------------------------------------------------------------------
# Pre-training clips
# --------------------------------------------------------------------------------------------
def speech_layer(rng: np.random.Generator, n: int, sr: int, world: World) -> tuple[np.ndarray, str]:
    """1-2 talkers saying sentences of the world's words, with pauses."""
    out, sentences = np.zeros(n), 0
    for _ in range(int(rng.integers(1, 3))):
        cursor = int(rng.uniform(0, 2) * sr)
        while cursor < n:
            text = " ".join(rng.choice(world.words, size=int(rng.integers(3, 11))))
            audio, _ = random_speech(rng, text, list(world.voices), sr)
            place(out, audio, cursor, rng.uniform(0.5, 1.0))
            cursor += len(audio) + int(rng.uniform(0.2, 1.2) * sr)
            sentences += 1
    return out, f"speech {sentences} sentences"


def music_layer(rng: np.random.Generator, n: int, sr: int, world: World) -> tuple[np.ndarray, str]:
    """A melody (sometimes with chords) on 1-2 of the world's programs, over a random scale."""
    renderer, out = note_renderer(sr), np.zeros(n)
    programs = [int(p) for p in rng.choice(world.programs, size=int(rng.integers(1, 3)), replace=False)]
    scale = np.cumsum(rng.choice([[2, 2, 1, 2, 2, 2, 1], [2, 1, 2, 2, 1, 2, 2], [2, 2, 3, 2, 3, 2, 2]]))
    root, notes = int(rng.integers(45, 66)), 0
    for program in programs:
        cursor, beat_s = int(rng.uniform(0, 1) * sr), rng.uniform(0.15, 0.6)
        while cursor < n:
            hold_s = beat_s * int(rng.choice([1, 1, 2, 3]))
            for degree in rng.choice(14, size=int(rng.choice([1, 1, 1, 2, 3])), replace=False):
                pitch = root + int(scale[degree % 7]) + 12 * (degree // 7) - 12 * int(rng.integers(0, 2))
                audio = renderer.render(program, pitch, int(rng.integers(50, 128)), hold_s, hold_s + 0.4)
                if audio is not None:
                    place(out, audio, cursor, 1.0)
                    notes += 1
            cursor += int(hold_s * sr)
    return out, f"music {notes} notes programs {','.join(map(str, programs))}"


def events_layer(rng: np.random.Generator, n: int, sr: int, world: World) -> tuple[np.ndarray, str]:
    """3-10 events of the world's classes at random times."""
    out, names = np.zeros(n), []
    for _ in range(int(rng.integers(3, 11))):
        name = str(rng.choice(world.event_classes))
        audio = make_event(name, rng, sr, world.drum_keys)
        place(out, audio, int(rng.integers(0, n)), rng.uniform(0.3, 1.0))
        names.append(name)
    return out, "events " + ",".join(sorted(names))


LAYERS = {"speech": speech_layer, "music": music_layer, "events": events_layer}
MIXES = (("speech",), ("music",), ("events",), ("speech", "music"), ("speech", "events"), ("music", "events"),
         ("speech", "music", "events"))


def pretrain_clip(seed: int, index: int, clip_s: float, sr: int) -> tuple[np.ndarray, str]:
    """Pre-training clip ``index``: one to three layers mixed at random levels. ``(audio, content)``."""
    rng, world, n = item_rng(seed, "pretrain", index), worlds()["pretrain"], int(round(clip_s * sr))
    mix, contents = np.zeros(n), []
    for layer in MIXES[int(rng.integers(len(MIXES)))]:
        audio, content = LAYERS[layer](rng, n, sr, world)
        if np.std(audio) > 1e-6:  # a short clip may end before a talker starts; silent layers are left out
            mix += audio / np.std(audio) * 10 ** (rng.uniform(-10, 0) / 20)
            contents.append(content)
    if not contents:  # never silent: events always sound
        mix, content = events_layer(rng, n, sr, world)
        contents.append(content)
    return normalize_rms(mix.astype(np.float32), LEVEL_DB), "; ".join(contents)


def noise_clip(seed: int, split: str, index: int, clip_s: float, sr: int) -> tuple[np.ndarray, str]:
    """Noise clip ``index`` of ``split`` ("train": pre-training world, "test": Nat-HEAR). ``(audio, kind)``."""
    world = worlds()["pretrain" if split == "train" else "task"]
    kinds = sorted(KINDS)
    kind = kinds[index % len(kinds)]  # kinds in turn, so each set covers them evenly
    noise_world = NoiseWorld(voices=world.noise_voices, drum_keys=world.drum_keys)
    audio = make_noise(kind, item_rng(seed, f"noise/{split}", index), int(round(clip_s * sr)), sr, noise_world)
    return normalize_rms(audio, LEVEL_DB), kind


# --------------------------------------------------------------------------------------------
# Real data by path
# --------------------------------------------------------------------------------------------
def _require_dir(path: str | Path, key: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path} (params key {key}) is not a directory; set it to a folder of audio "
                                "files, or to null to build the embedded default")
    return path


def scan_audio(folder: Path, key: str) -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted); raise naming ``key`` if there are none."""
    files = sorted(p for p in _require_dir(folder, key).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder} (params key {key}) holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files


def hash_split(name: str, test_fraction: float) -> str:
    """``"test"`` for a fixed ``test_fraction`` of file names (by CRC32), else ``"train"``."""
    return "test" if zlib.crc32(name.encode()) / 2 ** 32 < test_fraction else "train"


def real_pretrain_manifest(audioset_dir: str | Path) -> pd.DataFrame:
    """The pre-training manifest of a folder of real clips (absolute paths, durations from headers)."""
    files = scan_audio(Path(audioset_dir), "sources.paths.audioset_dir")
    durations = [round(sf.info(str(p)).duration, 3) for p in tqdm(files, desc="reading headers", leave=False)]
    return pd.DataFrame({"file": [str(p.resolve()) for p in files], "duration_s": durations, "content": "audioset"})


def real_noise_manifest(noise_dir: str | Path, test_fraction: float) -> pd.DataFrame:
    """Noise manifest of a folder of real noise (e.g. WHAM!): WHAM!'s own ``tt`` folder is the test
    set and ``tr``/``cv`` the train set; files outside those are split by a hash of their name."""
    root = Path(noise_dir)
    rows = []
    for path in scan_audio(root, "sources.paths.noise_dir"):
        parts = {p.lower() for p in path.relative_to(root).parts[:-1]}
        split = ("test" if parts & {"tt", "test"} else "train" if parts & {"tr", "cv", "train"}
                 else hash_split(path.relative_to(root).as_posix(), test_fraction))
        rows.append({"file": str(path.resolve()), "split": split, "kind": "real"})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------
def _fresh(folder: Path) -> Path:
    """An empty ``folder`` (a previous build's outputs there are removed)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def build_pretrain(cfg: SourcesConfig, out_dir: Path, seed: int, sr: int) -> pd.DataFrame:
    folder = _fresh(out_dir / "pretrain")
    if cfg.paths.audioset_dir:
        table = real_pretrain_manifest(cfg.paths.audioset_dir)
    else:
        rows = []
        for i in tqdm(range(cfg.pretrain_clips), desc="pretrain clips", leave=False):
            audio, content = pretrain_clip(seed, i, cfg.clip_s, sr)
            write_wav(folder / f"{i:05d}.wav", audio, sr)
            rows.append({"file": f"pretrain/{i:05d}.wav", "duration_s": cfg.clip_s, "content": content})
        table = pd.DataFrame(rows, columns=["file", "duration_s", "content"])
    table.to_csv(folder / "manifest.csv", index=False)
    return table


def build_noise(cfg: SourcesConfig, out_dir: Path, seed: int, sr: int) -> pd.DataFrame:
    folder = _fresh(out_dir / "noise")
    if cfg.paths.noise_dir:
        fraction = cfg.noise_test_clips / max(1, cfg.noise_train_clips + cfg.noise_test_clips)
        table = real_noise_manifest(cfg.paths.noise_dir, fraction)
    else:
        rows = []
        jobs = [("train", i) for i in range(cfg.noise_train_clips)]
        jobs += [("test", i) for i in range(cfg.noise_test_clips)]
        for split, i in tqdm(jobs, desc="noise clips", leave=False):
            audio, kind = noise_clip(seed, split, i, cfg.noise_clip_s, sr)
            write_wav(folder / split / f"{kind}-{i:05d}.wav", audio, sr)
            rows.append({"file": f"noise/{split}/{kind}-{i:05d}.wav", "split": split, "kind": kind})
        table = pd.DataFrame(rows, columns=["file", "split", "kind"])
    table.to_csv(folder / "manifest.csv", index=False)
    return table


def link_or_build_tasks(cfg: SourcesConfig, sources_dir: Path, tasks_dir: Path, seed: int, sr: int) -> dict:
    """Build the embedded suite, or check the real HEAR tasks directory; record which in
    ``sources_dir/tasks.json``. Returns ``{task: clips}`` (``None`` counts for real tasks)."""
    if cfg.paths.hear_tasks_dir:
        real = _require_dir(cfg.paths.hear_tasks_dir, "sources.paths.hear_tasks_dir")
        tasks = {p.name: None for p in list_tasks(real)}
        if not tasks:
            raise FileNotFoundError(f"{real} (params key sources.paths.hear_tasks_dir) holds no task folder "
                                    "(<name>/task_metadata.json); point it at HEAR's tasks/ directory")
        record = {"hear_tasks_dir": str(real.resolve()), "tasks_dir": None}
    else:
        tasks = build_suite(cfg, tasks_dir, seed, sr)
        # relative, so that the cached output does not depend on where the project lives
        record = {"hear_tasks_dir": None, "tasks_dir": os.path.relpath(tasks_dir.resolve(), sources_dir.resolve())}
    record["tasks"] = sorted(tasks)
    (sources_dir / "tasks.json").write_text(json.dumps(record, indent=1))
    return tasks


def build(cfg: SourcesConfig, sources_dir: str | Path, tasks_dir: str | Path, seed: int,
          sample_rate_hz: int = 32000) -> dict:
    """Build (or link) the whole corpus; return counts and timings.

    Writes ``sources_dir/pretrain/`` and ``sources_dir/noise/{train,test}/`` with a ``manifest.csv``
    each, and the task suite under ``tasks_dir/<name>/``. With ``cfg.paths`` set, manifests point at
    the real files and the real HEAR tasks directory is recorded in ``sources_dir/tasks.json``.
    """
    sources_dir, tasks_dir = Path(sources_dir), Path(tasks_dir)
    clock = [time.perf_counter()]
    pretrain = build_pretrain(cfg, sources_dir, seed, sample_rate_hz)
    clock.append(time.perf_counter())
    noise = build_noise(cfg, sources_dir, seed, sample_rate_hz)
    clock.append(time.perf_counter())
    tasks = link_or_build_tasks(cfg, sources_dir, tasks_dir, seed, sample_rate_hz)
    clock.append(time.perf_counter())
    summary = {"pretrain_clips": len(pretrain), "noise_train_clips": int((noise["split"] == "train").sum()),
               "noise_test_clips": int((noise["split"] == "test").sum()), "task_clips": tasks,
               "hear_tasks_dir": cfg.paths.hear_tasks_dir,
               "seconds": {f"{part}_s": round(b - a, 2) for part, a, b in zip(("pretrain", "noise", "tasks"),
                                                                               clock, clock[1:])}}
    print(f"sources: {summary['pretrain_clips']} pre-training clips, {summary['noise_train_clips']}+"
          f"{summary['noise_test_clips']} noise clips (train+test), tasks {tasks}, seconds {summary['seconds']}")
    return summary


def run_stage(params: dict, paths) -> dict:
    """The ``sources`` stage: the corpus and the task suite at ``features.sample_rate_hz``."""
    return build(section(params, "sources"), paths.sources, paths.tasks, seed=params["seed"],
                 sample_rate_hz=section(params, "features").sample_rate_hz)
