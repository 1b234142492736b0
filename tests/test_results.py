"""Metrics JSON -> tidy table, s(m), ablation points, tables: exact values on synthetic results."""
import json
import math

import numpy as np
import pandas as pd
import pytest

import fake_metrics as fm
from gramlib.figures import results as R
from gramlib.figures import tables as T

POOL = ["gram-binaural", "gram-binaural-time", "gram-ambisonics", "gram-clean", "naive"]


@pytest.fixture(scope="module")
def res():
    return fm.all_results()


@pytest.fixture(scope="module")
def df(res):
    return R.tidy(res)


# ------------------------------------------------------------------------------------------ loading
def test_load_reads_metrics_and_details_apart(tmp_path, rng):
    res = {n: fm.all_results()[n] for n in ("gram-binaural", "naive")}
    fm.write(tmp_path, res, {"naive": fm.with_details(res["naive"], rng)})
    assert set(R.load_results(tmp_path)) == {"gram-binaural", "naive"}
    details = R.load_results(tmp_path, detail=True)
    assert set(details) == {"naive"} and "predictions" in details["naive"]["tasks"]["nathear-foa/words-loc"]


def test_only_skips_left_over_models_with_a_warning(tmp_path):
    res = {n: fm.all_results()[n] for n in ("gram-binaural", "gram-binaural-s1", "naive")}
    fm.write(tmp_path, res, {})
    with pytest.warns(UserWarning, match=r"gram-binaural-s1\.json"):
        kept = R.load_results(tmp_path, only=["gram-binaural", "naive"])
    assert set(kept) == {"gram-binaural", "naive"}
    with pytest.warns(UserWarning, match="no metrics yet for \\['mamba'\\]"):
        R.load_results(tmp_path, only=["gram-binaural", "gram-binaural-s1", "naive", "mamba"])


def test_pipeline_models_are_variants_baselines_and_extras():
    from gramlib.core import config

    params = config.load_params()
    names = R.pipeline_models(params)
    assert set(params["variants"]) <= set(names) and "naive" in names and "intensity" in names
    assert "mine" in R.pipeline_models(config.deep_merge(params, {"figures": {"extra_models": ["mine"]}}, "test"))


def test_malformed_json_names_the_file(tmp_path):
    (tmp_path / "broken.json").write_text('{"name": "x", ')
    with pytest.raises(R.ResultsError, match="broken.json"):
        R.load_results(tmp_path)


def test_schema_errors_name_file_and_key(tmp_path):
    bad = fm.baseline("naive")
    del bad["tasks"]["hear/words"]["first_metric"]
    (tmp_path / "naive.json").write_text(json.dumps(bad))
    with pytest.raises(R.ResultsError, match=r"naive.json.*hear/words.*first_metric"):
        R.load_results(tmp_path)


# --------------------------------------------------------------------------------------------- tidy
def test_tidy_means_seeds_and_keeps_their_spread(res, df):
    row = df[(df.model == "gram-binaural") & (df.suite == "hear") & (df.task == "words")].iloc[0]
    assert row.label == "GRAM-Binaural" and row.n_seeds == 2
    assert row.value == pytest.approx(0.69) and row.seed_std == pytest.approx(np.std([0.7, 0.68], ddof=1))
    assert row.seed_values == (0.7, 0.68)
    assert ("masking", "frame") in row.points  # the seed-1 sibling stands for the same point
    assert "gram-binaural-s1" not in set(df.model)
    sep = R.tidy(res, seeds="separate")
    assert {"gram-binaural", "gram-binaural-s1"} <= set(sep.model)
    assert sep[(sep.model == "gram-binaural-s1") & (sep.task == "words") & (sep.suite == "hear")].value.item() == 0.68


