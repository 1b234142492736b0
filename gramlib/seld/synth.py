"""A DCASE-format SELD set made by our own scene simulator, so the SELD path runs offline.

Layout and labels are those of STARSS23 (read back by ``read_dataset(dir, "synthetic")``)::

    foa_dev/dev-train-synth/fold{1,2,3}_room<r>_mix<m>.wav   4-ch ambiX, 24 kHz, 16-bit (as the real sets)
    foa_dev/dev-test-synth/fold4_room<r>_mix<m>.wav
    metadata_dev/<same folders>/<same stem>.csv              frame,class,source,azimuth,elevation,distance(cm)
    class_names.txt                                          line i = class i ("events:dog", "words:yes", ...)
    manifest.json                                            rooms (size, measured RT60, array position), events

Each recording is a shoebox room of its own with the array near its centre. Events (1 to
``cfg.max_overlap`` at a time: one timeline per track, later tracks sparser) are dry clips of
``cfg.classes`` classes taken from the embedded HEAR-format tasks (events, words and notes; see
:mod:`gramlib.seld.sources`; train-fold recordings use the tasks' train clips, the test fold their
test clips). A
source is static or, with probability ``cfg.moving_prob``, moves along a horizontal arc at 10, 20 or
40 deg/s (the DCASE 2020 speeds): it is rendered with one RIR per 100-ms label frame, consecutive
renderings cross-faded with triangular windows that sum to one. Directions are drawn on the integer
degree grid and distances on the centimetre grid the CSV holds, so the labels are exact. Diffuse
pink noise (SN3D diffuse-field levels: first-order channels at 1/3 the power of W) is added at
20-30 dB SNR.

RIRs come from :class:`ShoeboxFoa`, an image-source model written here: every image within
``SYNTH_RIR_S`` of the array adds ``beta^reflections / (4 pi d)`` at its (rounded) delay, encoded to
first-order ambiX by its direction (W = 1, Y = u_y, Z = u_z, X = u_x, SN3D). Walls are frequency
independent with one reflection coefficient from Sabine's formula for a target RT60; the stored RT60
is measured on the W channel (``gramlib.scenes.rir.measure_rt60``). Why not the project's RIR bank
(``gramlib.scenes.rooms``): it stores one source position per listener placement, so it cannot give the
tens of positions along an arc, in one room, that a moving source needs, and mixing bank rooms for
static sources with rooms of our own for moving ones would put one recording in several rooms.
``rooms_dir`` is therefore only recorded in the manifest. The rooms here are simpler than the bank's
(no air absorption, no stochastic late tail: the image set is cut at 0.4 s), which is enough for a
SELD set whose point is exact, moving, overlapping labels.

Every recording is a pure function of ``(seed, recording index)``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from ..core.audio import write_wav
from ..core.config import SeldConfig
from ..core.formats import SPEED_OF_SOUND_M_S
from ..scenes.rir import RirError, measure_rt60
from .data import CLASS_NAMES_FILE
from .labels import LABEL_HOP_S, SeldLabels, unit_vector, write_frame_csv
from .sources import source_clips

SYNTH_RIR_S = 0.4  # image sources arriving later are dropped (the tail is faded over its last 50 ms)
WALL_MARGIN_M = 0.3
TEST_FOLD = 4


# --------------------------------------------------------------------------------------------
# Rooms
# --------------------------------------------------------------------------------------------
def _axis_images(length_m: float, src: float, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """1-D image coordinates along one axis and their reflection counts (Allen & Berkley)."""
    n = np.arange(-n_max, n_max + 1)
    coords = np.concatenate([2 * n * length_m + src, 2 * n * length_m - src])
    reflections = np.concatenate([2 * np.abs(n), np.abs(n - 1) + np.abs(n)])
    return coords, reflections


@dataclass(frozen=True)
class ShoeboxFoa:
    size_m: tuple[float, float, float]
    mic_m: tuple[float, float, float]
    beta: float  # pressure reflection coefficient of every wall
    sample_rate_hz: int
    rir_s: float = SYNTH_RIR_S

    @classmethod
    def for_rt60(cls, size_m, mic_m, rt60_s: float, sample_rate_hz: int) -> "ShoeboxFoa":
        lx, ly, lz = size_m
        volume, surface = lx * ly * lz, 2 * (lx * ly + lx * lz + ly * lz)
        alpha = min(0.99, 0.161 * volume / (surface * rt60_s))  # Sabine
        return cls(tuple(size_m), tuple(mic_m), float(np.sqrt(1 - alpha)), sample_rate_hz)

    def rir(self, source_m: np.ndarray) -> np.ndarray:
        """(4, L) ambiX RIR from a source position (x, y, z) in room coordinates."""
        n_taps = int(self.rir_s * self.sample_rate_hz)
        r_max = SPEED_OF_SOUND_M_S * self.rir_s
        axes = [_axis_images(self.size_m[a], source_m[a], int(np.ceil(r_max / (2 * self.size_m[a]))) + 1)
                for a in range(3)]
        (cx, rx), (cy, ry), (cz, rz) = axes
        dx, dy, dz = cx - self.mic_m[0], cy - self.mic_m[1], cz - self.mic_m[2]
        d2 = dx[:, None, None] ** 2 + dy[None, :, None] ** 2 + dz[None, None, :] ** 2
        ix, iy, iz = np.nonzero(d2 < r_max ** 2)
        d = np.sqrt(d2[ix, iy, iz])
        amp = self.beta ** (rx[ix] + ry[iy] + rz[iz]) / (4 * np.pi * np.maximum(d, 0.1))
        delay = np.minimum(np.round(d / SPEED_OF_SOUND_M_S * self.sample_rate_hz).astype(int), n_taps - 1)
        gains = np.stack([np.ones_like(d), dy[iy] / d, dz[iz] / d, dx[ix] / d])  # ambiX W, Y, Z, X (SN3D)
        out = np.stack([np.bincount(delay, amp * g, minlength=n_taps) for g in gains])
        fade = int(0.05 * self.sample_rate_hz)
        out[:, -fade:] *= np.linspace(1.0, 0.0, fade)
        return out


def measured_rt60_s(room: ShoeboxFoa) -> float:
    """The room's RT60 measured on the W channel of a RIR 1.5 m in front (NaN if it decays < 25 dB)."""
    try:
        return measure_rt60(room.rir(np.asarray(room.mic_m) + [1.5, 0.0, 0.0])[:1], room.sample_rate_hz)
    except RirError:
        return float("nan")


