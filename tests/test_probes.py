"""The HEAR probe protocol on toy embeddings (small grids and epoch budgets: each test well under 2 s)."""
import numpy as np
import pytest

from gramlib.eval import probe_data, probes
from gramlib.core.config import EvaluateConfig

FAST = EvaluateConfig(probe_grid="smoke", max_epochs=30, patience_checks=4, check_every=3)
TVT = ("train", "train", "train", "valid", "test")


def scene_task(rng, n=100, k=3, dim=16, noise=0.3, folds=None):
    """Linearly separable classes (centroids + small noise); k-fold when ``folds`` is given."""
    centroids = 3 * rng.normal(size=(k, dim))
    splits = [f"fold{i:02d}" for i in range(folds)] if folds else ["train", "valid", "test"]
    emb, lab = {s: {} for s in splits}, {s: {} for s in splits}
    for i in range(n):
        s = splits[(i // k) % folds] if folds else TVT[i % 5]
        emb[s][f"c{i:03d}.wav"] = (centroids[i % k] + noise * rng.normal(size=dim)).astype(np.float32)
        lab[s][f"c{i:03d}.wav"] = [f"class{i % k}"]
    meta = {"task_name": "toy", "embedding_type": "scene", "prediction_type": "multiclass", "splits": splits,
            "split_mode": "new_split_kfold" if folds else "trainvaltest", "evaluation": ["top1_acc", "mAP"]}
    return emb, meta, lab, [f"class{c}" for c in range(k)]


def test_grids_follow_heareval_order():
    full = probes.probe_grid("full")
    assert len(full) == 8 and len(probes.probe_grid("reduced")) == 3 and len(probes.probe_grid("smoke")) == 1
    assert probes.probe_grid("cpu") == probes.probe_grid("reduced")[:1]
    # heareval 2021.1.3 trial order (sklearn ParameterGrid shuffled by random.seed(42)), first three
    assert [(p["hidden_layers"], p["initialization"], p["lr"]) for p in full[:3]] == [
        (1, "xavier_normal", 1e-4), (2, "xavier_uniform", 1e-3), (1, "xavier_normal", 1e-3)]
    assert all(p["hidden_dim"] == 1024 and p["dropout"] == 0.1 and p["batch_size"] == 1024 for p in full)
    with pytest.raises(ValueError, match="unknown probe grid"):
        probes.probe_grid("huge")


def test_kfold_rotation_matches_heareval():
    meta = {"split_mode": "presplit_kfold", "splits": ["fold02", "fold00", "fold03", "fold01"]}
    splits = probes.data_splits(meta)
    assert [s["test"] for s in splits] == [["fold00"], ["fold01"], ["fold02"], ["fold03"]]
    assert [s["valid"] for s in splits] == [["fold01"], ["fold02"], ["fold03"], ["fold00"]]
    assert splits[3]["train"] == ["fold01", "fold02"] and splits[0]["train"] == ["fold02", "fold03"]
    with pytest.raises(ValueError, match=">= 3 distinct folds"):
        probes.data_splits({"split_mode": "new_split_kfold", "splits": ["fold00", "fold01"]})


def test_separable_task_reaches_full_accuracy_and_is_deterministic(rng):
    emb, meta, lab, vocab = scene_task(rng)
    first = probes.evaluate_task(emb, meta, lab, vocab, FAST)
    assert first["top1_acc"] == 1.0 and first["n_test"] == 20 and first["n_folds"] == 1
    again = probes.evaluate_task(emb, meta, lab, vocab, FAST)
    first.pop("seconds"), again.pop("seconds")
    assert again == first
    other = probes.evaluate_task(emb, meta, lab, vocab, FAST, seed=7)
    assert other["folds"][0]["valid_score"] == 1.0


def test_kfold_reports_mean_std_and_every_fold(rng):
    emb, meta, lab, vocab = scene_task(rng, n=60, folds=3)
    out = probes.evaluate_task(emb, meta, lab, vocab, FAST)
    assert [f["test"] for f in out["folds"]] == [["fold00"], ["fold01"], ["fold02"]]
    assert out["n_test"] == 60 and out["top1_acc"] > 0.95 and out["top1_acc_std"] >= 0.0
    assert out["top1_acc"] == pytest.approx(np.mean([f["scores"]["top1_acc"] for f in out["folds"]]))


def test_classification_keeps_per_item_predictions_that_give_its_accuracy(rng):
    """Every test item's predicted class is kept (for paired tests): per fold, their accuracy is the score."""
    emb, meta, lab, vocab = scene_task(rng, n=60, folds=3, noise=6.0)  # overlapping classes: some items wrong
    out = probes.evaluate_task(emb, meta, lab, vocab, FAST)
    for fold in out["folds"]:
        pred = fold["predictions"]
        assert pred["files"] == sorted(pred["files"]) and len(pred["files"]) == fold["n_test"]
        assert pred["true"] == [vocab.index(lab[fold["test"][0]][f][0]) for f in pred["files"]]
        correct = np.mean(np.array(pred["true"]) == np.array(pred["pred"]))
        assert correct == pytest.approx(fold["scores"]["top1_acc"])
    assert 0.3 < out["top1_acc"] < 1.0  # a real mix of right and wrong items, so the check above can fail


def test_localization_regression_reaches_small_angular_error(rng):
    mix = rng.normal(size=(3, 24))
    emb, lab = {s: {} for s in ("train", "valid", "test")}, {s: {} for s in ("train", "valid", "test")}
    for i in range(200):
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        emb[TVT[i % 5]][f"{i}.wav"] = (v @ mix + 0.02 * rng.normal(size=24)).astype(np.float32)
        lab[TVT[i % 5]][f"{i}.wav"] = [{"x": v[0], "y": v[1], "z": v[2]}]
    meta = {"embedding_type": "scene", "prediction_type": "localization", "split_mode": "trainvaltest",
            "splits": ["train", "valid", "test"], "evaluation": ["median_angular_error_deg", "mean_angular_error_deg"]}
    cfg = EvaluateConfig(probe_grid="smoke", max_epochs=150, patience_checks=50, check_every=3)
    out = probes.evaluate_task(emb, meta, lab, [], cfg)
    assert out["median_angular_error_deg"] < 10.0  # chance is 90


def test_event_postprocessing_by_hand():
    ts = np.arange(12) * 50.0  # 50-ms hop: the 250-ms median filter spans 5 frames
    probs = np.zeros((12, 2))
    probs[2:9, 0] = 0.9  # a: frames 2-8 (100-400 ms)
    probs[5, 0] = 0.1  # a one-frame dropout, filled by the median filter
    probs[10, 1] = 0.8  # b: one isolated frame, removed by the filter
    events = probe_data.frames_to_events(probs, ts, ["a", "b"], median_filter_ms=250, min_duration=125)
    assert events == [{"label": "a", "start": 100.0, "end": 400.0}]
    raw = probe_data.frames_to_events(probs, ts, ["a", "b"], median_filter_ms=0, min_duration=0)
    assert raw == [{"label": "a", "start": 100.0, "end": 200.0}, {"label": "a", "start": 300.0, "end": 400.0},
                   {"label": "b", "start": 500.0, "end": 500.0}]
    assert probe_data.frames_to_events(probs, ts, ["a", "b"], median_filter_ms=0, min_duration=150) == []


def test_event_task_end_to_end(rng):
    vocab, mix = ["a", "b"], 2 * rng.normal(size=(2, 8))
    splits = ("train", "valid", "test")
    emb, lab, stamps = ({s: {} for s in splits} for _ in range(3))
    ts = np.arange(40) * 50.0 + 25.0
    for i in range(20):
        s, events = TVT[i % 5], [{"label": "a", "start": 300.0, "end": 900.0}, {"label": "b", "start": 1200.0, "end": 1800.0}]
        active = np.stack([(ts >= e["start"]) & (ts <= e["end"]) for e in events], axis=1)
        emb[s][f"{i}.wav"] = (active @ mix + 0.2 * rng.normal(size=(40, 8))).astype(np.float32)
        lab[s][f"{i}.wav"], stamps[s][f"{i}.wav"] = events, ts
    meta = {"embedding_type": "event", "prediction_type": "multilabel", "split_mode": "trainvaltest",
            "splits": list(splits), "evaluation": ["event_onset_200ms_fms", "segment_1s_er"]}
    out = probes.evaluate_task(emb, meta, lab, vocab, FAST, stamps)
    assert out["event_onset_200ms_fms"] == 1.0 and out["segment_1s_er"] < 0.2
    assert out["folds"][0]["postprocessing"]["median_filter_ms"] == 250.0


@pytest.mark.parametrize("breakage, message", [
    ("nan", "NaN or inf"), ("empty", "no embeddings"), ("label", "not in the vocabulary"),
    ("metric", "unknown metric 'top5_acc'"), ("wrong_kind", "does not apply"), ("missing_label", "different files"),
])
def test_bad_inputs_raise_clear_value_errors(rng, breakage, message):
    emb, meta, lab, vocab = scene_task(rng, n=20)
    if breakage == "nan":
        emb["valid"]["c003.wav"] = np.full(16, np.nan, np.float32)
    elif breakage == "empty":
        emb["test"] = {}
    elif breakage == "label":
        lab["train"]["c000.wav"] = ["zebra"]
    elif breakage == "metric":
        meta["evaluation"] = ["top5_acc"]
    elif breakage == "wrong_kind":
        meta["evaluation"] = ["median_angular_error_deg"]
    else:
        del lab["train"]["c000.wav"]
    with pytest.raises(ValueError, match=message):
        probes.evaluate_task(emb, meta, lab, vocab, FAST)
