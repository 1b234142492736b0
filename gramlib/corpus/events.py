"""Sound events: ESC-50-like classes, synthesized or played on General MIDI drum kits.

Each class is one short function of a ``numpy.random.Generator`` and a sample rate that returns a
float32 mono event, trimmed to its audible extent. Every class draws its own structure (number of
hits, spacing, pitch, decay, brightness) so that two events of a class differ while the class stays
recognisable. Drum classes take their GM percussion keys from the caller, so the pre-training world
can use keys that no task uses (see :mod:`gramlib.corpus.sources`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.signal import butter, sosfilt

from .synth import drum_hit, trim_silence


def _time(duration_s: float, sr: int) -> np.ndarray:
    return np.arange(int(round(duration_s * sr))) / sr


def _bandpass(audio: np.ndarray, low_hz: float, high_hz: float, sr: int) -> np.ndarray:
    high_hz = min(high_hz, 0.45 * sr)
    return sosfilt(butter(2, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos"), audio)


def _place(parts: list[tuple[float, np.ndarray]], sr: int) -> np.ndarray:
    """Sum ``(onset_s, audio)`` parts into one signal long enough for all of them."""
    length = max(int(round(t * sr)) + len(a) for t, a in parts)
    out = np.zeros(length)
    for onset_s, audio in parts:
        start = int(round(onset_s * sr))
        out[start:start + len(audio)] += audio
    return out


def _repeat(rng: np.random.Generator, make: Callable[[], np.ndarray], count: tuple[int, int],
            gap_s: tuple[float, float], sr: int) -> np.ndarray:
    """``make()`` played a random number of times with random gaps between onsets."""
    onsets = np.cumsum([0.0] + list(rng.uniform(*gap_s, size=int(rng.integers(*count)) - 1)))
    return _place([(float(t), make()) for t in onsets], sr)


def knock(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Knuckles on a door: 2-5 thuds made of damped wood resonances and a click."""
    modes = rng.uniform(60, 700, size=3)
    decay_s = rng.uniform(0.015, 0.08)

    def hit():
        t = _time(0.15, sr)
        body = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) * rng.uniform(0.4, 1) for f in modes)
        click = _bandpass(rng.standard_normal(len(t)), 1500, 5000, sr) * np.exp(-t / 0.004)
        return (body * np.exp(-t / decay_s) + 0.5 * click) * rng.uniform(0.7, 1.0)
    return _repeat(rng, hit, (1, 7), (0.1, 0.3), sr)