def _room(rng: np.random.Generator, cfg: SeldConfig, sample_rate_hz: int) -> ShoeboxFoa:
    size = tuple(float(round(rng.uniform(*r), 2)) for r in cfg.synth_room_m)
    mic = (size[0] / 2 + rng.uniform(-0.5, 0.5), size[1] / 2 + rng.uniform(-0.5, 0.5), rng.uniform(1.2, 1.7))
    return ShoeboxFoa.for_rt60(size, tuple(float(round(m, 2)) for m in mic), rng.uniform(*cfg.synth_rt60_s),
                               sample_rate_hz)


def _max_distance_m(room: ShoeboxFoa, u: np.ndarray) -> float:
    """Largest distance along unit vector u that keeps WALL_MARGIN_M from every wall."""
    limits = []
    for a in range(3):
        if u[a] > 1e-9:
            limits.append((room.size_m[a] - WALL_MARGIN_M - room.mic_m[a]) / u[a])
        elif u[a] < -1e-9:
            limits.append((room.mic_m[a] - WALL_MARGIN_M) / -u[a])
    return min(limits)


# --------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------
def _plan_events(rng, duration_s: float, n_tracks: int, clips: dict, names: list[str], rate: int) -> list[dict]:
    """Events per track (timeline): class, clip, onset; tracks > 0 have longer gaps."""
    events = []
    for track in range(n_tracks):
        t = rng.uniform(0.1, 1.0 + 2.0 * track)
        while True:
            c = int(rng.integers(len(names)))
            pool = clips[names[c]]
            clip = pool[int(rng.integers(len(pool)))]
            dur = len(clip) / rate
            if t + dur > duration_s - 0.1:
                break
            events.append({"class": c, "clip": clip, "onset_s": float(t), "offset_s": float(t + dur), "track": track})
            t += dur + rng.uniform(0.3, 1.5) * (1 + 1.5 * track)
    return events


