"""Every paper figure of a run, written to ``figures/`` (PNG and PDF)."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt

from ..core.config import section
from ..core.scenefile import FIGURE1_FILE, load_scene
from .chance import constant_results, suite_dirs
from .claims import write_claims
from .panels import figure_1, figure_3, figure_6, figure_seld
from .plots import NAMES, figure_2, figure_4, figure_5, save
from .results import load_results, pipeline_models, tidy
from .tables import table_seld, write_tables


def render_all(results: dict[str, dict], eval_dir: Path | str, train_dir: Path | str, out_dir: Path | str,
               scene: dict, *, dpi: int = 150, pretrain_clips: int | None = None,
               seld_dir: Path | str | None = None) -> list[Path]:
    """Every figure of :data:`FIGURES`, from the loaded metrics ``results`` (their detail sidecars are read
    from ``eval_dir``), the DVCLive logs under ``train_dir`` and the Figure 1 ``scene``; written to ``out_dir``."""
    df = tidy(results)
    makers = {"figure_1": lambda: figure_1(scene), "figure_2": lambda: figure_2(df, pretrain_clips=pretrain_clips),
              "figure_3": lambda: figure_3(load_results(eval_dir, detail=True, only=set(results))), "figure_4": lambda: figure_4(df),
              "figure_5": lambda: figure_5(df), "figure_6": lambda: figure_6(results, train_dir),
              "figure_seld": lambda: figure_seld(table_seld(seld_dir) if seld_dir and Path(seld_dir).is_dir() else None)}
    paths = []
    for name in NAMES:
        fig = makers[name]()
        paths += save(fig, out_dir, name, dpi=dpi)
        plt.close(fig)
    return paths


def run_stage(params: dict, paths) -> list[Path]:
    """The ``figures`` stage: every figure (Figure 1: the reconstruction ``pretrain@<figures.figure1_variant>`` wrote), every table
    and the claims table (:mod:`gramlib.figures.claims`), from the metrics of the pipeline's models in results/;
    returns the paths written."""
    cfg = section(params, "figures")
    scene = load_scene(paths.results / "train" / cfg.figure1_variant / FIGURE1_FILE)
    evals = load_results(paths.results / "eval", only=pipeline_models(params))
    written = render_all(evals, paths.results / "eval", paths.results / "train", paths.figures, scene, dpi=cfg.dpi,
                         pretrain_clips=section(params, "sources").pretrain_clips, seld_dir=paths.results / "seld")
    n_boot = section(params, "evaluate").bootstrap or 1000
    chance = constant_results(suite_dirs(paths), n_boot=n_boot, seed=params["seed"])  # the tables' constant rows
    paths.tables.mkdir(parents=True, exist_ok=True)
    (paths.tables / "chance.json").write_text(json.dumps(chance, indent=1))
    written += [paths.tables / "chance.json"]
    written += write_tables(paths.tables, {**evals, chance["name"]: chance}, pool=cfg.score_pool, naive="naive",
                            seld_dir=paths.results / "seld")
    details = load_results(paths.results / "eval", detail=True, only=pipeline_models(params))
    return written + write_claims(paths.tables, details, n_boot=n_boot, seed=params["seed"])
