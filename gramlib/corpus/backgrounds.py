"""WHAM!-like background noise: babble, coloured noise, hum and textured ambiences.

Each kind is a function ``(rng, n_samples, sr, world) -> float32 (n_samples,)``. ``world`` carries
what a kind draws from the rest of the corpus (babble voices, event drum keys), so the pre-training
noise and the Nat-HEAR noise come from disjoint voices and seeds. Every clip is a fresh draw of its
kind's parameters (spectral slope, hum frequency and harmonics, talkers, drop rate, gusts), so no
two clips are alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.signal import butter, sosfilt

from .events import make_event
from .synth import pseudo_words, random_speech


@dataclass(frozen=True)
class NoiseWorld:
    """What the noise of one world may use."""

    voices: tuple[str, ...]  # babble talkers
    drum_keys: dict  # for the events of the cafe ambience


def coloured_noise(rng: np.random.Generator, n_samples: int, sr: int, slope_db_per_octave: float) -> np.ndarray:
    """Gaussian noise with a power spectrum falling ``slope`` dB per octave (-3 pink, -6 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.fft.rfftfreq(n_samples, 1 / sr)
    gain = (np.maximum(freqs, 20.0) / 20.0) ** (slope_db_per_octave / (20 * np.log10(2)))
    out = np.fft.irfft(spectrum * gain, n=n_samples)
    return out / np.std(out)


def _lowpass(audio: np.ndarray, cutoff_hz: float, sr: int, order: int = 2) -> np.ndarray:
    return sosfilt(butter(order, min(cutoff_hz, 0.45 * sr), fs=sr, output="sos"), audio)


def _slow_envelope(rng: np.random.Generator, n_samples: int, sr: int, rate_hz: float, depth: float) -> np.ndarray:
    """A smooth random gain around 1 that changes about ``rate_hz`` times a second."""
    knots = rng.standard_normal(int(n_samples / sr * rate_hz) + 3)
    curve = np.interp(np.arange(n_samples), np.linspace(0, n_samples, len(knots)), knots)
    return np.exp(depth * curve / 2)


def pink(rng, n_samples, sr, world):
    return coloured_noise(rng, n_samples, sr, rng.uniform(-4.0, -2.0))


def brown(rng, n_samples, sr, world):
    return coloured_noise(rng, n_samples, sr, rng.uniform(-7.0, -5.0))


def hum(rng, n_samples, sr, world):
    """Mains hum or a machine: a 50/60 Hz (or motor) fundamental with random harmonics, plus hiss."""
    t = np.arange(n_samples) / sr
    f0 = rng.choice([50.0, 60.0, rng.uniform(80, 240)]) * rng.uniform(0.995, 1.005)
    tone = sum(rng.uniform(0, 1) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) for k in range(1, 9))
    return tone / np.std(tone) + rng.uniform(0.05, 0.3) * coloured_noise(rng, n_samples, sr, -3.0)


def babble(rng, n_samples, sr, world, talkers: tuple[int, int] = (5, 13)):
    """Overlapping talkers speaking nonsense words, each with pauses, as in a crowded room."""
    out = np.zeros(n_samples)
    for _ in range(int(rng.integers(*talkers))):
        cursor = int(rng.integers(-sr, sr))
        while cursor < n_samples:
            speech, _ = random_speech(rng, pseudo_words(rng, int(rng.integers(3, 9))), list(world.voices), sr)
            start = max(cursor, 0)
            piece = speech[start - cursor:][:n_samples - start] * rng.uniform(0.3, 1.0)
            out[start:start + len(piece)] += piece
            cursor += len(speech) + int(rng.uniform(0.1, 0.8) * sr)
    return _lowpass(out, rng.uniform(3000, 8000), sr)


def rain(rng, n_samples, sr, world):
    """Rain: a broadband hiss bed and many random short drop transients."""
    bed = _lowpass(coloured_noise(rng, n_samples, sr, -1.5), rng.uniform(4000, 10000), sr)
    impulses = np.zeros(n_samples)
    n_drops = int(rng.uniform(40, 400) * n_samples / sr)
    impulses[rng.integers(0, n_samples, size=n_drops)] = rng.uniform(0.2, 1.0, size=n_drops)
    kernel = np.exp(-np.arange(int(0.004 * sr)) / (0.001 * sr)) * rng.standard_normal(int(0.004 * sr))
    drops = np.convolve(impulses, kernel)[:n_samples]
    return bed / np.std(bed) + rng.uniform(1, 4) * drops / (np.std(drops) + 1e-9)


def wind(rng, n_samples, sr, world):
    """Wind: low-passed noise with slow gusts in level and brightness."""
    noise = coloured_noise(rng, n_samples, sr, -4.0)
    low = _lowpass(noise, rng.uniform(150, 400), sr)
    high = _lowpass(noise, rng.uniform(800, 2500), sr)
    gust = _slow_envelope(rng, n_samples, sr, rng.uniform(0.3, 1.0), 1.0)
    mix = np.clip((gust - gust.min()) / (np.ptp(gust) + 1e-9), 0, 1)
    return (low * (1 - mix) + high * mix) * gust


def traffic(rng, n_samples, sr, world):
    """Distant traffic: a rumbling brown bed with vehicles swelling past."""
    out = coloured_noise(rng, n_samples, sr, -6.0) * rng.uniform(0.5, 1.0)
    t = np.arange(n_samples) / sr
    for _ in range(int(rng.integers(2, 6))):
        passby = _lowpass(coloured_noise(rng, n_samples, sr, -4.5), rng.uniform(300, 1200), sr)
        centre_s, width_s = rng.uniform(0, n_samples / sr), rng.uniform(0.8, 2.5)
        out += passby / np.std(passby) * 2 * np.exp(-0.5 * ((t - centre_s) / width_s) ** 2)
    return out


def cafe(rng, n_samples, sr, world):
    """A cafe: a few talkers, clinking glasses, knocks and a phone now and then."""
    out = babble(rng, n_samples, sr, world, talkers=(2, 5))
    out = out / (np.std(out) + 1e-9)
    for _ in range(int(rng.integers(3, 10))):
        event = make_event(str(rng.choice(["glass", "knock", "glass", "phone"])), rng, sr, world.drum_keys)
        start = int(rng.integers(0, max(1, n_samples - len(event))))
        out[start:start + len(event)] += event[:n_samples - start] * rng.uniform(0.5, 3.0)
    return out


KINDS: dict[str, Callable] = {
    "babble": babble, "pink": pink, "brown": brown, "hum": hum, "rain": rain, "wind": wind,
    "traffic": traffic, "cafe": cafe,
}


def make_noise(kind: str, rng: np.random.Generator, n_samples: int, sr: int, world: NoiseWorld) -> np.ndarray:
    """One background clip of ``kind`` (float32, unit standard deviation, zero mean)."""
    if kind not in KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; accepted: {sorted(KINDS)}")
    audio = np.asarray(KINDS[kind](rng, n_samples, sr, world), dtype=np.float64)
    audio = audio - audio.mean()
    return (audio / (np.std(audio) + 1e-12)).astype(np.float32)
