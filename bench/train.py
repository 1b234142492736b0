"""Pre-training throughput: the whole loop against the bare model step, for the cpu and paper configs.

    .venv/bin/python bench/train.py [--steps 20] [--threads 2] [--cpu-accel]

For each config it measures, in the same run:
* ``loop``: :class:`gramlib.train.loop.Run` end to end -- scenes mixed online in a DataLoader worker,
  log-mels, in-batch crops, masks, forward, backward, AdamW -- on this project's data (``data/`` from
  ``dvc repro``; without it, a smoke-size corpus and RIR bank are built in a temporary folder);
* ``model``: the reference, the same model's forward + backward + AdamW on ready-made random crops
  of the same batch (no mixing, no features): the ceiling the loop can reach.
It prints 2-s crops per second for both and their ratio (how much of the model's speed the data
pipeline keeps). On a GPU it also times the paper config with bf16 autocast and torch.compile; the
paper's implied rate is ~5,300 crops/s on one H100 (500k steps x 1,536 crops in 40 GPU-hours).
``--cpu-accel`` (CPU only, about 2 minutes more) runs that code path on the cpu config's model here:
bf16 autocast, and torch.compile's inductor backend (C++ code generation; needs a C++ compiler),
each against fp32 eager in the same run.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from _memory import peak_memory  # noqa: E402  (bench/ is on sys.path when a bench script runs)
from gramlib.core import config
from gramlib.corpus import sources
from gramlib.scenes import rirbank
from gramlib.train import launch
from gramlib.model.masking import make_mask
from gramlib.core.paths import Paths
from gramlib.model.gram import build_model
from gramlib.train.loop import Run, make_optimizer

PAPER_CROPS_PER_S = 500_000 * 1536 / (40 * 3600)


def project_data(root: Path, params: dict) -> Paths:
    paths = Paths(root)
    if (paths.sources / "pretrain" / "manifest.csv").is_file() and (paths.rooms / "train" / "manifest.csv").is_file():
        return paths
    tmp = Paths(Path(tempfile.mkdtemp(prefix="bench-train-")))
    smoke = config.load_params(root / "params.yaml", "smoke")
    sources.build(config.section(smoke, "sources"), tmp.sources, tmp.tasks, seed=0)
    rirbank.build_bank(config.section(smoke, "rooms"), tmp.rooms, "train", seed=0)
    print(f"(no project data: built a smoke-size corpus in {tmp.root})")
    return tmp


def time_loop(params: dict, paths: Paths, model_cfg, train_cfg, steps: int, device: str) -> float:
    out = Path(tempfile.mkdtemp(prefix="bench-run-"))
    run = Run(out, fmt="binaural", model_cfg=model_cfg, train_cfg=train_cfg,
              features_cfg=config.section(params, "features"), data=launch.train_data(paths, "binaural", params),
              steps=steps + 2, seed=0, device=device, live_dir=out / "live")
    run.steps = 2  # warm-up: worker start, first allocations
    run.train(progress=False)
    run.steps = steps + 2
    t0 = time.perf_counter()
    run.train(progress=False)
    return steps * train_cfg.batch_clips * train_cfg.n_crops / (time.perf_counter() - t0)


def time_model(params: dict, model_cfg, batch: int, steps: int, device: str, *, bf16=False, compile=False) -> float:
    features = config.section(params, "features")
    _, model = build_model("binaural", model_cfg, features, seed=0)
    model.to(device)
    net = torch.compile(model) if compile else model
    opt = make_optimizer(model, config.section(params, "train"))
    x = torch.randn(batch, 2, features.crop_frames, features.n_mels, device=device)
    mask = make_mask(batch, model.n_patches, model_cfg.mask_ratio, torch.Generator().manual_seed(0),
                     strategy=model_cfg.masking, grid=model.grid, device=device)

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = net(x, mask=mask).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2 if not compile else 4):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu-accel", action="store_true",
                        help="on CPU: also time bf16 autocast and torch.compile on the cpu config's model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(__file__).resolve().parents[1]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {device} ({torch.cuda.get_device_name() if device == 'cuda' else f'{args.threads} torch threads'})")
    cpu = config.load_params(root / "params.yaml", "cpu")
    paths = project_data(root, cpu)
    model_cfg = config.section(cpu, "model")
    train_cfg = dataclasses.replace(config.section(cpu, "train"), torch_threads=args.threads,
                                    checkpoint_every=10**9, log_every=10**9)
    batch = train_cfg.batch_clips * train_cfg.n_crops
    loop = time_loop(cpu, paths, model_cfg, train_cfg, args.steps, device)
    bare = time_model(cpu, model_cfg, batch, args.steps, device)
    print(f"cpu config   ({batch} crops/step): loop {loop:8.1f} crops/s | model only {bare:8.1f} crops/s | "
          f"loop/model = {loop / bare:.2f}")
    print(f"  after the cpu config: {peak_memory('largest finished worker')}")
    if args.cpu_accel and device == "cpu":
        bf16 = time_model(cpu, model_cfg, batch, args.steps, device, bf16=True)
        compiled = time_model(cpu, model_cfg, batch, args.steps, device, compile=True)
        print(f"cpu config, model only: bf16 autocast {bf16:8.1f} crops/s = {bf16 / bare:.2f} x fp32 | "
              f"torch.compile (inductor) {compiled:8.1f} crops/s = {compiled / bare:.2f} x fp32 eager")
    paper = config.load_params(root / "params.yaml", "paper")
    paper_model = config.section(paper, "model")
    small = 8 if device == "cpu" else 96 * 16
    steps = 3 if device == "cpu" else args.steps
    fp32 = time_model(paper, paper_model, small, steps, device)
    print(f"paper config (ViT-B, {small} crops/step, fp32): model only {fp32:8.1f} crops/s "
          f"(paper's implied rate: {PAPER_CROPS_PER_S:.0f} crops/s on an H100)")
    print(f"  after the paper config: {peak_memory('largest finished worker')}")
    if device == "cuda":
        print(f"  CUDA peak allocated: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        fast = time_model(paper, paper_model, small, steps, device, bf16=True, compile=True)
        print(f"paper config, bf16 + torch.compile: {fast:8.1f} crops/s = {fast / PAPER_CROPS_PER_S:.2f} x the "
              f"paper's rate; {fast / fp32:.2f} x fp32")


if __name__ == "__main__":
    main()
