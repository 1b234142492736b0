"""DCASE-format SELD datasets: readers for five layouts, all giving :class:`SeldLabels` (100-ms
frames, our axis convention; see :mod:`gramlib.seld.labels`). Audio stays on disk;
:func:`load_recording` reads it at the model's rate.

==========  =================================================================================
format      layout (under ``seld.dataset_dir``) and what the reader assumes
==========  =================================================================================
starss23    ``foa_dev/<folder>/*.wav`` + ``metadata_dev/<folder>/*.csv``, folders ``dev-train-*`` /
            ``dev-test-*`` (STARSS22 and STARSS23). CSV rows without header:
            ``frame, class, source, azimuth, elevation[, distance]``, 100-ms frames, degrees,
            distance in **cm** (STARSS23 only). 24 kHz FOA (ambiX).
synthetic   our own set from :mod:`gramlib.seld.synth`: the STARSS23 layout and CSV format, plus
            ``class_names.txt`` (one class name a line, line i = class i).
dcase2020   TAU-NIGENS Spatial Sound Events 2020 (flat ``foa_dev/fold<k>_room<r>_mix<m>_ov<o>.wav``)
            and 2021 (``foa_dev/dev-{train,val,test}/fold<k>_...``); CSV rows
            ``frame, class, track, azimuth, elevation`` at 100 ms. Test = the ``dev-test`` folder, or
            fold ``seld.test_fold`` (default 1, the DCASE 2020 development setup); a ``dev-val``
            folder is used as the validation split.
tau2019     TAU Spatial Sound Events 2019: ``foa_dev/split<k>_ir<i>_ov<o>_<n>.wav`` (48 kHz) and
            ``metadata_dev/<same>.csv`` with header
            ``sound_event_recording,start_time,end_time,ele,azi,dist`` (seconds, degrees, metres).
            Test = fold ``seld.test_fold`` (default 1, as the first DCASE 2019 cross-validation fold).
tut2018     TUT Sound Events 2018 (ANSIM / RESIM / REAL): ``wav_ov<o>_split<s>_<db>db/*.wav`` (44.1 kHz)
            and ``desc_ov<o>_split<s>/*.csv`` with the same header as tau2019. Train and test files
            share a folder and are told apart by ``train``/``test`` in their names (as SELDnet's code);
            ``seld.subset`` picks the folder pair (e.g. ``ov1_split1``; REAL uses splits 1, 8, 9);
            ``evaluate_seld`` also takes a prefix (``ov1``: every split, metrics averaged).
==========  =================================================================================

Event-based CSVs (tau2019, tut2018) are converted to frames once, on reading; class names are sorted
(numerically for the UrbanSound8K class ids of TUT-2018 REAL) and indexed in that order.

Uncertainty, stated once: the layouts above follow the datasets' public documentation and the
authors' baseline code as we know them; we could not open the archives here. The DCASE 2019-2023
documents define azimuth counter-clockwise (+90 deg = left), as ours, and FOA as ACN/SN3D (ambiX).
TUT-2018 does not document the sign of its azimuth; we read it as counter-clockwise too, and
``azimuth_sign=-1`` (params key ``seld.azimuth_sign``) mirrors it. :func:`gramlib.seld.foa.check_foa_convention`
(run by ``evaluate_seld`` on the first recordings) confirms both the channel convention and the
azimuth sign of your copy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf

from ..core.audio import read_wav
from .labels import SeldDataError, SeldLabels, events_to_labels, n_label_frames, read_event_csv, read_frame_csv

FORMATS = ("synthetic", "tut2018", "tau2019", "dcase2020", "starss23")
ROLES = ("train", "val", "test")
CLASS_NAMES_FILE = "class_names.txt"
STARSS_CLASSES = ("female speech", "male speech", "clapping", "telephone", "laughter", "domestic sounds",
                  "footsteps", "door open/close", "music", "musical instrument", "water tap", "bell", "knock")
TAU_NIGENS_2020_CLASSES = ("alarm", "crying baby", "crash", "barking dog", "running engine", "female scream",
                           "female speech", "burning fire", "footsteps", "knocking on door", "male scream",
                           "male speech", "ringing phone", "piano")
TAU_NIGENS_2021_CLASSES = ("alarm", "crying baby", "crash", "barking dog", "female scream", "female speech",
                           "footsteps", "knocking on door", "male scream", "male speech", "ringing phone", "piano")


# --------------------------------------------------------------------------------------------
# Recordings and datasets
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeldRecording:
    name: str  # file stem
    audio_path: Path
    role: str  # "train", "val" or "test" as the dataset's protocol defines it
    fold: str  # fold / split folder, for bookkeeping
    sample_rate_hz: int  # of the file on disk
    n_samples: int
    labels: SeldLabels = field(repr=False)


@dataclass(frozen=True)
class SeldDataset:
    root: Path
    format: str
    classes: tuple[str, ...]  # class index -> name
    recordings: tuple[SeldRecording, ...]
    subset: Optional[str] = None  # tut2018: the "ov<o>_split<s>" folder pair

    def role(self, role: str) -> list[SeldRecording]:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; accepted: {list(ROLES)}")
        return [r for r in self.recordings if r.role == role]


def load_recording(rec: SeldRecording, sample_rate_hz: int) -> np.ndarray:
    """The recording's 4 FOA channels (ambiX) as float32 ``(4, S)`` at ``sample_rate_hz``."""
    return read_wav(rec.audio_path, sample_rate_hz=sample_rate_hz, channels=4, resample=True)