def test_tidy_columns_folds_and_native(df):
    assert list(df.columns) == R.COLUMNS
    ev = df[(df.model == "naive") & (df.suite == "hear") & (df.task == "events") & (df.metric == "top1_acc")].iloc[0]
    assert ev.n_folds == 5 and ev["std"] == pytest.approx(0.02) and ev["first"]
    words = df[(df.model == "naive") & (df.suite == "hear") & (df.task == "words")].iloc[0]
    assert math.isnan(words["std"])  # one fold: no fold spread
    amb = df[df.model == "gram-ambisonics"]
    assert set(amb[amb.native].suite) == {"hear", "nathear-foa"}
    assert set(df[(df.model == "gram-clean") & df.native].suite) == {"hear", "nathear-foa"}
    assert set(df[(df.model == "gcc-hrtf")].suite) == {"nathear-binaural"}


def test_ablation_points_expand_also(df):
    pts = R.ablation_points(df, "in-batch")
    assert dict(pts.groupby("model").axis_value.first()) == {"abl-binaural": 16, "crops-04": 4, "crops-08": 8}
    assert set(R.ablation_points(df, "masking").model) == {"gram-binaural", "gram-binaural-time"}
    assert R.ablation_points(df, "no-such-axis").empty


# -------------------------------------------------------------------------------------------- s(m)
def toy(scores: dict[str, tuple[float, float]], seeds=None) -> dict:
    """Models with one HEAR suite of two tasks: t1 (accuracy) and t2 (segment error, lower is better)."""
    out = {}
    for name, (t1, t2) in scores.items():
        tasks = {"hear/t1": fm.entry("multiclass", ["top1_acc"], t1),
                 "hear/t2": fm.entry("multilabel", ["segment_1s_er"], t2)}
        out[name] = {"name": name, "kind": "baseline", "format": "mono", "tasks": tasks, "aggregate": {}}
    return out


def s_of(df, pool, model):
    table = R.s_m(df, pool, suites=("hear",)).set_index("model")
    return table.loc[model, "s_m"]


def test_s_m_hand_computed():
    # t1: naive 0.2, A 0.6 (best, +0.4), B 0.4 (+0.2) -> A 1, B 0.5;  C 0.1 (worse than naive) -> 0
    # t2 (lower is better): naive 0.8, A 0.6 (-0.2), B 0.5 (-0.3, best) -> A 2/3, B 1;  C 0.2 -> 2, clipped to 1
    df = R.tidy(toy({"naive": (0.2, 0.8), "A": (0.6, 0.6), "B": (0.4, 0.5), "C": (0.1, 0.2)}))
    pool = ["naive", "A", "B"]
    assert s_of(df, pool, "A") == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert s_of(df, pool, "B") == pytest.approx(100 * (0.5 + 1) / 2)
    assert s_of(df, pool, "naive") == 0.0
    assert s_of(df, pool, "C") == pytest.approx(50.0)


def test_adding_an_ablation_never_changes_the_headline(res):
    def pool_scores(d):
        return R.s_m(d, POOL).query("model in @POOL").set_index(["model", "suite"]).s_m

    before = pool_scores(R.tidy(res))
    strong = fm.gram("super", "mask-ratio", 0.5, "binaural", base=0.99)
    after_df = R.tidy(res | {"super": strong})
    pd.testing.assert_series_equal(before, pool_scores(after_df))
    assert s_of(after_df, POOL, "super") == 100.0  # beats the pool: clipped


def test_s_m_seed_spread_and_missing_naive(df):
    table = R.s_m(df, POOL).set_index(["model", "suite"])
    assert table.loc[("gram-binaural", "hear"), "s_m"] == pytest.approx(100.0)
    assert table.loc[("gram-binaural", "hear"), "s_m_std"] > 0
    assert math.isnan(table.loc[("naive", "hear"), "s_m_std"])
    no_naive = R.s_m(df[df.model != "naive"], POOL, suites=("hear",))
    assert no_naive.s_m.isna().all()


def test_averages_follow_the_inputs(res, df):
    avg = R.averages(df).set_index(["model", "suite"]).avg
    # gram-binaural HEAR: mean over 6 tasks of base + offset, seeds 0.70 / 0.68
    assert avg[("gram-binaural", "hear")] == pytest.approx(100 * (0.69 + np.mean(list(fm.TASK_OFFSET.values()))))
    assert avg[("gram-binaural", "nathear")] == pytest.approx(avg[("gram-binaural", "hear")] - 10)
    bumped = R.averages(R.tidy(res | {"gram-clean": fm.gram("gram-clean", "main", "GRAM-Clean", "clean", "main",
                                                            base=0.9)})).set_index(["model", "suite"]).avg
    assert bumped[("gram-clean", "hear")] > avg[("gram-clean", "hear")]


