"""SELD metrics against hand-computed values (see the derivations in the comments)."""
import numpy as np
import pytest

from gramlib.seld.labels import SeldLabels, unit_vector
from gramlib.seld.metrics import hungarian_pairs, seld_metrics_2019, seld_metrics_2021


def event(frames, cls, track, az, el=0.0):
    return [(f, cls, track, az, el) for f in frames]


# Reference, 20 frames = two 1-s segments, 3 classes:
#   A class 0 at   0 deg, frames 0-4      B class 1 at  90 deg, frames 0-4
#   C class 2 at 180 deg, frames 10-14    D class 0 at -90 deg, frames 12-16
# Prediction: A right; B with the wrong class (2, at its true 90 deg); C 30 deg off (210 deg); D missed.
REF = SeldLabels.from_rows(event(range(0, 5), 0, 0, 0) + event(range(0, 5), 1, 0, 90)
                           + event(range(10, 15), 2, 0, 180) + event(range(12, 17), 0, 0, -90), 20)
PRED = SeldLabels.from_rows(event(range(0, 5), 0, 0, 0) + event(range(0, 5), 2, 0, 90)
                            + event(range(10, 15), 2, 0, 210), 20)


def test_perfect_predictions():
    m21 = seld_metrics_2021([REF], [REF], 3)
    assert (m21["ER20"], m21["F20"], m21["LE_CD_deg"], m21["LR_CD"], m21["SELD"]) == (0, 1, 0, 1, 0)
    m19 = seld_metrics_2019([REF], [REF], 3)
    assert (m19["ER_1s"], m19["F_1s"], m19["DOA_error_deg"], m19["frame_recall"]) == (0, 1, 0, 1)


def test_hand_case_dcase2021():
    m = seld_metrics_2021([REF], [PRED], 3)
    # segment 0: class 0 TP (0 deg); class 1 reference only -> FN; class 2 prediction only -> FP
    #            FP = FN = 1 -> one substitution
    # segment 1: class 2 paired at 30 deg > 20 -> FP (but a localization hit, LE 30);
    #            class 0 (D) reference only -> FN; again one substitution
    # ER20 = (1 + 1) / 4 reference tracks
    assert m["ER20"] == pytest.approx(0.5)
    # per class F: c0 2*1/(2+0+1) = 2/3, c1 0, c2 0 (two FP) -> macro 2/9
    assert m["classwise"]["F20"] == pytest.approx([2 / 3, 0, 0])
    assert m["F20"] == pytest.approx(2 / 9)
    # LE: c0 0 (A), c1 no hit -> 180, c2 30; LR: c0 1 of 2, c1 0 of 1, c2 1 of 1
    assert m["classwise"]["LE_CD_deg"] == pytest.approx([0, 180, 30], abs=1e-6)
    assert m["LE_CD_deg"] == pytest.approx(70.0, abs=1e-6)
    assert m["classwise"]["LR_CD"] == pytest.approx([0.5, 0, 1])
    assert m["LR_CD"] == pytest.approx(0.5)
    assert m["SELD"] == pytest.approx(39 / 72, abs=1e-6)  # mean(1/2, 7/9, 7/18, 1/2)
    assert m["F20_micro"] == pytest.approx(1 / 3)  # TP 1, FP 2, FN 2


def test_hand_case_dcase2019():
    m = seld_metrics_2019([REF], [PRED], 3)
    # segments: 0 -> ref {0,1} pred {0,2}: TP1 FP1 FN1 (S=1); 1 -> ref {0,2} pred {2}: TP1 FN1 (D=1)
    assert m["ER_1s"] == pytest.approx(2 / 4)
    assert m["F_1s"] == pytest.approx(4 / 7)
    # class-agnostic DoA: frames 0-4 two exact pairs each (10 pairs, 0 deg); frames 10-14 one pair
    # each at 30 deg (in 12-14 the Hungarian pairs 210 with C at 180, not with D at -90): 150 / 15
    assert m["DOA_error_deg"] == pytest.approx(10.0, abs=1e-6)
    assert m["n_doa_pairs"] == 15
    # equal counts in frames 0-11 and 17-19; not in 12-16 -> 15 / 20
    assert m["frame_recall"] == pytest.approx(0.75)


def test_hungarian_picks_the_swap():
    ref = unit_vector([0, 90], [0, 0])
    pred = unit_vector([85, 5], [0, 0])  # in listed order the pairs would be 85 deg apart each
    rows, cols, dist = hungarian_pairs(ref, pred)
    assert list(cols[np.argsort(rows)]) == [1, 0]
    assert dist == pytest.approx([5, 5], abs=1e-9)
    ref_l = SeldLabels.from_rows(event(range(10), 0, 0, 0) + event(range(10), 0, 1, 90), 10)
    pred_l = SeldLabels.from_rows(event(range(10), 0, 0, 85) + event(range(10), 0, 1, 5), 10)
    m = seld_metrics_2021([ref_l], [pred_l], 1)
    assert m["LE_CD_deg"] == pytest.approx(5.0, abs=1e-6) and m["F20"] == 1.0 and m["ER20"] == 0.0
    assert seld_metrics_2019([ref_l], [pred_l], 1)["DOA_error_deg"] == pytest.approx(5.0, abs=1e-6)


def test_consecutive_same_class_events_on_one_track_are_hits():
    # two class-0 events (tracks 0 and 1) that follow each other in one segment, predicted on track 0
    ref = SeldLabels.from_rows(event(range(0, 4), 0, 0, 0) + event(range(5, 9), 0, 1, 120), 10)
    pred = SeldLabels.from_rows(event(range(0, 4), 0, 0, 0) + event(range(5, 9), 0, 0, 120), 10)
    m = seld_metrics_2021([ref], [pred], 1)
    assert (m["ER20"], m["F20"], m["LR_CD"]) == (0.0, 1.0, 1.0)


def test_false_positive_only_and_empty_reference_class():
    ref = SeldLabels.from_rows(event(range(10), 0, 0, 0), 10)
    pred = SeldLabels.from_rows(event(range(10), 0, 0, 0) + event(range(3), 1, 0, 45), 10)
    m = seld_metrics_2021([ref], [pred], 2)
    assert m["ER20"] == pytest.approx(1.0)  # one insertion over one reference track
    assert m["F20"] == 1.0  # macro over the classes in the reference only (class 0)
    assert m["F20_micro"] == pytest.approx(2 / 3)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="frames"):
        seld_metrics_2021([REF], [SeldLabels.empty(30)], 3)