def read_dataset(root, dataset_format: str, *, subset: str | None = None, test_fold: int | None = None,
                 azimuth_sign: int = 1) -> SeldDataset:
    """Index a DCASE-format dataset (labels in memory, audio on disk); see the module docstring."""
    root = Path(root) if root is not None else None
    if root is None or not root.is_dir():
        raise SeldDataError(f"SELD dataset folder not found: {root!s}; set params key seld.dataset_dir to the "
                            f"folder of a {dataset_format!r} dataset (or build the synthetic set first)")
    if dataset_format not in FORMATS:
        raise SeldDataError(f"unknown SELD dataset format {dataset_format!r} (params key seld.dataset_format); "
                            f"accepted: {list(FORMATS)}")
    if azimuth_sign not in (1, -1):
        raise ValueError(f"azimuth_sign must be 1 or -1, got {azimuth_sign!r}")
    if dataset_format in ("starss23", "synthetic"):
        ds = _read_starss(root, dataset_format)
    elif dataset_format == "dcase2020":
        ds = _read_dcase2020(root, test_fold)
    elif dataset_format == "tau2019":
        ds = _read_tau2019(root, test_fold)
    else:
        ds = _read_tut2018(root, subset)
    if azimuth_sign == -1:
        recs = tuple(_mirror(r) for r in ds.recordings)
        ds = SeldDataset(ds.root, ds.format, ds.classes, recs, ds.subset)
    if not ds.role("test") or not (ds.role("train") or ds.role("val")):
        raise SeldDataError(f"{root} ({dataset_format}) has {len(ds.role('train'))} train and {len(ds.role('test'))} "
                            f"test recordings; both splits are needed")
    return ds


def _mirror(rec: SeldRecording) -> SeldRecording:
    lab = rec.labels
    mirrored = SeldLabels(lab.frame, lab.class_idx, lab.track, (-lab.azimuth_deg + 180.0) % 360.0 - 180.0,
                          lab.elevation_deg, lab.distance_m, lab.n_frames)
    return SeldRecording(rec.name, rec.audio_path, rec.role, rec.fold, rec.sample_rate_hz, rec.n_samples, mirrored)


