"""Nat-HEAR from a tiny HEAR-layout suite: layout, labels, determinism, disjoint splits."""
import json

import numpy as np
import pandas as pd
import pytest

from gramlib.nathear import build
from gramlib.scenes import rirbank, rooms
from gramlib.core.audio import write_wav
from gramlib.core.config import NatHearConfig, RoomsConfig
from gramlib.core.tasks import TaskWriter, read_task, validate_task

RATE = 32000
ROOMS = RoomsConfig(train_rooms=1, test_rooms=3, sets_per_room=2, rt60_s=(0.2, 0.5), length_m=(4.0, 5.0),
                    width_m=(4.0, 5.0), height_m=(2.5, 3.0), distance_m=(1.5, 2.0), max_order=3, rir_s=0.3)
CFG = NatHearConfig(loc_clips=6, t60_clips=3)


def tone(rng, seconds=0.25):
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t) * np.hanning(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("nathear")
    rng = np.random.default_rng(0)
    meta = {"embedding_type": "scene", "prediction_type": "multiclass", "split_mode": "trainvaltest",
            "sample_duration": 0.25, "evaluation": ["top1_acc"]}
    writer = TaskWriter(root / "tasks", "words", {**meta, "task_name": "words"}, RATE)
    for i, split in enumerate(["train"] * 4 + ["valid"] * 2 + ["test"] * 2):
        writer.add(split, f"w{i}.wav", tone(rng), "yes" if i % 2 else "no")
    writer.close()
    events = {**meta, "task_name": "clicks", "embedding_type": "event", "prediction_type": "multilabel", "evaluation": ["event_onset_200ms_fms"]}
    writer = TaskWriter(root / "tasks", "clicks", events, RATE)
    writer.add("train", "c0.wav", tone(rng), [{"label": "tone", "start": 10.0, "end": 200.0}])
    writer.add("valid", "c1.wav", tone(rng), [{"label": "tone", "start": 20.0, "end": 210.0}])
    writer.add("test", "c2.wav", tone(rng), [{"label": "tone", "start": 30.0, "end": 220.0}])
    writer.close()
    for i in range(2):
        write_wav(root / "noise" / "test" / f"n{i}.wav", 0.1 * rng.standard_normal(RATE // 2).astype(np.float32))
    rirbank.build_bank(ROOMS, root / "rooms", "test", seed=0)
    summary = build.build_nathear(root / "tasks", root / "rooms", root / "noise", root / "out", CFG, seed=0)
    return root, summary


def test_layout_labels_and_ids(world):
    root, summary = world
    assert set(summary.task) == {"words", "clicks", "words-loc", "words-t60"}  # no "events" task here
    for fmt, channels in (("binaural", 2), ("foa", 4)):
        for name in ("words", "clicks"):
            dry, wet = read_task(root / "tasks" / name), validate_task(root / "out" / fmt / name)
            for split in dry.splits:
                assert wet.labels(split) == dry.labels(split)  # same ids, same labels
            audio = wet.load("train", wet.files("train")[0])
            assert audio.shape == (channels, int(0.25 * RATE)) and np.abs(audio).max() <= 0.99
        items = pd.read_csv(root / "out" / fmt / "words" / "items.csv")
        assert items.room_id.str.startswith("test-").all() and items.snr_db.between(5, 40).all()
        assert "onset" in read_task(root / "out" / fmt / "clicks").metadata["nathear"]["note"]


def test_localization_and_t60_tasks(world):
    root, _ = world
    for fmt in ("binaural", "foa"):
        loc = validate_task(root / "out" / fmt / "words-loc")
        assert loc.metadata["prediction_type"] == "localization"
        assert loc.metadata["evaluation"] == ["median_angular_error_deg", "mean_angular_error_deg"]
        labels = [v[0] for s in loc.splits for v in loc.labels(s).values()]
        assert len(labels) == CFG.loc_clips
        for lab in labels:
            u = np.array([lab["x"], lab["y"], lab["z"]])
            assert np.isclose(np.linalg.norm(u), 1) and 1.5 <= lab["distance_m"] <= 2.0 and lab["rt60_s"] > 0
            az, el = np.radians(lab["azimuth_deg"]), np.radians(lab["elevation_deg"])
            assert np.allclose(u, [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], atol=1e-6)
            assert fmt == "foa" or lab["elevation_deg"] >= -40
        items = pd.read_csv(root / "out" / fmt / "words-loc" / "items.csv")
        per_split = items.groupby("split")
        rooms_of = {s: set(g.room_id) for s, g in per_split}
        clips_of = {s: set(g.source_file) for s, g in per_split}
        assert rooms_of.keys() == {"train", "valid", "test"}
        for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
            assert rooms_of[a].isdisjoint(rooms_of[b]) and clips_of[a].isdisjoint(clips_of[b])
        t60 = validate_task(root / "out" / fmt / "words-t60")
        assert t60.metadata["prediction_type"] == "regression"
        values = [v[0]["rt60_s"] for s in t60.splits for v in t60.labels(s).values()]
        assert len(values) == CFG.t60_clips and all(0.1 < v < 0.7 for v in values)


def test_deterministic(world, tmp_path):
    root, _ = world
    again = build.build_nathear(root / "tasks", root / "rooms", root / "noise", tmp_path, CFG, seed=0)
    assert len(again) == 8
    for rel in ("binaural/words/items.csv", "foa/words-loc/items.csv", "foa/words-loc/train.json"):
        assert (root / "out" / rel).read_text() == (tmp_path / rel).read_text()
    a = read_task(root / "out" / "foa" / "clicks").load("test", "c2.wav")
    assert np.array_equal(a, read_task(tmp_path / "foa" / "clicks").load("test", "c2.wav"))
    assert json.loads((tmp_path / "binaural" / "words-t60" / "task_metadata.json").read_text())["splits"] == \
        ["train", "valid", "test"]


def test_bad_inputs(world, tmp_path):
    root, _ = world
    with pytest.raises(build.NatHearError, match="no test-room RIR bank"):
        build.build_nathear(root / "tasks", tmp_path, root / "noise", tmp_path / "o", CFG, seed=0)
    with pytest.raises(build.NatHearError, match="no test noise clips"):
        build.build_nathear(root / "tasks", root / "rooms", tmp_path, tmp_path / "o", CFG, seed=0)
    with pytest.raises(rooms.RoomError, match="unknown RIR format 'mono'"):
        build.build_nathear(root / "tasks", root / "rooms", root / "noise", tmp_path / "o",
                              NatHearConfig(formats=("mono",)), seed=0)
