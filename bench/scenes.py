"""Scene-mixing throughput: the batched torch mixer against a per-example scipy loop, same run.

    .venv/bin/python bench/mixer.py [--batch 8] [--reps 3] [--rooms 2]

10-s scenes at 32 kHz, binaural (2 ch) and FOA (4 ch), 1 and 5 noise sources, RIRs of 96,000 taps
(3 s, the paper) and 32,000 taps (1 s, the cpu profile), 1 torch thread. Prints scenes per second,
the real-time factor (seconds of scene audio mixed per second of one core) and batched / loop.
Then seconds per room for each RIR format at the cpu and paper room settings.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.signal import fftconvolve  # noqa: E402

from _memory import peak_memory  # noqa: E402  (bench/ is on sys.path when a bench script runs)
from gramlib.scenes import mixer  # noqa: E402

RATE_HZ = 32000
SCENE_S = 10.0


def synthetic_batch(rng, batch: int, n_ch: int, n_noise: int, n_taps: int):
    """Random sources/noises and exponentially decaying RIRs (the cost does not depend on content)."""
    n = int(SCENE_S * RATE_HZ)
    decay = np.exp(-np.arange(n_taps) / (0.1 * RATE_HZ)).astype(np.float32)
    return dict(sources=rng.standard_normal((batch, n), dtype=np.float32),
                source_rirs=rng.standard_normal((batch, n_ch, n_taps), dtype=np.float32) * decay,
                noises=rng.standard_normal((batch, n), dtype=np.float32),
                noise_rirs=rng.standard_normal((batch, n_noise, n_ch, n_taps), dtype=np.float32) * decay,
                snr_db=rng.uniform(5, 40, batch).astype(np.float32), dry=np.zeros(batch, dtype=bool))


def loop_mix(sources, source_rirs, noises, noise_rirs, snr_db, dry):
    """The straightforward reference: one scipy fftconvolve per channel and per noise source."""
    out = []
    for b in range(len(sources)):
        n = sources.shape[-1]
        target = np.stack([fftconvolve(sources[b], h)[:n] for h in source_rirs[b]])
        noise = np.zeros_like(target)
        for rirs in noise_rirs[b]:
            noise += np.stack([fftconvolve(noises[b], h)[:n] for h in rirs])
        gain = np.sqrt(np.sum(target ** 2) / np.sum(noise ** 2) * 10 ** (-snr_db[b] / 10))
        out.append(target + gain * noise)
    return np.stack(out)


def timed(fn, reps: int) -> float:
    """Best CPU seconds of this process over ``reps`` runs (one thread: CPU time = core time).

    CPU time, not wall time, because the machine is shared: waiting for a core is not our cost.
    """
    fn()  # warm-up (FFT plans, buffers)
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def bench_mixing(batch: int, reps: int) -> None:
    rng = np.random.default_rng(0)
    print(f"mixing {SCENE_S:.0f}-s scenes at {RATE_HZ} Hz, batch {batch}, torch threads "
          f"{torch.get_num_threads()}, best of {reps}; sc/s = scenes per CPU-second, RTF = scene seconds "
          "per CPU-second (per core)")
    print(f"{'format':9s} {'noise':>5s} {'rir taps':>8s} | {'torch sc/s':>10s} {'RTF':>7s} | "
          f"{'loop sc/s':>9s} {'RTF':>6s} | {'ratio':>5s} | {'buffers MB':>10s}")
    for n_taps in (96000, 32000):
        for fmt in ("binaural", "foa"):
            for n_noise in (1, 5):
                data = synthetic_batch(rng, batch, mixer.FORMAT_CHANNELS[fmt], n_noise, n_taps)
                tensors = {k: torch.from_numpy(v) for k, v in data.items()}
                t_torch = timed(lambda: mixer.mix_batch(**tensors), reps)
                t_loop = timed(lambda: loop_mix(**data), max(1, reps - 1))
                sps_t, sps_l = batch / t_torch, batch / t_loop
                print(f"{fmt:9s} {n_noise:5d} {n_taps:8d} | {sps_t:10.2f} {sps_t * SCENE_S:7.1f} | "
                      f"{sps_l:9.2f} {sps_l * SCENE_S:6.1f} | {t_loop / t_torch:5.2f} | "
                      f"{workspace_mb(batch, tensors['source_rirs'].shape[1], n_taps):10.0f}")


def workspace_mb(batch: int, n_ch: int, n_taps: int) -> float:
    """Size of the FFT buffers the mixer allocated (and reuses) for this shape."""
    n_samples = int(SCENE_S * RATE_HZ)
    ws = mixer._workspace(min(mixer.CHUNK_ROWS, batch), n_ch, n_taps, n_samples,
                           mixer.fft_length(n_samples + n_taps - 1), torch.device("cpu"))
    return sum(t.numel() * t.element_size() for t in ws.values()) / 2**20


def bench_rooms(n_rooms: int) -> None:
    from gramlib.core.config import RoomsConfig
    from gramlib.scenes.hrtf import load_kemar
    from gramlib.scenes.rooms import render_room, sample_placement, sample_room

    load_kemar(RATE_HZ)
    for name, cfg in (("cpu", RoomsConfig()), ("paper", RoomsConfig(sets_per_room=10, max_order=20, rir_s=3.0))):
        totals, rng = {}, np.random.default_rng(1)
        for r in range(n_rooms):
            room = sample_room(rng, cfg, f"bench-{r}", "train")
            placements = [sample_placement(rng, room, cfg) for _ in range(cfg.sets_per_room)]
            _, sets, timing = render_room(room, placements, max_order=cfg.max_order,
                                          rir_samples=int(cfg.rir_s * RATE_HZ), sample_rate_hz=RATE_HZ, seed=r)
            totals = {k: totals.get(k, 0.0) + v for k, v in timing.items()}
        n_rirs = sum(1 + len(s.placement.noises_m) for s in sets)
        per = ", ".join(f"{k} {v / n_rooms:.3f}" for k, v in totals.items())
        print(f"rooms ({name}: {cfg.sets_per_room} sets/room, max_order {cfg.max_order}, {cfg.rir_s} s RIRs, "
              f"~{n_rirs} RIRs/format/room): seconds per room: {per}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rooms", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench_mixing(args.batch, args.reps)
    bench_rooms(args.rooms)
    print(peak_memory())


if __name__ == "__main__":
    main()
