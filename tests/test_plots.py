"""Each paper figure draws the numbers it is given: change an input, the drawn data changes."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

import fake_metrics as fm
from gramlib.figures import panels
from gramlib.figures import render
from gramlib.figures import plots
from gramlib.figures import results as R


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def res():
    out = fm.all_results()
    for name, slope in (("abl-binaural", 1e-3), ("grad-accum", 5e-4)):
        out[name]["curve"] = [{"step": s, "hear/words": 0.2 + slope * s, "nathear-binaural/words": 0.1 + slope * s,
                               "nathear-binaural/words-loc": 60.0 - 0.05 * s} for s in (100, 200, 300)]
    return out


@pytest.fixture(scope="module")
def df(res):
    return R.tidy(res)


def axes_titled(fig, start):
    found = [ax for ax in fig.axes if ax.get_title().startswith(start)]
    assert found, [ax.get_title() for ax in fig.axes]
    return found[0]


def line(ax, label):
    return next(ln for ln in ax.get_lines() if ln.get_label() == label)


def gid(ax, name):
    return [ln for ln in ax.get_lines() if ln.get_gid() == name]


def bars(ax, label):
    return [p.get_height() for c in ax.containers if c.get_label() == label for p in c]


def texts(fig):
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


# ------------------------------------------------------------------------------------------ Figure 2
def test_figure_2_data_quantity_and_hear_gap(res, df):
    fig = plots.figure_2(df)
    a = axes_titled(fig, "A")
    assert list(line(a, "HEAR").get_xdata()) == [0.1, 0.3, 1.0]
    assert list(line(a, "HEAR").get_ydata()) == pytest.approx([47.0, 48.0, 50.0])
    b = axes_titled(fig, "B")
    assert gid(b, "median:GRAM-Binaural")[0].get_ydata()[0] == pytest.approx(10.0)
    assert {t.get_text() for t in b.get_xticklabels()} >= {"GRAM-Binaural", "naive"}
    assert "abl-binaural" not in {t.get_text() for t in b.get_xticklabels()}

    changed = res | {"data-010": fm.gram("data-010", "data-fraction", 0.1, "binaural", base=0.2)}
    nat = fm.gram("gram-clean", "main", "GRAM-Clean", "clean", "main", base=0.62)
    for key, entry in nat["tasks"].items():
        if key.startswith("nathear-foa/") and entry["prediction_type"] == "multiclass":
            entry[entry["first_metric"]] -= 0.05  # Nat-HEAR 5 points lower -> gap +5
    fig2 = plots.figure_2(R.tidy(changed | {"gram-clean": nat, "gram-clean-s1": nat | {"name": "gram-clean-s1"}}),
                          pretrain_clips=240)
    a2 = axes_titled(fig2, "A")
    assert line(a2, "HEAR").get_ydata()[0] == pytest.approx(20.0)
    assert list(line(a2, "HEAR").get_xdata()) == pytest.approx([24.0, 72.0, 240.0])
    assert gid(axes_titled(fig2, "B"), "median:GRAM-Clean")[0].get_ydata()[0] == pytest.approx(15.0)


# ------------------------------------------------------------------------------------------ Figure 3
def test_figure_3_boxes_confusion_and_t60(res, rng):
    details = {n: fm.with_details(r, rng) for n, r in res.items()}
    fig = panels.figure_3(details)
    a = axes_titled(fig, "A · DoA error, words-loc")
    labels = [t.get_text() for t in a.get_xticklabels()]
    assert labels[:4] == ["GRAM-Binaural (2 seeds)", "GRAM-Binaural-Time (2 seeds)", "GRAM-Ambisonics (2 seeds)",
                          "GRAM-Clean (2 seeds)"]
    assert {"naive", "intensity", "gcc-hrtf"} <= set(labels)
    amb = [details[m]["tasks"]["nathear-foa/words-loc"] for m in ("gram-ambisonics", "gram-ambisonics-s1")]
    pooled = np.concatenate([R.clip_errors(e) for e in amb])
    assert gid(a, "median:GRAM-Ambisonics (2 seeds)")[0].get_ydata()[0] == pytest.approx(np.median(pooled))

    conf = axes_titled(fig, "B · azimuth")
    counts = R.doa_confusion(amb[0]["predictions"]["true"], amb[0]["predictions"]["pred"])["azimuth"][0]
    rows = counts.sum(1, keepdims=True)
    expected = np.where(rows > 0, counts / np.maximum(rows, 1), np.nan)
    np.testing.assert_allclose(conf.images[0].get_array().filled(np.nan), expected)
    assert "+90° = left" in texts(fig)

    t60 = axes_titled(fig, "C · T60 error, events-t60")
    clean = details["gram-clean"]["tasks"]["nathear-foa/events-t60"]["predictions"]
    clean["pred"] = [t + 0.5 for t in clean["true"]]
    fig2 = panels.figure_3(details)
    before = gid(t60, "median:GRAM-Clean (2 seeds)")[0].get_ydata()[0]
    after = gid(axes_titled(fig2, "C · T60 error, events-t60"), "median:GRAM-Clean (2 seeds)")[0].get_ydata()[0]
    assert after > before


def test_figure_3_says_what_is_missing(res):
    fig = panels.figure_3(res)  # metrics without per-clip predictions
    assert "no per-clip predictions" in texts(fig) and "no predictions of gram-ambisonics" in texts(fig)


# ------------------------------------------------------------------------------------------ Figure 4
def test_figure_4_ablations(res, df):
    fig = plots.figure_4(df)
    lam = axes_titled(fig, "A · λ, GRAM-Binaural")
    assert list(line(lam, "Nat-HEAR").get_xdata()) == [0.0, 0.5, 1.0]
    assert list(line(lam, "Nat-HEAR").get_ydata()) == pytest.approx([40.0, 30.0, 31.0])
    masking = axes_titled(fig, "C · masking")
    assert bars(masking, "HEAR") == pytest.approx([69.333333, 64.333333])
    enc = axes_titled(fig, "D · encoder")
    assert [t.get_text() for t in enc.get_xticklabels()] == ["transformer", "mamba"]
    twin = next(ax for ax in fig.axes if ax.get_label() == "C · masking strategy · DoA error")
    assert list(twin.get_lines()[0].get_ydata()) == pytest.approx([40.0, 35.0])

    fig2 = plots.figure_4(R.tidy(res | {"mamba": fm.gram("mamba", "encoder", "mamba", "binaural", base=0.8)}))
    assert bars(axes_titled(fig2, "D · encoder"), "HEAR")[1] == pytest.approx(80.0)


def test_empty_axis_gives_a_message(df):
    fig = plots.figure_4(df[~df.model.isin(["foa-lambda-050", "abl-ambisonics"])])
    assert "no data for axis 'lambda-foa'" in texts(fig)


# ------------------------------------------------------------------------------------------ Figure 5
def test_figure_5_in_batch_and_mask_ratio(res, df):
    fig = plots.figure_5(df)
    crops = axes_titled(fig, "A · in-batch")
    assert list(line(crops, "HEAR").get_xdata()) == [4, 8, 16]
    assert list(line(crops, "HEAR").get_ydata()) == pytest.approx([45.0, 46.0, 50.0])
    ratio = axes_titled(fig, "B · masking ratio")
    assert list(line(ratio, "Nat-HEAR").get_xdata()) == [0.6, 0.8, 0.9]
    changed = R.tidy(res | {"mask-090": fm.gram("mask-090", "mask-ratio", 0.9, "binaural", base=0.1)})
    assert line(axes_titled(plots.figure_5(changed), "B · masking"), "Nat-HEAR").get_ydata()[-1] == pytest.approx(0.0)


# ------------------------------------------------------------------------------------------ Figure 6
def write_loss(train_dir, name, losses, header="timestamp\tstep\tloss"):
    path = train_dir / name / "plots/metrics/train"
    path.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"0\t{20 * i}\t{v}\n" for i, v in enumerate(losses))
    (path / "loss.tsv").write_text(f"{header}\n{rows}")


def test_figure_6_curves_and_losses(res, tmp_path):
    write_loss(tmp_path, "abl-binaural", [1.0, 0.5, 0.25])
    write_loss(tmp_path, "grad-accum", [1.0, 0.8, 0.6])
    fig = panels.figure_6(res, tmp_path)
    hear = axes_titled(fig, "HEAR · words")
    assert list(line(hear, "in-batch").get_ydata()) == pytest.approx([30.0, 40.0, 50.0])
    assert list(line(hear, "grad-accum").get_ydata()) == pytest.approx([25.0, 30.0, 35.0])
    loc = axes_titled(fig, "Nat-HEAR · words-loc")
    assert list(line(loc, "grad-accum").get_ydata()) == pytest.approx([55.0, 50.0, 45.0])  # errors stay raw
    loss = axes_titled(fig, "training loss")
    assert list(line(loss, "grad-accum").get_ydata()) == pytest.approx([1.0, 0.8, 0.6])
    assert list(line(loss, "in-batch").get_xdata()) == [0, 20, 40]


def test_figure_6_missing_and_malformed_inputs(res, tmp_path):
    no_curves = {k: {kk: vv for kk, vv in v.items() if kk != "curve"} for k, v in res.items()}
    fig = panels.figure_6(no_curves, tmp_path)
    assert "no learning curve for axis 'batching'" in texts(fig) and "no DVCLive loss logs" in texts(fig)
    write_loss(tmp_path, "grad-accum", [1.0], header="timestamp\tstep\tmse")
    with pytest.raises(ValueError, match="loss.tsv"):
        panels.figure_6(res, tmp_path)


# ------------------------------------------------------------------------------------------ Figure 1
def scene(rng, mask):
    mix = rng.normal(size=(2, 16, 32))
    return {"room": {"dims_m": [6, 4, 3], "listener_m": [3, 2, 1.5], "listener_yaw_deg": 90, "source_m": [5, 3, 1.5],
                     "noise_m": [[1, 1, 1]]},
            "mixture": mix, "reconstruction": -mix, "grid": (4, 2), "mask": mask}


def test_figure_1_draws_the_example(rng):
    mask = np.zeros(8, bool)
    mask[[0, 5]] = True  # row 0 col 0 (mel 0-7, frames 0-7); row 2 col 1 (mel 16-23, frames 8-15)
    data = scene(rng, mask)
    fig = panels.figure_1(data)
    masked = axes_titled(fig, "masked 25%").images[0].get_array()  # (F, T): mel rows, frame columns
    expected = np.zeros((32, 16), bool)
    expected[0:8, 0:8] = expected[16:24, 8:16] = True
    np.testing.assert_array_equal(np.isnan(masked.filled(np.nan)), expected)
    np.testing.assert_allclose(axes_titled(fig, "reconstruction").images[0].get_array(), -data["mixture"][0].T)
    room = axes_titled(fig, "room 6.0 × 4.0 × 3.0 m")
    assert list(line(room, "source").get_xdata()) == [5]
    assert "keep K = 6" in texts(fig)
    with pytest.raises(ValueError, match="grid"):
        panels.figure_1(data | {"grid": (3, 2)})


# -------------------------------------------------------------------------------------------- saving
def test_save_writes_declared_small_files(tmp_path, rng):
    assert plots.FIGURES[:2] == ("figure_1.png", "figure_1.pdf") and len(plots.FIGURES) == 14
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.imshow(rng.normal(size=(64, 64)))  # noise: a PNG that does not compress
    paths = plots.save(fig, tmp_path, "figure_5", dpi=100)
    assert [p.name for p in paths] == ["figure_5.png", "figure_5.pdf"]
    assert all(p.name in plots.FIGURES for p in paths)
    assert 0 < paths[0].stat().st_size < plots.MAX_PNG_KB * 1024
    big = plots.save(fig, tmp_path, "big", dpi=200, pdf=False, max_png_kb=10_000)[0].stat().st_size
    limit_kb = big // 2048
    small = plots.save(fig, tmp_path, "small", dpi=200, pdf=False, max_png_kb=limit_kb)[0].stat().st_size
    assert small <= limit_kb * 1024 < big  # the dpi was lowered until the PNG fit


@pytest.mark.slow  # renders and saves all six figures (~6 s on 2 cores)
def test_render_all_writes_every_declared_figure(tmp_path, res, rng):
    eval_dir = fm.write(tmp_path / "eval", res, {n: fm.with_details(r, rng) for n, r in res.items()
                                                 if n in ("gram-ambisonics", "naive")})
    mask = np.zeros(8, bool)
    mask[:6] = True
    paths = render.render_all(R.load_results(eval_dir), eval_dir, tmp_path / "train", tmp_path / "figures",
                             scene(rng, mask), dpi=60)
    assert sorted(p.name for p in paths) == sorted(plots.FIGURES)
    assert json.loads((eval_dir / "naive.json").read_text())["name"] == "naive"


def test_figure_seld_draws_the_table_it_is_given():
    import pandas as pd

    table = pd.DataFrame([{"run": "gram-ambisonics", "system": "probe", "ER20": 0.5, "F20": 0.6, "LE_CD_deg": 20.0},
                          {"run": "gram-ambisonics", "system": "intensity_oracle", "ER20": 0.7, "F20": 0.4,
                           "LE_CD_deg": 40.0}])
    fig = panels.figure_seld(table)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [0.5, 0.6, 0.7, 0.4]
    table.loc[0, "F20"] = 0.9
    assert [p.get_height() for p in panels.figure_seld(table).axes[0].patches][1] == 0.9
    assert "no SELD results" in panels.figure_seld(None).axes[0].texts[0].get_text()
