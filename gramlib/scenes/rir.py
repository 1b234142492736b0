"""Rendering image sources into binaural / FOA / omni impulse responses, and measuring RT60.

The physics and the recipe (images, HRIRs, ambiX encoding, the stochastic late tail and the RT60
calibration) are described in :mod:`gramlib.scenes.rooms`, which drives this module. Shapes: ``n`` images,
``C`` output channels, ``L`` samples. Formats: "binaural" (2: left, right ear), "foa" (4: ambiX W, Y,
Z, X with SN3D), "omni" (1; used for the calibration).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..core.formats import AUDIO_CHANNELS, SPEED_OF_SOUND_M_S
from .hrtf import FRACTIONAL_PHASES, load_kemar

CHANNELS = {"binaural": AUDIO_CHANNELS["binaural"], "foa": AUDIO_CHANNELS["foa"], "omni": 1}
SINC_HALF_TAPS = 16  # FOA/omni fractional-delay kernel: 33-tap Hann-windowed sinc
TAIL_PULSES_PER_S = 4000  # velvet noise sounds smooth from ~2000 pulses/s; HRIRs smear it further
TAIL_FLOOR_DB = 90.0  # the tail is rendered until it has decayed this much
TAIL_HRIR_TAPS = 96  # tail pulses use HRIRs cut 3 ms after the onset: >= 99 % of the energy for most directions
MATCH_WINDOW_S = 0.05
CROSSFADE_S = 0.005
ABSORPTION_RANGE = (0.01, 0.99)
CHUNK = 2048  # images scattered at once (bounds the (n, C, taps) temporaries)


class RirError(ValueError):
    """An RIR that cannot be rendered or measured."""


@dataclass(frozen=True)
class Images:
    """Image sources of one (source, listener) pair in the head frame, damping at ``absorption``."""

    delay_s: np.ndarray  # (n,)
    gain: np.ndarray  # (n,) wall damping x 1/r (r in m)
    order: np.ndarray  # (n,) reflection order, 0 = direct path
    direction: np.ndarray  # (n, 3) unit vectors
    absorption: float

    def at_absorption(self, absorption: float) -> "Images":
        """The same images with walls of another absorption (damping ~ sqrt(1 - a)^order)."""
        ratio = np.sqrt((1 - absorption) / (1 - self.absorption))
        return Images(self.delay_s, self.gain * ratio ** self.order, self.order, self.direction, absorption)

    def crossover_s(self) -> float:
        """Arrival of the nearest image of the highest order: the image set is complete before it."""
        return float(self.delay_s[self.order == self.order.max()].min())

    def subset(self, keep: np.ndarray) -> "Images":
        return Images(self.delay_s[keep], self.gain[keep], self.order[keep], self.direction[keep], self.absorption)


def eyring_absorption(rt60_s: float, dims_m) -> tuple[float, tuple[float, float]]:
    """(wall absorption giving ``rt60_s`` by Eyring's formula, RT60 range reachable in ABSORPTION_RANGE)."""
    lx, ly, lz = dims_m
    k = 24 * np.log(10) / SPEED_OF_SOUND_M_S * lx * ly * lz / (2 * (lx * ly + lx * lz + ly * lz))
    reach = (k / -np.log(1 - ABSORPTION_RANGE[1]), k / -np.log(1 - ABSORPTION_RANGE[0]))
    return float(1.0 - np.exp(-k / rt60_s)), reach


def image_sources(dims_m, absorption: float, groups: list, max_order: int, sample_rate_hz: int) -> list:
    """One pyroomacoustics ISM for all sources of all groups.

    groups: [(listener (3,), yaw_deg, points (n_k, 3))] in room coordinates -> [[Images] per group].
    """
    import pyroomacoustics as pra  # pyroomacoustics loads only when rooms are rendered

    shoebox = pra.ShoeBox(list(dims_m), fs=sample_rate_hz, max_order=max_order,
                          materials=pra.Material(absorption), air_absorption=False)
    for _, _, points in groups:
        for point in points:
            shoebox.add_source(np.asarray(point, dtype=float))
    shoebox.add_microphone_array(np.stack([np.asarray(g[0], dtype=float) for g in groups], axis=1))
    shoebox.image_source_model()
    out, j = [], 0
    for listener, yaw_deg, points in groups:
        per = []
        for _ in points:
            src = shoebox.sources[j]
            rel = _rotate_z(src.images.T - np.asarray(listener), -yaw_deg)  # (n, 3) head frame
            dist = np.linalg.norm(rel, axis=1)
            per.append(Images(dist / SPEED_OF_SOUND_M_S, src.damping[0] / dist, src.orders.astype(int),
                              rel / dist[:, None], absorption))
            j += 1
        out.append(per)
    return out


def _rotate_z(v: np.ndarray, angle_deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], axis=-1)


