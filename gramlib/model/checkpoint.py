"""Checkpoints: safetensors weights + a JSON config, loadable without the training code.

A checkpoint directory holds

* ``model.safetensors`` -- the model's state dict (parameters and persistent buffers);
* ``config.json`` -- ``format``, ``in_channels``, the resolved ``features`` and ``model`` sections,
  the SHA-256 of the weights file, and whatever else the caller passed (variant, step, ...).

Loading never unpickles: JSON and safetensors only, the state dict loaded strictly, and any
difference (a missing or unexpected key, a shape, a changed byte) raises :class:`CheckpointError`
naming it. A resumable ``gramlib.train.trainstate`` checkpoint is one of these plus the optimizer and
RNG state beside it. A ``config.json`` without ``weights_sha256`` (written by older versions) loads too, unhashed.
Parts for other writers: :func:`checkpoint_config`, :func:`load_config`, :func:`load_weights`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core.config import FeaturesConfig, ModelConfig, build
from .features import FEATURE_CHANNELS, FeatureExtractor, check_format
from .gram import GRAM

WEIGHTS, CONFIG = "model.safetensors", "config.json"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: missing, corrupted, or not matching its config."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_config(model: GRAM, *, format: str, **extra) -> dict:
    """The JSON-able config of ``model`` for input ``format``, plus ``extra`` keys."""
    check_format(format)
    if FEATURE_CHANNELS[format] != model.in_channels:
        raise CheckpointError(f"format {format!r} gives {FEATURE_CHANNELS[format]} channels but the model "
                              f"takes {model.in_channels}")
    return {"gram_checkpoint": VERSION, "format": format, "in_channels": model.in_channels,
            "features": dataclasses.asdict(model.features_cfg), "model": dataclasses.asdict(model.cfg), **extra}


def save_checkpoint(directory: Path | str, model: GRAM, *, config: dict) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created); returns it.

    ``config`` must name the input ``format``; every other key (variant, step, ...) is stored as is.
    The model's own features/model configs and channel count are filled in from ``model``.
    """
    if "format" not in config:
        raise CheckpointError(f"save_checkpoint needs config['format'] (one of {list(FEATURE_CHANNELS)})")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    extra = {k: v for k, v in config.items() if k not in ("format", "in_channels", "features", "model")}
    meta = checkpoint_config(model, format=config["format"], **extra)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS), metadata={"format": meta["format"], "gram_checkpoint": str(VERSION)})
    meta["weights_sha256"] = sha256(directory / WEIGHTS)
    (directory / CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return directory


def load_config(directory: Path | str) -> dict:
    """The checkpoint's ``config.json`` as a dict (checked to hold what :func:`load_gram` needs)."""
    path = Path(directory) / CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"cannot read checkpoint config {path}: {err}") from err
    missing = [k for k in ("format", "in_channels", "features", "model") if k not in config]
    if missing:
        raise CheckpointError(f"{path} lacks key(s) {missing}; is it a GRAM checkpoint?")
    return config


def load_weights(model: GRAM, directory: Path | str, *, expected_sha256: str | None = None) -> GRAM:
    """Load ``model.safetensors`` into ``model`` strictly (every key, every shape); returns ``model``."""
    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights not found: {path}")
    if expected_sha256 is not None and sha256(path) != expected_sha256:
        raise CheckpointError(f"{path} does not match the SHA-256 recorded in its {CONFIG}: the file is "
                              f"corrupted or was replaced")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from err
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit the model built from its config: missing key(s) {missing}, "
                              f"unexpected key(s) {unexpected}")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)}; the model's is "
                                  f"{tuple(own[key].shape)}")
    model.load_state_dict(state, strict=True)
    return model


def load_gram(directory: Path | str) -> tuple[FeatureExtractor, GRAM, dict]:
    """Rebuild (feature extractor, model in eval mode, config dict) from a checkpoint directory."""
    config = load_config(directory)
    where = str(Path(directory) / CONFIG)
    features_cfg = build(FeaturesConfig, config["features"], f"{where}: features")
    model_cfg = build(ModelConfig, config["model"], f"{where}: model")
    extractor = FeatureExtractor(features_cfg, check_format(config["format"]))
    if extractor.n_channels != config["in_channels"]:
        raise CheckpointError(f"{where}: format {config['format']!r} gives {extractor.n_channels} channels, "
                              f"in_channels says {config['in_channels']}")
    model = GRAM(model_cfg, features_cfg, config["in_channels"])
    load_weights(model, directory, expected_sha256=config.get("weights_sha256"))
    return extractor, model.eval(), config
