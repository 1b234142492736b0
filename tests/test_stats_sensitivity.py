"""The bootstrap interval on data whose answer is known, the ridge probe, and the float-noise
sensitivity check on constructed tasks (including one where the check must report a large move)."""
import numpy as np
import pytest

from gramlib.core import config, stats
from gramlib.eval import probes


def test_bootstrap_interval_of_a_proportion_matches_the_binomial_width():
    rng = np.random.default_rng(0)
    hits = (rng.random(400) < 0.7).astype(float)
    lo, hi = stats.bootstrap_interval(lambda idx: hits[idx[0]].mean(), [len(hits)], n_boot=2000, seed=1)
    p = hits.mean()
    half = 1.96 * np.sqrt(p * (1 - p) / len(hits))  # normal approximation, +-4.5 points here
    assert lo < p < hi
    assert abs((hi - lo) / 2 - half) < 0.2 * half


def test_bootstrap_interval_keeps_groups_apart_and_rejects_bad_input():
    a, b = np.zeros(50), np.ones(50)  # each group is constant: every resample gives the same mean
    lo, hi = stats.bootstrap_interval(lambda idx: (a[idx[0]].mean() + b[idx[1]].mean()) / 2, [50, 50], n_boot=200)
    assert lo == hi == 0.5
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_interval(lambda idx: 0.0, [3], level=1.5)
    with pytest.raises(ValueError, match="non-empty"):
        stats.bootstrap_interval(lambda idx: 0.0, [])


def test_ridge_path_recovers_a_linear_map_and_shrinks_with_alpha():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6))
    w = rng.standard_normal((6, 2))
    y = x @ w + 3.0
    small, large = probes.ridge_path(x, y, [1e-8, 100.0])
    assert np.allclose(small.weight, w, atol=1e-6) and np.allclose(small.bias, y.mean(0))
    assert np.linalg.norm(large.weight) < 0.1 * np.linalg.norm(w)
    assert np.allclose(small.predict(x), y, atol=1e-5)


def _task(rng, n_per_fold=40, n_folds=3, dim=16, classes=4, noise=1.5):
    centers = rng.standard_normal((classes, dim))
    folds = [f"fold{i:02d}" for i in range(n_folds)]
    embeddings, labels = {}, {}
    for fold in folds:
        y = rng.integers(0, classes, n_per_fold)
        x = centers[y] + noise * rng.standard_normal((n_per_fold, dim))
        embeddings[fold] = {f"{fold}-{i}.wav": x[i].astype(np.float32) for i in range(n_per_fold)}
        labels[fold] = {f"{fold}-{i}.wav": [str(y[i])] for i in range(n_per_fold)}
    metadata = {"task_name": "toy", "embedding_type": "scene", "prediction_type": "multiclass",
                "split_mode": "new_split_kfold", "splits": folds, "evaluation": ["top1_acc"]}
    return embeddings, labels, metadata, [str(c) for c in range(classes)]


def test_linear_probe_scores_with_an_interval_and_float_noise_does_not_move_it():
    rng = np.random.default_rng(0)
    embeddings, labels, metadata, vocab = _task(rng)
    cfg = config.EvaluateConfig(probe_grid="linear", bootstrap=300)
    result = probes.evaluate_task(embeddings, metadata, labels, vocab, cfg)
    assert 0.4 < result["top1_acc"] <= 1.0 and result["best_params"]["probe"] == "ridge"
    assert result["top1_acc_ci95_low"] < result["top1_acc"] < result["top1_acc_ci95_high"]
    moved = probes.sensitivity(result, embeddings, metadata, labels, vocab, cfg)
    assert moved["rel"] == 1e-6 and abs(moved["delta"]["top1_acc"]) <= 0.25 * (
        result["top1_acc_ci95_high"] - result["top1_acc_ci95_low"])


def test_the_sensitivity_check_reports_a_perturbation_that_does_move_the_score():
    rng = np.random.default_rng(1)
    embeddings, labels, metadata, vocab = _task(rng, noise=0.5)
    cfg = config.EvaluateConfig(probe_grid="linear", bootstrap=100, sensitivity_rel=3.0)  # noise 3x the signal
    result = probes.evaluate_task(embeddings, metadata, labels, vocab, cfg)
    moved = probes.sensitivity(result, embeddings, metadata, labels, vocab, cfg)
    assert moved["delta"]["top1_acc"] < -0.1 and moved["ratio"] > 0.25