# ------------------------------------------------------------------------------------ axis numbers
def test_axis_scores_numeric_sorted_with_fold_spread(df):
    data = R.axis_scores(df, "in-batch")
    hear = data[data.suite == "hear"]
    assert list(hear.axis_value) == [4, 8, 16]
    assert list(hear.score) == pytest.approx([45.0, 46.0, 50.0])
    assert hear.spread.isna().all()  # one seed, words has one fold: no spread to show


def test_axis_scores_seed_spread_and_fold_propagation():
    a = fm.gram("a", "mask-ratio", 0.4, "binaural")
    for key, sd in (("hear/words", 0.02),):
        a["tasks"][key] |= {"n_folds": 5, "top1_acc_std": sd}
    a["tasks"]["hear/pitch"] = fm.entry("multiclass", ["pitch_acc"], 0.5, 5, std=0.04)
    b = fm.gram("b", "mask-ratio", 0.6, "binaural")
    b["tasks"]["hear/pitch"] = fm.entry("multiclass", ["pitch_acc"], 0.5, 5, std=0.04)
    data = R.axis_scores(R.tidy({"a": a, "b": b}), "mask-ratio", suites=("hear",)).set_index("axis_value")
    assert data.loc[0.4, "spread"] == pytest.approx(100 * math.sqrt(0.02 ** 2 + 0.04 ** 2) / 2)
    assert data.loc[0.4, "n_tasks"] == 2
    masking = R.axis_scores(R.tidy(fm.all_results()), "masking", suites=("hear",)).set_index("axis_value")
    assert list(masking.index) == ["frame", "time"]
    assert masking.loc["frame", "spread"] == pytest.approx(100 * np.std([0.7, 0.68], ddof=1))


def test_axis_scores_use_tasks_common_to_every_point(res):
    extra = fm.gram("crops-02", "in-batch", 2, "binaural", base=0.1)
    extra["tasks"] = {k: v for k, v in extra["tasks"].items() if not k.startswith("hear/")}
    data = R.axis_scores(R.tidy(res | {"crops-02": extra}), "in-batch")
    assert 2 not in set(data[data.suite == "hear"].axis_value)
    assert 2 in set(data[data.suite == "nathear"].axis_value)


def test_hear_minus_nathear_excludes_event_tasks(df):
    diff = R.hear_minus_nathear(df)
    assert "dcase" not in set(diff.task) and "words-loc" not in set(diff.task)
    assert diff[diff.model == "gram-binaural"].diff_pp.to_numpy() == pytest.approx(np.full(5, 10.0))


# ---------------------------------------------------------------------------------- directions
def test_directions_follow_our_convention():
    az, el = R.direction_deg([[1, 0, 0], [0, 1, 0], [0, 0, 2], [-1, -1, 0]])
    assert az[:2] == pytest.approx([0, 90]) and el[2] == pytest.approx(90) and az[3] == pytest.approx(-135)


def test_confusion_bins_known_directions():
    true = np.array([[0, 1, 0], [0, -1, 0], [-1, 0, 0], [1, 0, 0], [0, 0, 1]], float)  # left, right, back, front, up
    pred = np.array([[0, 1, 0], [1, 0, 0], [-1, 0.01, 0], [1, 0, 0], [1, 0, 1]], float)
    conf = R.doa_confusion(true, pred, 30.0)
    counts, centres = conf["azimuth"]
    assert counts.shape == (12, 12) and centres[0] == -180 and centres[-1] == 150
    at = {c: i for i, c in enumerate(centres)}
    assert counts[at[90], at[90]] == 1            # a source on the left lands in the +90 bin
    assert counts[at[-90], at[0]] == 1            # right, predicted front
    assert counts[at[-180], at[-180]] == 1        # 180 and -179.4 both fold into the back bin
    el_counts, el_centres = conf["elevation"]
    assert list(el_centres) == [-90, -60, -30, 0, 30, 60, 90]
    assert el_counts[6, 3] == 0 and el_counts[6].sum() == 1 and el_counts[6, 4] + el_counts[6, 5] == 1  # up -> 45
    assert el_counts.sum() == 5


