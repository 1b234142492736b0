"""Pinned CPU numerics: the same seed gives the same bits whatever x86-64 CPU (with AVX2) runs it.

Why: torch's CPU kernels are chosen per machine. ATen picks AVX-512 or AVX2 code by what the CPU has;
MKL (BLAS, LAPACK and the FFT behind ``torch.stft``) picks code by CPU vendor and model; oneDNN's JIT
convolutions choose their blocking from the cache sizes; and every multi-threaded reduction splits its
work by the thread count, which torch takes from the number of cores. Each choice moves the last bits of
a float32 result (log-mels, training steps, embeddings, probes), and the probes amplify those bits into
visible score differences. README "Reproducibility" has the measurements.

What is pinned (the ``numerics`` section of params.yaml; :class:`gramlib.core.config.NumericsConfig`):

* ``ATEN_CPU_CAPABILITY`` = ``cpu_capability`` (``avx2``): ATen's vectorized kernels (Sleef math,
  reductions, softmax, LayerNorm ...) run the AVX2 build on every CPU, AVX-512 ones included.
* ``MKL_CBWR`` = ``mkl_cbwr`` (``COMPATIBLE``): MKL's conditional numerical reproducibility with the one
  code branch Intel documents as giving the same results on Intel *and* non-Intel CPUs (its ``AVX2``
  branch falls back to per-machine dispatch on AMD). It covers GEMM, LAPACK and the DFT.
* ``onednn: false``: ``torch.backends.mkldnn.enabled = False``; convolutions then use ATen's own
  im2col + GEMM path (MKL, pinned above). ``ONEDNN_MAX_CPU_ISA`` = AVX2 for anything left.
* ``OPENBLAS_CORETYPE`` = Haswell: numpy's and scipy's OpenBLAS uses its AVX2 kernels everywhere.
* Threads: ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` and ``torch.set_num_threads``
  from ``numerics.threads[stage]`` (pre-training: ``train.torch_threads``), never from the machine.
  The bits depend on the thread count (measured), not on how many cores the machine has or how busy
  they are.
* ``torch.use_deterministic_algorithms(deterministic)``.

The environment variables must be set before torch loads its kernels, so the stage runner
(:mod:`gramlib.core.stage`, the command of every dvc.yaml stage) sets them before it starts the notebook's
kernel, and sets ``GRAM_PINNED=1``; ``import gramlib`` in such a process then calls :func:`pin_process`,
which applies the torch-level settings and checks that torch really runs the pinned capability.
Not pinned: numpy's own SIMD loops (NPY dispatch, used by the data stages, which reproduce across
machines as measured) and anything on a GPU.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

PINNED_FLAG = "GRAM_PINNED"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
STAGES = ("sources", "rooms", "nathear", "pretrain", "evaluate", "baselines", "seld", "figures")


class NumericsError(RuntimeError):
    """The process does not run the pinned numerics it was asked to."""


def stage_threads(params: dict, stage: str, variant: str | None = None) -> int:
    """The thread count of ``stage`` (pre-training: the variant's ``train.torch_threads``)."""
    from . import config  # config imports nothing of numerics; kept local so pinning imports no more than it needs

    if stage not in STAGES:
        raise config.ConfigError(f"unknown stage {stage!r}; accepted: {list(STAGES)}")
    if stage == "pretrain":
        if variant is None:
            raise config.ConfigError("stage 'pretrain' needs its variant to know its thread count")
        return config.resolve_variant(params, variant)[2].torch_threads
    threads = config.section(params, "numerics").threads
    if stage not in threads:
        raise config.ConfigError(f"numerics.threads has no entry for stage {stage!r}; it names {sorted(threads)}")
    if threads[stage] < 1:
        raise config.ConfigError(f"numerics.threads.{stage} = {threads[stage]} must be >= 1")
    return int(threads[stage])


def environment(cfg, threads: int) -> dict[str, str]:
    """The environment variables that pin the numerics of a process with ``threads`` threads."""
    if threads < 1:
        raise ValueError(f"thread count must be >= 1; got {threads}")
    env = {"ATEN_CPU_CAPABILITY": cfg.cpu_capability, "MKL_CBWR": cfg.mkl_cbwr,
           "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
           "GRAM_ONEDNN": "1" if cfg.onednn else "0", "GRAM_DETERMINISTIC": "1" if cfg.deterministic else "0",
           PINNED_FLAG: "1"}
    env.update({var: str(threads) for var in THREAD_VARS})
    return env


def apply_environment(env: dict[str, str]) -> None:
    """Set ``env`` in this process; refuses once torch is loaded (its kernels are chosen already)."""
    if "torch" in sys.modules and os.environ.get("ATEN_CPU_CAPABILITY") != env.get("ATEN_CPU_CAPABILITY"):
        raise NumericsError("torch was imported before the numerics were pinned: set the environment of "
                            "gramlib.core.numerics.environment() before Python starts, or before importing torch")
    os.environ.update(env)


def pin_process() -> None:
    """Apply the torch-level settings named by the pinned environment, and check they hold."""
    import torch  # torch loads only after the environment is pinned

    threads = int(os.environ["OMP_NUM_THREADS"])
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = os.environ.get("GRAM_ONEDNN", "0") == "1"
    torch.use_deterministic_algorithms(os.environ.get("GRAM_DETERMINISTIC", "1") == "1", warn_only=True)
    want = os.environ.get("ATEN_CPU_CAPABILITY", "").upper()
    have = torch.backends.cpu.get_cpu_capability()
    if want and want != "DEFAULT" and have != want:
        raise NumericsError(f"torch runs {have} kernels, not the pinned {want}: ATEN_CPU_CAPABILITY must be set "
                            "before torch is imported (and the CPU must support it; AVX2 is the minimum accepted)")


def describe() -> dict:
    """What this process runs: CPU model, kernels, threads and the pinning variables (for results files)."""
    import torch  # torch loads only after the environment is pinned

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "onednn": bool(torch.backends.mkldnn.enabled), "pinned": os.environ.get(PINNED_FLAG) == "1",
            **{k: os.environ.get(k) for k in ("MKL_CBWR", "ATEN_CPU_CAPABILITY")}}


def main(argv: list[str] | None = None) -> int:
    """``python -m gramlib.core.numerics STAGE [VARIANT]``: print the pinned environment as shell assignments."""

    from . import config  # config imports nothing of numerics; kept local so pinning imports no more than it needs

    parser = argparse.ArgumentParser(prog="python -m gramlib.core.numerics", description=main.__doc__)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("variant", nargs="?")
    parser.add_argument("--profile")
    args = parser.parse_args(argv)
    params = config.load_params(profile=args.profile)
    env = environment(config.section(params, "numerics"), stage_threads(params, args.stage, args.variant))
    print(" ".join(f"{k}={v}" for k, v in env.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
