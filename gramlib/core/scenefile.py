"""Figure 1's input as one file, so that the stage that trains a model writes it and the stage that draws
figures reads it without loading models, rooms or sources.

A scene file is an uncompressed ``.npz`` (numpy's format, readable with ``numpy.load``): the arrays
``mixture`` and ``reconstruction`` (C, T, F) float32, ``mask`` (N,) bool, and ``meta``, a JSON string with
``room``, ``grid``, ``channels`` and ``title``. The zip entries carry a fixed date, so the same scene gives the
same bytes on every run.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

ARRAYS = {"mixture": np.float32, "reconstruction": np.float32, "mask": np.bool_}
META = ("room", "grid", "channels", "title")
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FIGURE1_FILE = "figure1.npz"  # results/train/<variant>/figure1.npz, written by the pretrain stage


def _plain(value):
    """JSON for numpy values inside the room description."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def save_scene(path: Path | str, scene: dict) -> Path:
    """Write ``scene`` (the dict :func:`gramlib.figures.panels.figure_1` draws) to ``path``; returns it."""
    missing = [k for k in (*ARRAYS, *META) if k not in scene]
    if missing:
        raise ValueError(f"save_scene: the scene lacks {missing}; a scene file holds {[*ARRAYS, *META]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {name: np.ascontiguousarray(scene[name], dtype=dtype) for name, dtype in ARRAYS.items()}
    entries["meta"] = np.array(json.dumps({k: scene[k] for k in META}, default=_plain, sort_keys=True))
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in entries.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_DATE), buffer.getvalue())
    tmp.replace(path)
    return path


def load_scene(path: Path | str) -> dict:
    """The scene dict written by :func:`save_scene`; a clear error when the file is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Figure 1 scene file {path}: the pretrain stage of that variant writes it "
                                f"(dvc repro pretrain@<variant>)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            scene = {name: archive[name] for name in ARRAYS}
            meta = json.loads(str(archive["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a scene file (need the arrays {list(ARRAYS)} and meta): {err}") from err
    scene.update({k: meta[k] for k in META})
    scene["grid"] = tuple(scene["grid"])
    return scene