def _wav_pairs(wav_dir: Path, csv_dir: Path) -> list[tuple[Path, Path]]:
    wavs = sorted(wav_dir.glob("*.wav"))
    if not wavs:
        raise SeldDataError(f"no .wav files in {wav_dir}")
    missing = [w.name for w in wavs if not (csv_dir / f"{w.stem}.csv").is_file()]
    if missing:
        raise SeldDataError(f"{len(missing)} recording(s) in {wav_dir} have no label CSV in {csv_dir}, "
                            f"e.g. {missing[0]}")
    return [(w, csv_dir / f"{w.stem}.csv") for w in wavs]


def _recording(wav: Path, labels_of, role: str, fold: str) -> SeldRecording:
    try:
        info = sf.info(str(wav))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise SeldDataError(f"cannot read audio file {wav}: {err}") from err
    if info.channels != 4:
        raise SeldDataError(f"{wav} has {info.channels} channels; the FOA readers expect 4 (ambiX W, Y, Z, X). "
                            f"Is this the microphone-array (mic_dev) version?")
    n_frames = n_label_frames(info.frames, info.samplerate)
    return SeldRecording(wav.stem, wav, role, fold, int(info.samplerate), int(info.frames), labels_of(n_frames))


def _fold_number(name: str, pattern: str, path: Path) -> int:
    m = re.match(pattern, name)
    if not m:
        raise SeldDataError(f"cannot find the fold number ({pattern!r}) in the file name {path}")
    return int(m.group(1))


# --------------------------------------------------------------------------------------------
# Frame-based formats: STARSS22/23, our synthetic set, TAU-NIGENS 2020/2021
# --------------------------------------------------------------------------------------------
def _read_starss(root: Path, fmt: str) -> SeldDataset:
    audio_root, meta_root = root / "foa_dev", root / "metadata_dev"
    folders = sorted(p for p in audio_root.glob("dev-*") if p.is_dir()) if audio_root.is_dir() else []
    if not folders:
        raise SeldDataError(f"{root} has no foa_dev/dev-train-*/ or foa_dev/dev-test-*/ folders (STARSS layout)")
    recs = []
    for folder in folders:
        role = "test" if folder.name.startswith("dev-test") else "val" if folder.name.startswith("dev-val") else "train"
        for wav, csv in _wav_pairs(folder, meta_root / folder.name):
            recs.append(_recording(wav, lambda n, csv=csv: read_frame_csv(csv, n), role, folder.name))
    if fmt == "synthetic":
        names_file = root / CLASS_NAMES_FILE
        if not names_file.is_file():
            raise SeldDataError(f"{names_file} not found; is {root} a synthetic set from gramlib.seld.synth?")
        classes = tuple(line for line in names_file.read_text().splitlines() if line)
    else:
        classes = STARSS_CLASSES
    _check_classes(recs, classes, root)
    return SeldDataset(root, fmt, classes, tuple(recs))


def _read_dcase2020(root: Path, test_fold: int | None) -> SeldDataset:
    audio_root, meta_root = root / "foa_dev", root / "metadata_dev"
    if not audio_root.is_dir():
        raise SeldDataError(f"{root} has no foa_dev/ folder (TAU-NIGENS 2020/2021 layout)")
    sub = sorted(p for p in audio_root.glob("dev-*") if p.is_dir())
    recs = []
    if sub:  # 2021: dev-train / dev-val / dev-test folders
        for folder in sub:
            role = next((r for r in ROLES if folder.name == f"dev-{r}"), "train")
            for wav, csv in _wav_pairs(folder, meta_root / folder.name):
                recs.append(_recording(wav, lambda n, csv=csv: read_frame_csv(csv, n), role, folder.name))
    else:  # 2020: one flat folder, folds in the names
        test_fold = 1 if test_fold is None else test_fold
        for wav, csv in _wav_pairs(audio_root, meta_root):
            fold = _fold_number(wav.name, r"fold(\d+)_", wav)
            role = "test" if fold == test_fold else "train"
            recs.append(_recording(wav, lambda n, csv=csv: read_frame_csv(csv, n), role, f"fold{fold}"))
    n_classes = 1 + max((int(r.labels.class_idx.max()) for r in recs if len(r.labels)), default=0)
    classes = TAU_NIGENS_2021_CLASSES if n_classes <= len(TAU_NIGENS_2021_CLASSES) else TAU_NIGENS_2020_CLASSES
    _check_classes(recs, classes, root)
    return SeldDataset(root, "dcase2020", classes, tuple(recs))


