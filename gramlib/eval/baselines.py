"""Reference models, evaluated through the same code path as GRAM.

This module is a HEAR 2021 module (``load_model(name)`` builds the baseline ``name``, default ``naive``), and
every baseline model declares ``sample_rate``, ``scene_embedding_size``, ``timestamp_embedding_size`` and
``audio_channels``, with ``scene_embeddings(audio) -> (n, D)`` and ``timestamp_embeddings(audio) -> ((n, T, D),
(n, T) ms)`` on float32 audio ``(n, C, S)`` (or mono ``(n, S)``) at 32 kHz behind the module's functions;
``formats`` says which Nat-HEAR formats it takes. The two classical localizers
also have ``localize(audio) -> (n, 3)`` unit vectors, scored with the same metrics as a probe's output
without any training; their embeddings are the cues they match, so a probe can be trained on them too.

* ``naive`` -- a HEAR-naive-like model: log-mel (2048-point FFT, 128 bands to 16 kHz, 50-ms hop) through
  a fixed Gaussian random projection (seed 0) to ``naive_dim`` (512 by default: hearbaseline's 4096
  makes the CPU probes 8x slower without changing what the baseline is). Single-channel: it takes W of
  FOA, the mean of the ears for binaural, mono as is (paper §4.1 feeds W to single-channel models).
* ``intensity`` -- FOA (ambiX W, Y, Z, X; SN3D) direction of the energy-weighted active intensity
  ``sum 2 Re(W* [X, Y, Z])`` over the frames and the 100 Hz - 8 kHz bins (a plane wave gives exactly its
  direction; reverberation and noise pull it toward the room's energy flow).
* ``gcc-hrtf`` -- binaural: per-band ILD (16 log-spaced bands, 200 Hz - 12 kHz) and the GCC-PHAT ITD
  of the two ears, matched (weighted least squares) against the same cues of each of the 710 MIT KEMAR
  HRIRs; the best template's direction is the estimate. ILD and ITD hardly differ between a direction
  and its front/back mirror (the cone of confusion), so front/back and elevation errors are frequent;
  the lateral angle is what it recovers reliably.
* ``random-gram`` -- an untrained GRAM with the configuration of ``baselines.random_gram_variant``, served by
  the GRAM HEAR module (:mod:`gramlib.model.hear`).

:func:`baseline` returns any of them as a :class:`gramlib.eval.hearmodule.HearModel` (module + model).

No blind T60 estimator is provided.
"""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np
import torch
from torch import nn
from torchaudio.functional import melscale_fbanks

from ..core.config import ConfigError, find_params, load_params, section
from ..model import hear
from .hearmodule import HearModel

SAMPLE_RATE_HZ = 32000


def as_batch(audio: torch.Tensor, channels: tuple[int, ...]) -> torch.Tensor:
    """Checked ``(n, C, S)`` float32 audio; mono ``(n, S)`` becomes ``(n, 1, S)``."""
    if not isinstance(audio, torch.Tensor) or audio.dtype != torch.float32:
        raise ValueError(f"audio must be a float32 torch.Tensor; got {getattr(audio, 'dtype', type(audio))}")
    audio = audio[:, None] if audio.ndim == 2 else audio
    if audio.ndim != 3 or audio.shape[1] not in channels or audio.shape[0] == 0 or audio.shape[2] < 2048:
        raise ValueError(f"audio must be (n, C, S) with C in {channels}, n >= 1, S >= 2048; got {tuple(audio.shape)}")
    if not torch.isfinite(audio).all():
        raise ValueError("audio contains NaN or inf")
    return audio


