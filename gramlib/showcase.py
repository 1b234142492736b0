"""Single scenes, reconstructions and directions for the notebooks and Figure 1.

* :func:`make_scene` -- ONE scene from a chosen source, room and direction, rendered with the
  project's own room simulator (:mod:`gramlib.rooms`) and mixer (:func:`gramlib.nathear.mix_one`), in
  both formats, with its geometry.
* :func:`held_out_examples` / :func:`figure1_scene` -- scenes in held-out TEST rooms with TEST noise
  and dry task clips (sources never used for pre-training), mixed like Nat-HEAR items. They read only
  ``data/sources``, ``data/tasks`` and ``data/rooms`` (not ``data/nathear``), so the pre-training
  stage can show them before Nat-HEAR is built.
* :func:`reconstruct` -- the standard MAE picture: a 2-s crop, a seeded mask, and the prediction on
  the masked patches pasted into the visible input.
* ``localize_wav`` / ``localize_all`` -- the direction of a user's binaural or FOA recording (in
  :mod:`gramlib.localize`, reachable from here).

Directions are in the head/array frame of DESIGN.md (x front, y left, z up; azimuth counter-clockwise,
+90 deg = left). Audio is float32 (channels, samples) at 32 kHz; FOA is ambiX (W, Y, Z, X).
"""
from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import nathear, rooms, scenes, sources
from .audio import SAMPLE_RATE_HZ, write_wav
from .config import RoomsConfig
from .hrtf import directions_deg, unit_vectors
from .tasks import list_tasks, read_task

FEATURE_NAMES = {"clean": ("mono",), "binaural": ("left", "right"),
                 "foa": ("W", "Y", "Z", "X", "I_x (front)", "I_y (left)", "I_z (up)")}
SNR_DB = (5.0, 40.0)  # held-out scenes: the Nat-HEAR range


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
    mix = scenes.SceneSpec(0, 0, 0, float(rng.random()), float(snr_db), False)
    out = {f: nathear.mix_one(dry, *rset.rirs[f], noise, mix, sample_rate_hz) for f in rooms.FORMATS}
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


# ------------------------------------------------------------------------------------ held-out scenes
def dry_clip(paths, index: int = 0, task: str | None = None) -> tuple[np.ndarray, str]:
    """A dry held-out task clip (S,) and its name: ``task`` (default ``events``, 2 s, or the first
    scene task) of the suite, its last split (test, or the last fold), clip ``index``."""
    tasks = list_tasks(sources.tasks_source(paths.sources))
    names = [t.name for t in tasks]
    if task is None:
        task = "events" if "events" in names else next(t.name for t in tasks if _is_scene(t))
    if task not in names:
        raise ValueError(f"no task {task!r} in the suite; accepted: {names}")
    chosen = read_task(tasks[names.index(task)])
    split = chosen.splits[-1]
    name = chosen.files(split)[index % len(chosen.files(split))]
    return chosen.load(split, name).mean(0), f"{task}/{split}/{name}"


def held_out_noise(paths, index: int = 0) -> tuple[np.ndarray, str]:
    """A TEST noise clip (S,) (never used in pre-training) and its file name."""
    files = sources.noise_files(paths.sources, "test")
    path = files[index % len(files)]
    return sources.load_source(path), path.name


def _is_scene(task_path: Path) -> bool:
    return read_task(task_path).metadata.get("embedding_type") == "scene"


def held_out_scene(paths, fmt: str, index: int = 0, seed: int = 0) -> dict:
    """Held-out scene ``index``: a dry task clip in test-room RIR set ``index`` with a test noise, mixed as a
    Nat-HEAR item. {"audio" (A, S), "title", "room" (geometry), "direction", "source"}; clean: the dry clip."""
    rng = np.random.default_rng([seed, index])
    dry, name = dry_clip(paths, index)
    if fmt == "clean":
        return {"audio": dry[None], "title": f"dry {name}", "room": None, "direction": None, "source": name}
    bank = rooms.RirBank(paths.rooms / "test")
    set_index = index % len(bank)
    row = bank.manifest.iloc[set_index]
    noise, noise_name = held_out_noise(paths, int(rng.integers(1 << 16)))
    spec = scenes.SceneSpec(index, set_index, 0, float(rng.random()), float(rng.uniform(*SNR_DB)), False)
    audio = nathear.mix_one(dry, *bank.get(set_index, fmt), noise, spec, bank.sample_rate_hz)
    room = {"dims_m": tuple(float(row[k]) for k in ("length_m", "width_m", "height_m")),
            "listener_m": [float(row[f"listener_{a}_m"]) for a in "xyz"], "listener_yaw_deg": float(row["yaw_deg"]),
            "source_m": json.loads(row[f"{fmt}_source_m"]), "noise_m": json.loads(row["noises_m"]),
            "rt60_s": float(row[f"{fmt}_rt60_s"])}
    direction = {"azimuth_deg": float(row[f"{fmt}_azimuth_deg"]), "elevation_deg": float(row[f"{fmt}_elevation_deg"])}
    title = (f"{name} in {row['room_id']} (RT60 {room['rt60_s']:.2f} s), az {direction['azimuth_deg']:.0f}° "
             f"el {direction['elevation_deg']:.0f}°, SNR {spec.snr_db:.0f} dB")
    return {"audio": audio, fmt: audio, "title": title, "room": room, "direction": direction, "source": name}


