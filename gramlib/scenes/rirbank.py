"""Sharded RIR banks: ``build_bank`` writes them, ``RirBank`` reads them (lazily, memory-mapped).

A bank folder ``out_dir/<split>/`` holds

* ``shard-00000.npz`` ... -- per format ``<fmt>_source`` (n, C, L) and ``<fmt>_noise`` (m, C, L),
  float16, noise RIRs ragged (no zero slots) with ``noise_offsets`` (n + 1,); stored uncompressed;
* ``manifest.csv`` -- one row per RIR set: ids (set_id, room_id, split, shard, shard_index,
  noise_start, n_noise), the room (dims, target RT60, calibrated absorption and tail RT60), the
  listener (position, yaw), per format the source direction in the head frame (azimuth, elevation,
  unit vector), distance, room position and measured RT60, and the noise positions (JSON);
* ``bank.json`` -- rate, RIR length, formats, split, seed and the RoomsConfig used.
"""
from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import RoomsConfig, section
from .hrtf import directions_deg, load_kemar
from .rooms import FORMATS, N_CHANNELS, RirSet, RoomError, RoomSpec, check_config, check_format, head_to_room, \
    render_room, sample_placement, sample_room

SPLITS = {"train": 0, "test": 1}  # the random stream of each split: train and test rooms never coincide


def build_bank(cfg: RoomsConfig, out_dir: Path, split: str, seed: int, sample_rate_hz: int = 32000) -> pd.DataFrame:
    """Simulate the ``split`` rooms of ``cfg`` into ``out_dir/<split>/`` and return its manifest.

    Writes shard-00000.npz ... (per format: ``<fmt>_source`` (n, C, L) and ``<fmt>_noise`` (m, C, L)
    float16, ragged noise with ``noise_offsets`` (n + 1,)), manifest.csv (one row per RIR set) and
    bank.json. Train and test rooms come from different random streams and carry their split in
    their room_id, so they never share a room. Prints seconds per room per stage.
    """
    from tqdm.auto import tqdm  # tqdm.auto picks the notebook or terminal bar when the run starts

    if split not in SPLITS:
        raise RoomError(f"unknown split {split!r}; accepted: {list(SPLITS)}")
    check_config(cfg, sample_rate_hz)
    folder = Path(out_dir) / split
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("shard-*.npz"):
        old.unlink()
    n_rooms = cfg.train_rooms if split == "train" else cfg.test_rooms
    n_samples = int(round(cfg.rir_s * sample_rate_hz))
    load_kemar(sample_rate_hz)  # one-time loads outside the per-room timings
    import pyroomacoustics  # noqa: F401  (its import time is not a room's)
    rows, pending, totals = [], [], {}
    for r in tqdm(range(n_rooms), desc=f"rooms/{split}", unit="room"):
        rng = np.random.default_rng([seed, SPLITS[split], r])
        room = sample_room(rng, cfg, f"{split}-{r:05d}", split)
        placements = [sample_placement(rng, room, cfg) for _ in range(cfg.sets_per_room)]
        room, sets, timings = render_room(room, placements, max_order=cfg.max_order, rir_samples=n_samples,
                                          sample_rate_hz=sample_rate_hz, seed=int(rng.integers(2**31)))
        totals = {k: totals.get(k, 0.0) + v for k, v in timings.items()}
        pending += [(room, s) for s in sets]
        while len(pending) >= cfg.shard_size or (pending and r == n_rooms - 1):
            rows += _write_shard(folder, len(rows) // cfg.shard_size, pending[:cfg.shard_size], len(rows))
            pending = pending[cfg.shard_size:]
    manifest = pd.DataFrame(rows)
    manifest.to_csv(folder / "manifest.csv", index=False)
    (folder / "bank.json").write_text(json.dumps({
        "split": split, "seed": seed, "sample_rate_hz": sample_rate_hz, "rir_samples": n_samples,
        "formats": list(FORMATS), "channels": N_CHANNELS, "config": _jsonable(cfg)}, indent=1))
    per_room = ", ".join(f"{k} {v / max(n_rooms, 1):.3f}" for k, v in totals.items())
    print(f"rooms/{split}: {n_rooms} rooms, {len(manifest)} RIR sets; seconds per room: {per_room}")
    return manifest


def _write_shard(folder: Path, shard: int, items: list, first_set: int) -> list[dict]:
    arrays, rows = {}, []
    counts = [len(s.placement.noises_m) for _, s in items]
    arrays["noise_offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    for fmt in FORMATS:
        arrays[f"{fmt}_source"] = np.stack([s.rirs[fmt][0] for _, s in items]).astype(np.float16)
        arrays[f"{fmt}_noise"] = np.concatenate([s.rirs[fmt][1] for _, s in items]).astype(np.float16)
    np.savez(folder / f"shard-{shard:05d}.npz", **arrays)  # stored, not deflated: RirBank memory-maps it
    for i, (room, s) in enumerate(items):
        rows.append(_manifest_row(room, s, first_set + i, shard, i, int(arrays["noise_offsets"][i])))
    return rows


def _manifest_row(room: RoomSpec, s: RirSet, set_id: int, shard: int, index: int, noise_start: int) -> dict:
    p = s.placement
    row = {"set_id": set_id, "room_id": room.room_id, "split": room.split, "shard": shard,
           "shard_index": index, "noise_start": noise_start, "n_noise": len(p.noises_m),
           "diffuse": len(p.noises_m) > 1, "length_m": room.dims_m[0], "width_m": room.dims_m[1],
           "height_m": room.dims_m[2], "target_rt60_s": room.target_rt60_s, "absorption": room.absorption,
           "tail_rt60_s": room.tail_rt60_s, "listener_x_m": p.listener_m[0], "listener_y_m": p.listener_m[1],
           "listener_z_m": p.listener_m[2], "yaw_deg": p.yaw_deg}
    for fmt in FORMATS:
        rel = p.sources_m[fmt] - p.listener_m
        u = head_to_room(rel, -p.yaw_deg) / np.linalg.norm(rel)
        az, el = directions_deg(u)
        row.update({f"{fmt}_azimuth_deg": float(az), f"{fmt}_elevation_deg": float(el),
                    f"{fmt}_x": u[0], f"{fmt}_y": u[1], f"{fmt}_z": u[2],
                    f"{fmt}_distance_m": float(np.linalg.norm(rel)), f"{fmt}_rt60_s": s.rt60_s.get(fmt),
                    f"{fmt}_source_m": json.dumps(np.round(p.sources_m[fmt], 4).tolist())})
    row["noises_m"] = json.dumps(np.round(p.noises_m, 4).tolist())
    return row


def room_from_row(row) -> RoomSpec:
    """The calibrated RoomSpec of a manifest row (to render new placements in the same room)."""
    return RoomSpec(room_id=row["room_id"], split=row["split"],
                    dims_m=(float(row["length_m"]), float(row["width_m"]), float(row["height_m"])),
                    target_rt60_s=float(row["target_rt60_s"]), absorption=float(row["absorption"]),
                    tail_rt60_s=float(row["tail_rt60_s"]))


def _jsonable(cfg) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=list))


