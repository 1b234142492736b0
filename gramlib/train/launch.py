"""Start the pre-training of one variant: in this process, or with torchrun on several devices.

    from gramlib.train import launch
    launch.pretrain("gram-binaural")          # what the pretrain@<variant> stage runs

With ``train.devices > 1`` (e.g. ``dvc exp run -S profile=paper -S train.devices=8``) this starts

    python -m torch.distributed.run --standalone --nproc_per_node=8 -m gramlib.train.launch --variant gram-binaural

and every process runs :func:`main`: NCCL on GPUs (gloo on CPU), one device per process, each rank
mixing its slice of every micro-batch (``train.batch_clips`` must divide by the device count).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

from ..core import config, sourcefiles
from ..core.paths import Paths
from ..core.scenefile import FIGURE1_FILE, save_scene
from .batches import TrainData, TrainingError
from .loop import Run
from .reconstruct import figure1_scene


def train_data(paths: Paths, fmt: str, params: dict) -> TrainData:
    """Pre-training clips, pre-training noise and the train-room RIR bank of this project."""
    src = config.section(params, "sources")
    if not (paths.sources / "pretrain" / "manifest.csv").is_file():
        raise TrainingError(f"no pre-training pool in {paths.sources}: run the `sources` stage first")
    rir_dir = None if fmt == "clean" else paths.rooms / "train"
    if rir_dir is not None and not (rir_dir / "manifest.csv").is_file():
        raise TrainingError(f"no train-room RIR bank in {rir_dir}: run the `rooms` stage first")
    return TrainData(clips=sourcefiles.pretrain_files(paths.sources), noises=sourcefiles.noise_files(paths.sources, "train"),
                     rir_dir=rir_dir, clip_s=src.clip_s,
                     sample_rate_hz=config.section(params, "features").sample_rate_hz)


def make_run(slug: str, params: dict, paths: Paths, *, rank: int = 0, world: int = 1,
             device: str | None = None, **run_options) -> Run:
    """The :class:`Run` of variant ``slug``; ``run_options`` go to it (``accel_on_cpu``, ``compile_backend``)."""
    variant, model_cfg, train_cfg = config.resolve_variant(params, slug)
    steps = train_cfg.steps_main if variant.budget == "main" else train_cfg.steps_ablation
    meta = {"variant": slug, "axis": variant.axis, "value": variant.value, "budget": variant.budget,
            "variant_seed": variant.seed, "also": variant.also, "profile": params["profile"]}
    return Run(paths.model(slug), fmt=variant.format, model_cfg=model_cfg, train_cfg=train_cfg,
               features_cfg=config.section(params, "features"), data=train_data(paths, variant.format, params),
               steps=steps, seed=int(params["seed"]) + variant.seed, rank=rank, world=world, device=device,
               live_dir=paths.results / "train" / slug, meta=meta, **run_options)


def pretrain(slug: str, *, profile: str | None = None, progress: bool = True) -> dict:
    """Train variant ``slug`` of the project around the working directory (see :func:`run_stage`; no
    Figure 1 file: that is the pipeline's)."""
    return run_stage(config.load_params(profile=profile), Paths.here(), slug, progress=progress, figure1=False)


def run_stage(params: dict, paths: Paths, variant: str, *, progress: bool = True, figure1: bool = True) -> dict:
    """The ``pretrain@<variant>`` stage: train to the variant's step budget, resuming from its newest
    checkpoint; on several devices (``train.devices``) through torchrun. Then (``figure1``) the model's
    reconstruction of held-out scene ``seed``, Figure 1's input, goes to ``results/train/<variant>/figure1.npz``
    (:mod:`gramlib.core.scenefile`), so the figures stage draws it without loading the model.
    Returns the training summary."""
    train_cfg = config.resolve_variant(params, variant)[2]
    torch.set_num_threads(train_cfg.torch_threads)
    if train_cfg.devices > 1:
        summary = torchrun(variant, train_cfg.devices, profile=params["profile"])
    else:
        summary = make_run(variant, params, paths).train(progress=progress)
    if figure1:
        save_scene(paths.results / "train" / variant / FIGURE1_FILE, figure1_scene(paths, variant, seed=int(params["seed"])))
    return summary


def torchrun(slug: str, devices: int, *, profile: str) -> dict:
    """Run :func:`main` in ``devices`` processes; returns the training summary rank 0 wrote."""

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
           "-m", "gramlib.train.launch", "--variant", slug, "--profile", profile]
    subprocess.run(cmd, check=True)
    return json.loads((Paths.here().model(slug) / "train_summary.json").read_text())


def main(argv: list[str] | None = None) -> None:
    """One torchrun process: join the group, train this rank's share, leave."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    rank, world, local = (int(os.environ.get(k, d)) for k, d in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)))
    params = config.load_params(profile=args.profile)
    torch.set_num_threads(config.resolve_variant(params, args.variant)[2].torch_threads)
    cuda = torch.cuda.is_available()
    if world > 1:
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    device = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local)
    try:
        make_run(args.variant, params, Paths.here(), rank=rank, world=world, device=device).train(progress=rank == 0)
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