# ------------------------------------------------------------------------------------ render
def render(images: Images, fmt: str, n_samples: int, sample_rate_hz: int, *, tail_rt60_s: float | None,
           tail_seed: int = 0) -> np.ndarray:
    """(C, n_samples) float32 RIR of ``images`` in ``fmt``; ``tail_rt60_s=None`` keeps the images only.

    With a tail, images stop at the crossover and the stochastic tail (same pulses for every format
    given the same ``tail_seed``) continues the decay, level-matched on the reflections.
    """
    if fmt not in CHANNELS:
        raise RirError(f"unknown format {fmt!r}; accepted: {list(CHANNELS)}")
    direct = images.subset(images.order == 0)
    reflections = images.subset(images.order > 0)
    out = _scatter(direct, fmt, n_samples, sample_rate_hz)
    refl = _scatter(reflections, fmt, n_samples, sample_rate_hz)
    if tail_rt60_s is None:
        return (out + refl).astype(np.float32)
    if images.order.max() < 2:
        raise RirError("a late tail needs image sources of order >= 2 (max_order >= 2)")
    t_c = images.crossover_s()
    t_a = max(t_c - MATCH_WINDOW_S, float(reflections.delay_s.min()))
    a, c = int(t_a * sample_rate_hz), int(t_c * sample_rate_hz)
    if c >= n_samples:  # the images cover the whole RIR
        return (out + refl).astype(np.float32)
    tail = _scatter(_tail_pulses(t_a, t_c, tail_rt60_s, n_samples / sample_rate_hz, tail_seed),
                    fmt, n_samples, sample_rate_hz, short=True)
    ref = slice(None) if fmt == "binaural" else slice(0, 1)  # both ears / W / omni
    e_img, e_tail = np.sum(refl[ref, a:c] ** 2), np.sum(tail[ref, a:c] ** 2)
    if e_img <= 0 or e_tail <= 0:
        raise RirError(f"no reflection energy to match the tail to in [{t_a:.4f}, {t_c:.4f}) s")
    fade_in = _crossfade(n_samples, c, int(CROSSFADE_S * sample_rate_hz))
    out += refl * np.sqrt(1 - fade_in ** 2) + tail * fade_in * np.sqrt(e_img / e_tail)
    return out.astype(np.float32)


def _crossfade(n: int, end: int, length: int) -> np.ndarray:
    """0 before ``end - length``, sin ramp to 1 at ``end``, 1 after."""
    ramp = np.zeros(n)
    ramp[end:] = 1.0
    start = max(0, end - length)
    ramp[start:end] = np.sin(0.5 * np.pi * (np.arange(start, end) - start + 1) / (end - start + 1))
    return ramp


def _tail_pulses(t_start: float, t_cross: float, rt60_s: float, rir_s: float, seed: int) -> Images:
    """Random-sign pulses from uniform directions, envelope 10^(-3 t / rt60), unit level at t = 0."""
    rng = np.random.default_rng([seed, 0x7A11])
    t_end = min(rir_s, t_cross + rt60_s * TAIL_FLOOR_DB / 60)
    n = max(1, int((t_end - t_start) * TAIL_PULSES_PER_S))
    t = rng.uniform(t_start, t_end, n)
    d = rng.standard_normal((n, 3))
    gain = rng.choice([-1.0, 1.0], n) * 10 ** (-3 * t / rt60_s)
    return Images(t, gain, np.full(n, -1), d / np.linalg.norm(d, axis=1, keepdims=True), float("nan"))


def _scatter(images: Images, fmt: str, n_samples: int, sample_rate_hz: int, short: bool = False) -> np.ndarray:
    """(C, n_samples) float64: each image's kernel placed at its delay (1/FRACTIONAL_PHASES resolution).

    ``short``: binaural kernels cut to TAIL_HRIR_TAPS (the tail's pulses; 3.7x cheaper).
    """
    n_ch = CHANNELS[fmt]
    out = np.zeros(n_ch * n_samples)
    if fmt == "binaural":
        hrtf = load_kemar(sample_rate_hz)
        table = _short_hrirs(sample_rate_hz) if short else hrtf.fractional  # (P, n_dirs, 2, T)
        onset = hrtf.onset_samples
    else:
        table, onset = _sinc_table(FRACTIONAL_PHASES, SINC_HALF_TAPS)[:, None, None], SINC_HALF_TAPS
    taps = np.arange(table.shape[-1])
    for lo in range(0, len(images.delay_s), CHUNK):
        part = images.subset(slice(lo, lo + CHUNK))
        whole = np.floor((part.delay_s * sample_rate_hz - onset) * FRACTIONAL_PHASES + 0.5).astype(np.int64)
        start, phase = whole // FRACTIONAL_PHASES, whole % FRACTIONAL_PHASES
        alive = start < n_samples
        if not alive.any():
            continue
        start, phase, part = start[alive], phase[alive], part.subset(alive)
        kernel = table[phase, hrtf.nearest(part.direction)] if fmt == "binaural" else table[phase, 0]
        values = kernel * _channel_gains(part, fmt)[:, :, None]  # (n, C, T)
        where = start[:, None, None] + taps  # (n, 1, T)
        ok = np.broadcast_to((where >= 0) & (where < n_samples), values.shape)
        flat = np.arange(n_ch)[None, :, None] * n_samples + where  # (n, C, T)
        out += np.bincount(flat[ok], weights=values[ok], minlength=n_ch * n_samples)
    return out.reshape(n_ch, n_samples)