class RirBank:
    """A bank folder (``out_dir/<split>``): ``len``, ``.manifest`` and ``.get(i, format)``.

    Shards are opened lazily and memory-mapped (np.savez stores members uncompressed), so DataLoader
    workers share the pages through the OS cache and only the sets they read are touched.
    """

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        if not (self.folder / "manifest.csv").is_file():
            raise RoomError(f"no RIR bank in {self.folder} (manifest.csv missing); build it with rirbank.build_bank")
        self.manifest = pd.read_csv(self.folder / "manifest.csv")
        self.info = json.loads((self.folder / "bank.json").read_text())
        self.sample_rate_hz = int(self.info["sample_rate_hz"])
        self._members: dict = {}

    def __len__(self) -> int:
        return len(self.manifest)

    def __getstate__(self):  # pickled into DataLoader workers without open maps
        return {**self.__dict__, "_members": {}}

    def get(self, i: int, fmt: str) -> tuple[np.ndarray, np.ndarray]:
        """(source_rir (C, L), noise_rirs (N, C, L)) float32 of set ``i``."""
        check_format(fmt)
        if not 0 <= i < len(self):
            raise RoomError(f"RIR set index {i} out of range; this bank has {len(self)} sets")
        row = self.manifest.iloc[int(i)]
        shard, j, a, n = (int(row[k]) for k in ("shard", "shard_index", "noise_start", "n_noise"))
        source = self._member(shard, f"{fmt}_source")[j]
        noise = self._member(shard, f"{fmt}_noise")[a:a + n]
        return np.asarray(source, dtype=np.float32), np.asarray(noise, dtype=np.float32)

    def _member(self, shard: int, key: str) -> np.ndarray:
        if (shard, key) not in self._members:
            self._members[shard, key] = _mmap_npz(self.folder / f"shard-{shard:05d}.npz", key)
        return self._members[shard, key]


def _mmap_npz(path: Path, key: str) -> np.ndarray:
    """Memory-map one uncompressed member of an .npz (falls back to reading it)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return np.load(path)[key]
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        name_len, extra_len = struct.unpack("<HH", f.read(30)[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def run_stage(params: dict, paths) -> dict[str, pd.DataFrame]:
    """The ``rooms`` stage: the train and test banks at ``features.sample_rate_hz``; {split: manifest}."""
    rate = section(params, "features").sample_rate_hz
    return {split: build_bank(section(params, "rooms"), paths.rooms, split, seed=params["seed"], sample_rate_hz=rate)
            for split in SPLITS}
