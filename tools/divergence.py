"""Where do two CPUs' numbers part? Runs one baseline's evaluation of one task in two processes with
different kernel environments and reports the first array that differs and how the difference grows.

    .venv/bin/python tools/divergence.py [--model naive] [--suite nathear-foa] [--task events-loc]
        [--probe-grid cpu] [--a "ENV=..."] [--b "ENV=..."]

Defaults compare this CPU's own kernels (A: no pinning; AVX-512 here) with the AVX2 kernels another CPU
would run (B: ATEN_CPU_CAPABILITY=avx2), both unpinned otherwise, at 2 threads: the situation of a fresh
clone on another machine before gramlib.core.numerics. Pass ``--pinned`` to run both under the pinned
settings of params.yaml (B then differs only in what the pinning is meant to neutralise: MKL told the
CPU has AVX2 only, one core available). Needs data/ (``dvc repro nathear``).

Arrays compared, in pipeline order: the log-mel frames of the first 8 clips, every embedding, the probe
weights after each epoch, the validation score at each check, the early-stopping epoch, the test score.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def child(args) -> None:
    import copy
    import dataclasses

    import gramlib  # noqa: F401
    import torch

    from gramlib.core import config
    from gramlib.eval import baselines, evaluation, probes
    from gramlib.core.paths import Paths
    from gramlib.core.sourcefiles import tasks_source
    from gramlib.core.tasks import read_task

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    params = config.load_params(ROOT / "params.yaml")
    cfg = dataclasses.replace(config.section(params, "evaluate"), probe_grid=args.probe_grid)
    paths = Paths(ROOT)
    dirs = evaluation.suites(tasks_source(paths.sources), paths.nathear)
    task = read_task(dirs[args.suite] / args.task)
    served = baselines.baseline(args.model, params)
    model = served.model
    audio = torch.from_numpy(np.stack([task.load("train", f) for f in task.files("train")[:8]]))
    audio, _ = evaluation.adapt(audio, served.audio_channels)
    with torch.no_grad():
        frames = model.extractor(audio) if args.model == "random-gram" else model.frame_features(
            baselines.as_batch(audio, model.channels))
    out = {"logmel_or_input_features": frames.numpy()}
    embeddings, stamps, _ = evaluation.embed_task(served, task, cfg)
    out["embeddings"] = np.stack([embeddings[s][f] for s in sorted(embeddings) for f in sorted(embeddings[s])])
    # the probe of split 0, grid point 0, with its weights after every epoch
    kind, names, vocab = probes.check_task(task.metadata, task.vocabulary)
    labels = {s: task.labels(s) for s in task.splits}
    data = {s: probes.encode_split(s, embeddings, labels, kind, vocab, stamps) for s in task.metadata["splits"]}
    train, valid, test = probes._fold_data(data, probes.data_splits(task.metadata)[0], cfg.standardize_inputs)
    head = probes._head(kind, train)
    conf, seed = probes.probe_grid(cfg.probe_grid)[0], cfg.probe_seed
    post = probes.postprocessing_grid(task.metadata) if kind == "event" else []
    weights, checks = [], []
    if args.probe_grid == "linear":
        fits = probes.fit_linear(probes.probe_grid("linear"), train, valid, head, names[0], vocab, post)
        best = 0
        for i, f in enumerate(fits):
            best = i if probes._better(f.valid_score, fits[best].valid_score, names[0]) else best
        weights = [f.model.weight.ravel() for f in fits]
        checks = [f.valid_score for f in fits]
        chosen, model_fit = best, fits[best].model
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mlp = probes.build_probe(train.x.shape[1], head.n_out(vocab), conf)
            optim = torch.optim.Adam(mlp.parameters(), lr=conf["lr"])
            gen = torch.Generator().manual_seed(seed)
            x, y = torch.from_numpy(train.x), head.target(train.y)
            best_score, chosen, state, wait = None, -1, None, 0
            for epoch in range(cfg.max_epochs):
                mlp.train()
                for idx in probes._batches(len(x), conf["batch_size"], gen):
                    optim.zero_grad()
                    head.loss(mlp(x[idx]), y[idx]).backward()
                    optim.step()
                weights.append(torch.cat([p.detach().flatten() for p in mlp.parameters()]).numpy().copy())
                if (epoch + 1) % cfg.check_every:
                    continue
                score = probes.evaluate_split(head, mlp, valid, [names[0]], vocab, post)[0][names[0]]
                checks.append(score)
                if best_score is None or probes._better(score, best_score, names[0]):
                    best_score, chosen, state, wait = score, epoch, copy.deepcopy(mlp.state_dict()), 0
                elif (wait := wait + 1) >= cfg.patience_checks:
                    break
            mlp.load_state_dict(state)
            model_fit = mlp
    test_score = probes.evaluate_split(head, model_fit, test, [names[0]], vocab, post if kind == "event" else [])[0]
    out.update(probe_weights=np.stack(weights), valid_checks=np.array(checks), selected=np.array(chosen),
               test_score=np.array(test_score[names[0]]))
    np.savez(args.out, **out)


def compare(a: dict, b: dict, label_a: str, label_b: str) -> list[str]:
    lines = [f"A: {label_a}", f"B: {label_b}"]
    first = None
    for key in ("logmel_or_input_features", "embeddings"):
        diff = np.abs(a[key].astype(np.float64) - b[key].astype(np.float64))
        rel = diff.max() / max(np.abs(a[key]).max(), 1e-30)
        n = int((diff > 0).sum())
        lines.append(f"{key:<26} {n:>9} of {diff.size} values differ; max |A-B| {diff.max():.3g} (relative {rel:.3g})")
        if n and first is None:
            first = key
    wa, wb = a["probe_weights"], b["probe_weights"]
    n = min(len(wa), len(wb))
    growth = [float(np.linalg.norm(wa[i] - wb[i]) / max(np.linalg.norm(wa[i]), 1e-30)) for i in range(n)]
    marks = sorted({0, 1, 4, 9, 19, 49, 99, n - 1} & set(range(n)))
    lines.append("probe weights, relative L2 distance after epoch (or grid point): "
                 + ", ".join(f"{i + 1}: {growth[i]:.2g}" for i in marks))
    if first is None and any(growth):
        first = "probe_weights"
    ca, cb = a["valid_checks"], b["valid_checks"]
    m = min(len(ca), len(cb))
    differ = int(np.sum(ca[:m] != cb[:m]))
    lines.append(f"validation checks: {len(ca)} vs {len(cb)}; {differ} of {m} shared checks score differently")
    lines.append(f"selected epoch (grid point): {int(a['selected'])} vs {int(b['selected'])}")
    lines.append(f"test score: {float(a['test_score']):.6g} vs {float(b['test_score']):.6g}")
    lines.append(f"first array that differs: {first or 'none'}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="naive", choices=["naive", "random-gram"])
    parser.add_argument("--suite", default="nathear-foa")
    parser.add_argument("--task", default="events-loc")
    parser.add_argument("--probe-grid", default="cpu")
    parser.add_argument("--pinned", action="store_true")
    parser.add_argument("--a", default="", help="extra environment of run A, 'K=V K=V'")
    parser.add_argument("--b", default=None, help="extra environment of run B (default: see the module doc)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    base = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "GRAM_PINNED")}
    base.update(OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    prefix_b: list[str] = []
    if args.pinned:
        sys.path.insert(0, str(ROOT))
        from gramlib.core import config, numerics

        base.update(numerics.environment(config.section(config.load_params(ROOT / "params.yaml"), "numerics"), 2))
        extra_b = args.b if args.b is not None else "MKL_ENABLE_INSTRUCTIONS=AVX2"
        prefix_b = ["taskset", "-c", "0"]
    else:
        extra_b = args.b if args.b is not None else "ATEN_CPU_CAPABILITY=avx2"
    results, labels = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra, prefix in (("A", args.a, []), ("B", extra_b, prefix_b)):
            env = dict(base, **dict(kv.split("=", 1) for kv in extra.split()))
            out = Path(tmp) / f"{name}.npz"
            cmd = [*prefix, sys.executable, __file__, "--child", "--out", str(out), "--model", args.model,
                   "--suite", args.suite, "--task", args.task, "--probe-grid", args.probe_grid]
            subprocess.run(cmd, env=env, check=True, cwd=ROOT)
            results.append(dict(np.load(out)))
            labels.append(" ".join(prefix + [extra or "(no extra settings)"]) + (" [pinned]" if args.pinned else ""))
    print(f"{args.model} on {args.suite}/{args.task}, probe grid {args.probe_grid}, 2 threads")
    print("\n".join(compare(*results, *labels)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
