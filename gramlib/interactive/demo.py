"""A tiny self-contained project for the interactive notebooks (JupyterLab, Binder, Colab).

``build_demo(root)`` turns an empty folder into a miniature of the pipeline's outputs, with the
pipeline's own code at sizes of its own (:data:`DEMO`, below the ``smoke`` profile): a
``params.yaml``, ``data/sources`` (pre-training clips, noise, a dry ``words`` + ``events`` task
suite), ``data/rooms/{train,test}``, ``data/nathear/<format>/`` (the tasks re-rendered, plus the
``*-loc`` and ``*-t60`` tasks) and ``models/<variant>/`` trained for ``steps`` steps. It needs no
``dvc``, no internet and no params.yaml of a checkout (a pip-installed gramlib on Colab has none),
and takes about 20-40 s on one CPU core and well under 1 GB of memory (Binder gives 2 GB).

A model trained for 20 steps reconstructs little and localizes nothing better than chance: the demo
shows the *workflow*; ``dvc repro`` makes the real (``cpu`` profile) models.

``project(...)`` is what a notebook calls: the checkout's own data and ``model_dir`` when they exist,
otherwise (or when asked) the demo.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import yaml

from ..core import config, sourcefiles
from ..core.paths import Paths
from ..corpus import sources
from ..nathear import build
from ..scenes import rirbank
from ..train import launch

DEMO_VARIANTS = {"foa": "gram-ambisonics", "binaural": "gram-binaural", "clean": "gram-clean"}
# profiles.demo of params.yaml, the demo's truth; this copy is for an install without a checkout (Colab's pip
# install has no params.yaml), and tests/test_config.py keeps the two equal. Sections not named here take the
# dataclass defaults, which equal params.yaml's own sections.
DEMO = {
    "sources": {"pretrain_clips": 6, "clip_s": 4.0, "noise_train_clips": 2, "noise_test_clips": 2, "noise_clip_s": 4.0,
                "task_clips": {"words": 20, "events": 15, "pitch": 0, "count": 0, "family": 0, "dcase": 0}},
    "rooms": {"train_rooms": 3, "test_rooms": 3, "sets_per_room": 2, "max_order": 3, "rir_s": 0.5},
    "nathear": {"loc_clips": 30, "t60_clips": 3, "loc_sources": {"words": "words"}},
    "features": {"clip_frames": 512},
    "model": {"embed_dim": 64, "depth": 2, "heads": 2, "decoder_dim": 64, "decoder_depth": 1, "decoder_heads": 4},
    "train": {"batch_clips": 2, "n_crops": 4, "warmup_steps": 2, "lr": 1.0e-3, "log_every": 1, "num_workers": 0,
              "torch_threads": 1, "steps_main": 20, "checkpoint_every": 20},
    "evaluate": {"probe_grid": "smoke"},
}
MARKER = "demo.json"


def demo_params(steps: int = 20, formats=("foa",), seed: int = 0) -> dict:
    """The demo's params.yaml as a dict: the ``demo`` profile (:data:`DEMO`) with ``steps`` training steps, one
    variant per format."""
    for fmt in formats:
        if fmt not in DEMO_VARIANTS:
            raise ValueError(f"unknown demo format {fmt!r}; accepted: {list(DEMO_VARIANTS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    demo = json.loads(json.dumps(DEMO))
    demo["train"].update(steps_main=steps, checkpoint_every=steps)
    params = {"profile": "demo", "seed": int(seed), "profiles": {"demo": demo}}
    params["variants"] = {DEMO_VARIANTS[f]: {"axis": "main", "value": f"demo-{f}", "format": f, "budget": "main",
                                             **({"set": {"train": {"lambda_clean": 1.0}}} if f == "clean" else {})}
                          for f in formats}
    return params


def build_demo(root: Path | str | None = None, *, steps: int = 20, formats=("foa",), seed: int = 0,
               progress: bool = False) -> Paths:
    """Build the demo project in ``root`` (a new temporary folder when None); returns its :class:`Paths`.

    A folder that already holds a finished demo with the same settings is reused as is (its
    ``demo.json`` records them), so notebooks and tests can share one build.
    """
    root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="gram-demo-"))
    params = demo_params(steps, tuple(formats), seed)
    record = {"params": params}
    if (root / MARKER).is_file() and json.loads((root / MARKER).read_text()).get("params") == params:
        return Paths(root.resolve())
    if (root / config.PARAMS_FILE).is_file() and not (root / MARKER).is_file():
        raise ValueError(f"{root} holds a params.yaml that is not a demo's (a project?); the demo would replace its "
                         "data/ and models/: choose an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / config.PARAMS_FILE).write_text(yaml.safe_dump(params, sort_keys=False))
    params = config.load_params(root / config.PARAMS_FILE)  # checked like any params.yaml
    paths = Paths(root.resolve())
    clock = time.perf_counter()
    sources.build(config.section(params, "sources"), paths.sources, paths.tasks, seed=params["seed"])
    for split in rirbank.SPLITS:
        rirbank.build_bank(config.section(params, "rooms"), paths.rooms, split, seed=params["seed"])
    build.build_nathear(sourcefiles.tasks_source(paths.sources), paths.rooms, paths.sources / "noise", paths.nathear,
                          config.section(params, "nathear"), seed=params["seed"])
    data_s = time.perf_counter() - clock
    for variant in params["variants"]:
        launch.make_run(variant, params, paths).train(progress=progress)
    record["seconds"] = {"data_s": round(data_s, 1), "train_s": round(time.perf_counter() - clock - data_s, 1)}
    (root / MARKER).write_text(json.dumps(record, indent=1))
    print(f"demo project in {root}: data {record['seconds']['data_s']} s, "
          f"{len(params['variants'])} model(s) x {steps} steps {record['seconds']['train_s']} s")
    return paths


def project(model_dir: Path | str, *, build_demo_data: bool | None = None, demo_dir: Path | str | None = None,
            steps: int = 20, seed: int = 0, fmt: str | None = None) -> tuple[Paths, Path]:
    """(paths, model folder) for a notebook: the checkout's or the demo's.

    ``build_demo_data``: None -- the checkout's data and ``model_dir`` when both exist (run from inside
    the project), else the demo; True -- always the demo (in ``demo_dir``, a temporary folder when
    None); False -- the checkout's, or FileNotFoundError saying to run ``dvc repro``. In the demo the
    model is the variant of ``fmt`` (default: the format ``model_dir``'s name implies, e.g.
    models/gram-ambisonics -> foa).
    """
    model_dir = Path(model_dir)
    if build_demo_data is not True:
        found = _checkout(model_dir)
        if found is not None:
            return found
        if build_demo_data is False:
            raise FileNotFoundError(f"no trained model in {model_dir} (or no data/ beside it): run `dvc repro` "
                                    "in the project first, or set build_demo_data=True for a tiny demo model")
    fmt = fmt or next((f for f, v in DEMO_VARIANTS.items() if v == model_dir.name), "foa")
    if build_demo_data is None:
        print(f"no trained model {model_dir} with data/nathear beside it here: building a tiny demo project instead")
    paths = build_demo(demo_dir, steps=steps, formats=(fmt,), seed=seed)
    return paths, paths.model(DEMO_VARIANTS[fmt])


def _checkout(model_dir: Path) -> tuple[Paths, Path] | None:
    """The project around the working directory, when it holds Nat-HEAR data and ``model_dir``."""
    try:
        paths = Paths.here()
    except config.ConfigError:
        return None
    model_dir = model_dir if model_dir.is_absolute() else paths.root / model_dir
    if (model_dir / "config.json").is_file() and paths.nathear.is_dir():
        return paths, model_dir
    return None
