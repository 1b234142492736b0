"""The embedded corpus: espeak binding, reproducibility, balance, levels, disjoint worlds, real data."""
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from gramlib.core import sourcefiles
from gramlib.corpus import sources
from gramlib.core.audio import read_wav, rms_db
from gramlib.core.config import DataPaths, SourcesConfig
from gramlib.corpus.espeak import EspeakError, get_espeak
from gramlib.corpus.suite import PITCHES, SPLIT_PATTERN, split_of, voices_of_split
from gramlib.core.tasks import list_tasks, read_task, validate_task
from gramlib.corpus.worlds import LEVEL_DB, PRETRAIN_WORDS, TASK_AUX_WORDS, TASK_WORDS, worlds

TINY = SourcesConfig(pretrain_clips=2, clip_s=1.5, noise_train_clips=8, noise_test_clips=3, noise_clip_s=0.5,
                     task_clips={"words": 10, "pitch": 4, "events": 12, "count": 4, "family": 10, "dcase": 1})


def build_tiny(root: Path, seed: int) -> Path:
    sources.build(TINY, root / "sources", root / "tasks", seed)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("corpus"), seed=0)


def wav_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.wav"))}


# --------------------------------------------------------------------------------------------
# espeak-ng binding
# --------------------------------------------------------------------------------------------
def test_espeak_speaks_a_word():
    engine = get_espeak()
    audio = engine.synth("seven", "en-us+f3", rate_wpm=160, pitch=60)
    assert engine.sample_rate_hz == 22050 and audio.dtype == np.float32
    assert 0.2 < len(audio) / 22050 < 1.5 and rms_db(audio) > -40 and np.abs(audio).max() < 1


def test_espeak_is_a_function_of_its_arguments():
    engine = get_espeak()
    first = engine.synth("hello world", "en-gb-x-rp+m3", pitch=40)
    engine.synth("something else entirely", "en-us+whisper", rate_wpm=300, pitch=90)
    np.testing.assert_array_equal(engine.synth("hello world", "en-gb-x-rp+m3", pitch=40), first)


@pytest.mark.parametrize("voice, message", [("xx-nowhere", "unknown espeak-ng voice 'xx-nowhere'"),
                                            ("en-us+nobody", "variant 'nobody'"),
                                            ("en-us+klatt", "variant 'klatt'")])
def test_espeak_rejects_unknown_voices(voice, message):
    with pytest.raises(EspeakError, match=message):
        get_espeak().synth("hello", voice)


# --------------------------------------------------------------------------------------------
# Reproducibility
# --------------------------------------------------------------------------------------------
def test_same_seed_gives_identical_files_and_another_seed_differs(corpus, tmp_path):
    again = wav_hashes(build_tiny(tmp_path / "again", seed=0))
    reference = wav_hashes(corpus)
    assert again == reference and len(reference) == 2 + 11 + 41
    other = wav_hashes(build_tiny(tmp_path / "other", seed=1))
    assert other.keys() == reference.keys()
    assert not set(other.values()) & set(reference.values())


def test_one_item_rebuilds_alone(corpus):
    audio, content = sources.pretrain_clip(0, 1, TINY.clip_s, 32000)
    stored = read_wav(corpus / "sources" / "pretrain" / "00001.wav")[0]
    np.testing.assert_allclose(stored, audio, atol=1 / 32768)
    assert pd.read_csv(corpus / "sources" / "pretrain" / "manifest.csv")["content"][1] == content


# --------------------------------------------------------------------------------------------
# The built corpus
# --------------------------------------------------------------------------------------------
def test_suite_is_valid_and_complete(corpus):
    names = [p.name for p in list_tasks(corpus / "tasks")]
    assert names == ["count", "dcase", "events", "family", "pitch", "words"]
    for path in list_tasks(corpus / "tasks"):
        validate_task(path)
    pitch = read_task(corpus / "tasks" / "pitch")
    assert pitch.vocabulary == list(PITCHES) and int(pitch.vocabulary[0]) % 12 == 0
    assert [int(p) for p in pitch.vocabulary] == list(range(48, 72))
    events = read_task(corpus / "tasks" / "events")
    assert events.splits == [f"fold0{i}" for i in range(5)] and events.metadata["nfolds"] == 5
    assert len(events.vocabulary) == 12
    dcase = read_task(corpus / "tasks" / "dcase")
    assert dcase.metadata["embedding_type"] == "event"
    (entries,) = dcase.labels("train").values()
    assert len(entries) >= 3 and all(0 <= e["start"] < e["end"] <= 10000 for e in entries)
    assert all(a["end"] <= b["start"] for a, b in zip(entries, entries[1:]))
    record = json.loads((corpus / "sources" / "tasks.json").read_text())
    assert record["hear_tasks_dir"] is None and record["tasks_dir"] == "../tasks"
    assert sourcefiles.tasks_source(corpus / "sources") == (corpus / "tasks").resolve()


def test_no_silent_or_clipped_clips(corpus):
    for path in sorted(corpus.rglob("*.wav")):
        audio, _ = sf.read(path, dtype="float32")
        assert np.abs(audio).max() < 1.0, path
        assert LEVEL_DB - 12 < rms_db(audio) < LEVEL_DB + 0.5, path


