"""Readers of the DCASE SELD layouts, the synthetic set's round trip, and the FOA convention check."""
import numpy as np
import pytest

from gramlib.core.audio import write_wav
from gramlib.core.config import SeldConfig
from gramlib.seld.data import read_dataset
from gramlib.seld.labels import SeldDataError, SeldLabels, event_class_name, events_to_labels, read_frame_csv, \
    write_frame_csv
from gramlib.seld.foa import check_foa_convention
from gramlib.seld.synth import ShoeboxFoa, make_synthetic_dataset, recording_name, render_recording
from gramlib.seld.sources import source_clips

SMALL = SeldConfig(recordings=4, recording_s=3.0, classes=5, max_overlap=2, moving_prob=0.5)


def silent_foa(path, seconds, rate):
    write_wav(path, np.zeros((4, int(seconds * rate)), np.float32), rate)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return make_synthetic_dataset(out, None, None, SMALL, seed=7, progress=False)


def test_synthetic_round_trip_is_exact_and_deterministic(synth_dir):
    ds = read_dataset(synth_dir, "synthetic")
    assert len(ds.role("train")) == 3 and len(ds.role("test")) == 1
    assert ds.classes == tuple(f"synth:{k:02d}" for k in range(5))
    for i in range(SMALL.recordings):
        folder, stem = recording_name(i, SMALL.recordings)
        rec = next(r for r in ds.recordings if r.name == stem)
        assert rec.sample_rate_hz == 24000 and rec.n_samples == 72000 and rec.labels.n_frames == 30
        role = "test" if folder.startswith("dev-test") else "train"
        names, clips = source_clips(None, SMALL.classes, role, SMALL.synth_sample_rate_hz, 7)
        _, labels, _ = render_recording(SMALL, clips, names, 7, i, 24000)  # rebuilt alone from (seed, index)
        assert len(labels) > 0 and rec.labels.equals(labels)
    for r in ds.recordings:  # (frame, class, track) unique within a recording
        keys = r.labels.frame * 100 + r.labels.class_idx * 10 + r.labels.track
        assert len(np.unique(keys)) == len(keys)


def test_frame_csv_round_trip_with_distance(tmp_path):
    labels = SeldLabels.from_rows([(3, 2, 0, -170, 12, 1.37), (3, 1, 1, 90, -40, 2.0), (0, 0, 0, 0, 0, 1.05)], 10)
    back = read_frame_csv(write_frame_csv(tmp_path / "a.csv", labels), 10)
    assert back.equals(labels)
    assert back.rows()[0] == (0, 0, 0, 0.0, 0.0, 1.05)
    assert (tmp_path / "a.csv").read_text().splitlines()[1] == "3,1,1,90,-40,200"


def test_events_to_frames_and_tracks():
    ev = [{"class": "knock", "start_s": 0.05, "end_s": 0.31, "azimuth_deg": 10, "elevation_deg": 0, "distance_m": 1},
          {"class": "knock", "start_s": 0.2, "end_s": 0.4, "azimuth_deg": -20, "elevation_deg": 10, "distance_m": 2},
          {"class": "phone", "start_s": 0.5, "end_s": 0.6, "azimuth_deg": 30, "elevation_deg": 0, "distance_m": 1}]
    lab = events_to_labels(ev, {"knock": 0, "phone": 1}, 10)
    # first event: frames 0-3 ([0.05, 0.31) overlaps 0-0.1, ..., 0.3-0.4) on track 0; the second
    # overlaps it -> track 1, frames 2-3; the third starts when both are over -> track 0, frame 5
    assert [(f, c, t) for f, c, t, *_ in lab.rows()] == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 0, 1), (3, 0, 0),
                                                         (3, 0, 1), (5, 1, 0)]


def test_event_class_names():
    assert event_class_name("clearthroat115.wav") == "clearthroat"
    assert event_class_name("keysDrop031.wav") == "keysDrop"
    assert event_class_name("100032-3-0-0.wav") == "3"  # UrbanSound8K (TUT-2018 REAL)


def write_event_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("sound_event_recording,start_time,end_time,ele,azi,dist\n"
                    + "".join(",".join(map(str, r)) + "\n" for r in rows))


def test_tau2019_layout(tmp_path):
    for fold in (1, 2):
        stem = f"split{fold}_ir0_ov1_{fold}"
        silent_foa(tmp_path / "foa_dev" / f"{stem}.wav", 1.0, 48000)
        write_event_csv(tmp_path / "metadata_dev" / f"{stem}.csv",
                        [("cough012.wav", 0.0, 0.25, 10, -30, 2), ("speech001.wav", 0.5, 0.7, 0, 170, 1)])
    ds = read_dataset(tmp_path, "tau2019")
    assert ds.classes == ("cough", "speech")
    assert [r.role for r in ds.recordings] == ["test", "train"]  # fold 1 is the default test fold
    assert read_dataset(tmp_path, "tau2019", test_fold=2).recordings[1].role == "test"
    lab = ds.recordings[0].labels
    assert lab.n_frames == 10 and lab.rows()[0] == (0, 0, 0, -30.0, 10.0, 2.0)  # azi/ele columns by name
    mirrored = read_dataset(tmp_path, "tau2019", azimuth_sign=-1).recordings[0].labels
    assert mirrored.azimuth_deg[0] == 30.0