def test_clip_errors(rng):
    det = fm.with_details(fm.all_results()["gram-ambisonics"], rng)
    loc = R.clip_errors(det["tasks"]["nathear-foa/words-loc"])
    t60 = R.clip_errors(det["tasks"]["nathear-foa/words-t60"])
    assert loc.shape == (60,) and (loc >= 0).all() and (loc <= 180).all()
    assert t60.shape == (60,) and t60.max() <= 0.1 + 1e-9
    assert R.clip_errors({"first_metric": "x"}).size == 0


# -------------------------------------------------------------------------------------------- tables
def test_table_scores_values_and_markdown(df):
    table = T.table_scores(df, "nathear", POOL)
    assert list(table.index) == ["GRAM-Binaural", "GRAM-Binaural-Time", "GRAM-Ambisonics", "GRAM-Clean", "naive"]
    assert table.loc["GRAM-Binaural", "words"] == pytest.approx(59.0)
    assert table.loc["naive", "events_std"] == pytest.approx(2.0)          # fold sd (one seed)
    assert table.loc["GRAM-Binaural", "words_std"] == pytest.approx(100 * np.std([0.7, 0.68], ddof=1))  # seed sd
    assert table.loc["GRAM-Binaural", "s(m)"] == pytest.approx(100.0) and table.loc["naive", "s(m)"] == 0.0
    assert "words-loc" not in table.columns and "abl-binaural" not in table.index
    md = T.to_markdown(table)
    assert md.startswith("| model | words | pitch | events |")
    assert "| naive | 20.0 | 25.0 | 15.0 ± 2.0 |" in md and "**59.0 ± 1.4**" in md


def test_table_localization_and_cost(res, df):
    loc = T.table_localization(df)
    assert loc.loc["GRAM-Ambisonics", "suite"] == "nathear-foa"
    assert loc.loc["GRAM-Ambisonics", "words-loc median_angular_error_deg"] == pytest.approx(16.0)
    assert loc.loc["gcc-hrtf", "words-loc median_angular_error_deg"] == 35.0
    assert math.isnan(loc.loc["intensity", "words-t60 median_abs_error_s"])
    assert "**16.0 ± 1.4**" in T.to_markdown(loc, best="min")
    cost = T.table_training_cost(res)
    assert cost.loc["crops-04", "steps"] == 300 and cost.loc["gram-binaural-s1", "seed"] == 1
    assert cost.loc["gram-binaural", "wall_h"] == pytest.approx(600 / 3600)
    assert "naive" not in cost.index


def test_write_tables(tmp_path, res):
    seld = tmp_path / "seld"
    seld.mkdir()
    (seld / "gram-ambisonics.json").write_text(json.dumps(
        {"probe": {"ER20": 0.5, "F20": 0.4, "LE_CD_deg": 20.0, "LR_CD": 0.6, "classwise": {}},
         "intensity_oracle": {"ER20": 0.7, "F20": 0.2, "LE_CD_deg": 30.0, "LR_CD": 0.5}, "dataset": {"format": "x"}}))
    written = T.write_tables(tmp_path / "tables", res, POOL, seld_dir=seld)
    names = {p.name for p in written}
    assert set(T.TABLES) <= names and {"seld.csv", "seld.md"} <= names
    summary = json.loads((tmp_path / "tables" / "summary.json").read_text())
    assert summary["gram-binaural"]["nathear"]["s_m"] == 100.0
    assert summary["crops-04"]["hear"]["n_tasks"] == 1
    seld_table = pd.read_csv(tmp_path / "tables" / "seld.csv")
    assert list(seld_table.system) == ["probe", "intensity_oracle"] and seld_table.LE_CD_deg.tolist() == [20.0, 30.0]