def _trajectory(rng, room: ShoeboxFoa, ev: dict, cfg: SeldConfig) -> dict:
    """Per-frame integer azimuth, fixed elevation and distance (cm grid) of one event."""
    first = int(np.floor(round(ev["onset_s"] / LABEL_HOP_S, 6)))
    last = int(np.ceil(round(ev["offset_s"] / LABEL_HOP_S, 6))) - 1
    frames = np.arange(first, last + 1)
    az0, el = int(rng.integers(-180, 180)), int(rng.integers(cfg.synth_elevation_deg[0], cfg.synth_elevation_deg[1] + 1))
    speed = 0
    if rng.random() < cfg.moving_prob:
        speed = int(rng.choice(cfg.synth_speeds_deg_s)) * int(rng.choice([-1, 1]))
    centres_s = (frames + 0.5) * LABEL_HOP_S
    az = np.round(az0 + speed * (centres_s - centres_s[0])).astype(int)
    az = (az + 180) % 360 - 180
    u = unit_vector(az, np.full(len(az), el))
    reach = min(_max_distance_m(room, v) for v in u)
    dist = round(float(min(rng.uniform(*cfg.synth_distance_m), reach)), 2)
    return {"frames": frames, "azimuth_deg": az, "elevation_deg": el, "distance_m": dist, "speed_deg_s": speed}


def _render_event(room: ShoeboxFoa, clip: np.ndarray, onset: int, traj: dict, n_samples: int) -> np.ndarray:
    """(4, n_samples) image of one event: one RIR (static) or one per label frame, cross-faded."""
    out = np.zeros((4, n_samples))
    u = unit_vector(traj["azimuth_deg"], np.full(len(traj["frames"]), traj["elevation_deg"]))
    positions = np.asarray(room.mic_m) + traj["distance_m"] * u
    hop = int(round(LABEL_HOP_S * room.sample_rate_hz))
    t = onset + np.arange(len(clip))
    if traj["speed_deg_s"] == 0:
        pieces = [(0, clip, room.rir(positions[0]))]
    else:  # triangular windows centred on the frame centres: they sum to one between the first and last centre
        centres = (traj["frames"] + 0.5) * hop
        weights = np.clip(1 - np.abs(t[None, :] - centres[:, None]) / hop, 0, 1)
        weights[0, t <= centres[0]] = 1.0
        weights[-1, t >= centres[-1]] = 1.0
        pieces = []
        for w, p in zip(weights, positions):
            support = np.flatnonzero(w)
            if len(support):  # convolve only where the window is open
                lo, hi = support[0], support[-1] + 1
                pieces.append((lo, clip[lo:hi] * w[lo:hi], room.rir(p)))
    for start, sig, rir in pieces:
        at = onset + start
        wet = fftconvolve(sig[None, :], rir, axes=-1)[:, : max(0, n_samples - at)]
        out[:, at:at + wet.shape[1]] += wet
    return out


