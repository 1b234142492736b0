"""The HEAR API of a GRAM checkpoint: the official validator plus hear-baseline's property tests."""
import subprocess
import sys

import pytest
import torch

from gramlib.core import config
from gramlib.model import checkpoint, hear
from gramlib.model.checkpoint import save_checkpoint
from gramlib.model.gram import build_model

PARAMS = config.load_params(profile="smoke")


def make_checkpoint(path, fmt="binaural", **model_over):
    import dataclasses

    model_cfg = dataclasses.replace(config.section(PARAMS, "model"), **model_over)
    _, model = build_model(fmt, model_cfg, config.section(PARAMS, "features"), seed=0)
    save_checkpoint(path, model, config={"format": fmt})
    return path


@pytest.fixture(scope="module")
def binaural(tmp_path_factory):
    return hear.load_model(str(make_checkpoint(tmp_path_factory.mktemp("bin"))))


def noise(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.slow
@pytest.mark.parametrize("fmt,over", [("binaural", {}), ("foa", {}), ("clean", {}),
                                      ("binaural", {"patch_mels": 128, "patch_frames": 2})])
def test_official_validator(tmp_path, fmt, over):
    path = make_checkpoint(tmp_path / "ckpt", fmt, **over)
    proc = subprocess.run([sys.executable, "-m", "gramlib.eval.validate", "gramlib.model.hear", "-m", str(path), "-d", "cpu"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Looks good!" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_attributes_are_python_ints(binaural):
    assert binaural.sample_rate == 32000
    assert type(binaural.scene_embedding_size) is int and type(binaural.timestamp_embedding_size) is int


def test_replicable_batched_and_sliced(binaural):
    audio = noise(3, 2, 32000 * 3)
    emb1, ts1 = hear.get_timestamp_embeddings(audio, binaural)
    emb2, _ = hear.get_timestamp_embeddings(audio, binaural)
    assert torch.equal(emb1, emb2)
    one = torch.cat([hear.get_timestamp_embeddings(audio[i:i + 1], binaural)[0] for i in range(3)])
    torch.testing.assert_close(one, emb1, rtol=1e-4, atol=1e-5)
    sliced, _ = hear.get_timestamp_embeddings(audio[1:], binaural)
    torch.testing.assert_close(sliced, emb1[1:], rtol=1e-4, atol=1e-5)
    scene = hear.get_scene_embeddings(audio, binaural)
    assert scene.shape == (3, binaural.scene_embedding_size) and scene.dtype == torch.float32
    torch.testing.assert_close(scene, emb1.mean(dim=1))
    assert emb1.dtype == torch.float32 and torch.isfinite(emb1).all()


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.0, 2.04, 4.7, 61.0])
def test_timestamps_on_an_exact_grid(binaural, seconds):
    n = int(seconds * 32000)
    emb, ts = hear.get_timestamp_embeddings(noise(1, 2, n), binaural)
    expected = (torch.arange(ts.shape[1], dtype=torch.float64) + 0.5) * 80.0
    torch.testing.assert_close(ts[0].double(), expected, rtol=0, atol=1e-3)  # no drift, even after a minute
    assert ts.max() <= 1000 * seconds and emb.shape[:2] == ts.shape
    assert ts.shape[1] == max(1, int((n / 2560) - 0.5) + 1)  # every column whose centre lies in the audio


def test_mono_is_duplicated(binaural):
    mono = noise(2, 40000)
    torch.testing.assert_close(hear.get_scene_embeddings(mono, binaural),
                               hear.get_scene_embeddings(mono[:, None].repeat(1, 2, 1), binaural))


def test_cls_embeddings(binaural):
    cls = hear.get_cls_embeddings(noise(2, 2, 70000), binaural)
    assert cls.shape == (2, binaural.cls_embedding_size) and torch.isfinite(cls).all()


@pytest.mark.parametrize("audio,match", [
    (torch.zeros(2, 3, 32000), "takes mono or 2-channel"),
    (torch.zeros(2, 32000, dtype=torch.float64), "float32"),
    (torch.full((1, 32000), float("nan")), "NaN"),
    (torch.zeros(1, 0), "empty"),
    (torch.zeros(0, 32000), "empty"),
    (torch.zeros(2, 2, 2, 100), "n_sounds"),
])
def test_bad_input_raises_value_error(binaural, audio, match):
    with pytest.raises(ValueError, match=match):
        hear.get_scene_embeddings(audio, binaural)


def test_clean_model_rejects_multichannel(tmp_path):
    model = hear.load_model(str(make_checkpoint(tmp_path / "clean", "clean")))
    with pytest.raises(ValueError, match="clean model takes mono"):
        hear.get_scene_embeddings(torch.zeros(1, 2, 32000), model)


def test_time_patching_has_20ms_columns(tmp_path):
    model = hear.load_model(str(make_checkpoint(tmp_path / "time", patch_mels=128, patch_frames=2)))
    _, ts = hear.get_timestamp_embeddings(noise(1, 2, 32000), model)
    torch.testing.assert_close(ts[0, :3], torch.tensor([10.0, 30.0, 50.0]))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="nowhere"):
        hear.load_model(str(tmp_path / "nowhere"))
