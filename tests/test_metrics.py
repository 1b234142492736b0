"""Scores against hand-computed cases."""
import math

import numpy as np
import pytest

from gramlib.eval import metrics


def ev(label, start_s, end_s):
    return {"label": label, "start": start_s * 1000.0, "end": end_s * 1000.0}


# ------------------------------------------------------------------------------ classification
Y = np.array([0, 0, 1, 1])
P1 = np.array([0.1, 0.6, 0.4, 0.9])  # score of class 1; class 0 gets 1 - p
P = np.stack([1 - P1, P1], axis=1)


def test_top1_and_targets_as_indices_or_one_hot():
    assert metrics.top1_acc(P, Y) == 0.5  # argmax: 0, 1, 0, 1
    assert metrics.top1_acc(P, np.eye(2)[Y]) == 0.5


def test_map_by_hand():
    # each class: ranked pos, neg, pos, neg -> AP = (1/1 + 2/3) / 2
    assert metrics.mAP(P, Y) == pytest.approx((1 + 2 / 3) / 2)


def test_aucroc_and_d_prime_by_hand():
    # class 1: positives 0.4, 0.9 vs negatives 0.1, 0.6 -> 3 of 4 pairs ordered -> AUC 0.75 (class 0 too)
    assert metrics.aucroc(P, Y) == pytest.approx(0.75)
    assert metrics.d_prime(P, Y) == pytest.approx(math.sqrt(2) * 0.6744897501960817)


def test_d_prime_perfect_separation_is_finite_cap():
    perfect = np.eye(2)[Y].astype(float)
    assert metrics.d_prime(perfect, Y) == pytest.approx(math.sqrt(2) * 4.753424308822899)
    assert metrics.aucroc(perfect, Y) == 1.0


def test_aucroc_skips_a_class_absent_from_targets():
    pred = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.7, 0.3, 0.0]])
    assert metrics.aucroc(pred, np.array([0, 1, 0])) == 1.0  # class 2 never occurs: left out


def test_chroma_uses_pitch_class_of_labels():
    vocab = ["60", "62", "72"]  # C4, D4, C5: not contiguous
    pred = np.array([[0.0, 0.1, 0.9]])  # predicts C5 for a C4
    assert metrics.chroma_acc(pred, np.array([0]), vocabulary=vocab) == 1.0
    assert metrics.chroma_acc(pred, np.array([0])) == 0.0  # heareval's index mod 12 gets this wrong
    assert metrics.pitch_acc(pred, np.array([0])) == 0.0
    assert metrics.chroma_acc(np.array([[0, 0, 1.0]]), np.array([0]), vocabulary=["C4", "Db4", "B#4"]) == 1.0


def test_chroma_equals_index_mod_12_on_contiguous_vocabulary(rng):
    vocab = [str(m) for m in range(21, 21 + 40)]  # starts on A0
    pred, tgt = rng.random((200, 40)), rng.integers(0, 40, 200)
    assert metrics.chroma_acc(pred, tgt, vocabulary=vocab) == metrics.chroma_acc(pred, tgt)


# ------------------------------------------------------------------------------ events
def test_event_onset_f_by_hand():
    ref = {"f1": [ev("a", 1.0, 2.0), ev("a", 3.0, 4.0), ev("b", 2.0, 2.5)]}
    est = {"f1": [ev("a", 1.1, 1.5),   # hit (0.1 s)
                  ev("a", 3.5, 4.0),   # 0.5 s late: miss
                  ev("b", 2.15, 3.0),  # hit (0.15 s; offsets are not evaluated)
                  ev("b", 5.0, 6.0)]}  # insertion
    out = metrics.event_onset_fms(est, ref)
    assert (out["n_tp"], out["n_sys"], out["n_ref"]) == (2, 4, 3)
    assert out["precision"] == 0.5 and out["recall"] == pytest.approx(2 / 3)
    assert metrics.event_onset_200ms_fms(est, ref) == pytest.approx(4 / 7)


def test_event_onset_matching_is_one_to_one_and_optimal_and_per_class():
    ref = {"f": [ev("a", 1.0, 2.0), ev("a", 1.35, 2.0)]}
    # 1.18 is within the collar of both references, 1.5 only of the second: the optimal matching pairs both
    assert metrics.event_onset_fms({"f": [ev("a", 1.18, 2), ev("a", 1.5, 2)]}, ref)["n_tp"] == 2
    # two estimates near one reference: one hit only
    assert metrics.event_onset_fms({"f": [ev("a", 0.95, 2), ev("a", 1.05, 2)]}, {"f": [ev("a", 1.0, 2)]})["n_tp"] == 1
    # right time, wrong class; and the same event in another file does not count
    assert metrics.event_onset_200ms_fms({"f": [ev("b", 1.0, 2)], "g": [ev("a", 1.0, 2)]},
                                         {"f": [ev("a", 1.0, 2)], "g": []}) == 0.0


def test_segment_error_rate_by_hand():
    ref = {"f": [ev("a", 0.0, 1.5), ev("b", 2.2, 2.8)]}  # a: segments 0-1, b: segment 2
    est = {"f": [ev("a", 0.2, 0.9), ev("c", 2.1, 2.5)]}  # a: segment 0, c: segment 2
    # seg 0 correct; seg 1 one deletion; seg 2 one substitution (b -> c); N = 3
    assert metrics.segment_error_counts(est, ref) == {"S": 1, "D": 1, "I": 0, "N": 3}
    assert metrics.segment_1s_er(est, ref) == pytest.approx(2 / 3)
    est["f"].append(ev("d", 3.5, 3.9))  # one insertion in a 4th segment
    assert metrics.segment_1s_er(est, ref) == pytest.approx(1.0)


# ------------------------------------------------------------------------------ regression
def test_great_circle_errors():
    pred = np.array([[0, 1, 0], [1, 0, 0], [-2, 0, 0], [5, 0, 0], [0, 0, 0]], float)
    tgt = np.array([[1, 0, 0]] * 5, float)
    assert metrics.angular_errors_deg(pred, tgt) == pytest.approx([90, 0, 180, 0, 90])
    assert metrics.median_angular_error_deg(pred, tgt) == pytest.approx(90)
    assert metrics.mean_angular_error_deg(pred, tgt) == pytest.approx(72)


def test_abs_errors_and_direction():
    assert metrics.score("median_abs_error_s", [0.3, 0.5, 0.9], [0.4, 0.5, 0.5]) == pytest.approx(0.1)
    assert metrics.score("mean_abs_error_s", [0.3, 0.5, 0.9], [0.4, 0.5, 0.5]) == pytest.approx(0.5 / 3)
    assert metrics.higher_is_better("top1_acc") and not metrics.higher_is_better("segment_1s_er")
    assert not metrics.higher_is_better("median_angular_error_deg")


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="unknown metric 'top5_acc'"):
        metrics.score("top5_acc", P, Y)
    with pytest.raises(ValueError, match="zero length"):
        metrics.angular_errors_deg(np.ones((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="do not match"):
        metrics.top1_acc(P, np.ones((4, 3)))
    with pytest.raises(ValueError, match="cannot read a pitch"):
        metrics.chroma_acc(P, Y, vocabulary=["dog", "cat"])
