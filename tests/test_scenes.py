"""The online scene mixer: determinism, lambda, SNR, noise placement, equivalence to a plain loop."""
import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from gramlib.scenes import mixer

RATE = 32000


def decaying(rng, shape, n_taps, rt60_s=0.3):
    return (rng.standard_normal(shape + (n_taps,)) * 10 ** (-3 * np.arange(n_taps) / (rt60_s * RATE))).astype(np.float32)


def batch(rng, b=3, c=2, n=3, s=8000, taps=1200):
    return dict(sources=rng.standard_normal((b, s)).astype(np.float32), source_rirs=decaying(rng, (b, c), taps),
                noises=rng.standard_normal((b, s)).astype(np.float32), noise_rirs=decaying(rng, (b, n, c), taps),
                snr_db=rng.uniform(5, 40, b).astype(np.float32), dry=np.zeros(b, dtype=bool))


def test_draw_scene_is_deterministic_and_in_range():
    a = mixer.draw_scene(7, 123, n_rirs=50, n_noises=9, snr_range_db=(5, 40), lambda_clean=0.3)
    assert a == mixer.draw_scene(7, 123, n_rirs=50, n_noises=9, snr_range_db=(5, 40), lambda_clean=0.3)
    others = [mixer.draw_scene(7, i, 50, 9, (5, 40), 0.3) for i in range(200)]
    assert len({s.rir_index for s in others}) > 30 and len({s.snr_db for s in others}) == 200
    assert all(0 <= s.rir_index < 50 and 0 <= s.noise_index < 9 and 5 <= s.snr_db <= 40 for s in others)
    assert 0.15 < np.mean([s.dry for s in others]) < 0.45  # per example, about lambda
    assert mixer.draw_scene(8, 123, 50, 9, (5, 40), 0.3) != a


def test_lambda_one_gives_dry_duplicated_output_and_zero_never():
    assert all(mixer.draw_scene(0, i, 5, 5, (5, 40), 1.0).dry for i in range(50))
    assert not any(mixer.draw_scene(0, i, 5, 5, (5, 40), 0.0).dry for i in range(50))
    rng = np.random.default_rng(0)
    data = batch(rng, c=4)
    data["dry"][:] = True
    out = mixer.mix_batch(**data)
    assert out.shape == (3, 4, 8000) and out.dtype == torch.float32
    assert torch.equal(out, torch.from_numpy(data["sources"])[:, None].expand(3, 4, 8000))


def test_realized_snr_and_interaural_cues():
    rng = np.random.default_rng(1)
    data = batch(rng, b=2, n=4)
    spec = mixer.draw_scene(3, 0, 1, 1, (5, 40))
    noise = mixer.place_noise(rng.standard_normal(5000), 8000, spec, sample_rate_hz=RATE, fade_s=0.01)
    data["noises"] = np.stack([noise, noise])
    out = mixer.mix_batch(**data).numpy()
    start, stop = np.flatnonzero(noise)[[0, -1]] + [0, 1]
    for b in range(2):
        target = np.stack([fftconvolve(data["sources"][b], h)[:8000] for h in data["source_rirs"][b]])
        added = out[b] - target
        snr = 10 * np.log10(np.sum(target[:, start:stop] ** 2) / np.sum(added[:, start:stop] ** 2))
        assert abs(snr - data["snr_db"][b]) < 0.5
        # one gain for all channels: the noise's level difference between the ears survives
        dry_noise = sum(np.stack([fftconvolve(noise, h)[:8000] for h in rirs]) for rirs in data["noise_rirs"][b])
        gains = np.sum(added * dry_noise, axis=1) / np.sum(dry_noise ** 2, axis=1)
        assert np.allclose(gains[0], gains[1], rtol=1e-3)


def test_mix_batch_equals_per_example_loop_with_zero_padded_noise():
    rng = np.random.default_rng(2)
    data = batch(rng, b=3, c=4, n=5)
    data["noise_rirs"][1, 1:] = 0  # localized noise padded to 5 slots
    data["dry"][2] = True
    out = mixer.mix_batch(**{k: torch.from_numpy(v) for k, v in data.items()}).numpy()
    for b in range(2):
        target = np.stack([fftconvolve(data["sources"][b], h)[:8000] for h in data["source_rirs"][b]])
        noise = sum(np.stack([fftconvolve(data["noises"][b], h)[:8000] for h in rirs]) for rirs in data["noise_rirs"][b])
        gain = np.sqrt(np.sum(target ** 2) / np.sum(noise ** 2) * 10 ** (-data["snr_db"][b] / 10))
        assert np.allclose(out[b], target + gain * noise, atol=1e-4 * np.abs(target).max())
    assert np.array_equal(out[2], np.repeat(data["sources"][2][None], 4, 0))


def test_place_noise_crops_places_and_fades():
    long_noise = np.ones(50000, dtype=np.float32)
    out = mixer.place_noise(long_noise, 20000, 0.5, sample_rate_hz=RATE)
    fade = int(0.2 * RATE)
    assert out.shape == (20000,) and 0 < out[0] < 0.001 and out[fade + 10] == 1.0 and out[-1] < 0.001
    ramp = np.arange(50000, dtype=np.float32)  # the crop starts at offset * (50000 - 20000 + 1)
    crop = mixer.place_noise(ramp, 20000, 0.5, sample_rate_hz=RATE, fade_s=0.0)
    assert crop[0] == 15000 and crop[-1] == 34999
    short = mixer.place_noise(np.ones(8000, dtype=np.float32), 20000, 0.5, sample_rate_hz=RATE)
    nz = np.flatnonzero(short)
    assert (nz[0], nz[-1] + 1) == (6000, 14000) and np.all(np.diff(short[nz[0]:nz[0] + 4000]) > 0)
    spec = mixer.draw_scene(0, 4, 3, 3, (5, 40))
    assert np.array_equal(mixer.place_noise(long_noise, 20000, spec), mixer.place_noise(long_noise, 20000, spec))
    windows = mixer.active_windows(torch.from_numpy(np.stack([short, np.zeros_like(short)])))
    assert windows.tolist() == [[6000, 14000], [0, 0]]


def test_bad_parameters_raise():
    with pytest.raises(mixer.SceneError, match="lambda_clean = 1.5"):
        mixer.draw_scene(0, 0, 3, 3, (5, 40), lambda_clean=1.5)
    with pytest.raises(mixer.SceneError, match="n_rirs must be a positive integer, got 0"):
        mixer.draw_scene(0, 0, 0, 3, (5, 40))
    with pytest.raises(mixer.SceneError, match="snr_range_db"):
        mixer.draw_scene(0, 0, 3, 3, snr_range_db=(40, 5))
    data = batch(np.random.default_rng(3))
    data["noise_rirs"] = data["noise_rirs"][:, :, :1]
    with pytest.raises(mixer.SceneError, match="noise_rirs"):
        mixer.mix_batch(**data)
    with pytest.raises(mixer.SceneError, match="offset"):
        mixer.place_noise(np.ones(10), 20, 1.0)
