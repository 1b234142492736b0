"""Naturalistic scenes mixed online: source * RIR + b * noise * noise RIRs, at an SNR; or dry.

A scene (as the paper, §3): a mono source clip convolved with the source RIR of a RIR set, plus one
noise clip convolved with each of the set's noise RIRs (one localized source, or 3-5 summed for a
diffuse field; the *same* clip through every noise RIR), scaled to an SNR drawn from U(5, 40) dB.

* Noise longer than the scene is cropped at a random offset; shorter noise is placed at a random
  offset; both get 0.2-s linear fades at their ends (:func:`place_noise`).
* The SNR uses ONE gain for all channels, computed on the energy summed over channels inside the
  noise-active window (the authors' 2026 fix), so the noise keeps its interaural level and intensity
  cues. A source silent inside that window gets no noise (gain 0).
* The clean/naturalistic ratio lambda is drawn **per example**: with probability lambda a scene is
  dry, the mono source repeated to every channel. The authors draw it once per *batch*, which makes
  whole batches dry or wet and the gradient switch between the two regimes; per example keeps every
  batch a lambda-mixture, which is what the lambda ablation means to measure.
* Convolutions keep the first S samples (the direct-path delay stays, the tail past the scene end is
  dropped), and run batched in torch: one rfft per signal and per RIR channel on a common padded
  length. Summing the noise RIRs before convolving is exact (the same clip goes through each), so a
  diffuse 5-source noise costs the same as a localized one.

Cost: the FFTs. A wet scene takes 2 + 2C forward and 2C inverse real FFTs of length
next_fast_len(S + L - 1) (binaural 10, FOA 18); at ~2 ms each on one core (10-s scenes, 3-s RIRs)
that is ~40 binaural or ~22 FOA scenes per CPU-second, ~400x / ~220x real time (bench/scenes.py).
Run it with one torch thread per process on a shared CPU. Tensors may live on a GPU.

Every scene is a pure function of (seed, index) through :func:`draw_scene`.
Channel counts: binaural 2 (left, right), FOA 4 (ambiX W, Y, Z, X), clean 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

FADE_S = 0.2
CHUNK_ROWS = 8  # wet scenes convolved together (bounds the FFT buffers: ~0.3 GB for FOA, 3-s RIRs)
SCENE_STREAM = 0x5CE7E  # keeps draw_scene's random stream apart from other per-index streams


class SceneError(ValueError):
    """A scene request with bad parameters or shapes."""


@dataclass(frozen=True)
class SceneSpec:
    index: int
    rir_index: int  # RIR set of the bank
    noise_index: int  # noise clip
    noise_offset: float  # in [0, 1): where in the free range the noise crop starts / the noise sits
    snr_db: float
    dry: bool  # dry scene: the mono source on every channel, no RIR, no noise

    def noise_start(self, noise_samples: int, scene_samples: int) -> int:
        """Crop start in the noise (noise longer than the scene) or its start in the scene (shorter)."""
        return int(self.noise_offset * (abs(noise_samples - scene_samples) + 1))


def draw_scene(seed: int, index: int, n_rirs: int, n_noises: int, snr_range_db: tuple[float, float],
               lambda_clean: float = 0.0) -> SceneSpec:
    """The scene of ``index``: a pure function of its arguments (every field drawn, always)."""
    for name, value in (("seed", seed), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise SceneError(f"{name} must be a non-negative integer, got {value!r}")
    for name, value in (("n_rirs", n_rirs), ("n_noises", n_noises)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SceneError(f"{name} must be a positive integer, got {value!r}")
    lo, hi = (float(v) for v in snr_range_db)
    if not lo <= hi:
        raise SceneError(f"snr_range_db = {list(snr_range_db)} must be [low, high] with low <= high")
    if not 0.0 <= lambda_clean <= 1.0:
        raise SceneError(f"lambda_clean = {lambda_clean!r}; accepted: a probability in [0, 1]")
    rng = np.random.default_rng([int(seed), int(index), SCENE_STREAM])
    rir, noise, offset, snr, u = (rng.integers(n_rirs), rng.integers(n_noises), rng.random(),
                                  rng.uniform(lo, hi), rng.random())
    return SceneSpec(int(index), int(rir), int(noise), float(offset), float(snr), bool(u < lambda_clean))


def place_noise(noise: np.ndarray, n_samples: int, spec: SceneSpec | float, *, sample_rate_hz: int = 32000,
                fade_s: float = FADE_S) -> np.ndarray:
    """(n_samples,) float32: the mono noise cropped or placed per ``spec`` (or an offset in [0, 1)), faded."""
    noise = np.asarray(noise, dtype=np.float32)
    if noise.ndim == 2 and noise.shape[0] == 1:
        noise = noise[0]
    if noise.ndim != 1 or noise.size == 0:
        raise SceneError(f"noise must be a non-empty mono clip (n,) or (1, n), got shape {noise.shape}")
    offset = spec.noise_offset if isinstance(spec, SceneSpec) else float(spec)
    if not 0.0 <= offset < 1.0:
        raise SceneError(f"noise offset {offset!r}; accepted: a fraction in [0, 1)")
    start = int(offset * (abs(noise.size - n_samples) + 1))
    fade = int(round(fade_s * sample_rate_hz))
    out = np.zeros(n_samples, dtype=np.float32)
    if noise.size >= n_samples:
        out[:] = _fade(noise[start:start + n_samples], fade)
    else:
        out[start:start + noise.size] = _fade(noise, fade)
    return out


def _fade(x: np.ndarray, n_fade: int) -> np.ndarray:
    """Linear fade-in and fade-out of ``n_fade`` samples (at most half the clip); never exactly 0."""
    x = x.astype(np.float32, copy=True)
    n = min(n_fade, x.size // 2)
    if n > 0:
        ramp = np.arange(1, n + 1, dtype=np.float32) / (n + 1)
        x[:n] *= ramp
        x[x.size - n:] *= ramp[::-1]
    return x


def active_windows(noises: torch.Tensor) -> torch.Tensor:
    """(B, 2) [start, stop) of the non-zero part of each placed noise (B, S); (0, 0) when silent."""
    nonzero = torch.as_tensor(noises) != 0
    n = nonzero.shape[-1]
    index = torch.arange(n)
    start = torch.where(nonzero, index, n).amin(-1)
    stop = torch.where(nonzero, index + 1, 0).amax(-1)
    return torch.stack([torch.where(start < n, start, 0), stop], dim=-1)


def fft_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (fast for every FFT backend)."""
    from scipy.fft import next_fast_len  # scipy loads only where it is used

    return int(next_fast_len(int(n), real=True))


