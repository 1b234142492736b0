"""Audio I/O, resampling and loudness.

All I/O goes through soundfile (torchaudio >= 2.9 needs torchcodec for its own I/O). Arrays in the
library are float32 with channels first: ``(n_channels, n_samples)`` for one clip and
``(n_sounds, n_channels, n_samples)`` for a batch; WAV files hold interleaved channels as usual.
"""
from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE_HZ = 32000


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, wrong rate or channel count, empty, NaN."""


def read_wav(path: Path | str, *, sample_rate_hz: int | None = None, channels: int | None = None,
             resample: bool = False) -> np.ndarray:
    """Read an audio file as float32 ``(n_channels, n_samples)``.

    ``sample_rate_hz``: the rate expected; a file at another rate raises, or is resampled when
    ``resample`` is true. ``channels``: the channel count expected (``None`` accepts any).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"cannot read audio file {path}: {err}") from err
    audio = np.ascontiguousarray(data.T)
    if sample_rate_hz is not None and rate != sample_rate_hz:
        if not resample:
            raise AudioError(f"{path} has sample rate {rate} Hz; expected {sample_rate_hz} Hz")
        audio = resample_audio(audio, rate, sample_rate_hz)
    if channels is not None and audio.shape[0] != channels:
        raise AudioError(f"{path} has {audio.shape[0]} channel(s); expected {channels}")
    check_audio(audio, what=str(path))
    return audio


def write_wav(path: Path | str, audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> Path:
    """Write float audio ``(n_channels, n_samples)`` or ``(n_samples,)`` as 16-bit PCM WAV.

    16-bit PCM keeps the embedded corpus small and byte-identical across runs.
    """
    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise AudioError(f"write_wav expects (n_channels, n_samples); got shape {audio.shape} for {path}")
    check_audio(audio, what=str(path))
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        raise AudioError(f"refusing to write clipped audio to {path}: peak {peak:.3f} > 1.0")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.T, sample_rate_hz, subtype="PCM_16")
    return path


def check_audio(audio: np.ndarray, *, what: str = "audio") -> None:
    """Raise :class:`AudioError` for empty, NaN or infinite audio."""
    if audio.size == 0 or audio.shape[-1] == 0:
        raise AudioError(f"{what} is empty (shape {audio.shape})")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{what} contains NaN or infinite samples")


def resample_audio(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Band-limited polyphase resampling along the last axis (scipy ``resample_poly``)."""
    from scipy.signal import resample_poly  # scipy loads only where it is used

    if from_hz == to_hz:
        return audio
    g = gcd(int(from_hz), int(to_hz))
    return resample_poly(audio, to_hz // g, from_hz // g, axis=-1).astype(np.float32)


def rms_db(audio: np.ndarray) -> float:
    """RMS level in dBFS over all channels (-inf for digital silence)."""
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    return 10.0 * np.log10(power) if power > 0 else float("-inf")


def normalize_rms(audio: np.ndarray, target_db: float = -20.0, *, max_peak: float = 0.99) -> np.ndarray:
    """Scale to ``target_db`` dBFS RMS, then down (never up) so the peak stays below ``max_peak``.

    Raises for silent input: a silent clip has no level to normalize.
    """
    level = rms_db(audio)
    if not np.isfinite(level):
        raise AudioError("cannot normalize silent audio")
    out = audio * np.float32(10 ** ((target_db - level) / 20))
    peak = float(np.max(np.abs(out)))
    if peak > max_peak:
        out = out * np.float32(max_peak / peak)
    return out.astype(np.float32)


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad or truncate the last axis to exactly ``n_samples``."""
    if audio.shape[-1] >= n_samples:
        return audio[..., :n_samples]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n_samples - audio.shape[-1])]
    return np.pad(audio, pad)