def test_perturb_is_deterministic_and_relative():
    emb = {"a": {"x.wav": np.full(8, 2.0, np.float32)}, "b": {"y.wav": np.zeros(8, np.float32)}}
    one, two = probes.perturb(emb, 1e-3, seed=5), probes.perturb(emb, 1e-3, seed=5)
    assert np.array_equal(one["a"]["x.wav"], two["a"]["x.wav"]) and not np.array_equal(one["a"]["x.wav"], emb["a"]["x.wav"])
    assert np.all(np.abs(one["a"]["x.wav"] / 2.0 - 1.0) < 5e-3) and not one["b"]["y.wav"].any()


def test_selection_treats_float_ties_as_ties():
    assert not probes._better(0.5 + 1e-12, 0.5, "top1_acc")
    assert probes._better(0.51, 0.5, "top1_acc") and probes._better(10.0, 12.0, "median_angular_error_deg")
    assert not probes._better(float("nan"), 0.5, "top1_acc") and probes._better(0.1, float("nan"), "top1_acc")


def test_sensitivity_table_reads_the_metrics_files():
    from gramlib.figures import tables

    res = {"m": {"tasks": {"hear/words": {"first_metric": "top1_acc", "top1_acc": 0.6, "top1_acc_ci95_low": 0.5,
                                          "top1_acc_ci95_high": 0.7, "top1_acc_sensitivity": 0.01},
                           "hear/old": {"first_metric": "top1_acc", "top1_acc": 0.5}},  # no check run: left out
                 "aggregate": {"hear": {"average": 60.0, "n_tasks": 1, "average_sensitivity": 0.0}}}}
    table = tables.table_sensitivity(res)
    assert list(table.index) == [("m", "hear/words"), ("m", "hear/average")]
    assert abs(table.loc[("m", "hear/words"), "moved_per_ci_width"] - 0.05) < 1e-12
    assert len(tables.table_sensitivity({"m": {"tasks": {}, "aggregate": {}}})) == 0


def test_ridge_penalty_is_the_strongest_within_one_standard_error_of_the_lowest_valid_error():
    fit = lambda mean, se: probes.Fit(None, 0.0, -1, None, (mean, se))  # noqa: E731 - strongest first
    assert probes.select_ridge([fit(2.0, 0.1), fit(1.05, 0.1), fit(1.0, 0.1), fit(0.99, 0.1)]) == 1
    assert probes.select_ridge([fit(2.0, 0.1), fit(1.05, 0.1), fit(1.0, 0.1), fit(0.99, 0.02)]) == 2
    assert probes.select_ridge([fit(2.0, 0.1), fit(1.5, 0.1), fit(1.0, 0.01)]) == 2
    assert probes.select_ridge([fit(float("nan"), 0.0), fit(1.0, 0.5)]) == 1
    assert probes.select_ridge([fit(float("nan"), 0.0)]) == 0


def test_ridge_selection_reads_only_the_valid_split():
    rng = np.random.default_rng(3)
    embeddings, labels, metadata, vocab = _task(rng)
    cfg = config.EvaluateConfig(probe_grid="linear", bootstrap=0)
    first = probes.evaluate_task(embeddings, metadata, labels, vocab, cfg)
    test_fold = "fold00"  # fold 0 tests on fold00 and validates on fold01: scrambling its labels ...
    scrambled = dict(labels, **{test_fold: {f: [vocab[(int(v[0]) + 1) % len(vocab)]] for f, v in labels[test_fold].items()}})
    second = probes.evaluate_task(embeddings, metadata, scrambled, vocab, cfg)
    assert second["best_params"] == first["best_params"]  # ... changes no selection
    assert [g["valid_mse"] for g in second["grid"]] == [g["valid_mse"] for g in first["grid"]]
    assert second["folds"][0]["scores"]["top1_acc"] != first["folds"][0]["scores"]["top1_acc"]