def held_out_examples(paths, fmt: str, n: int = 2, seed: int = 0) -> list[dict]:
    """``n`` held-out scenes of :func:`held_out_scene` (dry clips for ``fmt`` "clean")."""
    return [held_out_scene(paths, fmt, k, seed) for k in range(n)]


# ------------------------------------------------------------------------------------ reconstructions
@lru_cache(maxsize=4)
def _load(model_dir: str, stamp: int):
    from .hear import load_model

    return load_model(model_dir)


def load_embedder(model_dir):
    """The HEAR-API model of a checkpoint folder (cached until its weights file changes)."""
    weights = Path(model_dir) / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"no checkpoint in {model_dir} (model.safetensors missing): run `dvc repro` first, "
                                "or gramlib.demo.build_demo() for a tiny demo model")
    return _load(str(Path(model_dir).resolve()), weights.stat().st_mtime_ns)


@torch.no_grad()
def reconstruct(model_dir, audio: np.ndarray, seed: int = 0, *, start_s: float = 0.0) -> dict:
    """The MAE on one 2-s crop of ``audio`` (A, S) (or mono (S,), duplicated to the model's channels).

    The crop starts at ``start_s`` (on the patch-column grid; padded when the audio is shorter) and is
    normalized as in training; the mask is drawn from the model's masking config with a generator
    seeded by ``seed``. Returns {"crop", "recon", "prediction" (C, T, F) float32, "mask_image" (C, T, F)
    bool (True = masked), "mask" (N,) bool (frequency-major), "grid" (n_rows, n_cols), "channels",
    "loss"}; ``recon`` is the prediction on masked patches and the input on visible ones.
    """
    embedder = load_embedder(model_dir)
    model = embedder.model
    wav = embedder.prepare(torch.from_numpy(np.atleast_2d(np.asarray(audio, np.float32)))[None])  # (1, A, S)
    start = int(start_s * embedder.sample_rate) // embedder.column_samples * embedder.column_samples
    if not 0 <= start < wav.shape[-1]:
        raise ValueError(f"start_s={start_s} is outside the audio ({wav.shape[-1] / embedder.sample_rate:.2f} s)")
    crop = embedder.chunk_features(wav, start)  # (1, C, T, F)
    out = model(crop, mask=model.draw_mask(1, torch.Generator().manual_seed(int(seed))))
    masked = out.mask.bool()  # (1, N)
    composite = torch.where(masked[..., None], out.pred, out.target)  # (1, N, P)
    mask_image = model.unpatchify(masked[..., None].expand_as(out.pred).float())[0] > 0.5  # (C, T, F)
    return {"crop": crop[0].numpy(), "recon": model.unpatchify(composite)[0].numpy(),
            "prediction": model.unpatchify(out.pred)[0].numpy(), "mask_image": mask_image.numpy(),
            "mask": masked[0].numpy(), "grid": tuple(model.grid), "channels": FEATURE_NAMES[embedder.format],
            "loss": float(out.loss), "format": embedder.format}


def figure1_scene(paths, variant: str, seed: int = 0) -> dict:
    """The input of :func:`gramlib.plots.figure_1`: held-out test-room scene ``seed`` in ``variant``'s
    format (FOA geometry, W channel for GRAM-Clean), reconstructed by ``models/<variant>``."""
    fmt = load_embedder(paths.model(variant)).format
    scene = held_out_scene(paths, fmt if fmt != "clean" else "foa", index=seed, seed=seed)
    return figure1_from(scene, paths.model(variant), seed, title=f"{variant} · held-out scene: {scene['source']}, "
                        f"test room, RT60 {scene['room']['rt60_s']:.2f} s")


def figure1_from(scene: dict, model_dir, seed: int = 0, title: str | None = None) -> dict:
    """:func:`gramlib.plots.figure_1`'s input for a scene of :func:`make_scene` or :func:`held_out_scene`:
    its room, the model's features of the scene (the version in the model's format; a mono model hears
    the dry source, or W), the seeded mask and the reconstruction."""
    fmt = load_embedder(model_dir).format
    audio = scene.get("dry", np.atleast_2d(scene["audio"])[0]) if fmt == "clean" else scene.get(fmt)
    if audio is None:
        raise ValueError(f"the scene has no {fmt} version (it holds {[k for k in rooms.FORMATS if k in scene]})")
    shown = reconstruct(model_dir, audio, seed=seed)
    return {"room": scene["room"], "mixture": shown["crop"], "reconstruction": shown["recon"], "grid": shown["grid"],
            "mask": shown["mask"], "channels": shown["channels"],
            "title": title or f"{Path(model_dir).name}: scene → {fmt} features → masked patches → reconstruction"}


def features(audio: np.ndarray, fmt: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The model input features (C, T, F) of ``audio`` (A, S) in ``fmt`` (log-mels; FOA adds intensity vectors)."""
    from .config import FeaturesConfig
    from .features import FeatureExtractor

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


def __getattr__(name: str):
    """The localization API lives in :mod:`gramlib.localize`; ``showcase.localize_wav`` etc. reach it."""
    if name in ("localize_wav", "localize_all", "read_spatial"):
        from . import localize

        return getattr(localize, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
