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


# ---------------------------------------------------------------------- any HEAR 2021 module
import types  # noqa: E402

import numpy as np  # noqa: E402

from gramlib.core.audio import write_wav  # noqa: E402
from gramlib.core.config import EvaluateConfig  # noqa: E402
from gramlib.core.tasks import TaskError, TaskWriter  # noqa: E402
from gramlib.eval import baselines  # noqa: E402
from gramlib.eval.hearmodule import HearModel, HearModuleError  # noqa: E402

QUICK = EvaluateConfig(probe_grid="smoke", max_epochs=6, patience_checks=2, check_every=3, bootstrap=0,
                       sensitivity_rel=0.0)
META = {"embedding_type": "scene", "prediction_type": "multiclass", "split_mode": "trainvaltest",
        "sample_duration": 0.5, "evaluation": ["top1_acc"]}


def small_task(root, channels: int, rate: int = 32000):
    """Two classes (tone / noise), 0.5-s clips of ``channels`` channels at ``rate``."""
    rng = np.random.default_rng(0)
    writer = TaskWriter(root, "toy", {**META, "task_name": "toy"}, rate)
    t = np.arange(rate // 2) / rate
    for i, split in enumerate(["train"] * 6 + ["valid"] * 2 + ["test"] * 2):
        clip = np.sin(2 * np.pi * 440 * t) if i % 2 else np.clip(rng.standard_normal(t.size) / 3, -1, 1)
        writer.add(split, f"c{i}.wav", np.repeat(0.3 * clip[None], channels, 0).astype(np.float32), str(i % 2))
    return writer.close()


def recording_module(rate: int, channels: int | None):
    """A HEAR module that records the audio shapes it is given (a mean-power embedding)."""
    module = types.ModuleType("recording_module")
    seen = []

    class Model:
        sample_rate, scene_embedding_size, timestamp_embedding_size = rate, 2, 2

    if channels is not None:
        Model.audio_channels = channels

    def scene(audio, model):
        seen.append(tuple(audio.shape))
        power = audio.square().reshape(audio.shape[0], -1)
        return torch.stack([power.mean(1), power.max(1).values], 1)

    module.load_model = lambda path="": Model()
    module.get_scene_embeddings = scene
    module.get_timestamp_embeddings = lambda audio, model: (scene(audio, model)[:, None], torch.zeros(audio.shape[0], 1))
    module.seen = seen
    return module


def test_a_module_at_another_rate_gets_the_task_at_its_rate_mono_as_n_by_samples(tmp_path):
    task = small_task(tmp_path, channels=1)
    module = recording_module(16000, channels=None)
    res = evaluation.evaluate_task(HearModel.load(module), task, QUICK, seed=0)
    assert set(module.seen) == {(6, 8000), (2, 8000)}  # split by split (train 6, valid 2, test 2): 0.5 s at 16 kHz, (n, S)
    assert 0.0 <= res["top1_acc"] <= 1.0 and res["n_test"] == 2


def test_the_intensity_baseline_is_a_module_like_any_other(tmp_path):
    task = small_task(tmp_path, channels=4)
    res = evaluation.evaluate_task(baselines.baseline("intensity"), task, QUICK, seed=0)
    assert res["input"] == "native" and 0.0 <= res["top1_acc"] <= 1.0


def test_clips_are_padded_or_cut_to_the_task_duration(tmp_path):
    task = small_task(tmp_path, channels=2)
    write_wav(task / "32000" / "train" / "c0.wav", np.zeros((2, 9000), np.float32))  # short
    write_wav(task / "32000" / "test" / "c9.wav", np.ones((2, 40000), np.float32) * 0.1)  # long
    module = recording_module(32000, channels=2)
    evaluation.evaluate_task(HearModel.load(module), task, QUICK, seed=0)
    assert {shape[1:] for shape in module.seen} == {(2, 16000)}
    np.testing.assert_array_equal(evaluation.fit_length(np.ones((1, 5)), 3), np.ones((1, 3)))
    np.testing.assert_array_equal(evaluation.fit_length(np.ones((1, 2)), 3), [[1.0, 1.0, 0.0]])


def test_a_clip_with_another_channel_count_is_an_error_naming_it(tmp_path):
    task = small_task(tmp_path, channels=2)
    write_wav(task / "32000" / "valid" / "c7.wav", np.zeros((1, 16000), np.float32))
    with pytest.raises(TaskError, match=r"valid/c7.wav has 1 channel\(s\); the task's clips have 2"):
        evaluation.evaluate_task(HearModel.load(recording_module(32000, 2)), task, QUICK, seed=0)


def test_what_is_not_a_hear_module_is_named():
    with pytest.raises(HearModuleError, match="cannot import the HEAR module 'no_such_module'"):
        HearModel.load("no_such_module")
    empty = types.ModuleType("empty")
    empty.load_model = lambda path="": object()
    with pytest.raises(HearModuleError, match="empty is not a HEAR 2021 module: it has no get_scene_embeddings"):
        HearModel.load(empty)
    module = recording_module(32000, 1)
    module.load_model = lambda path="": types.SimpleNamespace(sample_rate=32000)
    with pytest.raises(HearModuleError, match="has no scene_embedding_size, timestamp_embedding_size"):
        HearModel.load(module)
