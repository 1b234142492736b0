"""The constant predictor's rows (gramlib.figures.chance), on tasks whose answer is known by construction."""
import numpy as np
import pytest

from gramlib.core.tasks import write_task
from gramlib.figures import chance

SR = 8000
CLIP = np.zeros((1, SR // 4), np.float32)


def meta(pred, metric, **over):
    return {"task_name": "toy", "embedding_type": "scene", "prediction_type": pred, "split_mode": "trainvaltest",
            "sample_duration": 0.25, "evaluation": [metric], **over}


def test_majority_class_fitted_on_train_and_valid_only(tmp_path):
    labels = {"train": ["a"] * 6 + ["b"] * 2, "valid": ["a"] * 2, "test": ["b"] * 3 + ["a"]}  # test: b majority
    items = {s: {f"{s}{i}.wav": (CLIP, lab) for i, lab in enumerate(labs)} for s, labs in labels.items()}
    entry = chance.constant_task(write_task(tmp_path, "toy", meta("multiclass", "top1_acc"), items, SR), n_boot=200)
    assert entry["top1_acc"] == 0.25 and entry["n_test"] == 4  # predicts "a" (train), right on 1 of 4
    assert entry["predictions"]["pred"] == [0, 0, 0, 0] and entry["top1_acc_ci95_low"] <= 0.25 <= entry["top1_acc_ci95_high"]


def test_median_training_t60_and_its_absolute_error(tmp_path):
    t60 = {"train": [0.2, 0.3, 0.9], "valid": [0.4, 0.5], "test": [0.1, 0.4, 0.7]}  # train+valid median 0.4
    items = {s: {f"{s}{i}.wav": (CLIP, {"rt60_s": v}) for i, v in enumerate(vals)} for s, vals in t60.items()}
    entry = chance.constant_task(write_task(tmp_path, "t60", meta("regression", "median_abs_error_s"), items, SR),
                                 n_boot=100)
    assert entry["predictions"]["pred"] == pytest.approx([0.4] * 3)
    assert entry["median_abs_error_s"] == pytest.approx(0.3)  # |0.1-0.4|, 0, |0.7-0.4|


def test_best_constant_direction_beats_the_mean_when_labels_cluster(tmp_path):
    rng = np.random.default_rng(0)
    def around(az_deg, n):  # directions near azimuth az on the horizon
        a = np.radians(az_deg + rng.normal(0, 3, n))
        return [{"x": float(np.cos(x)), "y": float(np.sin(x)), "z": 0.0} for x in a]
    train = around(0, 12) + around(180, 5)  # most labels near the front, some behind: the mean is pulled off
    items = {"train": {f"tr{i}.wav": (CLIP, d) for i, d in enumerate(train)},
             "valid": {f"va{i}.wav": (CLIP, d) for i, d in enumerate(around(0, 3))},
             "test": {f"te{i}.wav": (CLIP, d) for i, d in enumerate(around(0, 6))}}
    entry = chance.constant_task(write_task(tmp_path, "loc", meta("localization", "median_angular_error_deg"), items, SR),
                                 n_boot=100)
    direction = np.array(entry["predictions"]["pred"][0])
    assert np.degrees(np.arccos(np.clip(direction[0], -1, 1))) < 5  # it points to the front cluster
    assert entry["median_angular_error_deg"] < 8


def test_kfold_refits_per_fold(tmp_path):
    folds = {f"fold{k:02d}": {f"f{k}{i}.wav": (CLIP, "a" if k != 1 or i == 0 else "b") for i in range(4)}
             for k in range(3)}
    entry = chance.constant_task(write_task(tmp_path, "k", meta("multiclass", "top1_acc", split_mode="new_split_kfold", nfolds=3),
                                            folds, SR), n_boot=100)
    assert entry["n_folds"] == 3 and entry["n_test"] == 12
    assert entry["top1_acc"] == pytest.approx(np.mean([1.0, 0.25, 1.0]))  # fold01's items are mostly "b"


def test_event_task_scores_an_empty_prediction(tmp_path):
    m = {"task_name": "ev", "embedding_type": "event", "prediction_type": "multilabel", "split_mode": "trainvaltest",
         "sample_duration": 0.25, "evaluation": ["event_onset_200ms_fms"]}
    ev = [{"label": "x", "start": 0.0, "end": 100.0}]
    items = {s: {f"{s}.wav": (CLIP, ev)} for s in ("train", "valid", "test")}
    entry = chance.constant_task(write_task(tmp_path, "ev", m, items, SR), n_boot=10)
    assert entry["event_onset_200ms_fms"] == 0.0 and "predictions" not in entry


def test_sphere_directions_are_unit_and_spread():
    d = chance.sphere_directions(1000)
    assert np.allclose(np.linalg.norm(d, axis=1), 1) and abs(d.mean(axis=0)).max() < 0.01
