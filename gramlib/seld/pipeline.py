"""The ``seld`` stage: SELD on frozen embeddings of DCASE-format recordings.

    ds_dir = make_synthetic_dataset(paths.seld_data, paths.rooms, paths.tasks, cfg, seed)  # seld_synth
    result = evaluate_seld(ds_dir, "synthetic", embedder, cfg, seed, out_dir)         # or a real set

Protocol (the paper's RealSELD probe, with its model selection fixed):

1. every recording is read at the embedder's rate (resampled by ``gramlib.core.audio``) and embedded in
   ``cfg.chunk_s`` chunks (HEAR ``get_timestamp_embeddings``); each chunk's frames are pooled to the
   100-ms label grid (:func:`gramlib.seld.probe.pool_to_label_frames`);
2. a linear (or small MLP) ACCDOA / multi-ACCDOA head is trained on the train recordings' frames
   (:func:`gramlib.seld.probe.run_seld_probe`);
3. **model selection uses a validation split carved from the train recordings** (``cfg.val_fraction``
   of them, or the dataset's own ``dev-val`` folder): the epoch with the least validation loss, then
   the activity threshold with the best validation SELD score. The authors' fine-tuning scripts chose
   the epoch on the test fold (``val_splits = test_splits = [[4]]``); we never look at the test fold
   before the final evaluation;
4. the test recordings are scored with both metric families of :mod:`gramlib.seld.metrics`, and
   the predictions are written in the DCASE output format (frame, class, track, azimuth, elevation).

:class:`gramlib.seld.foa.IntensitySeldBaseline` is scored on the same test recordings as a
no-learning reference.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..core.config import SeldConfig, section
from ..core.sourcefiles import tasks_source
from ..model import hear
from .data import SeldDataset, load_recording, read_dataset, tut2018_subsets
from .foa import IntensitySeldBaseline, check_foa_convention
from .labels import LABEL_HOP_S, SeldDataError, n_label_frames
from .metrics import seld_metrics
from .probe import carve_validation, pool_to_label_frames, run_seld_probe
from .synth import make_synthetic_dataset

SYSTEMS = ("probe", "intensity_oracle", "intensity_energy")  # what a SELD run scores

ORACLE_NOTE = ("no learning: reference activity and classes (detection perfect by construction), one active-intensity "
               "DoA per 100-ms frame shared by all its sources")
ENERGY_NOTE = ("no learning: one class-less source wherever the W energy is 10 dB above the recording's floor, at the "
               "frame's intensity DoA; only the class-agnostic DoA error and frame recall apply")


# --------------------------------------------------------------------------------------------
# Embedding recordings
# --------------------------------------------------------------------------------------------
def _timestamp_embeddings(embedder, audio: torch.Tensor):
    fn = getattr(embedder, "get_timestamp_embeddings", None) or getattr(embedder, "timestamp_embeddings")
    with torch.no_grad():
        emb, ts = fn(audio)
    return emb.detach().cpu().float().numpy(), ts.detach().cpu().double().numpy()


def embed_recording(audio: np.ndarray, embedder, chunk_s: float) -> np.ndarray:
    """(4, S) audio at the embedder's rate -> (n_frames, D) label-frame embeddings, chunk by chunk."""
    rate = int(embedder.sample_rate)
    n_frames = n_label_frames(audio.shape[-1], rate)
    step = max(1, int(round(chunk_s / LABEL_HOP_S)))
    starts = list(range(0, n_frames, step))
    if len(starts) > 1 and n_frames - starts[-1] < 10:  # fold a sub-second tail into the previous chunk
        starts.pop()
    bounds = starts + [n_frames]
    out = []
    for f0, f1 in zip(bounds[:-1], bounds[1:]):
        s0, s1 = int(round(f0 * LABEL_HOP_S * rate)), min(audio.shape[-1], int(round(f1 * LABEL_HOP_S * rate)))
        emb, ts = _timestamp_embeddings(embedder, torch.from_numpy(np.ascontiguousarray(audio[None, :, s0:s1])))
        out.append(pool_to_label_frames(emb[0], ts[0], f1 - f0))
    return np.concatenate(out)


