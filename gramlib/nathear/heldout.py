"""Held-out scenes: a dry task clip in a held-out TEST room with a TEST noise, mixed as a Nat-HEAR item.

The sources are never used for pre-training. These read only ``data/sources``, ``data/tasks`` and
``data/rooms`` (not ``data/nathear``), so the pre-training stage can show them before Nat-HEAR is built.
Directions are in the head/array frame of DESIGN.md (x front, y left, z up; azimuth counter-clockwise,
+90 deg = left). Audio is float32 (channels, samples) at 32 kHz; FOA is ambiX (W, Y, Z, X).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core import config, sourcefiles
from ..core.tasks import list_tasks, read_task
from ..scenes import mixer, rirbank
from . import build


def nathear_snr_db(paths) -> tuple[float, float]:
    """The SNR range of Nat-HEAR (``nathear.snr_db``) in the project's params.yaml."""
    return config.section(config.load_params(paths.root / config.PARAMS_FILE), "nathear").snr_db


def dry_clip(paths, index: int = 0, task: str | None = None) -> tuple[np.ndarray, str]:
    """A dry held-out task clip (S,) and its name: ``task`` (default ``events``, 2 s, or the first
    scene task) of the suite, its last split (test, or the last fold), clip ``index``."""
    tasks = list_tasks(sourcefiles.tasks_source(paths.sources))
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
    files = sourcefiles.noise_files(paths.sources, "test")
    path = files[index % len(files)]
    return sourcefiles.load_source(path), path.name


def _is_scene(task_path: Path) -> bool:
    return read_task(task_path).metadata.get("embedding_type") == "scene"


def held_out_scene(paths, fmt: str, index: int = 0, seed: int = 0) -> dict:
    """Held-out scene ``index``: a dry task clip in test-room RIR set ``index`` with a test noise, mixed as a
    Nat-HEAR item. {"audio" (A, S), "title", "room" (geometry), "direction", "source"}; clean: the dry clip."""
    rng = np.random.default_rng([seed, index])
    dry, name = dry_clip(paths, index)
    if fmt == "clean":
        return {"audio": dry[None], "title": f"dry {name}", "room": None, "direction": None, "source": name}
    bank = rirbank.RirBank(paths.rooms / "test")
    set_index = index % len(bank)
    row = bank.manifest.iloc[set_index]
    noise, noise_name = held_out_noise(paths, int(rng.integers(1 << 16)))
    spec = mixer.SceneSpec(index, set_index, 0, float(rng.random()), float(rng.uniform(*nathear_snr_db(paths))), False)
    audio = build.mix_one(dry, *bank.get(set_index, fmt), noise, spec, bank.sample_rate_hz)
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