def _check_classes(recs: list[SeldRecording], classes: tuple[str, ...], root: Path) -> None:
    for r in recs:
        if len(r.labels) and (r.labels.class_idx.min() < 0 or r.labels.class_idx.max() >= len(classes)):
            raise SeldDataError(f"{r.audio_path.name} in {root} has class index {int(r.labels.class_idx.max())}; "
                                f"this format has {len(classes)} classes (0..{len(classes) - 1})")


# --------------------------------------------------------------------------------------------
# Event-based formats: TAU-2019 and TUT-2018
# --------------------------------------------------------------------------------------------
def _event_dataset(root: Path, fmt: str, items: list[tuple[Path, Path, str, str]], subset=None) -> SeldDataset:
    """items: (wav, csv, role, fold). Classes: every class name in the CSVs, sorted."""
    events = {wav: read_event_csv(csv) for wav, csv, _, _ in items}
    names = sorted({e["class"] for evs in events.values() for e in evs},
                   key=lambda s: (len(s), s) if s.isdigit() else (0, s))  # UrbanSound8K ids numerically
    index = {name: i for i, name in enumerate(names)}
    recs = [_recording(wav, lambda n, evs=events[wav]: events_to_labels(evs, index, n), role, fold)
            for wav, _, role, fold in items]
    return SeldDataset(root, fmt, tuple(names), tuple(recs), subset)


def _read_tau2019(root: Path, test_fold: int | None) -> SeldDataset:
    audio_root, meta_root = root / "foa_dev", root / "metadata_dev"
    if not audio_root.is_dir():
        raise SeldDataError(f"{root} has no foa_dev/ folder (TAU Spatial Sound Events 2019 layout)")
    test_fold = 1 if test_fold is None else test_fold
    items = []
    for wav, csv in _wav_pairs(audio_root, meta_root):
        fold = _fold_number(wav.name, r"split(\d+)_", wav)
        items.append((wav, csv, "test" if fold == test_fold else "train", f"split{fold}"))
    return _event_dataset(root, "tau2019", items)


def tut2018_subsets(root: Path) -> list[str]:
    """The ``ov<o>_split<s>`` folder pairs present under a TUT-2018 dataset folder."""
    found = []
    for d in sorted(Path(root).glob("wav_ov*_split*")):
        m = re.match(r"wav_(ov\d+_split\d+)", d.name)
        if d.is_dir() and m and (Path(root) / f"desc_{m.group(1)}").is_dir():
            found.append(m.group(1))
    return found


def _read_tut2018(root: Path, subset: str | None) -> SeldDataset:
    subsets = tut2018_subsets(root)
    if not subsets:
        raise SeldDataError(f"{root} has no wav_ov<o>_split<s>_<db>db/ + desc_ov<o>_split<s>/ folder pairs "
                            f"(TUT Sound Events 2018 layout)")
    if subset is None and len(subsets) == 1:
        subset = subsets[0]
    if subset not in subsets:
        raise SeldDataError(f"seld.subset = {subset!r} names no TUT-2018 folder pair in {root}; "
                            f"available: {subsets}")
    wav_dirs = sorted(root.glob(f"wav_{subset}_*"))
    if len(wav_dirs) != 1:
        raise SeldDataError(f"expected one wav_{subset}_<db>db folder in {root}, found {[d.name for d in wav_dirs]}")
    items = []
    for wav, csv in _wav_pairs(wav_dirs[0], root / f"desc_{subset}"):
        role = "test" if "test" in wav.stem else "train" if "train" in wav.stem else None
        if role is None:
            raise SeldDataError(f"{wav.name} has neither 'train' nor 'test' in its name; cannot tell its split")
        items.append((wav, csv, role, subset))
    return _event_dataset(root, "tut2018", items, subset)
