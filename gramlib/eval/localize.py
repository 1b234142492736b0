"""The direction of a sound in a user's recording: binaural (2 channels, left ear first) or FOA
(4 channels, ambiX W, Y, Z, X), any sample rate (resampled to 32 kHz).

Two kinds of estimate:

* **classical**, no training: FOA -- the direction of the energy-weighted active intensity
  (``baselines.IntensityLocalizer``); binaural -- ILD/ITD matched to the KEMAR HRIRs
  (``baselines.HrtfLocalizer``; front/back confusions are frequent, the lateral angle is reliable).
* **GRAM + a ridge probe**: the checkpoint's CLS embeddings (mean over 2-s chunks, as the evaluation's
  localization probes) -> a ridge regression (scikit-learn ``RidgeCV`` on z-scored embeddings, the
  penalty chosen by leave-one-out) to the unit vector, fitted on the train + valid splits of a Nat-HEAR
  localization task of the model's format (held-out rooms), then normalized. It is a cheap stand-in
  for the evaluation's MLP probes, fitted once per (model, task) and cached.

Directions in the head frame of DESIGN.md: x front, y left, z up; azimuth counter-clockwise from the
front in [0, 360), +90 = left.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..core.audio import SAMPLE_RATE_HZ, read_wav, resample_audio
from ..core.config import ConfigError
from ..core.paths import Paths
from ..core.tasks import read_task
from ..model.hear import load_embedder
from ..scenes.hrtf import directions_deg
from .baselines import load_baseline

WAV_FORMATS = {2: "binaural", 4: "foa"}  # channel count of a user's file -> format
CLASSICAL = {"foa": "intensity", "binaural": "gcc-hrtf"}
RIDGE_ALPHAS = np.logspace(-2, 4, 13)


def read_spatial(wav, sample_rate_hz: int | None = None) -> tuple[np.ndarray, str, str]:
    """(audio (C, S) at 32 kHz, format, name) of a WAV path or a (C, S) array at ``sample_rate_hz``."""
    if isinstance(wav, (str, Path)):
        name, audio = str(wav), read_wav(wav, sample_rate_hz=SAMPLE_RATE_HZ, resample=True)
    else:
        name, audio = "the audio array", np.atleast_2d(np.asarray(wav, np.float32))
        if sample_rate_hz and sample_rate_hz != SAMPLE_RATE_HZ:
            audio = resample_audio(audio, sample_rate_hz, SAMPLE_RATE_HZ)
    if audio.ndim != 2 or audio.shape[0] not in WAV_FORMATS:
        raise ValueError(f"{name} has {audio.shape[0] if audio.ndim == 2 else audio.shape} channel(s); accepted: "
                         "2 (binaural, left ear first) or 4 (first-order Ambisonics, ambiX W, Y, Z, X)")
    return audio, WAV_FORMATS[audio.shape[0]], name


def localize_wav(wav, by="classical", *, sample_rate_hz: int | None = None, nathear_dir=None,
                 task: str = "words-loc") -> dict:
    """The direction of the sound in ``wav``: a WAV path, or a (C, S) array at ``sample_rate_hz`` (32 kHz if None).

    ``by``: "classical" (the format's localizer), "intensity" (FOA), "gcc-hrtf" (binaural), or a GRAM
    checkpoint folder, answered through the ridge probe of the module docstring, fitted on Nat-HEAR task
    ``task`` of the model's format in ``nathear_dir`` (default: data/nathear of the model's project).
    Returns {"azimuth_deg" in [0, 360), "elevation_deg", "vector" (3,) unit, "method", "format", "source"}.
    """

    audio, fmt, name = read_spatial(wav, sample_rate_hz)
    if by in ("classical", *CLASSICAL.values()):
        method = CLASSICAL[fmt] if by == "classical" else by
        if method != CLASSICAL[fmt]:
            raise ValueError(f"{method!r} localizes {'FOA' if method == 'intensity' else 'binaural'} audio; "
                             f"{name} is {fmt} ({audio.shape[0]} channels)")
        vector = load_baseline(method).localize(torch.from_numpy(audio[None]))[0]
    elif not Path(by).is_dir():
        raise ValueError(f"by={str(by)!r} is neither a localizer (accepted: {['classical', *CLASSICAL.values()]}) "
                         "nor a checkpoint folder")
    else:
        embedder, probe = _probe(str(Path(by).resolve()), nathear_dir, task)
        if embedder.format != fmt:
            raise ValueError(f"the {embedder.format} model in {by} cannot localize {name}, which is {fmt}")
        vector = probe.predict(embedder.cls_embeddings(torch.from_numpy(audio[None])).numpy())[0]
        method = f"GRAM ({Path(by).name}) + ridge probe on {task}"
    vector = np.asarray(vector, np.float64) / max(np.linalg.norm(vector), 1e-12)
    azimuth, elevation = directions_deg(vector)
    return {"azimuth_deg": float(azimuth), "elevation_deg": float(elevation), "vector": vector, "method": method,
            "format": fmt, "source": name}


def localize_all(wav, model_dir=None, **kwargs) -> dict[str, dict]:
    """{label: direction} by the classical localizer of the file's format and, when ``model_dir`` is a
    model of that format, by GRAM (:func:`localize_wav`; ``kwargs`` go to it)."""
    classical = localize_wav(wav, "classical", **kwargs)
    found, fmt = {classical["method"]: classical}, classical["format"]
    if model_dir is not None and load_embedder(model_dir).format == fmt:
        found[f"GRAM {Path(model_dir).name}"] = localize_wav(wav, model_dir, **kwargs)
    elif model_dir is not None:
        print(f"{Path(model_dir).name} is a {load_embedder(model_dir).format} model; the file is {fmt}: no GRAM estimate")
    return found


def _probe(model_dir: str, nathear_dir, task: str):

    embedder = load_embedder(model_dir)
    if embedder.format not in CLASSICAL:
        raise ValueError(f"the {embedder.format} model in {model_dir} hears one channel: it cannot localize")
    try:
        folder = Path(nathear_dir) if nathear_dir else Paths.here(model_dir).nathear
    except ConfigError as err:
        raise FileNotFoundError(f"{model_dir} is not inside a project ({err}): pass nathear_dir=") from err
    task_dir = folder / embedder.format / task
    if not (task_dir / "task_metadata.json").is_file():
        raise FileNotFoundError(f"no localization task {task_dir} to fit the probe on: run `dvc repro` (or the "
                                "nathear stage) first, or pass nathear_dir=")
    stamp = (Path(model_dir) / "model.safetensors").stat().st_mtime_ns
    return embedder, _fit_probe(model_dir, str(task_dir.resolve()), stamp)


@lru_cache(maxsize=4)
def _fit_probe(model_dir: str, task_dir: str, stamp: int):
    from sklearn.linear_model import RidgeCV  # scikit-learn only for a user's recording
    from sklearn.pipeline import make_pipeline  # scikit-learn only for a user's recording
    from sklearn.preprocessing import StandardScaler  # scikit-learn only for a user's recording

    embedder, task = load_embedder(model_dir), read_task(task_dir)
    xs, ys = [], []
    for split in (s for s in ("train", "valid") if s in task.splits):
        files, labels = task.files(split), task.labels(split)
        for start in range(0, len(files), 32):
            batch = np.stack([task.load(split, f) for f in files[start:start + 32]])
            xs.append(embedder.cls_embeddings(torch.from_numpy(batch)).numpy())
        ys += [[labels[f][0][k] for k in ("x", "y", "z")] for f in files]
    return make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS)).fit(np.concatenate(xs), np.asarray(ys))
