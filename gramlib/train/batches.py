"""Online scene batches for pre-training: mixing in DataLoader workers, crops and masks.

A micro-batch ``b`` holds scenes ``b*batch_clips .. (b+1)*batch_clips-1``. Scene ``i`` is a pure
function of (seed, i) (:func:`gramlib.scenes.mixer.draw_scene` picks its room, noise, SNR and whether it
is dry), and its crops and masks at step ``s`` a pure function of (seed, s, i). DDP ranks take
contiguous slices of each micro-batch, so their union is exactly the single-process batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.audio import fit_length, read_wav
from ..core.config import TrainConfig
from ..model import features, masking
from ..scenes import mixer
from ..scenes.rirbank import RirBank


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, missing data, a bad batch layout)."""


@dataclass(frozen=True)
class TrainData:
    """Where the scenes of one run come from."""

    clips: list  # pre-training clip paths (mono 10-s, any rate: resampled on load)
    noises: list  # pre-training noise clip paths
    rir_dir: Path | None  # a RirBank folder (train rooms); None for the clean format
    clip_s: float = 10.0
    sample_rate_hz: int = 32000


def example_seed(seed: int, step: int, index: int, stream: int) -> int:
    """A 63-bit seed for one example's crops or mask, independent of batch layout and rank."""
    mixed = np.random.SeedSequence([seed, step, index, stream]).generate_state(2, dtype=np.uint32)
    return int(mixed[0]) << 31 | int(mixed[1]) >> 1


class SceneBatches(torch.utils.data.Dataset):
    """Item ``b`` is micro-batch ``b``: this rank's share of its scenes, mixed, ``(B, A, S)`` float32.

    Scenes ``b*batch .. (b+1)*batch-1`` form micro-batch ``b``; rank ``r`` of ``world`` takes a
    contiguous slice, so the union over ranks is exactly the single-process batch.
    """

    def __init__(self, data: TrainData, fmt: str, cfg: TrainConfig, seed: int, *, rank: int = 0, world: int = 1):
        if cfg.batch_clips % world:
            raise TrainingError(f"train.batch_clips={cfg.batch_clips} must divide by the {world} processes")
        n_used = max(1, math.ceil(cfg.data_fraction * len(data.clips)))
        self.clips = list(data.clips)[:n_used]
        self.data, self.fmt, self.cfg, self.seed, self.snr_db = data, fmt, cfg, seed, tuple(cfg.snr_db)
        self.local = cfg.batch_clips // world
        self.offset = rank * self.local
        self._bank = None

    def __len__(self) -> int:
        return 2**40

    @property
    def bank(self):
        if self._bank is None and self.fmt != "clean":

            bank = RirBank(self.data.rir_dir)
            if bank.sample_rate_hz != self.data.sample_rate_hz:
                raise TrainingError(f"the RIR bank {self.data.rir_dir} is at {bank.sample_rate_hz} Hz, the features at "
                                    f"{self.data.sample_rate_hz} Hz (features.sample_rate_hz): rebuild the rooms stage "
                                    "at that rate")
            self._bank = bank
        return self._bank

    def indices(self, b: int) -> list[int]:
        start = b * self.cfg.batch_clips + self.offset
        return list(range(start, start + self.local))

    def __getitem__(self, b: int) -> dict:

        idx = self.indices(b)
        n_samples = int(round(self.data.clip_s * self.data.sample_rate_hz))
        specs = [mixer.draw_scene(self.seed, i, n_rirs=len(self.bank) if self.bank else 1,
                                   n_noises=max(1, len(self.data.noises)), snr_range_db=self.snr_db,
                                   lambda_clean=1.0 if self.fmt == "clean" else self.cfg.lambda_clean)
                 for i in idx]
        sources = np.stack([self._clip(i, n_samples) for i in idx])
        if self.fmt == "clean":
            audio = torch.from_numpy(sources)[:, None]  # (B, 1, S)
        else:
            audio = self._mix(specs, sources, n_samples)
        return {"audio": audio, "index": torch.tensor(idx)}

    def _clip(self, index: int, n_samples: int) -> np.ndarray:

        pick = np.random.default_rng([self.seed, index, 11]).integers(len(self.clips))
        wav = read_wav(self.clips[pick], sample_rate_hz=self.data.sample_rate_hz, resample=True)
        return fit_length(wav[0], n_samples)

    def _mix(self, specs, sources: np.ndarray, n_samples: int) -> torch.Tensor:

        src_rirs, noise_rirs, noises = [], [], []
        for spec in specs:
            src, noise = self.bank.get(spec.rir_index, self.fmt)
            src_rirs.append(src)
            noise_rirs.append(noise)
            clip = read_wav(self.data.noises[spec.noise_index], sample_rate_hz=self.data.sample_rate_hz,
                            resample=True)[0]
            noises.append(mixer.place_noise(clip, n_samples, spec))
        n_max = max(n.shape[0] for n in noise_rirs)
        padded = [np.pad(n, ((0, n_max - n.shape[0]), (0, 0), (0, 0))) for n in noise_rirs]
        return mixer.mix_batch(torch.from_numpy(sources), torch.from_numpy(np.stack(src_rirs)),
                                torch.from_numpy(np.stack(noises)), torch.from_numpy(np.stack(padded)),
                                torch.tensor([s.snr_db for s in specs]), torch.tensor([s.dry for s in specs]))


def _worker_init(_):
    torch.set_num_threads(1)


def loader(dataset: SceneBatches, start_batch: int, n_batches: int, num_workers: int):
    """Micro-batches ``start_batch .. start_batch + n_batches - 1`` in order."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(start_batch, start_batch + n_batches),
        num_workers=num_workers, worker_init_fn=_worker_init, prefetch_factor=2 if num_workers else None,
        persistent_workers=False)


def crops_and_masks(feats: torch.Tensor, index: torch.Tensor, step: int, seed: int, *, n_crops: int,
                    crop_frames: int, model) -> tuple[torch.Tensor, object]:
    """In-batch sampling: ``n_crops`` normalized 2-s crops per scene and their masks.

    feats (B, C, T, F) -> crops (B*n_crops, C, crop_frames, F); the crops and masks of scene ``i``
    depend on (seed, step, i) only.
    """

    crops, masks = [], []
    for j, i in enumerate(index.tolist()):
        g = torch.Generator().manual_seed(example_seed(seed, step, i, 1))
        crops.append(features.random_crops(feats[j:j + 1], n_crops, crop_frames, g))
        g = torch.Generator().manual_seed(example_seed(seed, step, i, 2))
        masks.append(masking.make_mask(n_crops, model.n_patches, model.cfg.mask_ratio, g,
                                       strategy=model.cfg.masking, grid=model.grid))
    x = features.instance_norm(torch.cat(crops))  # (B*n_crops, C, crop_frames, F)
    return x, masking.cat_masks(masks)
