"""What pinned numerics cost: the pipeline's kernels timed unpinned (this CPU's own choice) and pinned
(params.yaml ``numerics``: ATen AVX2, MKL COMPATIBLE, oneDNN off), each in its own process, same run.

    .venv/bin/python bench/numerics.py [--threads 2] [--repeats 5]

Per configuration: log-mels of 16 binaural 10-s clips; one training step of the cpu-profile GRAM on 32
crops (forward + backward + AdamW); the same for the cpu profile's Mamba encoder alone (42 tokens), and that
step with its causal depthwise conv run as ``nn.Conv1d`` (what it was before: with oneDNN off torch runs
one convolution per channel); timestamp embeddings of 16 4-s clips through the HEAR API; one MLP
probe of the cpu grid (200 full-batch epochs, 600 x 128) and the ridge path of the linear grid (6
penalties, one float64 SVD). Medians of ``--repeats`` after one warm-up; the ratio pinned / unpinned is
the slowdown (> 1: pinned is slower). The configurations alternate repeat by repeat.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(repeats: int) -> dict:
    import gramlib  # noqa: F401
    import numpy as np
    import torch

    from gramlib.core import config, numerics
    from gramlib.eval import probes
    from gramlib.model import hear, mamba
    from gramlib.eval.probe_data import SplitData

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    params = config.load_params(ROOT / "params.yaml", profile="cpu")
    embedder = hear.random_gram(params)
    gen = torch.Generator().manual_seed(0)
    clips, short = torch.randn(16, 2, 320000, generator=gen), torch.randn(16, 2, 128000, generator=gen)
    crops = embedder.extractor(clips[:, :, :64000])[..., :200, :].repeat(2, 1, 1, 1)
    model = embedder.model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((600, 128)).astype(np.float32), rng.integers(0, 8, 600)
    train, valid = SplitData(x[:400], y[:400], [str(i) for i in range(400)]), SplitData(x[400:], y[400:], [
        str(i) for i in range(400, 600)])
    head, cfg = probes.Head("multiclass"), config.EvaluateConfig(probe_grid="cpu", patience_checks=1000)

    def step():
        loss = model(crops, generator=torch.Generator().manual_seed(0)).loss
        optim.zero_grad()
        loss.backward()
        optim.step()

    torch.manual_seed(0)
    encoder = mamba.MambaEncoder(config.resolve_variant(params, "mamba")[1])
    tokens = torch.randn(32, 42, encoder.norm.weight.shape[0], generator=gen)
    enc_optim = torch.optim.AdamW(encoder.parameters(), lr=1e-4)

    def mamba_step():
        enc_optim.zero_grad()
        encoder(tokens).square().mean().backward()
        enc_optim.step()

    def as_conv1d(x, weight, bias):  # the previous code path, for the record
        length = x.shape[1]
        out = torch.nn.functional.conv1d(x.transpose(1, 2), weight, bias, padding=weight.shape[-1] - 1,
                                         groups=weight.shape[0])
        return out[..., :length].transpose(1, 2)

    def mamba_step_conv1d():
        fast, mamba.causal_depthwise_conv = mamba.causal_depthwise_conv, as_conv1d
        try:
            mamba_step()
        finally:
            mamba.causal_depthwise_conv = fast

    def embed():
        with torch.no_grad():
            embedder.timestamp_embeddings(short)

    def logmel():
        with torch.no_grad():
            embedder.extractor(clips)

    jobs = {"log-mels (16 x 10 s)": logmel, "GRAM train step (32 crops)": step,
            "Mamba encoder step (32 x 42)": mamba_step, "  same, conv as nn.Conv1d": mamba_step_conv1d,
            "embeddings (16 x 4 s)": embed,
            "MLP probe, 200 epochs": lambda: probes.train_probe(probes.probe_grid("cpu")[0], train, valid, head,
                                                                "top1_acc", list("abcdefgh"), cfg, 0, []),
            "ridge path, 6 penalties": lambda: probes.ridge_path(x[:400], head.ridge_target(y[:400], 8),
                                                                 probes.RIDGE_ALPHAS)}
    times = {}
    for name, fn in jobs.items():
        fn()
        runs = []
        for _ in range(1 if name.startswith("  same") else repeats):  # the old path is slow: once
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        times[name] = statistics.median(runs)
    return {"settings": numerics.describe(), "times": times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.repeats)))
        return 0
    sys.path.insert(0, str(ROOT))
    from gramlib.core import config, numerics

    base = {k: v for k, v in os.environ.items()
            if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "GRAM_PINNED")}
    base.update({v: str(args.threads) for v in numerics.THREAD_VARS})
    pinned = dict(base, **numerics.environment(config.section(config.load_params(ROOT / "params.yaml"), "numerics"),
                                               args.threads))
    results: dict[str, list[dict]] = {"unpinned": [], "pinned": []}
    for _ in range(2):  # alternate the two configurations, twice
        for name, env in (("unpinned", base), ("pinned", pinned)):
            done = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(args.repeats)], env=env,
                                  capture_output=True, text=True, check=True, cwd=ROOT)
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    s_un, s_pin = results["unpinned"][0]["settings"], results["pinned"][0]["settings"]
    print(f"{s_un['cpu']}, {args.threads} threads, torch {s_un['torch']}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"unpinned: {s_un['capability']} kernels, oneDNN {'on' if s_un['onednn'] else 'off'}, MKL_CBWR unset")
    print(f"pinned:   {s_pin['capability']} kernels, oneDNN {'on' if s_pin['onednn'] else 'off'}, "
          f"MKL_CBWR={s_pin['MKL_CBWR']}")
    print(f"{'kernel':<28}{'unpinned s':>12}{'pinned s':>12}{'pinned/unpinned':>17}")
    for job in results["unpinned"][0]["times"]:
        un = min(r["times"][job] for r in results["unpinned"])
        pin = min(r["times"][job] for r in results["pinned"])
        print(f"{job:<28}{un:>12.4f}{pin:>12.4f}{pin / un:>17.2f}")
    print("(each figure: the lower of two processes' medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
