"""Resumable training state: a model checkpoint plus the optimizer and RNG as safetensors, scalars as JSON.

A checkpoint is a folder ``step-000123/`` holding the model in the one checkpoint format of
:mod:`gramlib.model.checkpoint` (``model.safetensors`` + ``config.json`` with the weights' SHA-256, so
``load_gram`` reads it and a changed byte is caught), and beside it ``optimizer.safetensors`` and
``state.json``. It is written to a temporary folder and renamed into place, so a run killed
mid-write leaves the previous checkpoint intact. Loading never unpickles: tensors come from
safetensors, everything else from JSON.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..model.checkpoint import load_config, load_weights, save_checkpoint


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = optimizer.state_dict()
    tensors = {f"state.{pid}.{name}": value.detach().cpu().contiguous()
               for pid, state in sd["state"].items() for name, value in state.items()
               if torch.is_tensor(value)}
    scalars = {f"{pid}.{name}": value for pid, state in sd["state"].items()
               for name, value in state.items() if not torch.is_tensor(value)}
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_state(ckpt_dir: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               *, config: dict, keep: int = 3, extra: dict | None = None) -> Path:
    """Write the state after ``step`` completed steps; keep the newest ``keep`` checkpoints.

    The model is written by :func:`gramlib.model.checkpoint.save_checkpoint` with ``config``, so every
    checkpoint is also loadable by :func:`gramlib.model.checkpoint.load_gram`.
    """
    ckpt_dir = Path(ckpt_dir)
    final = ckpt_dir / f"step-{step:07d}"
    tmp = ckpt_dir / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_checkpoint(tmp, model, config=config)
    tensors, meta = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, "optimizer": meta, **(extra or {})}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(ckpt_dir.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(ckpt_dir: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    done = [p for p in sorted(Path(ckpt_dir).glob("step-*")) if (p / "state.json").is_file()]
    return done[-1] if done else None


def load_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model, optimizer and torch RNG from ``path``; returns its state.json."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    load_weights(model, path, expected_sha256=load_config(path).get("weights_sha256"))
    tensors = load_file(str(path / "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("rng.torch"))
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        per_param.setdefault(int(pid), {})[name] = value
    for key, value in state["optimizer"]["scalars"].items():
        pid, name = key.split(".", 1)
        per_param.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer"]["param_groups"]})
    return state


def fingerprint_of(path: Path) -> str | None:
    """The configuration fingerprint a checkpoint was saved with (None for older checkpoints)."""
    return json.loads((Path(path) / "state.json").read_text()).get("fingerprint")


def clear(ckpt_dir: Path) -> None:
    """Remove every checkpoint of a folder (a run with another configuration starts over)."""
    for old in Path(ckpt_dir).glob("*step-*"):
        shutil.rmtree(old, ignore_errors=True)
