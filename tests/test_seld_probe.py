"""The SELD probe: pooling to 100-ms frames, targets, ADPIT, decoding, training, and the stage entry."""
import json

import numpy as np
import pytest
import torch

from gramlib.core.config import SeldConfig
from gramlib.seld.pipeline import evaluate_seld
from gramlib.seld.probe import accdoa_targets, adpit_loss, decode, multi_accdoa_targets, pool_to_label_frames, \
    run_seld_probe
from gramlib.seld.labels import SeldDataError, SeldLabels, unit_vector
from gramlib.seld.foa import FoaFeatureEmbedder
from gramlib.seld.synth import make_synthetic_dataset

TINY = SeldConfig(recordings=5, recording_s=4.0, classes=4, max_overlap=2, epochs=4, chunk_s=2.0)


def test_pooling_averages_overlapping_frames():
    ts = np.arange(40.0, 1000.0, 80.0)  # GRAM's 80-ms columns, centre timestamps
    out = pool_to_label_frames(ts[:, None], ts, 10)[:, 0]
    # frame 0 = [0, 100): 80 ms of the column at 40 and 20 ms of the one at 120
    assert out[0] == pytest.approx((80 * 40 + 20 * 120) / 100)
    assert out[1] == pytest.approx((60 * 120 + 40 * 200) / 100)  # [100, 200): 60 ms + 40 ms
    assert pool_to_label_frames(np.ones((12, 3)), ts, 10).shape == (10, 3)


def test_pooling_beyond_the_last_timestamp_takes_the_nearest():
    out = pool_to_label_frames(np.array([[1.0], [2.0]]), np.array([50.0, 150.0]), 4)[:, 0]
    assert out.tolist() == [1.0, 2.0, 2.0, 2.0]


def test_accdoa_and_multi_accdoa_targets():
    lab = SeldLabels.from_rows([(0, 1, 0, 90, 0), (0, 1, 1, 0, 0), (2, 0, 0, 180, 0)], 3)
    y = accdoa_targets(lab, 2)
    assert y.shape == (3, 2, 3) and np.allclose(y[0, 1], [0, 1, 0], atol=1e-7)  # the first track wins
    assert np.allclose(y[2, 0], [-1, 0, 0], atol=1e-7) and not y[1].any()
    refs, counts = multi_accdoa_targets(lab, 2)
    assert counts.tolist() == [[0, 2], [0, 0], [1, 0]]
    assert np.allclose(refs[0, 1, :2], [[0, 1, 0], [1, 0, 0]], atol=1e-7)


def test_adpit_loss_is_zero_for_any_duplicated_arrangement():
    a, b = torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0])
    refs = torch.zeros(1, 2, 3, 3)
    refs[0, 0, 0], refs[0, 0, 1] = a, b  # class 0: two sources; class 1: silent
    counts = torch.tensor([[2, 0]])
    pred = torch.zeros(1, 3, 2, 3)
    pred[0, :, 0] = torch.stack([b, a, a])  # tracks hold b, a, a: a valid ADPIT arrangement
    assert float(adpit_loss(pred, refs, counts)) == pytest.approx(0.0)
    pred[0, :, 0] = torch.stack([a, a, a])  # b is missing
    # best arrangement: one track must hold b; |a - b|^2 = 2 on one of 3 tracks x 3 coordinates = 2/9
    # for class 0, 0 for class 1 -> mean over the two classes 1/9
    assert float(adpit_loss(pred, refs, counts)) == pytest.approx(1 / 9)
    pred[0, 0, 1] = a  # a silent class must output zero on every track: + (1/9) / 2
    assert float(adpit_loss(pred, refs, counts)) == pytest.approx(1 / 9 + 1 / 18)


def test_decode_thresholds_and_merges_close_tracks():
    v = np.zeros((2, 3, 2, 3))
    v[0, 0, 0] = 0.9 * unit_vector(0, 0)
    v[0, 1, 0] = 0.8 * unit_vector(10, 0)  # within 15 deg of track 0: the same source
    v[0, 2, 0] = 0.7 * unit_vector(120, 0)
    v[1, 0, 1] = 0.3 * unit_vector(45, 0)  # below threshold
    lab = decode(v, 0.5)
    assert [(f, c, t) for f, c, t, *_ in lab.rows()] == [(0, 0, 0), (0, 0, 1)]
    assert lab.azimuth_deg[0] == pytest.approx(5.0) and lab.azimuth_deg[1] == pytest.approx(120.0)


def oracle_embeddings(labels, n_classes, rng, noise=0.05):
    """Frame features that contain the ACCDOA target: a linear probe can read it off."""
    return [accdoa_targets(lab, n_classes).reshape(lab.n_frames, -1)
            + noise * rng.standard_normal((lab.n_frames, 3 * n_classes)) for lab in labels]


def random_labels(rng, n_frames, n_classes):
    rows = []
    for start in range(0, n_frames - 10, 12):
        rows += [(f, int(rng.integers(n_classes)), 0, int(rng.integers(-180, 180)), int(rng.integers(-40, 41)))
                 for f in range(start, start + 8)]
    return SeldLabels.from_rows(rows, n_frames)


