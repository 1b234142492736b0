"""Model cards: a ``README.md`` in every checkpoint folder the pipeline writes, for a person and for a machine.

    python -m gramlib.figures.cards VARIANT       # the ``cards@VARIANT`` stage: models/VARIANT/README.md

A card says what the model is (format, encoder, parameters, training steps and data, seed), how to load it
(the HEAR API in five lines) and what it scored, from the checkpoint's ``config.json`` and the metrics the
``evaluate`` stage wrote to ``results/eval/VARIANT.json``. The scores are repeated in the card's YAML front
matter as a Hugging Face ``model-index`` block (one result per task: its first metric and 95 % interval), so
a hub or a script reads them without parsing prose. The stage re-runs when the scores change.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from ..core import config
from ..core.paths import Paths

CARD = "README.md"
TASK_TYPES = {"multiclass": "audio-classification", "multilabel": "audio-classification",
              "event": "sound-event-detection", "localization": "sound-localization",
              "regression": "reverberation-time-estimation"}
DATA = {"embedded": "naturalistic scenes simulated from this repository's embedded corpus: espeak-ng speech "
                    "(GPL-3.0-or-later voices), TimGM6mb soundfont notes (GPL-2), synthesized events and noises, in "
                    "shoebox rooms (pyroomacoustics image sources; binaural through the MIT KEMAR HRTF). Audio derived "
                    "from GPL data is not distributed with the weights",
        "paper": "naturalistic scenes simulated from AudioSet clips and WHAM! noise (their own licenses: AudioSet "
                 "annotations CC-BY 4.0 under YouTube's terms, WHAM! CC BY-NC 4.0) in shoebox rooms"}


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"model card: {path} is missing (run the stage that writes it first)")
    return json.loads(path.read_text())


def model_index(name: str, metrics: dict) -> list[dict]:
    """The ``model-index`` entry of ``metrics`` (a results/eval JSON): one result per task, first metric."""
    results = []
    for key, task in sorted(metrics.get("tasks", {}).items()):
        metric = task.get("first_metric")
        if metric is None or task.get(metric) is None:
            continue
        suite = key.split("/")[0]
        entry = {"type": metric, "value": round(float(task[metric]), 6), "name": f"{metric} (test, {task.get('n_test')} items)"}
        low, high = task.get(f"{metric}_ci95_low"), task.get(f"{metric}_ci95_high")
        if low is not None and high is not None:
            entry["args"] = {"ci95": [round(float(low), 6), round(float(high), 6)]}
        results.append({"task": {"type": TASK_TYPES.get(task.get("kind"), task.get("kind", "other")), "name": task["task"]},
                        "dataset": {"name": f"{suite} {task['task']}", "type": key},
                        "metrics": [entry]})
    return [{"name": name, "results": results}]


def render_card(name: str, cfg: dict, metrics: dict, *, profile: str) -> str:
    """The card's markdown: front matter with the ``model-index``, then prose and tables."""
    model, train, summary = cfg.get("model", {}), cfg.get("train", {}), metrics.get("train") or {}
    front = {"library_name": "gramlib", "license": "apache-2.0", "pipeline_tag": "feature-extraction",
             "tags": ["audio", "spatial-audio", "masked-autoencoder", "hear", cfg.get("format", "")],
             "model-index": model_index(name, metrics)}
    params = summary.get("parameters")
    rows = [("format", f"{cfg.get('format')} ({cfg.get('audio_channels')} audio channels, {cfg.get('in_channels')} "
                       f"feature channels)"),
            ("encoder", f"{model.get('encoder')}, {model.get('depth')} blocks, width {model.get('embed_dim')}, "
                        f"{model.get('heads')} heads; patches {model.get('patch_mels')} mels x {model.get('patch_frames')} frames"),
            ("parameters", f"{params:,}" if isinstance(params, int) else "unknown"),
            ("pre-training", f"{cfg.get('steps')} steps, {summary.get('scenes_seen', '?')} scenes, "
                             f"{summary.get('crops_seen', '?')} crops; mask ratio {model.get('mask_ratio')}, "
                             f"lambda_clean {train.get('lambda_clean')}; final loss {summary.get('final_loss', float('nan')):.4f}"),
            ("variant", f"{cfg.get('variant', name)} (axis {cfg.get('axis')}, value {cfg.get('value')}), "
                        f"profile `{profile}`, seed {cfg.get('seed')}"),
            ("data", DATA["paper" if profile == "paper" else "embedded"])]
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {name}", "",
             f"A GRAM: a multichannel masked autoencoder of spatial audio (log-mel and inter-channel features), "
             f"pre-trained on simulated naturalistic scenes by this repository's pipeline (`dvc repro`, profile "
             f"`{profile}`)." + ("" if profile == "paper" else " A small CPU model, made for the pipeline's "
                                 "comparisons, not as a general audio front end."), "",
             "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
             "## Load it", "", "```python", "import torch",
             "from gramlib.model import hear",
             f"model = hear.load_model(\"models/{name}\")  # this folder",
             f"audio = torch.zeros(1, {cfg.get('audio_channels')}, {cfg.get('features', {}).get('sample_rate_hz', 32000)})"
             "  # (n, channels, samples) at the model's rate",
             "embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)", "```", "",
             "## Scores", "",
             f"Test-split scores from `results/eval/{name}.json` (95 % intervals: bootstrap over test items).", "",
             "| suite/task | metric | score | 95 % interval | test items |", "|---|---|---|---|---|"]
    for key, task in sorted(metrics.get("tasks", {}).items()):
        metric = task.get("first_metric")
        if metric is None or task.get(metric) is None:
            continue
        low, high = task.get(f"{metric}_ci95_low"), task.get(f"{metric}_ci95_high")
        interval = f"[{low:.4g}, {high:.4g}]" if low is not None and high is not None else "-"
        lines.append(f"| {key} | {metric} | {task[metric]:.4g} | {interval} | {task.get('n_test', '-')} |")
    for suite, agg in sorted(metrics.get("aggregate", {}).items()):
        lines.append(f"| {suite} (average of {agg.get('n_tasks')} tasks) | mean first metric x 100 | "
                     f"{agg.get('average', float('nan')):.2f} | - | - |")
    return "\n".join(lines) + "\n"


def write_card(model_dir: Path | str, metrics_file: Path | str, *, profile: str) -> Path:
    """Write ``model_dir``/README.md from its config.json and the metrics JSON; returns the card's path."""
    model_dir = Path(model_dir)
    cfg, metrics = _read_json(model_dir / "config.json"), _read_json(Path(metrics_file))
    out = model_dir / CARD
    out.write_text(render_card(model_dir.name, cfg, metrics, profile=profile))
    return out


def run_stage(params: dict, paths: Paths, variant: str) -> Path:
    """The ``cards@<variant>`` stage."""
    if variant not in params.get("variants", {}):
        raise ValueError(f"unknown variant {variant!r}; params.yaml's variants: {sorted(params.get('variants', {}))}")
    return write_card(paths.model(variant), paths.results / "eval" / f"{variant}.json", profile=params["profile"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gramlib.figures.cards", description=__doc__.splitlines()[0])
    parser.add_argument("variant")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRAM_STAGE", f"cards@{args.variant}")  # params reads are noted under the stage
    try:
        print(run_stage(config.load_params(), Paths.here(), args.variant))
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"gramlib.figures.cards: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
