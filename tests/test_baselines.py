"""Baselines: HEAR-API properties of the naive model; the classical localizers on anechoic renders."""
import numpy as np
import pytest
import torch

from gramlib.eval import baselines, metrics
from gramlib.model import hear

NAIVE_64 = {"baselines": {"naive_dim": 64}}

SR = baselines.SAMPLE_RATE_HZ


def directions(az_deg, el_deg):
    az, el = np.radians(az_deg), np.radians(el_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)


def test_naive_hear_properties(rng):
    model = baselines.load_baseline("naive", NAIVE_64)
    audio = torch.from_numpy(rng.uniform(-0.5, 0.5, (3, 2, int(1.07 * SR))).astype(np.float32))
    emb, ts = model.timestamp_embeddings(audio)
    assert emb.dtype == torch.float32 and emb.shape == (3, ts.shape[1], 64) and ts.shape[0] == 3
    steps = torch.diff(ts[0])
    assert torch.allclose(steps, torch.full_like(steps, 50.0)) and ts[0, 0] == 0 and ts[0, -1] <= 1070
    scene = model.scene_embeddings(audio)
    assert scene.shape == (3, 64) and torch.isfinite(scene).all()
    assert torch.allclose(model.scene_embeddings(audio[1:2]), scene[1:2], atol=1e-5)  # batch = one by one
    again = baselines.load_baseline("naive", NAIVE_64).scene_embeddings(audio)
    assert torch.equal(again, scene)  # the projection is fixed by its seed


def test_naive_mixes_down_to_one_channel(rng):
    model = baselines.NaiveLogMel(dim=32)
    mono = torch.from_numpy(rng.normal(size=(2, 1, SR // 2)).astype(np.float32))
    foa = torch.cat([mono, torch.randn(2, 3, SR // 2)], dim=1)  # W first: the other channels are ignored
    assert torch.equal(model.scene_embeddings(foa), model.scene_embeddings(mono))
    assert torch.equal(model.scene_embeddings(mono[:, 0]), model.scene_embeddings(mono))  # (n, S) input
    ears = torch.cat([mono, 3 * mono], dim=1)
    assert torch.allclose(model.scene_embeddings(ears), model.scene_embeddings(2 * mono), atol=1e-5)


def test_intensity_localizer_recovers_plane_waves(rng):
    true = directions(np.array([0.0, 45, 90, 135, 200, 300, 10]), np.array([0.0, 20, -30, 60, -80, 10, 89]))
    s = rng.normal(size=(len(true), 1, SR // 2))
    ambix = np.concatenate([s, s * true[:, 1, None, None], s * true[:, 2, None, None], s * true[:, 0, None, None]], 1)
    est = baselines.IntensityLocalizer().localize(torch.from_numpy(ambix.astype(np.float32)))
    assert metrics.angular_errors_deg(est, true).max() < 2.0
    assert metrics.score("median_angular_error_deg", est, true) < 2.0


@pytest.fixture(scope="module")
def hrtf_localizer():
    return baselines.load_baseline("gcc-hrtf")


def test_binaural_localizer_recovers_the_lateral_angle(hrtf_localizer):
    from gramlib.scenes.hrtf import load_kemar

    kemar = load_kemar(SR)
    wanted = [(0, 0), (30, 0), (90, 0), (150, 20), (250, -20), (320, 40)]
    idx = [int(np.argmin(np.abs((kemar.azimuth_deg - a + 180) % 360 - 180) + np.abs(kemar.elevation_deg - e)))
           for a, e in wanted]
    noise = np.random.default_rng(1).normal(size=SR // 2)
    ears = np.stack([[np.convolve(noise, kemar.hrirs[i, c])[: SR // 2] for c in (0, 1)] for i in idx])
    est = hrtf_localizer.localize(torch.from_numpy(ears.astype(np.float32)))
    true = kemar.directions_xyz[idx]
    lateral = np.degrees(np.arcsin(np.clip(np.stack([est[:, 1], true[:, 1]]), -1, 1)))  # angle from the median plane
    assert np.abs(lateral[0] - lateral[1]).max() < 5.0
    emb = hrtf_localizer.scene_embeddings(torch.from_numpy(ears.astype(np.float32)))
    assert emb.shape == (len(idx), hrtf_localizer.scene_embedding_size)
    assert emb[2, -1] > 0.5 and emb[4, -1] < -0.3  # ITD (ms): left ear leads for a source on the left


def test_registry_and_bad_inputs():
    with pytest.raises(ValueError, match="unknown baseline 'wav2vec'"):
        baselines.load_baseline("wav2vec")
    gram = baselines.baseline("random-gram")  # the project's params.yaml: baselines.random_gram_variant
    assert gram.module is hear and gram.model.config["trained"] is False and gram.audio_channels == 2
    for name, channels in (("naive", 1), ("intensity", 4), ("gcc-hrtf", 2)):
        model = baselines.baseline(name, NAIVE_64)
        assert model.module is baselines and model.audio_channels == channels and not model.has_cls
    foa = baselines.IntensityLocalizer()
    with pytest.raises(ValueError, match="C in \\(4,\\)"):
        foa.localize(torch.zeros(1, 2, SR))
    with pytest.raises(ValueError, match="NaN"):
        foa.localize(torch.full((1, 4, SR), float("nan")))
    with pytest.raises(ValueError, match="float32"):
        foa.localize(torch.zeros(1, 4, SR, dtype=torch.float64))