def stft(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Complex STFT ``(n, C, S)`` -> ``(n, C, K, T)``, Hann window, centred frames."""
    n, c, s = audio.shape
    spec = torch.stft(audio.reshape(n * c, s), n_fft, hop_length=hop, window=torch.hann_window(n_fft),
                      center=True, return_complex=True)
    return spec.reshape(n, c, *spec.shape[-2:])


def frame_times_ms(n_frames: int, hop: int, n: int) -> torch.Tensor:
    """Centre of centred frame i = i * hop samples, in ms, ``(n, T)``."""
    return (torch.arange(n_frames, dtype=torch.float64) * hop / SAMPLE_RATE_HZ * 1000.0).float().expand(n, -1)


class HearBaseline(nn.Module):
    """Shared HEAR-API plumbing: subclasses implement ``frame_features(audio) -> (n, T, D)``."""

    sample_rate = SAMPLE_RATE_HZ
    audio_channels = 1  # what the evaluator gives it: a mono model gets W of FOA, the mean of the ears
    channels: tuple[int, ...] = (1, 2, 4)
    formats: tuple[str, ...] = ("clean", "binaural", "foa")
    hop = 1600

    def frame_features(self, audio: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def timestamp_embeddings(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.frame_features(as_batch(audio, self.channels)).float()
        return emb, frame_times_ms(emb.shape[1], self.hop, emb.shape[0]).contiguous()

    @torch.no_grad()
    def scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        return self.timestamp_embeddings(audio)[0].mean(dim=1)


class NaiveLogMel(HearBaseline):
    """Log-mel of the single-channel mix-down through a fixed random projection."""

    n_fft, n_mels, hop = 2048, 128, 1600  # 64-ms window, 50-ms hop

    def __init__(self, dim: int = 512, seed: int = 0):
        super().__init__()
        self.scene_embedding_size = self.timestamp_embedding_size = int(dim)
        fb = melscale_fbanks(self.n_fft // 2 + 1, 0.0, SAMPLE_RATE_HZ / 2, self.n_mels, SAMPLE_RATE_HZ, mel_scale="htk")
        self.register_buffer("mel", fb)  # (K, F)
        proj = torch.randn(self.n_mels, dim, generator=torch.Generator().manual_seed(seed)) / self.n_mels ** 0.5
        self.register_buffer("projection", proj)  # (F, D)

    @staticmethod
    def mono(audio: torch.Tensor) -> torch.Tensor:
        """(n, 1, S): W of FOA (channel 0), mean of the ears, or mono as is."""
        return audio[:, :1] if audio.shape[1] in (1, 4) else audio.mean(dim=1, keepdim=True)

    def frame_features(self, audio: torch.Tensor) -> torch.Tensor:
        power = stft(self.mono(audio), self.n_fft, self.hop).abs().square()[:, 0]  # (n, K, T)
        logmel = torch.log(power.transpose(1, 2) @ self.mel + 1e-5)  # (n, T, F)
        return logmel @ self.projection  # (n, T, D)


def log_bands(f_lo_hz: float, f_hi_hz: float, n_bands: int, n_fft: int) -> torch.Tensor:
    """(n_bands, K) 0/1 masks of log-spaced bands on the rfft bins of ``n_fft``."""
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE_HZ)
    edges = np.geomspace(f_lo_hz, f_hi_hz, n_bands + 1)
    masks = torch.stack([(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])]).float()
    if (masks.sum(dim=1) == 0).any():
        raise ValueError(f"n_fft {n_fft} is too short for {n_bands} bands from {f_lo_hz} Hz")
    return masks


class IntensityLocalizer(HearBaseline):
    """FOA direction from the energy-weighted active intensity (see the module docstring)."""

    channels, formats, audio_channels = (4,), ("foa",), 4
    n_fft, hop, n_bands = 1024, 512, 8
    f_lo_hz, f_hi_hz = 100.0, 8000.0

    def __init__(self):
        super().__init__()
        self.register_buffer("bands", log_bands(self.f_lo_hz, self.f_hi_hz, self.n_bands, self.n_fft))  # (B, K)
        self.scene_embedding_size = self.timestamp_embedding_size = 3 * self.n_bands

    def band_sums(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per frame and band: intensity ``(n, T, B, 3)`` (x, y, z) and energy ``(n, T, B)``."""
        spec = stft(audio, self.n_fft, self.hop)  # (n, 4, K, T): W, Y, Z, X
        w, dipoles = spec[:, 0], spec[:, [3, 1, 2]]  # (n, K, T), (n, 3, K, T): X, Y, Z
        intensity = 2 * (w.conj()[:, None] * dipoles).real  # (n, 3, K, T)
        energy = spec.abs().square().sum(dim=1)  # (n, K, T)
        return torch.einsum("nckt,bk->ntbc", intensity, self.bands), torch.einsum("nkt,bk->ntb", energy, self.bands)

    def frame_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Per band I / E (a unit vector for one plane wave, shorter when diffuse): (n, T, 3B)."""
        intensity, energy = self.band_sums(audio)
        return (intensity / (energy[..., None] + 1e-12)).flatten(2)

    @torch.no_grad()
    def scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        intensity, energy = self.band_sums(as_batch(audio, self.channels))
        return (intensity.sum(1) / (energy.sum(1)[..., None] + 1e-12)).flatten(1).float()

    @torch.no_grad()
    def localize(self, audio: torch.Tensor) -> np.ndarray:
        """Unit DoA vectors ``(n, 3)`` (x front, y left, z up) of ambiX audio ``(n, 4, S)``."""
        direction = self.band_sums(as_batch(audio, self.channels))[0].sum(dim=(1, 2)).double()  # (n, 3)
        return (direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-30)).numpy()


class HrtfLocalizer(HearBaseline):
    """Binaural ILD/ITD template matching against the MIT KEMAR HRIRs (see the module docstring)."""

    channels, formats, audio_channels = (2,), ("binaural",), 2
    n_fft, hop, n_bands, upsample = 1024, 512, 16, 8
    f_lo_hz, f_hi_hz, max_itd_ms = 200.0, 12000.0, 1.0
    ild_sigma_db, itd_sigma_ms = 2.0, 0.04  # cue weights: a 2-dB band ILD error costs as a 40-us ITD error

    def __init__(self):
        super().__init__()
        from ..scenes.hrtf import load_kemar  # KEMAR loads only when this baseline is built

        hrtf = load_kemar(SAMPLE_RATE_HZ)
        self.register_buffer("bands", log_bands(self.f_lo_hz, self.f_hi_hz, self.n_bands, self.n_fft))
        spec = torch.fft.rfft(torch.as_tensor(hrtf.hrirs, dtype=torch.float32), n=self.n_fft)  # (dirs, 2, K)
        ild, itd = self.cues(spec[..., None], pool=True)  # one "frame" per direction
        self.template_ild, self.template_itd = ild[:, 0], itd[:, 0]  # (dirs, B), (dirs,)
        self.directions = np.asarray(hrtf.directions_xyz, dtype=np.float64)  # (dirs, 3)
        self.scene_embedding_size = self.timestamp_embedding_size = self.n_bands + 1

    def ild_db(self, power: torch.Tensor) -> torch.Tensor:
        """Band ILD in dB ``(n, T, B)`` of ear powers ``(n, 2, K, T)``."""
        bands = torch.einsum("nckt,bk->nctb", power, self.bands) + 1e-12  # (n, 2, T, B)
        return 10 * torch.log10(bands[:, 0] / bands[:, 1])

    def itd_ms(self, cross: torch.Tensor) -> torch.Tensor:
        """GCC-PHAT ITD in ms ``(n, T)`` of the cross-spectrum conj(L) R ``(n, K, T)``; > 0: left ear leads."""
        gcc = torch.fft.irfft(cross / (cross.abs() + 1e-12), n=self.n_fft * self.upsample, dim=1)  # (n, L, T)
        max_lag = int(round(self.max_itd_ms / 1000 * SAMPLE_RATE_HZ * self.upsample))
        window = torch.cat([gcc[:, -max_lag:], gcc[:, :max_lag + 1]], dim=1)  # lags -max .. +max
        return (window.argmax(dim=1) - max_lag).float() / self.upsample / SAMPLE_RATE_HZ * 1000.0

    def cues(self, spec: torch.Tensor, pool: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """ILD ``(n, T, B)`` and ITD ``(n, T)`` of ear spectra ``(n, 2, K, T)``; ``pool`` sums the power and
        the cross-spectrum over the frames first (T = 1): the cues of the whole clip."""
        power, cross = spec.abs().square(), spec[:, 0].conj() * spec[:, 1]
        if pool:
            power, cross = power.sum(dim=-1, keepdim=True), cross.sum(dim=-1, keepdim=True)
        return self.ild_db(power), self.itd_ms(cross)

    def frame_features(self, audio: torch.Tensor, pool: bool = False) -> torch.Tensor:
        ild, itd = self.cues(stft(audio, self.n_fft, self.hop), pool)
        return torch.cat([ild, itd[..., None]], dim=-1)  # (n, T, B + 1)

    @torch.no_grad()
    def scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        return self.frame_features(as_batch(audio, self.channels), pool=True)[:, 0].float()

    @torch.no_grad()
    def localize(self, audio: torch.Tensor) -> np.ndarray:
        """Unit vectors ``(n, 3)`` of the best-matching KEMAR directions for binaural audio ``(n, 2, S)``."""
        ild, itd = self.cues(stft(as_batch(audio, self.channels), self.n_fft, self.hop), pool=True)
        ild, itd = ild[:, 0], itd[:, 0]  # (n, B), (n,)
        cost = ((ild[:, None] - self.template_ild) / self.ild_sigma_db).square().mean(dim=-1) \
            + ((itd[:, None] - self.template_itd) / self.itd_sigma_ms).square()  # (n, dirs)
        return self.directions[cost.argmin(dim=1).numpy()]


# ------------------------------------------------------------------------------------ registry
def _random_gram(params: dict) -> nn.Module:
    return hear.random_gram(params, section(params, "baselines").random_gram_variant)


# name -> (the HEAR module that serves it, factory(params) -> model)
BASELINES: dict[str, tuple[str, Callable[[dict], nn.Module]]] = {
    "naive": (__name__, lambda params: NaiveLogMel(dim=section(params, "baselines").naive_dim)),
    "intensity": (__name__, lambda params: IntensityLocalizer()),
    "gcc-hrtf": (__name__, lambda params: HrtfLocalizer()),
    "random-gram": (hear.__name__, _random_gram),
}


def _project_params() -> dict:
    """The params.yaml of the working directory's project; outside a project, none (section defaults)."""
    try:
        path = find_params()
    except ConfigError:
        return {}
    return load_params(path)


def load_baseline(name: str, params: dict | None = None) -> nn.Module:
    """Build baseline ``name`` from merged ``params`` (None: the project's params.yaml, if there is one)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; accepted: {list(BASELINES)}")
    return BASELINES[name][1](_project_params() if params is None else params).eval()


def baseline(name: str, params: dict | None = None) -> HearModel:
    """Baseline ``name`` as the evaluator takes any HEAR module: its module and its model."""
    model = load_baseline(name, params)
    return HearModel(sys.modules[BASELINES[name][0]], model, name=name)


# ------------------------------------------------------------------------------------ HEAR module API
def load_model(model_file_path: str = "") -> nn.Module:
    """A baseline as a HEAR module: ``model_file_path`` names it (default ``naive``; e.g.
    ``hear-validator gramlib.eval.baselines -m intensity``); the project's params.yaml configures it."""
    return load_baseline(model_file_path or "naive")


def get_timestamp_embeddings(audio: torch.Tensor, model: HearBaseline) -> tuple[torch.Tensor, torch.Tensor]:
    return model.timestamp_embeddings(audio)


def get_scene_embeddings(audio: torch.Tensor, model: HearBaseline) -> torch.Tensor:
    return model.scene_embeddings(audio)
