"""Nat-HEAR: HEAR-layout tasks re-rendered as naturalistic scenes, plus localization and T60 tasks.

``build_nathear`` writes ``out_dir/<format>/<task>/`` for format in ``cfg.formats`` (binaural, FOA):

* **every task of ``tasks_dir``** (the embedded suite or the real HEAR 2021 tasks), item by item, in
  a held-out TEST-room RIR set with a TEST noise clip at an SNR from ``cfg.snr_db`` (the mixer of
  :mod:`gramlib.scenes.mixer`). Metadata is copied (``sample_rates`` becomes the render rate and a
  ``nathear`` entry is added), labels and file names are unchanged, so dry HEAR and Nat-HEAR share
  item ids. An item's set, noise, offset and SNR are a pure function of (seed, task, split, file), and
  the same in both formats. Event (timestamp) labels are unchanged although the direct-path delay
  (distance / c, 4-15 ms for 1.5-5 m) shifts every onset by that much: well inside the 200-ms onset
  tolerance of HEAR's event metric, and noted in the task metadata.
* **``<name>-loc``** (localization) and **``<name>-t60``** (RT60 regression, no added noise) for each
  ``name: source task`` of ``cfg.loc_sources`` (``words``/``events`` of the embedded suite; e.g.
  Speech Commands and ESC-50 for the real HEAR tasks). Each item is a source-task clip at a NEW
  placement (listener, yaw, source, noise) sampled in a test room, so every item has its own
  direction; splits train/valid/test (LOC_SPLITS) use disjoint test rooms and disjoint source clips,
  so a probe cannot learn a room's direction or RT60 by heart. Labels per DESIGN.md, from that
  format's own source (binaural sources lie above the lowest KEMAR ring, FOA sources anywhere).

Each output clip is scaled by one gain (all channels) to the dry clip's RMS, and down if its peak
would pass 0.99, so level cues between channels survive. A sidecar ``items.csv`` per task repeats the
labels with the room id, set id, SNR and measured RT60. Single-channel models read the W channel or
the mean of the ears at evaluation time: no mono copy is written.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..core.audio import read_wav
from ..core.config import NatHearConfig, RoomsConfig, section
from ..core.sourcefiles import tasks_source
from ..core.tasks import TaskWriter, list_tasks, read_task
from ..scenes import mixer, rirbank, rooms

LOC_SPLITS = {"train": 0.6, "valid": 0.2, "test": 0.2}
PEAK_MAX = 0.99
LOC_EVALUATION = ["median_angular_error_deg", "mean_angular_error_deg"]
T60_EVALUATION = ["median_abs_error_s"]


class NatHearError(ValueError):
    """Inputs that cannot make Nat-HEAR (missing bank, noise, tasks, formats)."""


def build_nathear(tasks_dir, rooms_dir, noise_dir_or_manifest, out_dir, cfg: NatHearConfig, seed: int,
                  sample_rate_hz: int = 32000) -> pd.DataFrame:
    """Write Nat-HEAR under ``out_dir``; return one row per (format, task) with its clip count.

    Runs torch with one thread (restored afterwards): clips are mixed one at a time, and on a busy
    machine extra OpenMP threads only spin (environment.md, pitfall P1).
    """
    import torch  # torch loads only where it is used

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(Path(tasks_dir), Path(rooms_dir), noise_dir_or_manifest, Path(out_dir), cfg, seed, sample_rate_hz)
    finally:
        torch.set_num_threads(threads)


def _build(tasks_dir: Path, rooms_dir: Path, noise_dir_or_manifest, out_dir: Path, cfg: NatHearConfig, seed: int,
           sample_rate_hz: int) -> pd.DataFrame:
    for fmt in cfg.formats:
        rooms.check_format(fmt)
    bank = rirbank.RirBank(_test_bank(rooms_dir))
    if bank.sample_rate_hz != sample_rate_hz:
        raise NatHearError(f"the RIR bank is at {bank.sample_rate_hz} Hz; Nat-HEAR is rendered at {sample_rate_hz} Hz")
    noises = load_noises(noise_dir_or_manifest, sample_rate_hz)
    seed = seed + cfg.seed_offset
    rows = []
    for task_path in list_tasks(tasks_dir):
        task = read_task(task_path, sample_rate_hz)
        rows += render_task(task, bank, noises, out_dir, cfg, seed, sample_rate_hz)
    for name, source in cfg.loc_sources.items():
        if not (tasks_dir / source).is_dir():
            print(f"nathear: no source task {source!r} in {tasks_dir}; skipping {name}-loc and {name}-t60")
            continue
        task = read_task(tasks_dir / source, sample_rate_hz)
        for kind in ("loc", "t60"):
            rows += spatial_task(task, f"{name}-{kind}", bank, noises, out_dir, cfg, seed, sample_rate_hz)
    summary = pd.DataFrame(rows)
    if "path" in summary:  # relative to the Nat-HEAR folder: the same file on every clone
        summary["path"] = [Path(p).relative_to(out_dir).as_posix() for p in summary["path"]]
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "summary.csv", index=False)
    return summary


def _test_bank(rooms_dir: Path) -> Path:
    folder = rooms_dir / "test" if (rooms_dir / "test" / "manifest.csv").is_file() else rooms_dir
    if not (folder / "manifest.csv").is_file():
        raise NatHearError(f"no test-room RIR bank in {rooms_dir} (expected {rooms_dir}/test/manifest.csv)")
    if (rirbank.RirBank(folder).manifest["split"] != "test").any():
        raise NatHearError(f"{folder} holds train rooms; Nat-HEAR renders in held-out test rooms only")
    return folder


def load_noises(noise_dir_or_manifest, sample_rate_hz: int) -> list[tuple[str, np.ndarray]]:
    """The TEST noise clips as (name, mono (n,) float32) from noise/manifest.csv or a folder of WAVs."""
    path = Path(noise_dir_or_manifest)
    manifest = path if path.is_file() else path / "manifest.csv"
    if manifest.is_file():
        table = pd.read_csv(manifest)
        files = [_resolve(f, manifest.parent) for f in table.loc[table["split"] == "test", "file"]]
    else:
        files = sorted((path / "test").glob("*.wav")) or sorted(path.glob("*.wav"))
    if not files:
        raise NatHearError(f"no test noise clips in {path} (expected manifest.csv with split 'test' or test/*.wav)")
    return [(Path(f).name, read_wav(f, sample_rate_hz=sample_rate_hz, resample=True).mean(0)) for f in files]


def _resolve(name: str, manifest_dir: Path) -> Path:
    """A manifest path: absolute, relative to the sources folder (noise/test/x.wav), or to the manifest."""
    for candidate in (Path(name), manifest_dir.parent / name, manifest_dir / name):
        if candidate.is_file():
            return candidate
    raise NatHearError(f"noise file {name!r} of {manifest_dir / 'manifest.csv'} not found")


# ------------------------------------------------------------------------------------ Nat-HEAR tasks
def render_task(task, bank, noises, out_dir: Path, cfg: NatHearConfig, seed: int, rate: int) -> list[dict]:
    """Re-render every clip of ``task`` in test rooms with test noise, in every format."""
    meta = dict(task.metadata, nathear={"rooms": "test", "snr_db": list(cfg.snr_db), "source_task": task.name})
    if meta.get("embedding_type") == "event":
        meta["nathear"]["note"] = "onsets shifted by the direct-path delay (4-15 ms); labels unchanged"
    writers = {f: TaskWriter(out_dir / f, task.name, meta | {"nathear": meta["nathear"] | {"format": f}},
                             rate, vocabulary=task.vocabulary or None) for f in cfg.formats}
    items = {f: [] for f in cfg.formats}
    jobs = [(split, name) for split in task.splits for name in task.files(split)]
    for split, name in tqdm(jobs, desc=f"nathear/{task.name}", unit="clip", leave=False):
        dry = task.load(split, name).mean(0)
        spec = mixer.draw_scene(seed, _item_index(task.name, split, name), len(bank), len(noises),
                                 cfg.snr_db, 0.0)
        row = bank.manifest.iloc[spec.rir_index]
        for fmt in cfg.formats:
            source_rir, noise_rirs = bank.get(spec.rir_index, fmt)
            audio = mix_one(dry, source_rir, noise_rirs, noises[spec.noise_index][1], spec, rate)
            writers[fmt].add(split, name, audio, task.labels(split)[name])
            items[fmt].append({"split": split, "file": name, "room_id": row["room_id"], "set_id": int(row["set_id"]),
                               "snr_db": spec.snr_db, "rt60_s": float(row[f"{fmt}_rt60_s"]),
                               "noise_file": noises[spec.noise_index][0],
                               "labels": json.dumps(task.labels(split)[name])})
    return [_close(writers[f], items[f], f) for f in cfg.formats]


def _item_index(*parts: str) -> int:
    """A stable scene index for an item (same in every run, format and process)."""
    return zlib.crc32("/".join(parts).encode())


def mix_one(dry: np.ndarray, source_rir, noise_rirs, noise: np.ndarray | None, spec: mixer.SceneSpec,
            rate: int) -> np.ndarray:
    """(C, S) scene of one mono clip, level-matched to the dry clip; ``noise=None``: reverberant only."""
    n = dry.shape[-1]
    placed = np.zeros(n, np.float32) if noise is None else mixer.place_noise(noise, n, spec, sample_rate_hz=rate)
    active = np.flatnonzero(placed)
    window = [[active[0], active[-1] + 1]] if active.size else [[0, 0]]
    out = mixer.mix_batch(dry[None], source_rir[None], placed[None], noise_rirs[None], [spec.snr_db], [False],
                           noise_windows=window)[0].numpy()
    level = np.sqrt(np.mean(out ** 2))
    gain = np.sqrt(np.mean(dry ** 2)) / level if level > 0 else 1.0
    peak = np.max(np.abs(out)) * gain
    return (out * (gain * min(1.0, PEAK_MAX / peak) if peak > 0 else gain)).astype(np.float32)


def _close(writer: TaskWriter, items: list[dict], fmt: str) -> dict:
    path = writer.close()
    pd.DataFrame(items).to_csv(path / "items.csv", index=False)
    return {"format": fmt, "task": path.name, "clips": len(items), "path": str(path)}


# ------------------------------------------------------------------------------------ localization / T60
def spatial_task(source, name: str, bank, noises, out_dir: Path, cfg: NatHearConfig, seed: int,
                 rate: int) -> list[dict]:
    """``name`` ending in -loc (direction labels, with noise) or -t60 (RT60 labels, no noise)."""
    kind = name.rsplit("-", 1)[1]
    n_items = cfg.loc_clips if kind == "loc" else cfg.t60_clips
    rng = np.random.default_rng([seed, _item_index(name)])
    plan = _plan(source, bank, n_items, rng)
    room_cfg = _rooms_config(bank)
    meta = {"task_name": name, "embedding_type": "scene", "split_mode": "trainvaltest", "splits": list(LOC_SPLITS),
            "sample_duration": source.metadata.get("sample_duration"),
            "prediction_type": "localization" if kind == "loc" else "regression",
            "evaluation": LOC_EVALUATION if kind == "loc" else T60_EVALUATION,
            "nathear": {"rooms": "test", "source_task": source.name, "noise": kind == "loc",
                        "snr_db": list(cfg.snr_db) if kind == "loc" else None}}
    writers = {f: TaskWriter(out_dir / f, name, meta | {"nathear": meta["nathear"] | {"format": f}}, rate)
               for f in cfg.formats}
    items = {f: [] for f in cfg.formats}
    for room_id, group in tqdm(plan.groupby("room_id", sort=True), desc=f"nathear/{name}", unit="room", leave=False):
        room = rirbank.room_from_row(bank.manifest[bank.manifest["room_id"] == room_id].iloc[0])
        placements = [rooms.sample_placement(rng, room, room_cfg) for _ in range(len(group))]
        _, sets, _ = rooms.render_room(room, placements, max_order=room_cfg.max_order, formats=cfg.formats,
                                       rir_samples=int(round(room_cfg.rir_s * rate)), sample_rate_hz=rate,
                                       seed=int(rng.integers(2**31)), with_noise=kind == "loc")
        for (_, item), rset in zip(group.iterrows(), sets):
            dry = source.load(item["source_split"], item["source_file"]).mean(0)
            spec = mixer.draw_scene(seed, _item_index(name, item["file"]), 1, len(noises), cfg.snr_db, 0.0)
            noise = noises[spec.noise_index][1] if kind == "loc" else None
            for fmt in cfg.formats:
                label = _label(rset, fmt, kind)
                audio = mix_one(dry, *rset.rirs[fmt], noise, spec, rate)
                writers[fmt].add(item["split"], item["file"], audio, label)
                items[fmt].append({**item.to_dict(), "set_id": f"{room_id}/{name}-{len(items[fmt]):05d}",
                                   "snr_db": spec.snr_db if kind == "loc" else None,
                                   "rt60_s": rset.rt60_s[fmt], **label,
                                   "noise_file": noises[spec.noise_index][0] if kind == "loc" else None})
    return [_close(writers[f], items[f], f) for f in cfg.formats]


def _plan(source, bank, n_items: int, rng) -> pd.DataFrame:
    """Items per split with a source clip and a test room; splits share neither clips nor rooms."""
    room_ids = rng.permutation(sorted(bank.manifest["room_id"].unique()))
    clips = [(s, f) for s in source.splits for f in source.files(s)]
    clips = [clips[i] for i in rng.permutation(len(clips))]
    if len(room_ids) < len(LOC_SPLITS) or len(clips) < len(LOC_SPLITS):
        raise NatHearError(f"{len(room_ids)} test rooms and {len(clips)} clips of {source.name}: "
                           f"need at least {len(LOC_SPLITS)} of each for disjoint train/valid/test")
    rows, cut_items, cut_rooms, cut_clips = [], _cuts(n_items), _cuts(len(room_ids)), _cuts(len(clips))
    for k, split in enumerate(LOC_SPLITS):
        split_rooms = room_ids[cut_rooms[k]:cut_rooms[k + 1]]
        split_clips = clips[cut_clips[k]:cut_clips[k + 1]]
        for i in range(cut_items[k], cut_items[k + 1]):
            j = i - cut_items[k]
            s, f = split_clips[j % len(split_clips)]
            rows.append({"split": split, "file": f"{source.name}-{i:05d}.wav", "source_split": s,
                         "source_file": f, "room_id": split_rooms[j % len(split_rooms)]})
    return pd.DataFrame(rows)


def _cuts(n: int) -> list[int]:
    """Boundaries splitting n things by LOC_SPLITS, each part non-empty when n >= 3."""
    shares = np.cumsum([0.0, *LOC_SPLITS.values()])
    cuts = [int(round(s * n)) for s in shares]
    for k in range(1, len(cuts) - 1):
        cuts[k] = min(max(cuts[k], cuts[k - 1] + 1), n - (len(cuts) - 1 - k))
    return cuts


def _label(rset, fmt: str, kind: str) -> dict:
    """DESIGN.md labels: direction in the head frame (+ distance, RT60), or the measured RT60."""
    if kind == "t60":
        return {"rt60_s": float(rset.rt60_s[fmt])}
    p = rset.placement
    rel = rooms.head_to_room(p.sources_m[fmt] - p.listener_m, -p.yaw_deg)
    distance = float(np.linalg.norm(rel))
    x, y, z = (float(v) for v in rel / distance)
    return {"azimuth_deg": float(np.degrees(np.arctan2(y, x)) % 360), "elevation_deg": float(np.degrees(np.arcsin(z))),
            "x": x, "y": y, "z": z, "distance_m": distance, "rt60_s": float(rset.rt60_s[fmt])}


def _rooms_config(bank) -> RoomsConfig:
    """The RoomsConfig the bank was built with (distances, noise counts, order, RIR length)."""
    raw = bank.info["config"]
    return RoomsConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def run_stage(params: dict, paths) -> pd.DataFrame:
    """The ``nathear`` stage: Nat-HEAR from the pipeline's task suite, rooms and test noise."""
    return build_nathear(tasks_source(paths.sources), paths.rooms, paths.sources / "noise", paths.nathear,
                         section(params, "nathear"), seed=params["seed"],
                         sample_rate_hz=section(params, "features").sample_rate_hz)
