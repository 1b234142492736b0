"""HEAR task layout: round trips, the validator's errors, and a real HEAR 2021 folder read unchanged."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gramlib.core.tasks import TaskError, TaskWriter, list_tasks, read_task, tasks_table, validate_task, write_task

SR = 32000


def tone(freq_hz: float, seconds: float = 0.25, channels: int = 1, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return np.repeat((0.3 * np.sin(2 * np.pi * freq_hz * t))[None], channels, axis=0).astype(np.float32)


def scene_meta(**over) -> dict:
    meta = {"task_name": "toy", "embedding_type": "scene", "prediction_type": "multiclass",
            "split_mode": "trainvaltest", "sample_duration": 0.25, "evaluation": ["top1_acc"]}
    return {**meta, **over}


@pytest.fixture
def toy(tmp_path) -> Path:
    """A valid 3-split multiclass task with 2 clips per split."""
    items = {split: {f"{split}{i}.wav": (tone(220 * (i + 1)), ["low", "high"][i]) for i in range(2)}
             for split in ("train", "valid", "test")}
    return write_task(tmp_path, "toy", scene_meta(), items)


def test_round_trip(toy):
    task = validate_task(toy)
    assert task.name == "toy" and task.splits == ["train", "valid", "test"]
    assert task.vocabulary == ["high", "low"]
    assert task.files("train") == ["train0.wav", "train1.wav"]
    assert task.labels("valid") == {"valid0.wav": ["low"], "valid1.wav": ["high"]}
    audio = task.load("test", "test1.wav")
    assert audio.shape == (1, 8000) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, tone(440), atol=1e-4)
    assert task.audio_path("test", "test1.wav") == toy / "32000" / "test" / "test1.wav"
    meta = json.loads((toy / "task_metadata.json").read_text())
    for key in ("task_name", "version", "embedding_type", "prediction_type", "split_mode", "splits",
                "sample_duration", "evaluation", "sample_rates", "mode", "default_mode", "download_urls"):
        assert key in meta
    assert meta["sample_rates"] == [SR]
    assert (toy / "labelvocabulary.csv").read_text() == "idx,label\n0,high\n1,low\n"


def test_numeric_labels_sort_numerically(tmp_path):
    writer = TaskWriter(tmp_path, "pitchy", scene_meta(split_mode="presplit_kfold", nfolds=2))
    for i, label in enumerate([60, 9, 100, 59]):
        writer.add(f"fold0{i % 2}", f"c{i}.wav", tone(200), label)
    task = read_task(writer.close())
    assert task.splits == ["fold00", "fold01"]
    assert task.vocabulary == ["9", "59", "60", "100"]


def test_explicit_vocabulary_keeps_its_order_and_rejects_others(tmp_path):
    writer = TaskWriter(tmp_path, "v", scene_meta(), vocabulary=["48", "49", "50"])
    writer.add("train", "a.wav", tone(100), 49)
    assert read_task(writer.close()).vocabulary == ["48", "49", "50"]
    writer = TaskWriter(tmp_path, "w", scene_meta(), vocabulary=["48"])
    writer.add("train", "a.wav", tone(100), 60)
    with pytest.raises(TaskError, match="60"):
        writer.close()


def test_writer_rejects_wrong_length_and_channel_change(tmp_path):
    writer = TaskWriter(tmp_path, "t", scene_meta())
    with pytest.raises(TaskError, match="bad.wav.*8000"):
        writer.add("train", "bad.wav", tone(100, seconds=0.2), "a")
    writer.add("train", "mono.wav", tone(100), "a")
    with pytest.raises(TaskError, match="stereo.wav.*2 channel"):
        writer.add("train", "stereo.wav", tone(100, channels=2), "a")


def test_event_localization_and_regression_tasks(tmp_path):
    events = {"train": {"e.wav": (tone(300), [{"label": "dog", "start": 10.0, "end": 120.5}])}}
    task = validate_task(write_task(tmp_path, "ev", scene_meta(embedding_type="event", prediction_type="multilabel",
                                                                splits=["train"]), events))
    assert task.vocabulary == ["dog"] and task.labels("train")["e.wav"][0]["end"] == 120.5
    direction = {"azimuth_deg": 90.0, "elevation_deg": 0.0, "x": 0.0, "y": 1.0, "z": 0.0, "distance_m": 2.0}
    loc = {"train": {"l.wav": (tone(300, channels=4), direction)}}
    task = validate_task(write_task(tmp_path, "loc", scene_meta(prediction_type="localization", splits=["train"],
                                                                 evaluation=["median_angular_error_deg"]), loc))
    assert task.vocabulary == [] and task.labels("train")["l.wav"] == [direction]
    assert (tmp_path / "loc" / "labelvocabulary.csv").read_text() == "idx,label\n"
    assert task.load("train", "l.wav").shape == (4, 8000)
    t60 = {"train": {"r.wav": (tone(300, channels=2), {"rt60_s": 0.41})}}
    task = validate_task(write_task(tmp_path, "t60", scene_meta(prediction_type="regression", splits=["train"],
                                                                 evaluation=["median_abs_error_s"]), t60))
    assert task.labels("train")["r.wav"] == [{"rt60_s": 0.41}]


def test_list_tasks_and_table(tmp_path, toy):
    (tmp_path / "not-a-task").mkdir()
    assert list_tasks(tmp_path) == [toy]
    table = tasks_table(tmp_path)
    assert table.loc[0, "task"] == "toy" and table.loc[0, "classes"] == 2 and table.loc[0, "clips"] == 6
    assert table.loc[0, "clips_per_split"] == "train:2 valid:2 test:2" and table.loc[0, "clip_s"] == 0.25
    with pytest.raises(TaskError, match="nowhere"):
        list_tasks(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------
# The validator names the file and the problem
# --------------------------------------------------------------------------------------------
def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_missing_metadata(toy):
    (toy / "task_metadata.json").unlink()
    with pytest.raises(TaskError, match=r"task_metadata\.json: file missing"):
        validate_task(toy)


def test_missing_metadata_keys(toy):
    edit_json(toy / "task_metadata.json", lambda m: m.pop("prediction_type"))
    with pytest.raises(TaskError, match=r"task_metadata\.json: missing key.*prediction_type"):
        validate_task(toy)


def test_missing_split_file(toy):
    (toy / "valid.json").unlink()
    with pytest.raises(TaskError, match=r"valid\.json: file missing"):
        validate_task(toy)


def test_missing_wav(toy):
    (toy / "32000" / "train" / "train1.wav").unlink()
    with pytest.raises(TaskError, match=r"train1\.wav: audio file missing"):
        validate_task(toy)


def test_corrupt_wav(toy):
    (toy / "32000" / "valid" / "valid0.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(TaskError, match=r"valid0\.wav: cannot read audio"):
        validate_task(toy)


def test_wrong_sample_rate(toy):
    sf.write(toy / "32000" / "test" / "test0.wav", np.zeros(4000), 16000)
    with pytest.raises(TaskError, match=r"test0\.wav: sample rate 16000 Hz, expected 32000"):
        validate_task(toy)


def test_wrong_length(toy):
    sf.write(toy / "32000" / "test" / "test1.wav", np.zeros(7999), SR)
    with pytest.raises(TaskError, match=r"test1\.wav: 7999 samples, expected 8000"):
        validate_task(toy)


def test_channel_count_differs(toy):
    sf.write(toy / "32000" / "valid" / "valid1.wav", np.zeros((8000, 2)), SR)
    with pytest.raises(TaskError, match=r"valid1\.wav: 2 channel"):
        validate_task(toy)


def test_label_outside_vocabulary(toy):
    edit_json(toy / "train.json", lambda d: d.update({"train0.wav": ["middle"]}))
    with pytest.raises(TaskError, match=r"train\.json: train0\.wav: label 'middle' is not in"):
        validate_task(toy)


def test_event_label_without_times(tmp_path):
    items = {"train": {"e.wav": (tone(300), [{"label": "dog", "start": 0.0, "end": 50.0}])}}
    path = write_task(tmp_path, "ev", scene_meta(embedding_type="event", prediction_type="multilabel",
                                                 splits=["train"]), items)
    edit_json(path / "train.json", lambda d: d["e.wav"][0].pop("end"))
    with pytest.raises(TaskError, match=r"train\.json: e\.wav: event label .* lacks 'start'/'end'"):
        validate_task(path)


def test_localization_label_missing_keys(tmp_path):
    label = {"azimuth_deg": 10.0, "elevation_deg": 0.0, "x": 1.0, "y": 0.0, "z": 0.0}
    path = write_task(tmp_path, "loc", scene_meta(prediction_type="localization", splits=["train"]),
                      {"train": {"l.wav": (tone(300, channels=2), label)}})
    edit_json(path / "train.json", lambda d: [d["l.wav"][0].pop(k) for k in ("elevation_deg", "z")])
    with pytest.raises(TaskError, match=r"l\.wav: localization label .* lacks \['elevation_deg', 'z'\]"):
        validate_task(path)


def test_check_audio_false_skips_wavs(toy):
    (toy / "32000" / "train" / "train0.wav").unlink()
    validate_task(toy, check_audio=False)


# --------------------------------------------------------------------------------------------
# A real HEAR 2021 task folder, in its exact layout
# --------------------------------------------------------------------------------------------
@pytest.fixture
def hear_tones3(tmp_path) -> Path:
    """tones3-v0.0.1-full as hear-preprocess writes it: hashed names, several rate folders."""
    path = tmp_path / "tasks" / "tones3-v0.0.1-full"
    meta = {"task_name": "tones3", "version": "v0.0.1", "embedding_type": "scene",
            "prediction_type": "multiclass", "split_mode": "trainvaltest", "sample_duration": 1.0,
            "evaluation": ["top1_acc", "mAP"], "download_urls": [{"split": "train", "url": "https://example/x"}],
            "default_mode": "full", "mode": "full", "sample_rates": [16000, 32000],
            "splits": ["train", "valid", "test"]}
    path.mkdir(parents=True)
    (path / "task_metadata.json").write_text(json.dumps(meta))
    with (path / "labelvocabulary.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["idx", "label"], [0, "noise"], [1, "sine"], [2, "square"]])
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("valid", 1), ("test", 2)):
        labels = {}
        for i in range(n):
            name = f"{rng.integers(1 << 60):x}.wav"
            labels[name] = [["noise", "sine", "square"][i % 3]]
            for rate in (16000, 32000):
                (path / str(rate) / split).mkdir(parents=True, exist_ok=True)
                sf.write(path / str(rate) / split / name, 0.1 * rng.standard_normal(rate), rate)
        (path / f"{split}.json").write_text(json.dumps(labels))
    return path


def test_real_hear_layout_reads_unchanged(hear_tones3):
    assert list_tasks(hear_tones3.parent) == [hear_tones3]
    for rate in (32000, 16000):
        task = validate_task(hear_tones3, sample_rate_hz=rate)
        assert task.name == "tones3-v0.0.1-full" and task.metadata["task_name"] == "tones3"
        assert task.vocabulary == ["noise", "sine", "square"]
        first = task.files("train")[0]
        assert task.load("train", first).shape == (1, rate)
        assert task.audio_path("train", first).parent == hear_tones3 / str(rate) / "train"