def test_class_balance_per_split():
    n_classes, n_items = 12, 300
    for mode, splits in (("trainvaltest", ["train", "valid", "test"]), ("kfold", [f"fold0{i}" for i in range(5)])):
        counts = Counter((split_of(i // n_classes, i % n_classes, mode), i % n_classes) for i in range(n_items))
        for split in splits:
            per_class = [counts[split, c] for c in range(n_classes)]
            assert max(per_class) - min(per_class) <= 1, (split, per_class)
        share = sum(counts[splits[0], c] for c in range(n_classes)) / n_items
        assert share == pytest.approx(SPLIT_PATTERN.count(splits[0]) / 5 if mode == "trainvaltest" else 0.2, abs=0.02)


def test_built_tasks_are_balanced(corpus):
    for name in ("words", "events", "family", "count"):
        task = read_task(corpus / "tasks" / name)
        counts = Counter(task.labels(s)[f][0] for s in task.splits for f in task.files(s))
        assert max(counts.values()) - min(counts.values()) <= 1, (name, counts)


# --------------------------------------------------------------------------------------------
# Disjoint worlds
# --------------------------------------------------------------------------------------------
def test_worlds_are_disjoint():
    pre, task = worlds()["pretrain"], worlds()["task"]
    assert not set(PRETRAIN_WORDS) & set(TASK_WORDS + TASK_AUX_WORDS)
    assert not set(pre.voices) & (set(task.voices) | set(task.noise_voices))
    assert not set(task.voices) & set(task.noise_voices)
    variants = [{v.split("+")[1] for v in w} for w in (pre.voices, task.voices, task.noise_voices)]
    assert not (variants[0] & variants[1]) and not (variants[0] & variants[2]) and not (variants[1] & variants[2])
    assert not set(pre.programs) & set(task.programs) and len(task.programs) == 40
    pre_keys = {k for keys in pre.drum_keys.values() for k in keys}
    assert not pre_keys & {k for keys in task.drum_keys.values() for k in keys}
    splits = [{v.split("+")[1] for v in voices_of_split(s)} for s in ("train", "valid", "test")]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])


def test_noise_sets_are_disjoint_and_distinct(corpus):
    table = pd.read_csv(corpus / "sources" / "noise" / "manifest.csv")
    hashes = {f: hashlib.sha256((corpus / "sources" / f).read_bytes()).hexdigest() for f in table["file"]}
    assert len(set(hashes.values())) == len(table) == 11
    assert set(table["split"]) == {"train", "test"} and table.loc[table["split"] == "train", "kind"].nunique() == 8
    assert not set(table.loc[table["split"] == "train", "file"]) & set(table.loc[table["split"] == "test", "file"])
    assert [Path(f).name for f in sourcefiles.noise_files(corpus / "sources", "test")] == \
        [Path(f).name for f in table.loc[table["split"] == "test", "file"]]


# --------------------------------------------------------------------------------------------
# Real data by path
# --------------------------------------------------------------------------------------------
@pytest.fixture
def real_folder(tmp_path) -> Path:
    root = tmp_path / "real"
    for i, (rate, channels, sub) in enumerate([(48000, 2, "tr"), (16000, 1, "tt"), (44100, 1, "misc")]):
        (root / sub).mkdir(parents=True, exist_ok=True)
        t = np.arange(rate // 2) / rate
        sf.write(root / sub / f"clip{i}.wav", np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * channels, 1), rate)
    return root


def test_real_manifests_and_loading(real_folder):
    table = sources.real_pretrain_manifest(real_folder)
    assert len(table) == 3 and table["duration_s"].tolist() == [0.5, 0.5, 0.5]
    audio = sourcefiles.load_source(table["file"][0], 32000)
    assert audio.shape == (16000,) and audio.dtype == np.float32
    noise = sources.real_noise_manifest(real_folder, test_fraction=0.3).set_index("file")
    assert noise.loc[str(real_folder / "tr" / "clip0.wav"), "split"] == "train"
    assert noise.loc[str(real_folder / "tt" / "clip1.wav"), "split"] == "test"
    assert sources.hash_split("misc/clip2.wav", 0.3) == sources.hash_split("misc/clip2.wav", 0.3)


def test_build_links_real_data(real_folder, tmp_path, corpus):
    paths = DataPaths(audioset_dir=str(real_folder), noise_dir=str(real_folder),
                      hear_tasks_dir=str(corpus / "tasks"))
    cfg = SourcesConfig(task_clips={}, paths=paths)
    summary = sources.build(cfg, tmp_path / "s", tmp_path / "t", seed=0)
    assert summary["pretrain_clips"] == 3 and summary["hear_tasks_dir"] == str(corpus / "tasks")
    assert [Path(f) for f in sourcefiles.pretrain_files(tmp_path / "s")] == sorted(real_folder.rglob("*.wav"))
    assert not list((tmp_path / "s").rglob("*.wav")) and not (tmp_path / "t").exists()
    assert sourcefiles.tasks_source(tmp_path / "s") == (corpus / "tasks").resolve()


@pytest.mark.parametrize("key", ["audioset_dir", "noise_dir", "hear_tasks_dir"])
def test_missing_real_directory_names_path_and_key(tmp_path, key):
    cfg = SourcesConfig(pretrain_clips=0, noise_train_clips=0, noise_test_clips=0, task_clips={},
                        paths=DataPaths(**{key: str(tmp_path / "absent")}))
    with pytest.raises(FileNotFoundError, match=rf"absent \(params key sources\.paths\.{key}\)"):
        sources.build(cfg, tmp_path / "s", tmp_path / "t", seed=0)