def test_tut2018_layout_and_subsets(tmp_path):
    for ov in (1, 2):
        for name in ("train_0_desc_30_100", "test_0_desc_30_100"):
            silent_foa(tmp_path / f"wav_ov{ov}_split1_30db" / f"{name}.wav", 0.5, 44100)
            write_event_csv(tmp_path / f"desc_ov{ov}_split1" / f"{name}.csv",
                            [("100032-3-0-0.wav", 0.1, 0.3, 0, 40, 1)])
    with pytest.raises(SeldDataError, match="ov1_split1"):
        read_dataset(tmp_path, "tut2018")  # two subsets: which one?
    ds = read_dataset(tmp_path, "tut2018", subset="ov2_split1")
    assert ds.classes == ("3",) and {r.role for r in ds.recordings} == {"train", "test"}
    assert ds.recordings[0].labels.rows()[0][:4] == (1, 0, 0, 40.0)


def test_dcase2020_flat_layout(tmp_path):
    for fold in (1, 2, 3):
        stem = f"fold{fold}_room1_mix001_ov1"
        silent_foa(tmp_path / "foa_dev" / f"{stem}.wav", 0.5, 24000)
        (tmp_path / "metadata_dev").mkdir(exist_ok=True)
        (tmp_path / "metadata_dev" / f"{stem}.csv").write_text("0,13,0,-50,10\n1,13,0,-48,10\n")
    ds = read_dataset(tmp_path, "dcase2020")
    assert len(ds.classes) == 14 and ds.classes[13] == "piano"  # 2020 has 14 classes
    assert [r.role for r in ds.recordings] == ["test", "train", "train"]
    assert np.isnan(ds.recordings[0].labels.distance_m).all()


def test_missing_dataset_names_the_params_key(tmp_path):
    with pytest.raises(SeldDataError, match="seld.dataset_dir"):
        read_dataset(tmp_path / "nope", "starss23")
    with pytest.raises(SeldDataError, match="seld.dataset_format"):
        read_dataset(tmp_path, "starss2099")


def test_wrong_channel_count_is_explained(tmp_path):
    write_wav(tmp_path / "foa_dev" / "dev-test-x" / "a.wav", np.zeros((2, 2400), np.float32), 24000)
    (tmp_path / "metadata_dev" / "dev-test-x").mkdir(parents=True)
    (tmp_path / "metadata_dev" / "dev-test-x" / "a.csv").write_text("")
    with pytest.raises(SeldDataError, match="4"):
        read_dataset(tmp_path, "starss23")


def test_convention_check_detects_fuma_and_mirrored_azimuth():
    rate, rng = 16000, np.random.default_rng(0)
    room = ShoeboxFoa((6.0, 5.0, 3.0), (3.0, 2.5, 1.5), beta=0.3, sample_rate_hz=rate, rir_s=0.1)
    audio, rows = np.zeros((4, 4 * rate)), []
    for k, az in enumerate((30, 120, -100, -20)):  # one source a second
        u = np.array([np.cos(np.deg2rad(az)), np.sin(np.deg2rad(az)), 0.0])
        rir = room.rir(np.asarray(room.mic_m) + 1.5 * u)
        sig = rng.standard_normal(rate)
        audio[:, k * rate:(k + 1) * rate] += np.stack([np.convolve(sig, h)[:rate] for h in rir])
        rows += [(f, 0, 0, az, 0) for f in range(10 * k + 1, 10 * k + 9)]
    labels = SeldLabels.from_rows(rows, 40)
    good = check_foa_convention(audio, rate, labels, warn=False)
    assert good["ok"] and good["best"] == "ambix" and good["median_error_deg"]["ambix"] < 10
    with pytest.warns(UserWarning, match="FuMa"):
        fuma = check_foa_convention(audio[[0, 3, 1, 2]], rate, labels)  # stored W, X, Y, Z
    assert fuma["best"] == "fuma" and not fuma["ok"]
    mirrored = SeldLabels.from_rows([(f, c, t, -a, e) for f, c, t, a, e, _ in labels.rows()], 40)
    assert check_foa_convention(audio, rate, mirrored, warn=False)["best"] == "ambix, azimuth clockwise"


def test_sources_from_a_hear_task_suite(tmp_path):
    from gramlib.core.tasks import write_task

    rate = 32000
    tone = lambda f: (0.1 * np.sin(2 * np.pi * f * np.arange(rate // 2) / rate)).astype(np.float32)[None]
    meta = {"embedding_type": "scene", "prediction_type": "multiclass", "sample_duration": 0.5,
            "evaluation": ["top1_acc"]}
    write_task(tmp_path, "events", {**meta, "task_name": "events", "split_mode": "presplit_kfold", "nfolds": 2},
               {"fold00": {"a.wav": (tone(300), "dog"), "b.wav": (tone(500), "bell")},
                "fold01": {"c.wav": (tone(310), "dog")}})
    write_task(tmp_path, "words", {**meta, "task_name": "words", "split_mode": "trainvaltest"},
               {"train": {f"w{i}.wav": (tone(200 + 50 * i), w) for i, w in enumerate(("go", "no", "up"))},
                "valid": {}, "test": {"t.wav": (tone(900), "up")}})
    names, train = source_clips(tmp_path, 4, "train", 24000, 0)
    assert names == ["events:bell", "events:dog", "words:go", "words:up"]  # round-robin, spread over labels
    assert len(train["events:dog"]) == 1 and len(train["events:dog"][0]) == 12000  # resampled to 24 kHz
    _, test = source_clips(tmp_path, 4, "test", 24000, 0)
    assert len(test["events:dog"]) == 1 and np.allclose(test["events:bell"][0], train["events:bell"][0])  # borrowed
    with pytest.raises(ValueError, match="seld.classes"):
        source_clips(tmp_path, 9, "train", 24000, 0)