def chirp(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A bird: 2-7 fast frequency sweeps around 2-6 kHz with a little vibrato."""
    f0, sweep = rng.uniform(1500, 6000), rng.uniform(-2000, 3000)
    length_s = rng.uniform(0.03, 0.25)

    def call():
        t = _time(length_s, sr)
        freq = f0 + sweep * (t / length_s) ** rng.uniform(0.5, 2) + 150 * np.sin(2 * np.pi * 60 * t)
        return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.sin(np.pi * t / length_s) ** 2
    return _repeat(rng, call, (1, 9), (0.06, 0.3), sr)


def siren(rng: np.random.Generator, sr: int) -> np.ndarray:
    """An emergency siren: a buzzy tone wailing or yelping between two frequencies."""
    t = _time(rng.uniform(0.6, 1.8), sr)
    low, high = rng.uniform(350, 900), rng.uniform(950, 2000)
    rate_hz = rng.choice([rng.uniform(0.4, 1.0), rng.uniform(3, 7)])  # wail or yelp
    freq = low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * rate_hz * t))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = sum(np.sin(k * phase) / k ** rng.uniform(1, 2) for k in (1, 2, 3, 4))
    return tone * np.minimum(1, t / 0.05) * np.minimum(1, (t[-1] - t) / 0.05)


def beep(rng: np.random.Generator, sr: int) -> np.ndarray:
    """An electronic alarm: 2-6 identical pure-tone beeps with sharp edges."""
    freq, length_s = rng.uniform(400, 4000), rng.uniform(0.04, 0.4)

    def one():
        t = _time(length_s, sr)
        return np.sin(2 * np.pi * freq * t) * np.minimum(1, np.minimum(t, t[-1] - t) / 0.003)
    return _repeat(rng, one, (1, 7), (length_s + 0.03, length_s + 0.3), sr)


def clap(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Hand claps: 1-5 claps, each a few noise micro-bursts in a 1-3 kHz band."""
    centre = rng.uniform(600, 3500)

    def one():
        t = _time(0.12, sr)
        burst = np.zeros(len(t))
        for start_s in np.sort(rng.uniform(0, 0.02, size=int(rng.integers(2, 5)))):
            burst += np.where(t >= start_s, np.exp(-(t - start_s) / rng.uniform(0.004, 0.02)), 0)
        return _bandpass(rng.standard_normal(len(t)), centre / 2, centre * 2, sr) * burst
    return _repeat(rng, one, (1, 8), (0.12, 0.5), sr)


def water_drop(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Drops into water: 1-3 'bloops', a sine whose pitch rises fast as it decays."""
    def drop():
        t = _time(0.15, sr)
        f_start, rise = rng.uniform(200, 1200), rng.uniform(1.5, 5)
        freq = f_start * rise ** np.minimum(1, t / rng.uniform(0.02, 0.06))
        return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / rng.uniform(0.02, 0.05))
    return _repeat(rng, drop, (1, 6), (0.06, 0.4), sr)


def engine(rng: np.random.Generator, sr: int) -> np.ndarray:
    """An idling or revving engine: a low pulse train of cylinder firings with rumble."""
    t = _time(rng.uniform(0.6, 1.9), sr)
    f0 = rng.uniform(20, 90) * (1 + rng.uniform(0, 0.8) * (t / t[-1]) ** 2)  # optional rev
    phase = 2 * np.pi * np.cumsum(f0) / sr
    pulses = sum(np.sin(k * phase + rng.uniform(0, 6.3)) / k ** 0.7 for k in range(1, 12))
    rumble = _bandpass(rng.standard_normal(len(t)), 40, 400, sr) * rng.uniform(0.3, 1.0)
    return (pulses + rumble * 3) * np.minimum(1, t / 0.1) * np.minimum(1, (t[-1] - t) / 0.1)


def glass(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Glasses clinking: 1-3 strikes ringing at inharmonic partials above 1.5 kHz."""
    f0 = rng.uniform(900, 4500)
    ratios = np.array([1.0, 2.32, 4.25, 6.63]) * rng.uniform(0.97, 1.03, size=4)
    decay_s = rng.uniform(0.1, 0.8)

    def strike():
        t = _time(0.8, sr)
        modes = [np.sin(2 * np.pi * f0 * r * t) * np.exp(-t * r / decay_s) / r for r in ratios]
        return sum(modes) * rng.uniform(0.6, 1.0)
    return _repeat(rng, strike, (1, 4), (0.1, 0.3), sr)


def phone(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A telephone ringing: 1-2 bursts of a two-tone chord with fast tremolo."""
    f1, f2 = rng.uniform(300, 1000), rng.uniform(900, 2200)
    length_s, tremolo_hz = rng.uniform(0.25, 0.9), rng.uniform(10, 30)

    def ring():
        t = _time(length_s, sr)
        chord = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)
        return chord * (0.6 + 0.4 * np.sign(np.sin(2 * np.pi * tremolo_hz * t)))
    return _repeat(rng, ring, (1, 4), (length_s + 0.1, length_s + 0.4), sr)


SYNTHESIZED: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "beep": beep, "chirp": chirp, "clap": clap, "engine": engine, "glass": glass, "knock": knock,
    "phone": phone, "siren": siren, "water_drop": water_drop,
}


def drum_event(rng: np.random.Generator, keys: list[int], sr: int) -> np.ndarray:
    """1-3 hits of GM percussion ``keys`` in a simple rhythm."""
    return _repeat(rng, lambda: drum_hit(rng, keys, sr), (1, 4), (0.15, 0.35), sr)


def make_event(name: str, rng: np.random.Generator, sr: int, drum_keys: dict[str, list[int]]) -> np.ndarray:
    """An event of class ``name``: a synthesized class, or a drum class whose keys ``drum_keys`` gives.

    Float32 mono, trimmed to the audible extent, peak-normalised to 0.9.
    """
    if name in SYNTHESIZED:
        audio = SYNTHESIZED[name](rng, sr)
    elif name in drum_keys:
        audio = drum_event(rng, drum_keys[name], sr)
    else:
        raise ValueError(f"unknown event class {name!r}; accepted: {sorted(SYNTHESIZED) + sorted(drum_keys)}")
    audio = trim_silence(np.asarray(audio, dtype=np.float64), sr, floor_db=-45.0)
    return (0.9 * audio / np.abs(audio).max()).astype(np.float32)
