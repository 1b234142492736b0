"""Shoebox rooms and their binaural and first-order Ambisonics impulse responses.

One room = one pyroomacoustics image-source computation (``ShoeBox.image_source_model``) for every
source of every placement ("RIR set") in it; each image is then rendered twice by our own code:

* **binaural** -- through the KEMAR HRIR of its direction in the head frame (nearest measured
  direction; images below the -40 deg ring use that ring), 1/r attenuation times the wall damping,
  delay r/c with 1/8-sample resolution (band-limited fractional HRIRs, see :mod:`gramlib.scenes.hrtf`);
* **FOA, ambiX** (ACN order W, Y, Z, X; SN3D; W gain 1) -- the same impulse as a windowed sinc,
  encoded exactly from its direction: gains (1, y, z, x) of the unit vector in the array frame.

Amplitudes are 1/r with r in metres (gain 1 at 1 m). The listener's head (and the FOA array) turns
by ``yaw_deg`` counter-clockwise about z; directions are in the head frame (x front, y left, z up).
Each RIR set has TWO target sources, one per format: the binaural one at an elevation KEMAR measures
(>= -40 deg), the FOA one anywhere on the sphere (DESIGN.md); the noise sources are shared.

The paper renders SoundSpaces 2.0 (ray tracing on Matterport3D meshes, a CIPIC HRTF); neither meshes
nor that renderer exist offline, so shoebox rooms, the image method and the MIT KEMAR stand in.

**Late tail.** The image order is capped at ``max_order``, so the image set is complete only up to
the crossover time t_c = arrival of the nearest image of order ``max_order``. Each RIR keeps its
images up to t_c and continues with a stochastic tail: velvet-like noise made of TAIL_PULSES_PER_S
random-sign pulses per second, each from a direction drawn uniformly on the sphere (rendered through
the HRIR of that direction, cut to 3 ms, for binaural; encoded like an image for FOA; the same pulses
for both formats), at times uniform in [window start, t_c + 1.5 T], with an amplitude envelope
10^(-3 t / T) (60 dB per T seconds). Its level is matched *per format* to the image-source
reflections (direct path excluded) in the window [max(t_c - 50 ms, first reflection), t_c): the gain
is sqrt(E_images / E_tail) over that window, energies summed over both ears (binaural) or taken on W
(FOA). Images fade out and the tail fades in over the 5 ms before t_c (equal-power crossfade).

**RT60 calibration.** Walls share one frequency-independent absorption a. A room draws a target RT60
T*; T starts at T*, a comes from Eyring's formula T = 0.161 V / (-S ln(1 - a)) (the decay of a
diffuse field with those walls), and the tail decays with T. An omnidirectional RIR of the room's
first source is rendered and its RT60 measured (:func:`measure_rt60`); T is scaled by T*/measured and
the step repeated until the measurement is within 5 % of T* (at most 4 steps). Changing a only
rescales the image damping (damping ~ sqrt(1 - a)^order), so the image-source computation is not
redone. The stored RT60 of every RIR is its own measurement (W for FOA, both ears for binaural).
A full-order image set with the same walls would decay slower than Eyring (a specular shoebox keeps
grazing paths alive; pyroomacoustics measures 0.65 s for a nominal 0.5 s): the tail replaces that.

The rendering itself is in :mod:`gramlib.scenes.rir`; the sharded banks (``build_bank``, ``RirBank``) in
:mod:`gramlib.scenes.rirbank`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..core import formats
from ..core.config import RoomsConfig
from ..core.formats import AUDIO_CHANNELS
from . import rir
from .hrtf import MIN_ELEVATION_DEG, check_sample_rate, unit_vectors
from .rir import measure_rt60

FORMATS = ("binaural", "foa")
N_CHANNELS = {f: AUDIO_CHANNELS[f] for f in FORMATS}
WALL_MARGIN_M = 0.25  # nothing closer to a wall
LISTENER_HEIGHT_M = (1.2, 1.8)  # ear height, clipped to the room
NOISE_MIN_DISTANCE_M = 1.0
END_FADE_S = 0.01  # half-cosine fade at the cut end of every RIR


class RoomError(ValueError):
    """A room, placement or RIR request that cannot be simulated."""


@dataclass(frozen=True)
class RoomSpec:
    room_id: str
    split: str
    dims_m: tuple[float, float, float]  # length (x), width (y), height (z)
    target_rt60_s: float
    absorption: float | None = None  # set by calibration
    tail_rt60_s: float | None = None  # set by calibration


@dataclass(frozen=True)
class Placement:
    """One RIR set: a listener, one target source per format, and 1-5 noise sources (room frame)."""

    listener_m: np.ndarray  # (3,)
    yaw_deg: float
    sources_m: dict  # format -> (3,)
    noises_m: np.ndarray  # (N, 3)


@dataclass
class RirSet:
    placement: Placement
    rirs: dict = field(default_factory=dict)  # format -> (source (C, L), noises (N, C, L)) float32
    rt60_s: dict = field(default_factory=dict)  # format -> measured RT60 of the source RIR


# ------------------------------------------------------------------------------------ checks
def check_format(fmt: str) -> str:
    return formats.check_format(fmt, FORMATS, RoomError, "RIR format")


def check_inside(point_m, dims_m, what: str) -> None:
    p = np.asarray(point_m, dtype=float)
    if p.shape != (3,) or np.any(p <= 0) or np.any(p >= np.asarray(dims_m)):
        raise RoomError(f"{what} at {np.round(p, 3).tolist()} m is outside the room {list(dims_m)} m; "
                        "accepted: 0 < x < length, 0 < y < width, 0 < z < height")


def absorption_for_rt60(rt60_s: float, dims_m) -> float:
    """Wall absorption giving ``rt60_s`` by Eyring's formula; raises when the room cannot reach it."""
    if isinstance(rt60_s, bool) or not isinstance(rt60_s, (int, float)) or not np.isfinite(rt60_s) \
            or rt60_s <= 0:
        raise RoomError(f"rt60_s must be a positive number of seconds, got {rt60_s!r}")
    alpha, (lo, hi) = rir.eyring_absorption(rt60_s, dims_m)
    if not rir.ABSORPTION_RANGE[0] <= alpha <= rir.ABSORPTION_RANGE[1]:
        dims = " x ".join(f"{d:.2f}" for d in dims_m)
        raise RoomError(f"a {dims} m room cannot reach RT60 {rt60_s:.3f} s (wall absorption {alpha:.4f}, "
                        f"accepted {list(rir.ABSORPTION_RANGE)}); accepted RT60: {lo:.3f} to {hi:.2f} s")
    return float(alpha)