def _channel_gains(images: Images, fmt: str) -> np.ndarray:
    """(n, C): image gain times the ambiX SN3D encoding (W, Y, Z, X) = (1, y, z, x) for FOA."""
    g = images.gain[:, None]
    if fmt == "foa":
        x, y, z = images.direction.T
        return g * np.stack([np.ones_like(x), y, z, x], axis=1)
    return np.repeat(g, CHANNELS[fmt], axis=1)


@lru_cache(maxsize=2)
def _short_hrirs(sample_rate_hz: int) -> np.ndarray:
    """The fractional HRIRs cut after TAIL_HRIR_TAPS taps past the onset, with a half-Hann fade-out."""
    hrtf = load_kemar(sample_rate_hz)
    n = min(hrtf.n_taps, hrtf.onset_samples + TAIL_HRIR_TAPS)
    fade = np.ones(n, dtype=np.float32)
    fade[n - TAIL_HRIR_TAPS // 3:] = np.hanning(2 * (TAIL_HRIR_TAPS // 3) + 2)[-(TAIL_HRIR_TAPS // 3) - 1:-1]
    return np.ascontiguousarray(hrtf.fractional[..., :n] * fade)


@lru_cache(maxsize=4)
def _sinc_table(n_phases: int, half: int) -> np.ndarray:
    """(n_phases, 2 half + 1): Hann-windowed sinc centred on tap ``half`` + p / n_phases."""
    k = np.arange(2 * half + 1)[None, :] - half - np.arange(n_phases)[:, None] / n_phases
    return np.sinc(k) * 0.5 * (1 + np.cos(np.pi * np.clip(k / (half + 1), -1, 1)))


# ------------------------------------------------------------------------------------ RT60
def measure_rt60(rir: np.ndarray, sample_rate_hz: int) -> float:
    """RT60 in seconds by Schroeder backward integration (ISO 3382 style).

    rir: (L,) or (C, L); the energies of the channels are summed (pass W alone for FOA, both ears
    for binaural). The energy decay curve starts at the strongest sample (the direct sound). A RIR cut
    before it has fully decayed makes the backward integral bend down; as in Lundeby's method the
    missing energy beyond the end is added back from the fitted exponential (5 iterations). The slope
    is fitted by least squares between -5 and -35 dB (T30) when the curve reaches -35 dB within the
    first 90 % of the RIR, else between -5 and -25 dB (T20), and extrapolated to 60 dB.
    """
    x = np.atleast_2d(np.asarray(rir, dtype=np.float64))
    energy = np.sum(x ** 2, axis=0)
    if energy.size < 2 or not np.all(np.isfinite(energy)) or energy.max() <= 0:
        raise RirError(f"cannot measure the RT60 of an empty, silent or non-finite RIR (shape {x.shape})")
    energy = energy[int(np.argmax(energy)):]
    edc = np.cumsum(energy[::-1])[::-1]
    t = np.arange(edc.size) / sample_rate_hz
    missing, slope = 0.0, None
    for _ in range(5):
        db = 10 * np.log10((edc + missing) / (edc[0] + missing) + 1e-300)
        lo_db = -35.0 if np.any(db[: int(0.9 * db.size)] <= -35.0) else -25.0
        sel = (db <= -5.0) & (db >= lo_db)
        if sel.sum() < 2 or not np.any(db[: int(0.9 * db.size)] <= -25.0):
            raise RirError(f"the RIR ({edc.size / sample_rate_hz:.3f} s) decays only {-db.min():.1f} dB; "
                           "RT60 needs at least 25 dB of decay (T20)")
        slope, icpt = np.polyfit(t[sel], db[sel], 1)
        tail = 10 ** ((icpt + slope * t[-1]) / 10)  # the model's remaining share at the end
        missing = min(tail, 0.5) * edc[0] / (1 - min(tail, 0.5))
    if slope >= 0:
        raise RirError("the energy decay curve does not decay")
    return float(-60.0 / slope)


def calibrate(images: Images, target_rt60_s: float, dims_m, n_samples: int, sample_rate_hz: int,
              *, steps: int = 4, tolerance: float = 0.05, tail_seed: int = 0) -> tuple[float, float, float]:
    """(absorption, tail_rt60_s, measured_rt60_s) so an omni RIR of ``images`` measures ~ the target.

    T starts at the target; a = Eyring(T); the tail decays with T; T *= target / measured; repeat.
    """
    model = target_rt60_s
    for _ in range(steps):
        absorption, _ = eyring_absorption(model, dims_m)
        absorption = float(np.clip(absorption, *ABSORPTION_RANGE))
        rir = render(images.at_absorption(absorption), "omni", n_samples, sample_rate_hz,
                     tail_rt60_s=model, tail_seed=tail_seed)
        measured = measure_rt60(rir, sample_rate_hz)
        if abs(measured / target_rt60_s - 1) <= tolerance:
            break
        model *= target_rt60_s / measured
    return absorption, model, measured
