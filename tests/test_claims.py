"""The claims table: paired bootstrap on constructed errors whose answer is known, verdicts, item pairing."""
import numpy as np
import pandas as pd
import pytest

from gramlib.figures import claims


def test_paired_bootstrap_of_a_constant_shift_is_exact():
    rng = np.random.default_rng(0)
    better = rng.uniform(0, 90, 60)
    diff, low, high = claims.paired_bootstrap(better, better + 10.0, n_boot=500, seed=1)
    assert diff == pytest.approx(10.0) and low == pytest.approx(10.0) and high == pytest.approx(10.0)
    assert claims.verdict(low, high) == "holds"
    diff, low, high = claims.paired_bootstrap(better + 10.0, better, n_boot=500, seed=1)
    assert diff == pytest.approx(-10.0) and claims.verdict(low, high) == "reversed"


def test_pairing_cancels_what_two_models_share():
    """Item difficulty varies 0-90 deg and both models share it: a 3-deg gap is resolved paired."""
    rng = np.random.default_rng(2)
    difficulty = rng.uniform(0, 90, 200)
    better, worse = difficulty + rng.normal(0, 1, 200), difficulty + 3.0 + rng.normal(0, 1, 200)
    _, low, high = claims.paired_bootstrap(better, worse, n_boot=1000, seed=0)
    assert 2.5 < low < 3.0 < high < 3.5
    _, low, high = claims.paired_bootstrap(np.random.default_rng(3).permutation(better), worse, n_boot=1000, seed=0)
    assert low < 0 < high  # the same errors unpaired: the 3-deg gap drowns in the items' difficulty


def test_no_difference_is_unresolved_at_the_stated_rate():
    """Two models with the same error distribution: about 5 % of seeds give a (false) verdict."""
    false = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a, b = rng.uniform(0, 90, 40), rng.uniform(0, 90, 40)
        false += claims.verdict(*claims.paired_bootstrap(a, b, n_boot=300, seed=seed)[1:]) != "unresolved"
    assert 2 <= false <= 25  # 5 % of 200 = 10; the percentile bootstrap on 40 items is a little liberal


def test_bad_samples_are_named():
    with pytest.raises(ValueError, match="same length"):
        claims.paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="level"):
        claims.paired_bootstrap(np.ones(3), np.ones(3), level=1.5)


def detail(fmt, files, errors_deg):
    """A detail entry whose predictions miss the truth (x axis) by ``errors_deg`` in azimuth."""
    a = np.radians(errors_deg)
    pred = np.stack([np.cos(a), np.sin(a), np.zeros_like(a)], 1)
    true = np.tile([1.0, 0.0, 0.0], (len(files), 1))
    suite = {"foa": "nathear-foa", "binaural": "nathear-binaural"}[fmt]
    return {"format": fmt, "tasks": {f"{suite}/words-loc": {
        "predictions": {"files": files, "true": true.tolist(), "pred": pred.tolist()}}}}


def test_the_table_pairs_items_across_formats_and_lists_untested_claims():
    files = [f"w{i}.wav" for i in range(30)]
    details = {"gram-ambisonics": detail("foa", files, np.full(30, 10.0)),
               "gram-binaural": detail("binaural", files[::-1], np.full(30, 40.0))}  # same items, other order
    table = claims.claims_table(details, n_boot=200)
    row = table[(table.better == "gram-ambisonics") & (table.worse == "gram-binaural") & (table.task == "words-loc")]
    assert len(row) == 1 and row.n_items.item() == 30
    assert row.difference.item() == pytest.approx(30.0) and row.verdict.item() == "holds"
    assert row.bonferroni_verdict.item() == "holds"
    missing = table[(table.worse == "mamba")]
    assert (missing.verdict == "unresolved").all() and (missing.note == "not scored").all()
    assert set(claims.UNTESTED) <= set(table.claim) and pd.isna(table[table.claim == claims.UNTESTED[0]].difference).all()


def test_write_claims_says_how_many_tests_and_what_chance_gives(tmp_path):
    files = [f"w{i}.wav" for i in range(10)]
    details = {"gram-ambisonics": detail("foa", files, np.arange(10.0)),
               "gram-binaural": detail("binaural", files, np.arange(10.0) + 5)}
    csv, md = claims.write_claims(tmp_path, details, n_boot=100)
    assert pd.read_csv(csv).shape[0] > 10
    text = md.read_text()
    assert "1 paired tests" in text and "Bonferroni" in text and "| claim |" in text


def class_detail(fmt, files, correct, tasks=claims.CLASS_TASKS):
    """Detail entries of multiclass tasks in the HEAR and native suites: item i right iff ``correct[i]``."""
    suite = {"foa": "nathear-foa", "binaural": "nathear-binaural", "mono": "nathear-foa"}[fmt]
    true = [i % 3 for i in range(len(files))]
    pred = [t if c else (t + 1) % 3 for t, c in zip(true, correct)]
    entry = {"kind": "multiclass", "predictions": {"files": files, "true": true, "pred": pred}}
    return {"format": fmt, "tasks": {f"{s}/{t}": entry for s in ("hear", suite) for t in tasks}}


def test_suite_average_is_tested_on_per_item_correctness_across_formats():
    files = [f"c{i}.wav" for i in range(40)]
    rng = np.random.default_rng(0)
    good, base = rng.random(40) < 0.8, rng.random(40) < 0.5
    details = {"gram-binaural": class_detail("binaural", files, good), "naive": class_detail("mono", files, base)}
    table = claims.claims_table(details, n_boot=300)
    rows = table[(table.better == "gram-binaural") & (table.worse == "naive") & (table.measure == "accuracy")]
    assert sorted(rows.task) == sorted(f"{s}: " + "+".join(claims.CLASS_TASKS) for s in ("hear", "native"))
    expected = 100 * (good.mean() - base.mean())  # every task the same items: the average is that one difference
    assert rows.difference.to_numpy() == pytest.approx([expected, expected])
    assert (rows.ci95_low < expected).all() and (rows.ci95_high > expected).all()
    assert rows.n_items.tolist() == [200, 200]  # 5 tasks x 40 shared items


def test_a_task_missing_for_one_model_leaves_its_average_unresolved():
    files = [f"c{i}.wav" for i in range(20)]
    details = {"gram-binaural": class_detail("binaural", files, np.ones(20, bool), tasks=("words",)),
               "naive": class_detail("mono", files, np.zeros(20, bool))}
    table = claims.claims_table(details, n_boot=100)
    average = table[(table.worse == "naive") & (table.better == "gram-binaural") & (table.measure == "accuracy")]
    assert (average.verdict == "unresolved").all() and (average.note == "not scored").all()


def test_task_averaged_bootstrap_of_constant_shifts_is_exact():
    a1, a2 = np.arange(10.0), np.arange(30.0)
    diff, low, high = claims.paired_bootstrap_tasks([(a1, a1 + 2.0), (a2, a2 + 4.0)], n_boot=200)
    assert diff == low == high == pytest.approx(3.0)
