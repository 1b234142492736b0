"""Evaluation glue: input adaptation between suites and models, event-frame pooling, averages."""
import pytest
import torch

from gramlib.eval import evaluation


@pytest.mark.parametrize("suite_ch,model_ch,note", [(1, 2, "mono duplicated"), (2, 2, "native"), (4, 1, "W channel"),
                                                     (2, 1, "ear mean"), (4, 2, "W channel duplicated"),
                                                     (2, 4, "ear mean duplicated"), (1, 1, "native")])
def test_adapt(suite_ch, model_ch, note):
    audio = torch.arange(suite_ch, dtype=torch.float32)[None, :, None].repeat(3, 1, 5)  # channel c holds c
    out, got = evaluation.adapt(audio, model_ch)
    assert got == note
    if note == "W channel" or note == "W channel duplicated":
        assert out.shape[1] == 1 and torch.all(out == 0)
    if note.startswith("ear mean"):
        assert out.shape[1] == 1 and torch.all(out == 0.5)


def test_pool_frames_averages_groups_and_keeps_the_tail():
    emb = torch.arange(10, dtype=torch.float32).reshape(1, 10, 1)
    ts = (torch.arange(10) + 0.5)[None] * 20.0
    pooled, stamps = evaluation.pool_frames(emb, ts, 80.0)
    assert pooled[0, :, 0].tolist() == [1.5, 5.5, 8.5] and stamps[0].tolist() == [40.0, 120.0, 180.0]
    assert evaluation.pool_frames(emb, ts, 0.0)[0] is emb
    assert evaluation.pool_frames(emb, ts * 4, 80.0)[0] is emb  # already at 80 ms


def test_average_skips_error_tasks():
    results = {"hear/words": {"first_metric": "top1_acc", "top1_acc": 0.5, "prediction_type": "multiclass"},
               "hear/pitch": {"first_metric": "pitch_acc", "pitch_acc": 0.7, "prediction_type": "multiclass"},
               "nathear-foa/words-loc": {"first_metric": "median_angular_error_deg",
                                         "median_angular_error_deg": 30.0, "prediction_type": "localization"}}
    assert evaluation.average(results) == {"hear": {"average": pytest.approx(60.0), "n_tasks": 2}}
