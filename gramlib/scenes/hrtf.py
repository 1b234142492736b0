"""The MIT KEMAR head-related impulse responses (normal pinna), as shipped inside ``slab``.

Gardner & Martin (1994), MIT Media Lab Perceptual Computing Technical Report #280: 710 directions,
elevation -40 deg to 90 deg in 10-deg rings, 512 taps at 44.1 kHz. The data are "free with no
restrictions on use, provided the authors are cited". ``slab`` is installed ``--no-deps``
(its ``sounddevice`` dependency needs PortAudio), so it is imported here and nowhere else.

Conventions (DESIGN.md): head frame x = front, y = left, z = up; azimuth counter-clockwise from the
front (+90 deg = left); channel 0 = left ear. slab's vertical-polar azimuth already runs
counter-clockwise with channel 0 the left ear; :func:`load_kemar` checks this on the data (a source at
+90 deg must be louder in channel 0) and mirrors the azimuths once if it ever did not hold.

Time origin: tap ``onset_samples`` of every HRIR is the instant the sound passes the head centre
(taken as the onset of the frontal HRIR), so a renderer places that tap at ``distance / c``; ears on
the near side of a lateral source then start a few samples earlier, as they should.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from math import gcd

import numpy as np

KEMAR_RATE_HZ = 44100
SUPPORTED_RATES_HZ = (8000, 48000)  # inclusive; above 44.1 kHz the HRIRs carry nothing past 22.05 kHz
MIN_ELEVATION_DEG = -40.0  # the lowest KEMAR ring: binaural sources are placed at or above it
FRACTIONAL_PHASES = 8  # sub-sample delay resolution of the renderer: 1/8 sample
ONSET_FRACTION = 0.1  # an HRIR "starts" where it first reaches 10 % of its peak
LEAD_MARGIN_44K = 8  # taps kept before the earliest onset (room for the resampling filter's pre-ringing)


class HrtfError(ValueError):
    """An HRTF request that cannot be served (sample rate, directions)."""


@dataclass(frozen=True, eq=False)
class Hrtf:
    """Head-related impulse responses on a set of measured directions, in the head frame.

    hrirs: (n_dirs, 2, n_taps) float32, channel 0 = left ear.
    fractional: (FRACTIONAL_PHASES, n_dirs, 2, n_taps) float32; ``fractional[p]`` is ``hrirs``
    delayed by ``p / FRACTIONAL_PHASES`` samples (band-limited, from the resampling itself), so a
    renderer gets sub-sample delays without interpolating. ``fractional[0] == hrirs``.
    """

    sample_rate_hz: int
    hrirs: np.ndarray
    azimuth_deg: np.ndarray  # (n_dirs,) in [0, 360), counter-clockwise, +90 = left
    elevation_deg: np.ndarray  # (n_dirs,)
    directions_xyz: np.ndarray  # (n_dirs, 3) unit vectors in the head frame
    onset_samples: int  # tap of each HRIR that corresponds to arrival at the head centre
    fractional: np.ndarray = field(repr=False)

    @property
    def n_taps(self) -> int:
        return self.hrirs.shape[-1]

    def nearest(self, directions_xyz: np.ndarray) -> np.ndarray:
        """Index of the measured direction closest (in angle) to each of ``directions_xyz`` (n, 3).

        Directions below the lowest ring (-40 deg) map onto that ring: KEMAR has no data there.
        """
        d = np.asarray(directions_xyz, dtype=np.float64).reshape(-1, 3)
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        if np.any(norm == 0) or not np.all(np.isfinite(d)):
            raise HrtfError("directions must be finite, non-zero vectors")
        return _kdtree(self.directions_xyz.tobytes()).query(d / norm)[1].astype(np.int64)


def unit_vectors(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors of directions in degrees (x = front, y = left, z = up)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def directions_deg(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(azimuth_deg in [0, 360), elevation_deg) of vectors (..., 3)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    az = np.degrees(np.arctan2(xyz[..., 1], xyz[..., 0])) % 360.0
    el = np.degrees(np.arctan2(xyz[..., 2], np.hypot(xyz[..., 0], xyz[..., 1])))
    return az, el


def check_sample_rate(sample_rate_hz) -> int:
    """The rate as an int, or :class:`HrtfError` when the KEMAR data cannot serve it."""
    lo, hi = SUPPORTED_RATES_HZ
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, (int, np.integer)) \
            or not lo <= sample_rate_hz <= hi:
        raise HrtfError(f"the KEMAR HRTF cannot serve sample_rate_hz={sample_rate_hz!r}; "
                        f"accepted: an integer rate from {lo} to {hi} Hz (measured at {KEMAR_RATE_HZ} Hz)")
    return int(sample_rate_hz)


@lru_cache(maxsize=4)
def load_kemar(sample_rate_hz: int = 32000) -> Hrtf:
    """The KEMAR HRTF resampled to ``sample_rate_hz`` (cached per process and rate).

    Raises :class:`HrtfError` for a rate outside ``SUPPORTED_RATES_HZ``.
    """
    rate = check_sample_rate(sample_rate_hz)
    hrirs_44k, az, el = _read_slab()
    lead = max(0, int(_onsets(hrirs_44k).min()) - LEAD_MARGIN_44K)  # drop the common leading silence
    fractional = _resample_phases(hrirs_44k[..., lead:], rate, FRACTIONAL_PHASES)
    hrirs = fractional[0]
    front = int(np.argmin(np.abs(az - 0.0) + np.abs(el)))  # az 0, el 0
    onset = int(_onsets(hrirs[front:front + 1]).mean().round())
    return Hrtf(sample_rate_hz=rate, hrirs=hrirs, azimuth_deg=az, elevation_deg=el,
                directions_xyz=unit_vectors(az, el), onset_samples=onset, fractional=fractional)


def _read_slab() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KEMAR as (n_dirs, 2, 512) float64 at 44.1 kHz with azimuth/elevation in our convention."""
    try:
        import slab  # slab (and the KEMAR set) only when the HRTFs are first needed
    except (ImportError, OSError) as err:  # OSError: slab installed with its PortAudio dependency
        raise HrtfError(f"cannot import slab for the KEMAR HRTF ({err}); install it with "
                        "`pip install --no-deps slab==1.8.2`") from err
    kemar = slab.HRTF.kemar()
    if int(kemar.samplerate) != KEMAR_RATE_HZ:
        raise HrtfError(f"slab's KEMAR is at {kemar.samplerate} Hz; expected {KEMAR_RATE_HZ} Hz")
    hrirs = np.stack([np.asarray(f.data, dtype=np.float64).T for f in kemar.data])  # (n, 2, taps)
    polar = np.asarray(kemar.sources.vertical_polar, dtype=np.float64)
    az, el = polar[:, 0] % 360.0, polar[:, 1]
    left_side = (az > 10) & (az < 170) & (np.abs(el) <= 30)
    energy = np.sum(hrirs[left_side] ** 2, axis=-1)  # (n_left, 2)
    if np.mean(energy[:, 0] > energy[:, 1]) < 0.5:  # slab's azimuth ran clockwise: mirror once
        az = (-az) % 360.0
    return hrirs, az, el