def _diffuse_noise(rng, n_samples: int) -> np.ndarray:
    """(4, S) pink noise with SN3D diffuse-field channel powers (W: 1, Y/Z/X: 1/3)."""
    spec = rng.standard_normal((4, n_samples // 2 + 1)) + 1j * rng.standard_normal((4, n_samples // 2 + 1))
    spec /= np.sqrt(np.maximum(np.arange(n_samples // 2 + 1), 1))
    noise = np.fft.irfft(spec, n=n_samples)
    noise /= noise.std(axis=1, keepdims=True)
    return noise * np.array([1.0, 3 ** -0.5, 3 ** -0.5, 3 ** -0.5])[:, None]


def render_recording(cfg: SeldConfig, clips: dict, names: list[str], seed: int, index: int,
                     sample_rate_hz: int) -> tuple[np.ndarray, SeldLabels, dict]:
    """One recording: audio (4, S) float32, its labels, and its manifest entry."""
    rng = np.random.default_rng([seed, index])
    room = _room(rng, cfg, sample_rate_hz)
    n_samples = int(round(cfg.recording_s * sample_rate_hz))
    events = _plan_events(rng, cfg.recording_s, cfg.max_overlap, clips, names, sample_rate_hz)
    mix, rows, manifest_events = np.zeros((4, n_samples)), [], []
    for ev in events:
        traj = _trajectory(rng, room, ev, cfg)
        clip = ev["clip"] * 10 ** (rng.uniform(-6.0, 0.0) / 20)
        mix += _render_event(room, clip, int(round(ev["onset_s"] * sample_rate_hz)), traj, n_samples)
        n_label = int(np.ceil(round(cfg.recording_s / LABEL_HOP_S, 6)))
        rows += [(int(f), ev["class"], ev["track"], int(a), traj["elevation_deg"], traj["distance_m"])
                 for f, a in zip(traj["frames"], traj["azimuth_deg"]) if f < n_label]
        manifest_events.append({"class": names[ev["class"]], "track": ev["track"], "onset_s": ev["onset_s"],
                                "offset_s": ev["offset_s"], "azimuth_start_deg": int(traj["azimuth_deg"][0]),
                                "elevation_deg": traj["elevation_deg"], "distance_m": traj["distance_m"],
                                "speed_deg_s": traj["speed_deg_s"]})
    snr_db = rng.uniform(*cfg.synth_snr_db)
    signal_power = float(np.mean(mix[0] ** 2)) or 1e-8
    mix += _diffuse_noise(rng, n_samples) * np.sqrt(signal_power / 10 ** (snr_db / 10))
    mix *= 0.8 / np.max(np.abs(mix))
    labels = SeldLabels.from_rows(rows, int(np.ceil(round(cfg.recording_s / LABEL_HOP_S, 6))))
    entry = {"room_size_m": list(room.size_m), "array_m": list(room.mic_m),
             "rt60_s": measured_rt60_s(room),
             "snr_db": float(snr_db), "events": manifest_events}
    return mix.astype(np.float32), labels, entry


def recording_name(index: int, n_recordings: int) -> tuple[str, str]:
    """(folder, stem) of recording ``index``: the last quarter (at least one) is the test fold 4."""
    n_test = max(1, round(n_recordings / 4))
    if index >= n_recordings - n_test:
        return "dev-test-synth", f"fold{TEST_FOLD}_room{index + 1}_mix{index + 1:03d}"
    return "dev-train-synth", f"fold{index % (TEST_FOLD - 1) + 1}_room{index + 1}_mix{index + 1:03d}"


def make_synthetic_dataset(out_dir, rooms_dir, tasks_dir, cfg: SeldConfig, seed: int, *,
                           sample_rate_hz: int | None = None, progress: bool = True) -> Path:
    """Write ``cfg.recordings`` recordings of ``cfg.recording_s`` s into ``out_dir`` (see module doc).

    ``tasks_dir``: the embedded HEAR-format task suite (``None``: procedural stand-in sources, for
    tests). ``rooms_dir`` is recorded in the manifest only (see the module docstring for why).
    ``sample_rate_hz`` defaults to ``cfg.synth_sample_rate_hz`` (24 kHz, as the DCASE sets).
    """
    from tqdm.auto import tqdm  # tqdm.auto picks the notebook or terminal bar when the run starts

    out_dir = Path(out_dir)
    rate = sample_rate_hz or cfg.synth_sample_rate_hz
    names, clips = {}, {}
    for role in ("train", "test"):
        names[role], clips[role] = source_clips(tasks_dir, cfg.classes, role, rate, seed)
    if names["train"] != names["test"]:
        raise ValueError(f"train and test source classes differ: {names['train']} vs {names['test']}")
    class_names = names["train"]
    manifest = {"seed": seed, "sample_rate_hz": rate, "rooms_dir": str(rooms_dir) if rooms_dir else None,
                "tasks_dir": str(tasks_dir) if tasks_dir else None, "classes": class_names, "recordings": {}}
    for i in tqdm(range(cfg.recordings), desc="SELD synthetic set", disable=not progress):
        folder, stem = recording_name(i, cfg.recordings)
        role = "test" if folder.startswith("dev-test") else "train"
        audio, labels, entry = render_recording(cfg, clips[role], class_names, seed, i, rate)
        write_wav(out_dir / "foa_dev" / folder / f"{stem}.wav", audio, rate)
        write_frame_csv(out_dir / "metadata_dev" / folder / f"{stem}.csv", labels)
        manifest["recordings"][f"{folder}/{stem}"] = entry
    (out_dir / CLASS_NAMES_FILE).write_text("".join(n + "\n" for n in class_names))
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out_dir