def check_config(cfg: RoomsConfig, sample_rate_hz: int) -> None:
    """Raise :class:`RoomError` for a RoomsConfig that cannot produce a bank."""
    check_sample_rate(sample_rate_hz)
    for name in ("rt60_s", "length_m", "width_m", "height_m", "distance_m", "n_diffuse"):
        lo, hi = getattr(cfg, name)
        if not 0 < lo <= hi:
            raise RoomError(f"rooms.{name} = {[lo, hi]} must be positive with low <= high")
    if cfg.max_order < 2:
        raise RoomError(f"rooms.max_order = {cfg.max_order}; accepted: >= 2 (the tail needs reflections)")
    if cfg.rir_s <= 0 or not 0 <= cfg.diffuse_prob <= 1 or cfg.shard_size < 1:
        raise RoomError(f"rooms.rir_s={cfg.rir_s} must be > 0, diffuse_prob={cfg.diffuse_prob} in [0, 1], "
                        f"shard_size={cfg.shard_size} >= 1")
    if cfg.rt60_s[1] * 25 / 60 > 0.9 * cfg.rir_s:
        raise RoomError(f"rooms.rt60_s up to {cfg.rt60_s[1]} s cannot be measured in a {cfg.rir_s}-s RIR "
                        f"(T20 needs 25 dB of decay); accepted: rt60_s <= {0.9 * cfg.rir_s * 60 / 25:.2f} s")
    for dims in [(a, b, c) for a in cfg.length_m for b in cfg.width_m for c in cfg.height_m]:
        for rt60 in cfg.rt60_s:
            absorption_for_rt60(rt60, dims)


# ------------------------------------------------------------------------------------ sampling
def sample_room(rng: np.random.Generator, cfg: RoomsConfig, room_id: str, split: str) -> RoomSpec:
    dims = tuple(float(rng.uniform(*r)) for r in (cfg.length_m, cfg.width_m, cfg.height_m))
    rt60 = float(rng.uniform(*cfg.rt60_s))
    absorption_for_rt60(rt60, dims)
    return RoomSpec(room_id=room_id, split=split, dims_m=dims, target_rt60_s=rt60)


def head_to_room(vectors: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Rotate head-frame vectors (..., 3) into the room frame (head turned ``yaw_deg`` CCW)."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    v = np.asarray(vectors, dtype=float)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], axis=-1)


def sample_placement(rng: np.random.Generator, room: RoomSpec, cfg: RoomsConfig, tries: int = 200) -> Placement:
    """A listener (position, yaw), a source per format and the noise sources.

    Source directions are uniform on the sphere (binaural: above the lowest HRTF ring) at a distance
    uniform in ``cfg.distance_m``, conditioned on fitting in the room: rejection sampling, so steep
    elevations are rarer than on the sphere when the room is low. Noise: one localized source, or
    ``cfg.n_diffuse`` sources (diffuse) with probability ``cfg.diffuse_prob``, anywhere in the room
    at least NOISE_MIN_DISTANCE_M from the listener.
    """
    dims = np.asarray(room.dims_m)
    lo = np.full(3, WALL_MARGIN_M)
    for _ in range(tries):
        listener = rng.uniform(lo, dims - lo)
        listener[2] = rng.uniform(*np.clip(LISTENER_HEIGHT_M, WALL_MARGIN_M, dims[2] - WALL_MARGIN_M))
        yaw = float(rng.uniform(0.0, 360.0))
        sources = {f: _place_source(rng, listener, yaw, dims, cfg.distance_m, min_el) for f, min_el in
                   (("binaural", MIN_ELEVATION_DEG), ("foa", -90.0))}
        if all(s is not None for s in sources.values()):
            diffuse = rng.random() < cfg.diffuse_prob
            n_noise = int(rng.integers(cfg.n_diffuse[0], cfg.n_diffuse[1] + 1)) if diffuse else 1
            noises = [_place_noise(rng, listener, dims) for _ in range(n_noise)]
            return Placement(listener, yaw, sources, np.stack(noises))
    raise RoomError(f"cannot place a source {cfg.distance_m} m from a listener in room {room.room_id} "
                    f"{np.round(dims, 2).tolist()} m after {tries} tries; widen rooms.distance_m or the room sizes")


def _place_source(rng, listener, yaw, dims, distance_m, min_el_deg, tries: int = 50):
    for _ in range(tries):
        el = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(min_el_deg)), 1.0)))
        u = unit_vectors(rng.uniform(0.0, 360.0), el)
        point = listener + head_to_room(u, yaw) * rng.uniform(*distance_m)
        if np.all(point > WALL_MARGIN_M) and np.all(point < dims - WALL_MARGIN_M):
            return point
    return None