# --------------------------------------------------------------------------------------------
# The stage entry point
# --------------------------------------------------------------------------------------------
def evaluate_seld(dataset_dir, dataset_format: str, embedder, cfg: SeldConfig, seed: int, out_dir=None, *,
                  progress: bool = True) -> dict:
    """Embed a DCASE-format dataset, run the probe and the intensity baseline, return the metrics.

    ``embedder``: any object with ``sample_rate`` and ``get_timestamp_embeddings(audio)`` taking
    float32 (n, 4, S) FOA and returning ``(emb (n, T, D), timestamps_ms (n, T))`` (HEAR API).
    tut2018: ``cfg.subset`` names one folder pair (``ov1_split1``) or a prefix of several (``ov1``:
    every split of ov1, each trained and tested on its own, metrics averaged). With ``out_dir``:
    ``metrics.json`` and the DCASE-format test predictions under ``predictions/``.
    """
    root = Path(dataset_dir) if dataset_dir is not None else None
    if root is None or not root.is_dir():
        raise SeldDataError(f"SELD dataset folder not found: {dataset_dir!s}. Set the params key seld.dataset_dir "
                            f"(e.g. dvc exp run -S seld.dataset_dir=/path -S seld.dataset_format=tut2018)")
    subsets = [None]
    if dataset_format == "tut2018":
        found = tut2018_subsets(root)
        subsets = [s for s in found if cfg.subset is None or s == cfg.subset or s.startswith(cfg.subset + "_")]
        if not subsets or (cfg.subset is None and len(subsets) > 1):
            raise SeldDataError(f"set seld.subset to one of {found} (or a prefix such as 'ov1'); got {cfg.subset!r}")
    runs = {}
    for subset in subsets:
        ds = read_dataset(root, dataset_format, subset=subset, test_fold=cfg.test_fold, azimuth_sign=cfg.azimuth_sign)
        sub_dir = Path(out_dir) / subset if out_dir is not None and subset is not None else out_dir
        runs[subset or "all"] = _evaluate_dataset(ds, embedder, cfg, seed, sub_dir, progress)
    result = runs[next(iter(runs))] if len(runs) == 1 else {"subsets": runs, **_mean_over(runs)}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def _mean_over(runs: dict) -> dict:
    keys = SYSTEMS
    return {k: {m: float(np.mean([r[k][m] for r in runs.values()])) for m, v in next(iter(runs.values()))[k].items()
                if isinstance(v, (int, float))} for k in keys}


def _evaluate_dataset(ds: SeldDataset, embedder, cfg: SeldConfig, seed: int, out_dir, progress: bool) -> dict:
    from tqdm.auto import tqdm  # tqdm.auto picks the notebook or terminal bar when the run starts

    rate = int(embedder.sample_rate)
    train, val, test = ds.role("train"), ds.role("val"), ds.role("test")
    if not val:
        held = set(carve_validation(len(train), cfg.val_fraction, seed).tolist())
        val, train = [r for i, r in enumerate(train) if i in held], [r for i, r in enumerate(train) if i not in held]
    emb, oracle, energy, check = {}, [], [], []
    for rec in tqdm(train + val + test, desc=f"SELD embed ({ds.format})", disable=not progress):
        audio = load_recording(rec, rate)
        emb[rec.audio_path] = embed_recording(audio, embedder, cfg.chunk_s)
        if rec.role == "test":
            oracle.append(IntensitySeldBaseline("oracle").predict(audio, rate, rec.labels))
            energy.append(IntensitySeldBaseline("energy").predict(audio, rate, rec.labels))
        if len(check) < 3 and len(rec.labels):
            check.append((audio, rec.labels))
    pred_dir = Path(out_dir) / "predictions" if out_dir is not None else None
    probe = run_seld_probe([emb[r.audio_path] for r in train], [r.labels for r in train],
                           [emb[r.audio_path] for r in test], [r.labels for r in test], cfg, seed,
                           emb_val=[emb[r.audio_path] for r in val],
                           labels_val=[r.labels for r in val], n_classes=len(ds.classes), out_dir=pred_dir,
                           test_names=[r.name for r in test])
    refs = [r.labels for r in test]
    energy_all = seld_metrics(refs, energy, len(ds.classes))
    convention = check_foa_convention([a for a, _ in check], rate, [lab for _, lab in check], warn=True)
    return {
        "dataset": {"format": ds.format, "root": _shown_path(ds.root), "subset": ds.subset, "classes": list(ds.classes),
                    "recordings": {"train": len(train), "val": len(val), "test": len(test)},
                    "embedding_dim": int(next(iter(emb.values())).shape[1]), "sample_rate_hz": rate},
        "probe": probe,
        "intensity_oracle": {**seld_metrics(refs, oracle, len(ds.classes)), "what": ORACLE_NOTE},
        "intensity_energy": {**{k: energy_all[k] for k in ("DOA_error_deg", "frame_recall", "n_doa_pairs")},
                             "what": ENERGY_NOTE},
        "foa_convention": {k: convention[k] for k in ("ok", "best", "median_error_deg", "n_frames", "message")},
    }


def _shown_path(path) -> str:
    """``path`` relative to the working directory when inside it (results then match across clones)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_stage(params: dict, paths) -> dict:
    """The ``seld`` stage: the synthetic DCASE-format set (or ``seld.dataset_dir``), the probe on
    ``seld.variant``'s embeddings and the intensity baselines; metrics in results/seld/<variant>/."""
    cfg = section(params, "seld")
    if cfg.dataset_dir is None:
        dataset_dir = make_synthetic_dataset(paths.seld_data, paths.rooms, tasks_source(paths.sources), cfg,
                                             seed=params["seed"])
        dataset_format = "synthetic"
    else:
        dataset_dir, dataset_format = cfg.dataset_dir, cfg.dataset_format
    embedder = hear.load_model(str(paths.model(cfg.variant)))
    return evaluate_seld(dataset_dir, dataset_format, embedder, cfg, seed=params["seed"],
                         out_dir=paths.results / "seld" / cfg.variant)


def systems_table(metrics: dict):
    """One row per system (probe, intensity oracle, intensity energy), its numeric metrics as columns."""
    import pandas as pd  # only the notebook's table needs it

    systems = {k: v for k, v in metrics.items() if k in SYSTEMS and isinstance(v, dict)}
    return pd.DataFrame({k: {m: x for m, x in v.items() if isinstance(x, (int, float))} for k, v in systems.items()}).T
