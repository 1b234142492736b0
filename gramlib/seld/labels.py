"""The one label representation of every SELD dataset, and the label-file formats it is read from.

:class:`SeldLabels` holds one recording's labels at the DCASE 100-ms resolution: one row per
(frame, class, track) with azimuth and elevation in our convention (x front, y left, z up; azimuth
counter-clockwise from the front, +90 deg = left; elevation up) and the distance in metres (NaN where
the dataset has none). Two file formats convert to it:

* frame CSVs (DCASE 2020+, STARSS, our synthetic set): ``frame, class, track, azimuth, elevation
  [, distance]`` without header, integer degrees, distance in cm (STARSS23);
* event CSVs (TUT-2018, TAU-2019): header ``sound_event_recording,start_time,end_time,ele,azi,dist``
  (seconds, degrees, metres). An event covers every 100-ms frame its [start, end) interval overlaps,
  and simultaneous events get distinct track indices (the lowest free one). Its class comes from the
  ``sound_event_recording`` name: the second field of an UrbanSound8K name
  (``<fsID>-<classID>-<occ>-<slice>.wav``, TUT-2018 REAL) or the name without extension and trailing
  digits (``knock001.wav`` -> ``knock``; the DCASE 2016 task 2 sounds of TAU-2019 and TUT-2018 ANSIM/RESIM).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

LABEL_HOP_S = 0.1  # DCASE label resolution (100-ms frames)

class SeldDataError(ValueError):
    """A dataset folder, file or row that the readers cannot use."""



# --------------------------------------------------------------------------------------------
# The internal label representation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SeldLabels:
    """Frame-wise labels of one recording: E rows, sorted by (frame, class, track).

    ``frame`` counts 100-ms label frames from 0; ``n_frames`` is the recording's length in frames
    (rows at or beyond it are dropped on construction).
    """

    frame: np.ndarray  # (E,) int64
    class_idx: np.ndarray  # (E,) int64
    track: np.ndarray  # (E,) int64: tells simultaneous sources apart
    azimuth_deg: np.ndarray  # (E,) float64, counter-clockwise from the front
    elevation_deg: np.ndarray  # (E,) float64, positive up
    distance_m: np.ndarray  # (E,) float64, NaN where unknown
    n_frames: int

    @classmethod
    def from_rows(cls, rows: Iterable, n_frames: int) -> "SeldLabels":
        """From ``(frame, class, track, azimuth_deg, elevation_deg[, distance_m])`` tuples."""
        arr = np.array([tuple(r) + ((np.nan,) if len(r) == 5 else ()) for r in rows], dtype=np.float64)
        arr = arr.reshape(-1, 6)
        keep = (arr[:, 0] >= 0) & (arr[:, 0] < n_frames)
        arr = arr[keep]
        order = np.lexsort((arr[:, 2], arr[:, 1], arr[:, 0]))
        arr = arr[order]
        ints = arr[:, :3].astype(np.int64)
        return cls(ints[:, 0], ints[:, 1], ints[:, 2], arr[:, 3].copy(), arr[:, 4].copy(), arr[:, 5].copy(),
                   int(n_frames))

    @classmethod
    def empty(cls, n_frames: int) -> "SeldLabels":
        return cls.from_rows([], n_frames)

    def __len__(self) -> int:
        return len(self.frame)

    def rows(self) -> list[tuple]:
        """``(frame, class, track, azimuth_deg, elevation_deg, distance_m)`` tuples."""
        return [(int(f), int(c), int(t), float(a), float(e), float(d)) for f, c, t, a, e, d in
                zip(self.frame, self.class_idx, self.track, self.azimuth_deg, self.elevation_deg, self.distance_m)]

    def unit_vectors(self) -> np.ndarray:
        """(E, 3) unit direction vectors in our frame."""
        return unit_vector(self.azimuth_deg, self.elevation_deg)

    def select(self, mask: np.ndarray) -> "SeldLabels":
        return SeldLabels(self.frame[mask], self.class_idx[mask], self.track[mask], self.azimuth_deg[mask],
                          self.elevation_deg[mask], self.distance_m[mask], self.n_frames)

    def equals(self, other: "SeldLabels", atol: float = 0.0) -> bool:
        """Same rows (distances compared with NaN == NaN) and same length in frames."""
        if self.n_frames != other.n_frames or len(self) != len(other):
            return False
        same_int = all(np.array_equal(a, b) for a, b in ((self.frame, other.frame), (self.class_idx, other.class_idx),
                                                        (self.track, other.track)))
        close = all(np.allclose(a, b, atol=atol, rtol=0, equal_nan=True) for a, b in
                    ((self.azimuth_deg, other.azimuth_deg), (self.elevation_deg, other.elevation_deg),
                     (self.distance_m, other.distance_m)))
        return same_int and close


def unit_vector(azimuth_deg, elevation_deg) -> np.ndarray:
    """(..., 3) unit vectors (x front, y left, z up) of azimuth/elevation in degrees."""
    az, el = np.deg2rad(np.asarray(azimuth_deg, float)), np.deg2rad(np.asarray(elevation_deg, float))
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def direction_deg(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth in [-180, 180) and elevation of (..., 3) vectors (any norm > 0)."""
    xyz = np.asarray(xyz, float)
    az = np.rad2deg(np.arctan2(xyz[..., 1], xyz[..., 0]))
    el = np.rad2deg(np.arctan2(xyz[..., 2], np.hypot(xyz[..., 0], xyz[..., 1])))
    return (az + 180.0) % 360.0 - 180.0, el