def _place_noise(rng, listener, dims, tries: int = 1000):
    for _ in range(tries):
        point = rng.uniform(WALL_MARGIN_M, dims - WALL_MARGIN_M)
        if np.linalg.norm(point - listener) >= NOISE_MIN_DISTANCE_M:
            return point
    raise RoomError(f"no room for a noise source >= {NOISE_MIN_DISTANCE_M} m from the listener in {dims} m")


# ------------------------------------------------------------------------------------ rendering
def render_room(room: RoomSpec, placements: list[Placement], *, max_order: int, rir_samples: int,
                sample_rate_hz: int = 32000, seed: int = 0, formats=FORMATS,
                with_noise: bool = True) -> tuple[RoomSpec, list, dict]:
    """Every RIR of ``placements`` in ``room`` from one image-source computation.

    Returns (the room with its calibrated absorption and tail RT60, [RirSet], seconds per stage
    {"ism", "calibration", <format>...}). A room already calibrated (e.g. re-read from a manifest to
    render new placements) keeps its absorption and tail. ``with_noise=False`` skips the noise RIRs
    (they come back as (0, C, L) arrays).
    """
    check_sample_rate(sample_rate_hz)
    formats = [check_format(f) for f in formats]
    start = time.perf_counter()
    absorption = room.absorption if room.absorption is not None else \
        absorption_for_rt60(room.target_rt60_s, room.dims_m)
    groups = [(p.listener_m, p.yaw_deg, [*(p.sources_m[f] for f in FORMATS), *p.noises_m]) for p in placements]
    for k, (listener, _, points) in enumerate(groups):
        check_inside(listener, room.dims_m, f"listener of set {k}")
        for j, point in enumerate(points):
            check_inside(point, room.dims_m, f"source {j} of set {k}")
    images = rir.image_sources(room.dims_m, absorption, groups, max_order, sample_rate_hz)
    timings = {"ism": time.perf_counter() - start}
    start = time.perf_counter()
    if room.tail_rt60_s is None:
        absorption, tail_rt60, _ = rir.calibrate(images[0][0], room.target_rt60_s, room.dims_m, rir_samples,
                                                 sample_rate_hz, tail_seed=_seed(seed, -1, 0))
        room = replace(room, absorption=absorption, tail_rt60_s=tail_rt60)
    timings["calibration"] = time.perf_counter() - start
    sets = [RirSet(p) for p in placements]
    for fmt in formats:
        start = time.perf_counter()
        for k, (rset, per) in enumerate(zip(sets, images)):
            src_j = FORMATS.index(fmt)
            noise_j = range(len(FORMATS), len(per)) if with_noise else []
            rirs = [_render(per[j], fmt, room, rir_samples, sample_rate_hz, _seed(seed, k, j))
                    for j in [src_j, *noise_j]]
            empty = np.zeros((0, N_CHANNELS[fmt], rir_samples), np.float32)
            rset.rirs[fmt] = (rirs[0], np.stack(rirs[1:]) if with_noise else empty)
            rset.rt60_s[fmt] = measure_rt60(rirs[0] if fmt == "binaural" else rirs[0][:1], sample_rate_hz)
        timings[fmt] = time.perf_counter() - start
    return room, sets, timings


def _render(images, fmt, room: RoomSpec, n: int, rate: int, seed: int) -> np.ndarray:
    out = rir.render(images.at_absorption(room.absorption), fmt, n, rate, tail_rt60_s=room.tail_rt60_s,
                     tail_seed=seed)
    fade = min(n, int(END_FADE_S * rate))
    out[:, n - fade:] *= 0.5 * (1 + np.cos(np.pi * np.arange(1, fade + 1) / fade))
    return out


def _seed(seed: int, set_index: int, source_index: int) -> int:
    """Tail seed of one source: the same for both formats, so their tails are the same field."""
    return int(np.random.SeedSequence([seed, set_index + 1, source_index]).generate_state(1)[0])