def mix_batch(sources, source_rirs, noises, noise_rirs, snr_db, dry, *, noise_windows=None) -> torch.Tensor:
    """(B, C, S) float32 scenes.

    sources (B, S) mono; source_rirs (B, C, L); noises (B, S) placed mono noise (:func:`place_noise`);
    noise_rirs (B, N, C, L), zero-padded along N; snr_db (B,); dry (B,) bool; noise_windows (B, 2)
    [start, stop) where the SNR is measured (default: the non-zero span of each noise). A dry row is
    its source repeated to C channels. Arrays may be numpy or torch.
    """
    sources, source_rirs, noises, noise_rirs = (torch.as_tensor(x, dtype=torch.float32)
                                                for x in (sources, source_rirs, noises, noise_rirs))
    snr_db, dry = torch.as_tensor(snr_db, dtype=torch.float32), torch.as_tensor(dry, dtype=torch.bool)
    n_batch, n_samples = _check_shapes(sources, source_rirs, noises, noise_rirs, snr_db, dry)
    n_ch, n_taps = source_rirs.shape[1:]
    out = sources[:, None, :].expand(n_batch, n_ch, n_samples).clone()  # dry rows
    wet = torch.nonzero(~dry).flatten()
    if wet.numel() == 0:
        return out
    windows = active_windows(noises) if noise_windows is None else torch.as_tensor(noise_windows)
    for chunk in torch.split(wet, CHUNK_ROWS):
        _mix_wet(out, chunk, sources, source_rirs, noises, noise_rirs, snr_db, windows)
    return out


