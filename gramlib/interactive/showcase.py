"""Scenes built by hand for the interactive notebooks (explore, Colab).

* :func:`make_scene` -- ONE scene from a chosen source, room and direction, rendered with the
  project's own room simulator (:mod:`gramlib.scenes.rooms`) and mixer (:func:`gramlib.nathear.build.mix_one`), in
  both formats, with its geometry.
* :func:`features` -- the model input features of a clip, with channel names;
* :func:`scene_wav` -- a scene written as a WAV file to listen to or to localize.

Held-out scenes are in :mod:`gramlib.nathear.heldout`, reconstructions in :mod:`gramlib.train.reconstruct`, the
direction of a recording in :mod:`gramlib.eval.localize`.

Directions are in the head/array frame of DESIGN.md (x front, y left, z up; azimuth counter-clockwise,
+90 deg = left). Audio is float32 (channels, samples) at 32 kHz; FOA is ambiX (W, Y, Z, X).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..core.audio import SAMPLE_RATE_HZ, write_wav
from ..core.config import FeaturesConfig, RoomsConfig
from ..core.formats import FEATURE_NAMES
from ..model.features import FeatureExtractor
from ..nathear import build
from ..scenes import mixer, rooms
from ..scenes.hrtf import directions_deg, unit_vectors


# ------------------------------------------------------------------------------------ one scene
def make_scene(*, source: np.ndarray, room: dict | None = None, direction=None, noise: np.ndarray | None = None,
               snr_db: float = 20.0, fmt: str = "foa", seed: int = 0, max_order: int = 8, rir_s: float = 1.0,
               sample_rate_hz: int = SAMPLE_RATE_HZ) -> dict:
    """One scene of the mono ``source`` (S,) in a shoebox room.

    ``room``: {"dims_m": (length, width, height), "rt60_s": t} (None: drawn like a bank room from
    ``seed``). ``direction``: (azimuth_deg, elevation_deg, distance_m) of the source in the head frame
    (None: drawn like a bank placement); the listener's position and yaw are drawn from ``seed`` until
    the source fits in the room. ``noise``: a mono clip placed in the room at ``snr_db`` through the
    bank's noise placements (1 localized or 3-5 diffuse sources), or None. The binaural version uses
    the nearest KEMAR direction (elevations below -40 deg take that ring).

    Returns {"audio": the ``fmt`` version, "dry" (S,), "binaural" (2, S), "foa" (4, S), "format",
    "sample_rate_hz", "snr_db", "direction": {azimuth_deg, elevation_deg, distance_m, vector},
    "room": {dims_m, rt60_s (measured, per format), listener_m, listener_yaw_deg, source_m, noise_m}}.
    """
    if fmt not in rooms.FORMATS:
        raise ValueError(f"unknown scene format {fmt!r}; accepted: {list(rooms.FORMATS)}")
    dry = np.asarray(source, np.float32)
    if dry.ndim != 1 or dry.size == 0:
        raise ValueError(f"source must be a non-empty mono clip (S,), got shape {dry.shape}")
    if room is not None and set(room) != {"dims_m", "rt60_s"}:
        raise ValueError(f"room must be {{'dims_m': (length, width, height), 'rt60_s': t}}, got keys {sorted(room)}")
    rng = np.random.default_rng(seed)
    cfg = RoomsConfig(max_order=max_order, rir_s=rir_s)
    if direction is not None:  # the bank's own source only needs to fit, ours replaces it
        cfg = RoomsConfig(max_order=max_order, rir_s=rir_s, distance_m=(0.5, 0.5))
    spec = rooms.sample_room(rng, cfg, "scene", "test") if room is None else \
        rooms.RoomSpec("scene", "test", tuple(float(d) for d in room["dims_m"]), float(room["rt60_s"]))
    placement = _placement(rng, spec, cfg, direction)
    spec, (rset,), _ = rooms.render_room(spec, [placement], max_order=max_order, rir_samples=int(rir_s * sample_rate_hz),
                                         sample_rate_hz=sample_rate_hz, seed=seed, with_noise=noise is not None)
    mix = mixer.SceneSpec(0, 0, 0, float(rng.random()), float(snr_db), False)
    out = {f: build.mix_one(dry, *rset.rirs[f], noise, mix, sample_rate_hz) for f in rooms.FORMATS}
    rel = rooms.head_to_room(placement.sources_m[fmt] - placement.listener_m, -placement.yaw_deg)
    azimuth, elevation = directions_deg(rel)
    geometry = {"dims_m": spec.dims_m, "rt60_s": dict(rset.rt60_s), "listener_m": placement.listener_m.tolist(),
                "listener_yaw_deg": placement.yaw_deg, "source_m": placement.sources_m[fmt].tolist(),
                "noise_m": placement.noises_m.tolist() if noise is not None else []}
    return {"audio": out[fmt], "dry": dry, **out, "format": fmt, "sample_rate_hz": sample_rate_hz, "snr_db": snr_db,
            "direction": {"azimuth_deg": float(azimuth), "elevation_deg": float(elevation),
                          "distance_m": float(np.linalg.norm(rel)), "vector": rel / np.linalg.norm(rel)},
            "room": geometry}


def _placement(rng, spec: rooms.RoomSpec, cfg: RoomsConfig, direction, tries: int = 200) -> rooms.Placement:
    """A bank-like placement; with ``direction`` given, its source replaced by that direction's point."""
    for _ in range(tries):
        p = rooms.sample_placement(rng, spec, cfg)
        if direction is None:
            return p
        azimuth_deg, elevation_deg, distance_m = (float(v) for v in direction)
        point = p.listener_m + rooms.head_to_room(unit_vectors(azimuth_deg, elevation_deg), p.yaw_deg) * distance_m
        if np.all(point > rooms.WALL_MARGIN_M) and np.all(point < np.asarray(spec.dims_m) - rooms.WALL_MARGIN_M):
            return rooms.Placement(p.listener_m, p.yaw_deg, {f: point for f in rooms.FORMATS}, p.noises_m)
    raise rooms.RoomError(f"a source at {distance_m} m does not fit in the room {list(spec.dims_m)} m after {tries} "
                          "listener positions; accepted: a distance well below the room's smallest size")


def features(audio: np.ndarray, fmt: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The model input features (C, T, F) of ``audio`` (A, S) in ``fmt`` (log-mels; FOA adds intensity vectors)."""

    extractor = FeatureExtractor(FeaturesConfig(), fmt)
    with torch.no_grad():
        feats = extractor(torch.from_numpy(np.atleast_2d(np.asarray(audio, np.float32)))[None])[0]
    return feats.numpy(), FEATURE_NAMES[fmt]


def scene_wav(audio: np.ndarray, path=None, sample_rate_hz: int = SAMPLE_RATE_HZ) -> Path:
    """Write (C, S) audio to ``path`` (a new temporary .wav when None), scaled down if it would clip."""
    if path is None:
        handle, path = tempfile.mkstemp(suffix=".wav", prefix="gram-scene-")
        os.close(handle)
    audio = np.asarray(audio, np.float32)
    peak = float(np.max(np.abs(audio)))
    return write_wav(path, audio * min(1.0, 0.99 / peak) if peak > 0 else audio, sample_rate_hz)