@pytest.mark.parametrize("output", ["accdoa", "multi-accdoa"])
def test_probe_learns_a_readable_target(output, rng):
    labels = [random_labels(rng, 80, 3) for _ in range(6)]
    emb = oracle_embeddings(labels, 3, rng)
    cfg = SeldConfig(epochs=60, lr=1e-2, batch_frames=64, val_fraction=0.25)
    res = run_seld_probe(emb[:4], labels[:4], emb[4:], labels[4:], cfg, seed=0, output=output, n_classes=3)
    assert res["F20"] > 0.9 and res["LE_CD_deg"] < 10 and res["ER20"] < 0.2
    assert res["n_val_frames"] == 80 and res["n_train_frames"] == 240  # one of four train recordings held out
    assert res["threshold"] in (0.3, 0.4, 0.5, 0.6, 0.7)


def test_probe_pools_timestamps_and_is_replicable(rng, tmp_path):
    labels = [random_labels(rng, 30, 2) for _ in range(4)]
    frames = oracle_embeddings(labels, 2, rng)
    ts = np.arange(20.0, 3000.0, 40.0)  # 40-ms hop: each label frame pools 2.5 embedding frames
    emb = [np.repeat(f, 5, axis=0)[::2][: len(ts)] for f in frames]
    cfg = SeldConfig(epochs=3, val_fraction=0.34)
    a = run_seld_probe(emb[:3], labels[:3], emb[3:], labels[3:], cfg, 1, ts_train=[ts] * 3, ts_test=[ts],
                       out_dir=tmp_path, test_names=["rec"])
    b = run_seld_probe(emb[:3], labels[:3], emb[3:], labels[3:], cfg, 1, ts_train=[ts] * 3, ts_test=[ts])
    assert a["SELD"] == b["SELD"] and a["best_epoch"] == b["best_epoch"]
    lines = (tmp_path / "rec.csv").read_text().splitlines()
    assert all(len(line.split(",")) == 5 for line in lines)  # frame,class,track,azimuth,elevation
    with pytest.raises(ValueError, match="timestamps"):
        run_seld_probe(emb[:3], labels[:3], emb[3:], labels[3:], cfg, 1)


def test_evaluate_seld_on_a_tiny_synthetic_set(tmp_path):
    ds = make_synthetic_dataset(tmp_path / "ds", None, None, TINY, seed=3, progress=False)
    res = evaluate_seld(ds, "synthetic", FoaFeatureEmbedder(n_bands=8), TINY, 0, tmp_path / "out", progress=False)
    assert res["dataset"]["recordings"] == {"train": 3, "val": 1, "test": 1}
    assert res["dataset"]["embedding_dim"] == 56
    for key in ("ER20", "F20", "LE_CD_deg", "LR_CD", "SELD", "ER_1s", "F_1s", "DOA_error_deg", "frame_recall"):
        assert np.isfinite(res["probe"][key])
    assert res["intensity_oracle"]["F_1s"] == 1.0 and res["intensity_oracle"]["frame_recall"] == 1.0
    assert res["foa_convention"]["best"] == "ambix"
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["probe"]["SELD"] == pytest.approx(res["probe"]["SELD"])
    assert len(list((tmp_path / "out" / "predictions").glob("*.csv"))) == 1


def test_evaluate_seld_missing_dataset_names_the_key(tmp_path):
    with pytest.raises(SeldDataError, match="seld.dataset_dir"):
        evaluate_seld(None, "tut2018", FoaFeatureEmbedder(), TINY, 0)


def test_evaluate_seld_tut2018_runs_every_split_of_a_prefix(tmp_path, rng):
    from gramlib.core.audio import write_wav

    for split in (1, 8):
        for name in ("train_0", "train_1", "train_2", "test_0"):
            write_wav(tmp_path / f"wav_ov1_split{split}_30db" / f"{name}.wav",
                      0.1 * rng.standard_normal((4, 44100)).astype(np.float32), 44100)
            csv = tmp_path / f"desc_ov1_split{split}" / f"{name}.csv"
            csv.parent.mkdir(exist_ok=True)
            csv.write_text("sound_event_recording,start_time,end_time,ele,azi,dist\n"
                           "100032-3-0-0.wav,0.1,0.5,0,40,1\n7061-6-0-0.wav,0.4,0.9,10,-60,1\n")
    cfg = SeldConfig(epochs=2, subset="ov1", chunk_s=1.0)
    with pytest.warns(UserWarning, match="single-source frames"):  # noise does not match the labels
        res = evaluate_seld(tmp_path, "tut2018", FoaFeatureEmbedder(n_bands=4), cfg, 0, progress=False)
    assert sorted(res["subsets"]) == ["ov1_split1", "ov1_split8"]
    assert res["probe"]["ER_1s"] == pytest.approx(np.mean([r["probe"]["ER_1s"] for r in res["subsets"].values()]))
    assert res["subsets"]["ov1_split1"]["dataset"]["classes"] == ["3", "6"]