def n_label_frames(n_samples: int, sample_rate_hz: int) -> int:
    """Number of 100-ms frames that cover ``n_samples`` (the last one may be partial)."""
    return int(np.ceil(round(n_samples / sample_rate_hz / LABEL_HOP_S, 6)))



# --------------------------------------------------------------------------------------------
# Frame CSVs (DCASE 2020+, STARSS, synthetic)
# --------------------------------------------------------------------------------------------
def read_frame_csv(path: Path, n_frames: int, *, distance_units_per_m: float = 100.0) -> SeldLabels:
    """A DCASE 2020+ metadata CSV: ``frame, class, track, azimuth, elevation[, distance]``, no header.

    ``distance_units_per_m``: 100 for the centimetres of STARSS23 (divided, so 138 cm is exactly 1.38).
    """
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    if lines and any(ch.isalpha() for ch in lines[0]):  # a header line, if some copy has one
        lines = lines[1:]
    if not lines:
        return SeldLabels.empty(n_frames)
    try:
        arr = np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise SeldDataError(f"{path} is not a DCASE frame-label CSV (frame,class,track,azimuth,elevation"
                            f"[,distance]): {err}") from err
    if arr.shape[1] not in (5, 6):
        raise SeldDataError(f"{path} has {arr.shape[1]} columns; expected 5 or 6 "
                            f"(frame,class,track,azimuth,elevation[,distance])")
    dist = arr[:, 5] / distance_units_per_m if arr.shape[1] == 6 else np.full(len(arr), np.nan)
    rows = np.column_stack([arr[:, :5], dist])
    return SeldLabels.from_rows(rows.tolist(), n_frames)


def write_frame_csv(path: Path, labels: SeldLabels, *, with_distance: bool = True) -> Path:
    """Write STARSS23-format labels: integer degrees and (with ``with_distance``) integer cm."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for f, c, t, a, e, d in labels.rows():
        row = f"{f},{c},{t},{int(round(a))},{int(round(e))}"
        if with_distance:
            row += f",{int(round(d * 100)) if np.isfinite(d) else 0}"
        lines.append(row)
    path.write_text("".join(line + "\n" for line in lines))
    return path


# --------------------------------------------------------------------------------------------
# Event-based formats: TAU-2019 and TUT-2018
# --------------------------------------------------------------------------------------------
EVENT_COLUMNS = ("sound_event_recording", "start_time", "end_time", "ele", "azi", "dist")


def event_class_name(recording_name: str) -> str:
    """The class of a ``sound_event_recording`` name (see the module docstring)."""
    stem = Path(recording_name).stem
    urban = re.fullmatch(r"\d+-(\d+)-\d+-\d+", stem)
    if urban:
        return urban.group(1)
    return re.sub(r"\d+$", "", stem)


def read_event_csv(path: Path) -> list[dict]:
    """Rows of a TUT-2018 / TAU-2019 event CSV as dicts, with the columns checked by name."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    if not lines:
        raise SeldDataError(f"{path} is empty; expected the header {','.join(EVENT_COLUMNS)}")
    header = [h.strip() for h in lines[0].split(",")]
    missing = [c for c in EVENT_COLUMNS if c not in header]
    if missing:
        raise SeldDataError(f"{path} lacks column(s) {missing}; header is {header}, expected {list(EVENT_COLUMNS)}")
    col = {c: header.index(c) for c in EVENT_COLUMNS}
    events = []
    for i, line in enumerate(lines[1:], start=2):
        parts = [p.strip() for p in line.split(",")]
        try:
            events.append({"class": event_class_name(parts[col["sound_event_recording"]]),
                           "start_s": float(parts[col["start_time"]]), "end_s": float(parts[col["end_time"]]),
                           "elevation_deg": float(parts[col["ele"]]), "azimuth_deg": float(parts[col["azi"]]),
                           "distance_m": float(parts[col["dist"]])})
        except (IndexError, ValueError) as err:
            raise SeldDataError(f"{path} line {i} is not a valid event row ({line!r}): {err}") from err
    return events


def events_to_labels(events: list[dict], class_index: dict[str, int], n_frames: int) -> SeldLabels:
    """Static events -> frame rows; each event covers the 100-ms frames its [start, end) overlaps.

    Tracks: events sorted by onset take the lowest track index free at their first frame.
    """
    rows, track_end = [], []  # track_end[t]: last frame used by track t
    for ev in sorted(events, key=lambda e: (e["start_s"], e["end_s"])):
        first = int(np.floor(round(ev["start_s"] / LABEL_HOP_S, 6)))
        last = int(np.ceil(round(ev["end_s"] / LABEL_HOP_S, 6))) - 1
        if last < first:
            continue
        track = next((t for t, end in enumerate(track_end) if end < first), len(track_end))
        if track == len(track_end):
            track_end.append(last)
        track_end[track] = last
        c = class_index[ev["class"]]
        direction = (ev["azimuth_deg"], ev["elevation_deg"], ev["distance_m"])
        rows += [(f, c, track, *direction) for f in range(first, last + 1)]
    return SeldLabels.from_rows(rows, n_frames)
