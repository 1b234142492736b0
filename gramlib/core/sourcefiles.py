"""Reading what the ``sources`` stage wrote: its manifests, its files and where the HEAR tasks are.

Every stage after ``sources`` reads the corpus through these functions, so none of them imports the
code that builds it (:mod:`gramlib.corpus.sources`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import read_wav


def load_source(path: str | Path, sample_rate_hz: int = 32000) -> np.ndarray:
    """A corpus file as float32 mono ``(S,)`` at ``sample_rate_hz``: channel 0, resampled if needed."""
    return read_wav(path, sample_rate_hz=sample_rate_hz, resample=True)[0]


def read_manifest(sources_dir: str | Path, part: str) -> pd.DataFrame:
    """``pretrain`` or ``noise`` manifest with ``file`` resolved to absolute paths."""
    sources_dir = Path(sources_dir)
    path = sources_dir / part / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the `sources` stage first")
    table = pd.read_csv(path)
    table["file"] = [str(f if Path(f).is_absolute() else sources_dir / f) for f in table["file"]]
    return table


def pretrain_files(sources_dir: str | Path) -> list[Path]:
    return [Path(f) for f in read_manifest(sources_dir, "pretrain")["file"]]


def noise_files(sources_dir: str | Path, split: str) -> list[Path]:
    """Noise files of ``split`` ("train" for pre-training scenes, "test" for Nat-HEAR)."""
    table = read_manifest(sources_dir, "noise")
    return [Path(f) for f in table.loc[table["split"] == split, "file"]]


def tasks_source(sources_dir: str | Path) -> Path:
    """Where the pipeline reads HEAR tasks from: the real HEAR directory if one was linked."""
    record = json.loads((Path(sources_dir) / "tasks.json").read_text())
    return Path(record["hear_tasks_dir"] or (Path(sources_dir) / record["tasks_dir"]).resolve())
