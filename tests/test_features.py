"""Features: log-mels and FOA intensity vectors against a direct numpy computation; crops, padding, norm."""
import numpy as np
import pytest
import torch

from gramlib.core.config import FeaturesConfig
from gramlib.model.features import FeatureExtractor, instance_norm, pad_frames, random_crops

CFG = FeaturesConfig()
N_SAMPLES = 3200  # 0.1 s: 11 frames


def numpy_stft(x: np.ndarray, cfg: FeaturesConfig) -> np.ndarray:
    """(A, S) -> (A, K, T) complex: centred frames, reflect padding, periodic Hann window."""
    half = cfg.n_fft // 2
    padded = np.pad(x, ((0, 0), (half, half)), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.win_length) / cfg.win_length)
    n_frames = 1 + (padded.shape[1] - cfg.n_fft) // cfg.hop_length
    frames = np.stack([padded[:, t * cfg.hop_length: t * cfg.hop_length + cfg.n_fft] for t in range(n_frames)], -1)
    return np.fft.rfft(frames * window[None, :, None], axis=1)  # (A, K, T)


def numpy_htk_mel(cfg: FeaturesConfig) -> np.ndarray:
    """(K, F) triangular HTK mel filters without normalisation."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    freqs = np.linspace(0, cfg.sample_rate_hz / 2, cfg.n_fft // 2 + 1)
    edges = 700.0 * (10 ** (np.linspace(mel(cfg.f_min_hz), mel(cfg.f_max_hz), cfg.n_mels + 2) / 2595.0) - 1.0)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def numpy_foa_features(wav: np.ndarray, cfg: FeaturesConfig) -> np.ndarray:
    """(4, S) ambiX W, Y, Z, X -> (7, T, F), written out from the formula in gramlib.model.features."""
    spec = numpy_stft(wav.astype(np.float64), cfg)  # (4, K, T)
    fb = numpy_htk_mel(cfg)  # (K, F)
    power = np.abs(spec) ** 2
    logmel = np.log(np.einsum("akt,kf->atf", power, fb) + cfg.log_offset)  # (4, T, F)
    w, x, y, z = spec[0], spec[3], spec[1], spec[2]
    energy = power.sum(0) + 1e-6
    iv = np.stack([2 * np.real(np.conj(w) * d) / energy for d in (x, y, z)])  # (3, K, T)
    return np.concatenate([logmel, np.einsum("akt,kf->atf", iv, fb)])


@pytest.mark.parametrize("fmt, channels", [("clean", 1), ("binaural", 2), ("foa", 7)])
def test_shapes_and_frames(fmt, channels):
    extractor = FeatureExtractor(CFG, fmt)
    wav = torch.randn(3, extractor.audio_channels, N_SAMPLES)
    feats = extractor(wav)
    assert feats.shape == (3, channels, extractor.frames(N_SAMPLES), CFG.n_mels) == (3, channels, 11, 128)
    assert feats.dtype == torch.float32 and extractor.n_channels == channels
    assert extractor.frames(10 * CFG.sample_rate_hz) == 1001


def test_wrong_channel_count_is_rejected():
    with pytest.raises(ValueError, match="foa features need waveforms shaped"):
        FeatureExtractor(CFG, "foa")(torch.randn(1, 2, N_SAMPLES))
    with pytest.raises(ValueError, match="unknown format"):
        FeatureExtractor(CFG, "stereo")


def test_foa_features_match_numpy(rng):
    wav = rng.standard_normal((4, N_SAMPLES)) * np.array([[1.0], [0.3], [0.5], [0.8]])
    ours = FeatureExtractor(CFG, "foa")(torch.tensor(wav[None], dtype=torch.float32))[0].double().numpy()
    want = numpy_foa_features(wav, CFG)
    np.testing.assert_allclose(ours[:4], want[:4], atol=2e-4)  # log-mels
    np.testing.assert_allclose(ours[4:], want[4:], atol=1e-3 * np.abs(want[4:]).max())  # IVs


def test_plane_wave_gives_its_direction(rng):
    """For one SN3D plane wave from unit vector u, I / E = u in every bin: IV_c = u_c * sum_k fb[k]."""
    az, el = np.deg2rad(60.0), np.deg2rad(20.0)  # front-left, above: x > 0, y > 0, z > 0
    u = np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
    s = rng.standard_normal(N_SAMPLES)
    wav = np.stack([s, u[1] * s, u[2] * s, u[0] * s])  # ACN: W, Y, Z, X
    extractor = FeatureExtractor(CFG, "foa")
    iv = extractor(torch.tensor(wav[None], dtype=torch.float32))[0, 4:].numpy()  # (3, T, F)
    fb_sum = extractor.mel.fb.sum(0).numpy()  # (F,)
    np.testing.assert_allclose(iv, np.broadcast_to(u[:, None, None] * fb_sum, iv.shape), atol=1e-4, rtol=1e-3)


def test_fp32_under_autocast():
    extractor = FeatureExtractor(CFG, "binaural")
    wav = torch.randn(2, 2, N_SAMPLES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = extractor(wav)
        normed = instance_norm(feats.bfloat16())
    assert feats.dtype == normed.dtype == torch.float32
    torch.testing.assert_close(feats, extractor(wav))


def test_instance_norm_per_crop():
    x = torch.randn(3, 7, 20, 16) * torch.tensor([1.0, 5.0, 0.5])[:, None, None, None] + 4.0
    y = instance_norm(x)
    torch.testing.assert_close(y.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=(1, 2, 3), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


def test_pad_frames():
    x = torch.randn(2, 2, 1001, 8)
    y = pad_frames(x, 1024)
    assert y.shape == (2, 2, 1024, 8)
    assert torch.equal(y[:, :, :1001], x) and not y[:, :, 1001:].any()
    with pytest.raises(ValueError, match="already longer"):
        pad_frames(y, 1001)


def test_random_crops_are_windows_of_their_clip():
    B, T, L, n = 3, 50, 20, 4
    t = torch.arange(T, dtype=torch.float32)
    feats = (t[None, None, :, None] + 1000 * torch.arange(B)[:, None, None, None]).expand(B, 2, T, 5)
    crops = random_crops(feats, n, L, torch.Generator().manual_seed(1))
    assert crops.shape == (B * n, 2, L, 5)
    clip, start = crops[:, 0, 0, 0] // 1000, crops[:, 0, 0, 0] % 1000
    assert torch.equal(clip, torch.arange(B).repeat_interleave(n).float())
    assert (start >= 0).all() and (start <= T - L).all()
    assert torch.equal(crops[:, 1, :, 3] % 1000, start[:, None] + torch.arange(L))  # contiguous, all channels
    again = random_crops(feats, n, L, torch.Generator().manual_seed(1))
    assert torch.equal(crops, again)
    with pytest.raises(ValueError, match="crop_frames"):
        random_crops(feats, n, T + 1, torch.Generator())


def test_random_crops_cover_every_start():
    feats = torch.arange(12, dtype=torch.float32)[None, None, :, None]  # T = 12
    starts = random_crops(feats, 2000, 10, torch.Generator().manual_seed(0))[:, 0, 0, 0]
    assert set(starts.tolist()) == {0.0, 1.0, 2.0}
