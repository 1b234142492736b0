"""MAE training throughput on CPU: GRAM's blocks against plain nn.TransformerEncoder layers, same run.

    .venv/bin/python bench/model.py [--sizes tiny base] [--steps 5] [--base-steps 2] [--threads 1]

One training step = forward + backward + AdamW on a batch of normalised binaural crops (2 x 200 x 128,
frame patching: 200 tokens, 80 % masked). Sizes come from params.yaml: ``tiny`` is the cpu profile's
model (128-d x 4, 4 heads; decoder 64-d x 1, 8 heads), ``base`` the paper profile's (768 x 12;
decoder 512 x 8). Per size it times

* ``gram-mw``      -- GRAM as trained: our pre-LN blocks + the multi-window decoder;
* ``gram-global``  -- the same with every decoder head global (no mask, plain SDPA);
* ``torch-global`` -- the reference: nn.TransformerEncoderLayer (pre-LN, GELU) encoder and decoder of
  the same widths and depths, global attention, in the same MAE wrapper (patching, masking, loss);
* ``mamba-mw``     -- the parameter-matched bidirectional Mamba-2 encoder + the multi-window decoder;
* ``mamba-uni-mw`` -- the same, unidirectional (as the authors' GRAM-M; same parameters);

and prints steps/s, samples/s and the ratios. The models take turns step by step, so that a busy
machine slows them alike. Features are not included (precomputed in training).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import statistics
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "base"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (tiny)")
    parser.add_argument("--base-steps", type=int, default=2, help="timed steps per model (base)")
    parser.add_argument("--batch", type=int, default=32, help="crops per step (tiny); the cpu profile's 2 x 16")
    parser.add_argument("--base-batch", type=int, default=8, help="crops per step (base)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads if ARGS else 1)

import torch  # noqa: E402
from torch import nn  # noqa: E402

from gramlib.core.config import load_params, section  # noqa: E402
from gramlib.model.gram import GRAM  # noqa: E402

PROFILE = {"tiny": "cpu", "base": "paper"}
CHANNELS = 2  # binaural


def torch_reference(model: GRAM) -> GRAM:
    """``model`` (global decoder) with its encoder and decoder blocks replaced by nn.TransformerEncoderLayer."""
    cfg = model.cfg

    def layer(dim, heads):
        return nn.TransformerEncoderLayer(dim, heads, int(dim * cfg.mlp_ratio), dropout=0.0, activation="gelu",
                                          batch_first=True, norm_first=True)

    ref = copy.deepcopy(model)
    ref.encoder = nn.TransformerEncoder(layer(cfg.embed_dim, cfg.heads), cfg.depth, norm=nn.LayerNorm(cfg.embed_dim),
                                        enable_nested_tensor=False)
    ref.decoder.blocks = nn.ModuleList(layer(cfg.decoder_dim, cfg.decoder_heads) for _ in range(cfg.decoder_depth))
    return ref


def models(size: str) -> dict[str, GRAM]:
    params = load_params(profile=PROFILE[size])
    cfg, features = section(params, "model"), section(params, "features")
    global_cfg = dataclasses.replace(cfg, decoder_windows=[0] * cfg.decoder_heads)
    torch.manual_seed(0)
    built = {"gram-mw": GRAM(cfg, features, CHANNELS), "gram-global": GRAM(global_cfg, features, CHANNELS)}
    built["torch-global"] = torch_reference(built["gram-global"])
    built["mamba-mw"] = GRAM(dataclasses.replace(cfg, encoder="mamba"), features, CHANNELS)
    built["mamba-uni-mw"] = GRAM(dataclasses.replace(cfg, encoder="mamba", mamba_bidirectional=False), features,
                                 CHANNELS)
    return built


def time_steps(built: dict[str, GRAM], batch: int, steps: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per training step (forward + backward + AdamW) of each model.

    The models take turns step by step, so a change in the machine's load hits them all alike.
    """
    f = next(iter(built.values())).features_cfg
    x = torch.randn(batch, CHANNELS, f.crop_frames, f.n_mels)
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in built.items()}
    gen = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {name: [] for name in built}
    for i in range(warmup + steps):
        for name, model in built.items():
            start = time.perf_counter()
            loss = model(x, generator=gen).loss
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for size in ARGS.sizes:
        batch, steps = (ARGS.batch, ARGS.steps) if size == "tiny" else (ARGS.base_batch, ARGS.base_steps)
        built = models(size)
        print(f"\n{size} ({PROFILE[size]} profile), batch {batch} crops, median of {steps} steps after 1 warm-up")
        print(f"{'model':<14}{'params':>12}{'enc params':>12}{'s/step':>9}{'steps/s':>9}{'samples/s':>11}")
        seconds = time_steps(built, batch, steps)
        for name, model in built.items():
            n_enc = sum(p.numel() for p in model.encoder.parameters())
            print(f"{name:<14}{model.n_params():>12,}{n_enc:>12,}{seconds[name]:>9.3f}"
                  f"{1 / seconds[name]:>9.2f}{batch / seconds[name]:>11.1f}", flush=True)
        depth = len(built["mamba-mw"].encoder.layers)
        print(f"speed ratios (>1: the first is faster); mamba encoder depth {depth} (parameter-matched)")
        for a, b in [("gram-global", "torch-global"), ("gram-mw", "torch-global"), ("gram-mw", "gram-global"),
                     ("mamba-mw", "gram-mw"), ("mamba-uni-mw", "gram-mw")]:
            print(f"  {a} / {b}: {seconds[b] / seconds[a]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