def _onsets(hrirs: np.ndarray) -> np.ndarray:
    """(n_dirs, 2) first tap where each HRIR reaches ONSET_FRACTION of its own peak."""
    mag = np.abs(hrirs)
    return np.argmax(mag >= ONSET_FRACTION * mag.max(axis=-1, keepdims=True), axis=-1)


def _resample_phases(hrirs: np.ndarray, rate: int, n_phases: int) -> np.ndarray:
    """(n_phases, n_dirs, 2, n_taps) float32: phase ``p`` delayed by ``p / n_phases`` samples.

    One band-limited resampling to ``rate * n_phases``; phase ``p`` keeps every ``n_phases``-th
    sample starting ``n_phases - p`` samples after a prepended zero block, i.e. h(n/rate - p/(n_phases rate)).
    """
    from scipy.signal import resample_poly  # scipy loads only where it is used

    fine = rate * n_phases
    g = gcd(fine, KEMAR_RATE_HZ)
    up = resample_poly(hrirs, fine // g, KEMAR_RATE_HZ // g, axis=-1)  # (n_dirs, 2, M)
    n_taps = -(-up.shape[-1] // n_phases) + 1
    padded = np.zeros(up.shape[:-1] + (n_taps * n_phases + n_phases,))
    padded[..., n_phases:n_phases + up.shape[-1]] = up
    phases = [padded[..., n_phases - p::n_phases][..., :n_taps] for p in range(n_phases)]
    # x KEMAR_RATE_HZ / rate keeps the frequency response (an FIR's gain scales with its tap density)
    return np.ascontiguousarray(np.stack(phases) * (KEMAR_RATE_HZ / rate), dtype=np.float32)


@lru_cache(maxsize=4)
def _kdtree(directions_bytes: bytes):
    from scipy.spatial import cKDTree  # scipy loads only where it is used

    return cKDTree(np.frombuffer(directions_bytes, dtype=np.float64).reshape(-1, 3))