def _mix_wet(out, rows, sources, source_rirs, noises, noise_rirs, snr_db, windows) -> None:
    """Mix ``rows`` (at most CHUNK_ROWS) into ``out`` in place, in reused zero-padded buffers."""
    (n_batch, n_samples), (n_ch, n_taps), w = sources.shape, source_rirs.shape[1:], len(rows)
    n_fft = fft_length(n_samples + n_taps - 1)
    ws = _workspace(max(w, min(CHUNK_ROWS, n_batch)), n_ch, n_taps, n_samples, n_fft, sources.device)
    ws["signals"][:w, 0, :n_samples] = sources[rows]
    ws["signals"][:w, 1, :n_samples] = noises[rows]
    ws["rirs"][:w, 0, :, :n_taps] = source_rirs[rows]
    for k, row in enumerate(rows.tolist()):  # the same clip goes through every noise RIR: sum them first
        torch.sum(noise_rirs[row], 0, out=ws["noise_rir"])
        ws["rirs"][k, 1, :, :n_taps] = ws["noise_rir"]
    spectra = torch.fft.rfft(ws["rirs"][:w], out=ws["spectra"][:w])  # (w, 2, C, F)
    spectra.mul_(torch.fft.rfft(ws["signals"][:w], out=ws["signal_spectra"][:w])[:, :, None])
    mixed = torch.fft.irfft(spectra, n_fft, out=ws["mixed"][:w])  # (w, 2, C, n_fft)
    for k, row in enumerate(rows.tolist()):
        target, noise = mixed[k, 0, :, :n_samples], mixed[k, 1, :, :n_samples]  # (C, S)
        start, stop = windows[row].tolist()
        e_target = float(torch.linalg.vector_norm(target[:, start:stop])) ** 2  # summed over channels
        e_noise = float(torch.linalg.vector_norm(noise[:, start:stop])) ** 2
        gain = np.sqrt(e_target / e_noise * 10 ** (-float(snr_db[row]) / 10)) if e_noise > 0 else 0.0
        torch.add(target, noise, alpha=gain, out=out[row])


@lru_cache(maxsize=2)  # binaural and FOA alternate in Nat-HEAR
def _workspace(rows: int, n_ch: int, n_taps: int, n_samples: int, n_fft: int, device) -> dict:
    """Buffers reused across calls of one shape; the zero padding past (n_samples, n_taps) stays zero.

    Fresh large tensors cost page faults on every call (~40 % of the mixing time on a CPU).
    """
    n_freq, real, cplx = n_fft // 2 + 1, {"device": device}, {"device": device, "dtype": torch.complex64}
    return {"signals": torch.zeros(rows, 2, n_fft, **real), "rirs": torch.zeros(rows, 2, n_ch, n_fft, **real),
            "signal_spectra": torch.empty(rows, 2, n_freq, **cplx),
            "spectra": torch.empty(rows, 2, n_ch, n_freq, **cplx),
            "mixed": torch.empty(rows, 2, n_ch, n_fft, **real), "noise_rir": torch.empty(n_ch, n_taps, **real)}


def _check_shapes(sources, source_rirs, noises, noise_rirs, snr_db, dry) -> tuple[int, int]:
    if sources.ndim != 2 or source_rirs.ndim != 3 or noise_rirs.ndim != 4:
        raise SceneError(f"expected sources (B, S), source_rirs (B, C, L), noise_rirs (B, N, C, L); got "
                         f"{tuple(sources.shape)}, {tuple(source_rirs.shape)}, {tuple(noise_rirs.shape)}")
    b, s = sources.shape
    c, n_taps = source_rirs.shape[1:]
    problems = [name for name, ok in (
        ("source_rirs", source_rirs.shape[0] == b), ("noises", tuple(noises.shape) == (b, s)),
        ("noise_rirs", noise_rirs.shape[0] == b and tuple(noise_rirs.shape[2:]) == (c, n_taps)),
        ("snr_db", tuple(snr_db.shape) == (b,)), ("dry", tuple(dry.shape) == (b,))) if not ok]
    if problems:
        raise SceneError(f"shape mismatch in {problems}: sources {tuple(sources.shape)}, source_rirs "
                         f"{tuple(source_rirs.shape)}, noises {tuple(noises.shape)}, noise_rirs "
                         f"{tuple(noise_rirs.shape)}, snr_db {tuple(snr_db.shape)}, dry {tuple(dry.shape)}")
    return b, s
