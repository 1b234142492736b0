"""Pre-training GRAM on naturalistic scenes mixed online.

One optimizer step = ``grad_accum`` micro-batches; a micro-batch = ``batch_clips`` 10-s scenes mixed
in a DataLoader worker (:mod:`gramlib.train.batches`), turned into log-mels in the main process and cut
into ``n_crops`` random 2-s crops each (in-batch sampling), so one mixed scene feeds ``n_crops``
examples.

Recipe (paper App. A and the authors' configs): AdamW (betas 0.9/0.95, weight decay 0.01, none on
norms, biases and tokens), linear warm-up then cosine decay to 0, gradient clipping (the paper gives
no value; we use 1.0), bf16 autocast and optional ``torch.compile`` on GPU. The run stops with
:class:`TrainingError` on a non-finite loss, checkpoints every ``checkpoint_every`` steps, and resumes
from the newest checkpoint: a run killed with SIGKILL and restarted ends at the same loss.

Multi-GPU: :mod:`gramlib.train.launch` starts ``torchrun`` with one process per device; each rank mixes
its slice of every micro-batch and DDP averages the gradients.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..core.config import FeaturesConfig, ModelConfig, TrainConfig
from ..model.checkpoint import save_checkpoint
from ..model.features import AUDIO_CHANNELS, pad_frames
from ..model.gram import build_model
from . import batches, trainstate
from .batches import TrainData, TrainingError



def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Linear warm-up to ``cfg.lr`` over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices only (not norms, biases, positions or tokens)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 and "token" not in name and "pos" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


class Run:
    """One pre-training run writing to ``out_dir`` (checkpoints/, dvclive/, model + config)."""

    def __init__(self, out_dir: Path, *, fmt: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
                 features_cfg: FeaturesConfig, data: TrainData, steps: int, seed: int,
                 rank: int = 0, world: int = 1, device: str | None = None,
                 live_dir: Path | None = None, meta: dict | None = None, accel_on_cpu: bool = False,
                 compile_backend: str = "inductor"):
        self.out_dir, self.fmt, self.cfg, self.steps, self.seed = Path(out_dir), fmt, train_cfg, steps, seed
        self.model_cfg, self.features_cfg, self.meta = model_cfg, features_cfg, meta or {}
        self.rank, self.world = rank, world
        self.live_dir = Path(live_dir) if live_dir else self.out_dir / "dvclive"
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # train.bf16 / train.compile act on CUDA; on a CPU they gain little (bench/train.py --cpu-accel)
        # and compiling takes a minute, so they apply there only when asked for (the tests do, with
        # compile_backend="aot_eager").
        self.accelerate = self.device.type == "cuda" or accel_on_cpu
        self.compile_backend = compile_backend
        self.extractor, self.model = build_model(fmt, model_cfg, features_cfg, seed)
        self.extractor.to(self.device)
        self.model.to(self.device)
        self.optimizer = make_optimizer(self.model, train_cfg)
        self.dataset = batches.SceneBatches(data, fmt, train_cfg, seed, rank=rank, world=world)
        self.ckpt_dir = self.out_dir / "checkpoints"
        for folder in (self.ckpt_dir, self.out_dir / "curve"):  # both exist, empty or not: dvc.yaml declares them
            folder.mkdir(parents=True, exist_ok=True)
        self.step = self._resume()
        self.net = self._wrap()

    # ---------------------------------------------------------------- setup
    def _resume(self) -> int:
        """Continue from the newest checkpoint of *this* configuration; a changed one starts afresh."""
        last = trainstate.latest(self.ckpt_dir)
        if last is None:
            return 0
        if trainstate.fingerprint_of(last) != self.fingerprint():
            print(f"{self.out_dir}: checkpoints were made with another configuration; starting from step 0")
            trainstate.clear(self.ckpt_dir)
            trainstate.clear(self.out_dir / "curve")
            return 0
        state = trainstate.load_state(last, self.model, self.optimizer)
        return int(state["step"])

    def fingerprint(self) -> str:
        """A hash of everything that shapes the run (not of bookkeeping like log or checkpoint intervals)."""

        cfg = self.config_dict()
        cfg["train"] = {k: v for k, v in cfg["train"].items()
                        if k not in ("checkpoint_every", "keep_checkpoints", "log_every", "num_workers", "torch_threads")}
        cfg.pop("profile", None)
        return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _wrap(self):
        net = self.model
        if self.world > 1:
            net = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.cfg.compile and self.accelerate:
            net = torch.compile(net, backend=self.compile_backend)
        return net

    def _autocast(self):
        if self.cfg.bf16 and self.accelerate:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- loop
    def micro_loss(self, batch: dict, step: int) -> torch.Tensor:
        """Loss of one micro-batch of mixed scenes (already scaled for accumulation)."""
        audio = batch["audio"].to(self.device, non_blocking=True)  # (B, A, S)
        with torch.no_grad():
            feats = self.extractor(audio)  # (B, C, T, F), fp32
            feats = self._pad(feats)
        x, mask = batches.crops_and_masks(feats, batch["index"], step, self.seed, n_crops=self.cfg.n_crops,
                                          crop_frames=self.features_cfg.crop_frames, model=self.model)
        with self._autocast():
            out = self.net(x, mask=mask)
        return out.loss.float() / self.cfg.grad_accum

    def _pad(self, feats: torch.Tensor) -> torch.Tensor:

        return pad_frames(feats, max(self.features_cfg.clip_frames, self.features_cfg.crop_frames))

    def train(self, progress: bool = True) -> dict:
        """Run from the current step to ``self.steps``; returns the training summary."""
        from tqdm.auto import tqdm  # tqdm.auto picks the notebook or terminal bar when the run starts

        live = self._live()
        accum = self.cfg.grad_accum
        data = batches.loader(self.dataset, self.step * accum, (self.steps - self.step) * accum,
                              self.cfg.num_workers)
        stream = iter(data)
        bar = tqdm(total=self.steps, initial=self.step, disable=not progress or self.rank, desc="pretrain",
                   unit="step", dynamic_ncols=True)
        t0, crops_done, last_loss, recent = time.perf_counter(), 0, float("nan"), []
        self.model.train()
        while self.step < self.steps:
            lr = lr_at(self.step, self.cfg, self.steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            total = 0.0
            for _ in range(accum):
                loss = self.micro_loss(next(stream), self.step)
                self._check(loss)
                loss.backward()
                total += loss.item()
            if self.world > 1:  # log the loss of the global batch, not of this rank's share
                total = _mean_over_ranks(total, self.device)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            last_loss = total
            crops_done += self.cfg.batch_clips * self.cfg.n_crops * accum
            rate = crops_done / max(1e-9, time.perf_counter() - t0)
            bar.update(1)
            bar.set_postfix(loss=f"{total:.4f}", lr=f"{lr:.2e}", crops_s=f"{rate:.0f}")
            recent.append(total)
            if self._log(live, recent, lr, rate):
                recent = []
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.steps:
                self._checkpoint()
            if self.step in self.curve_steps():
                self._snapshot()
        bar.close()
        return self._finish(live, last_loss, time.perf_counter() - t0)

    def _check(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            last = trainstate.latest(self.ckpt_dir)
            raise TrainingError(f"non-finite loss {loss.item()} at step {self.step} in {self.out_dir}; "
                                f"last good checkpoint: {last}. Lower train.lr or check the input data.")

    # ---------------------------------------------------------------- outputs
    def _live(self):
        if self.rank:
            return None
        from dvclive import Live  # DVCLive only when a run logs

        live = Live(str(self.live_dir), resume=self.step > 0, save_dvc_exp=False, dvcyaml=False,
                    report=None)
        _truncate_live(live, self.step)
        return live

    def _log(self, live, losses: list[float], lr: float, rate: float) -> bool:
        """Every ``log_every`` steps: the mean loss of the steps since the last log (single-batch losses of
        random scenes are noisy), the learning rate and the throughput. Returns whether it logged."""
        if self.step % self.cfg.log_every and self.step != self.steps:
            return False
        if live is not None:
            live.step = self.step
            live.log_metric("train/loss", sum(losses) / len(losses))
            live.log_metric("train/lr", lr)
            live.log_metric("train/crops_per_s", rate)
            live.make_summary()
        return True

    def _checkpoint(self) -> None:
        if self.rank == 0:
            trainstate.save_state(self.ckpt_dir, self.step, self.model, self.optimizer, config=self.config_dict(),
                                  keep=self.cfg.keep_checkpoints, extra={"fingerprint": self.fingerprint()})
        if self.world > 1:
            torch.distributed.barrier()

    def curve_steps(self) -> set[int]:
        """Steps whose weights are kept for a learning curve (``train.curve_points`` evenly spaced)."""
        n = self.cfg.curve_points
        return {round(self.steps * k / n) for k in range(1, n + 1)} if n else set()

    def _snapshot(self) -> None:

        if self.rank == 0:
            save_checkpoint(self.out_dir / "curve" / f"step-{self.step:07d}", self.model, config=self.config_dict())

    def config_dict(self) -> dict:
        return {"format": self.fmt, "in_channels": self.extractor.n_channels,
                "audio_channels": AUDIO_CHANNELS[self.fmt], "features": asdict(self.features_cfg),
                "model": asdict(self.model_cfg), "train": asdict(self.cfg), "seed": self.seed,
                "steps": self.steps, **self.meta}

    def _finish(self, live, loss: float, seconds: float) -> dict:

        summary = {"steps": self.steps, "final_loss": loss, "wall_s_this_session": seconds,
                   "scenes_seen": self.steps * self.cfg.batch_clips * self.cfg.grad_accum,
                   "crops_seen": self.steps * self.cfg.batch_clips * self.cfg.n_crops * self.cfg.grad_accum,
                   "device": _device_name(self.device), "processes": self.world,
                   "parameters": sum(p.numel() for p in self.model.parameters())}
        if self.rank == 0:
            save_checkpoint(self.out_dir, self.model, config=self.config_dict())
            prior = _read_json(self.out_dir / "train_summary.json")
            if math.isnan(loss) and prior.get("steps") == self.steps:  # no step was left: the finished run's figures
                summary.update(final_loss=prior.get("final_loss"), wall_s_this_session=0.0)
                seconds = 0.0
            summary["wall_s"] = seconds + (prior.get("wall_s", 0.0) if prior.get("steps", 0) < self.steps
                                           or seconds == 0.0 else 0)
            (self.out_dir / "train_summary.json").write_text(json.dumps(summary, indent=1))
            if live is not None:
                live.end()
        return summary


def _mean_over_ranks(value: float, device) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.item() / torch.distributed.get_world_size()


def _truncate_live(live, step: int) -> None:
    """Drop DVCLive rows logged after the checkpoint we resume from (they will be logged again)."""
    live.step = step
    for tsv in Path(live.plots_dir, "metrics").rglob("*.tsv"):
        lines = tsv.read_text().splitlines()
        if not lines:
            continue
        col = lines[0].split("\t").index("step")
        keep = [lines[0]] + [ln for ln in lines[1:] if int(ln.split("\t")[col]) <= step]
        tsv.write_text("\n".join(keep) + "\n")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} torch threads)"  # the thread count is a param; the core count is not
