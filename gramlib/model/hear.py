"""The HEAR API for a GRAM checkpoint.

    model = load_model("models/gram-binaural")              # folder with model.safetensors + config.json
    emb, ts = get_timestamp_embeddings(audio, model)         # (n, T, D), (n, T) in ms
    scene = get_scene_embeddings(audio, model)               # (n, D)

Audio is float32 at 32 kHz, either mono ``(n_sounds, n_samples)`` -- duplicated to the model's
channels as the paper does -- or ``(n_sounds, n_channels, n_samples)`` with the model's channel
count (2: binaural, left ear first; 4: FOA in ambiX W, Y, Z, X; 1: the clean model).

Long audio is cut into 2-s chunks that start on the patch-column grid (80 ms for frame patching,
20 ms for time patching); the last chunk is aligned to the end of the audio on that grid, so
padding never exceeds one column and every timestamp sits on one regular grid. A timestamp is the
centre of its patch column, in ms; columns whose centre lies beyond the audio are dropped. The
timestamp embedding of a column concatenates its frequency rows' tokens (as the authors); the
scene embedding is their mean over time. Localization uses :func:`get_cls_embeddings`, the mean of
the chunks' CLS tokens, as the paper.

Input checks raise ``ValueError`` saying what was expected: a channel count the model cannot take,
a dtype other than float32, NaN or inf, an empty clip or batch.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import torch

from ..core.config import resolve_variant, section
from ..core.formats import AUDIO_CHANNELS
from . import authors
from .checkpoint import CONFIG, CheckpointError, load_gram
from .features import instance_norm
from .gram import build_model



class GRAMEmbedder(torch.nn.Module):
    """A GRAM checkpoint wrapped with the attributes the HEAR API requires."""

    def __init__(self, extractor, model, config: dict):
        super().__init__()
        self.extractor, self.model, self.config = extractor, model, config
        self.format = config["format"]
        self.audio_channels = AUDIO_CHANNELS[self.format]
        features = config["features"]
        self.sample_rate: int = int(features["sample_rate_hz"])
        self.hop = int(features["hop_length"])
        self.crop_frames = int(features["crop_frames"])
        self.frames_per_column = int(model.frames_per_column)
        self.column_samples = self.frames_per_column * self.hop  # 2560 samples = 80 ms (frame patching)
        self.chunk_samples = self.crop_frames * self.hop  # 64,000 samples = 2 s
        self.timestamp_embedding_size: int = int(model.timestamp_embedding_size)
        self.scene_embedding_size: int = int(model.timestamp_embedding_size)
        self.cls_embedding_size: int = int(model.cfg.embed_dim)
        self.eval()

    # ------------------------------------------------------------------ input handling
    def prepare(self, audio: torch.Tensor) -> torch.Tensor:
        """Check the input and return ``(n, A, S)`` with the model's audio channel count A."""
        if not isinstance(audio, torch.Tensor):
            raise ValueError(f"audio must be a torch.Tensor, got {type(audio).__name__}")
        if audio.dtype != torch.float32:
            raise ValueError(f"audio must be torch.float32, got {audio.dtype}")
        if audio.ndim == 2:
            audio = audio[:, None, :]
        if audio.ndim != 3:
            raise ValueError(f"audio must be (n_sounds, n_samples) or (n_sounds, n_channels, n_samples); "
                             f"got shape {tuple(audio.shape)}")
        n, channels, samples = audio.shape
        if n == 0 or samples == 0:
            raise ValueError(f"audio is empty: shape {tuple(audio.shape)}")
        if channels == 1 and self.audio_channels > 1:
            audio = audio.expand(n, self.audio_channels, samples)  # mono duplicated, as the paper
        elif channels != self.audio_channels:
            raise ValueError(f"this {self.format} model takes mono or {self.audio_channels}-channel audio; "
                             f"got {channels} channels")
        if not torch.isfinite(audio).all():
            raise ValueError("audio contains NaN or inf")
        return audio.to(next(self.model.parameters()).device)

    def chunk_starts(self, n_samples: int) -> list[int]:
        """Start samples of the 2-s chunks: every 2 s, plus an end-aligned chunk on the column grid."""
        starts = list(range(0, max(1, n_samples - self.chunk_samples + 1), self.chunk_samples))
        covered = starts[-1] + self.chunk_samples
        if covered < n_samples:
            tail = -(-(n_samples - self.chunk_samples) // self.column_samples) * self.column_samples
            starts.append(tail)
        return starts

    # ------------------------------------------------------------------ embeddings
    @torch.no_grad()
    def chunk_features(self, audio: torch.Tensor, start: int) -> torch.Tensor:
        """Normalized log-mel crop of one chunk: (n, C, crop_frames, F); padding beyond the audio is 0."""
        piece = audio[..., start:start + self.chunk_samples]
        valid = piece.shape[-1]
        piece = torch.nn.functional.pad(piece, (0, self.chunk_samples - valid))
        feats = self.extractor(piece)[:, :, :self.crop_frames]  # (n, C, T, F)
        valid_frames = min(self.crop_frames, -(-valid // self.hop))
        if valid_frames < self.crop_frames:  # statistics over the real frames only, padding set to the mean
            feats[:, :, :valid_frames] = instance_norm(feats[:, :, :valid_frames])
            feats[:, :, valid_frames:] = 0.0
            return feats
        return instance_norm(feats)

    @torch.no_grad()
    def timestamp_embeddings(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        audio = self.prepare(audio)
        n, _, n_samples = audio.shape
        columns_per_chunk = self.chunk_samples // self.column_samples
        by_column: dict[int, torch.Tensor] = {}
        for start in self.chunk_starts(n_samples):
            emb = self.model.timestamp_embeddings(self.chunk_features(audio, start))  # (n, cols, D)
            first = start // self.column_samples
            for k in range(columns_per_chunk):
                by_column.setdefault(first + k, emb[:, k])
        centres = [(c + 0.5) * self.column_samples for c in sorted(by_column)]
        keep = [c for c, centre in zip(sorted(by_column), centres) if centre <= n_samples] or [0]
        emb = torch.stack([by_column[c] for c in keep], dim=1).float()  # (n, T, D)
        ts = (torch.tensor(keep, dtype=torch.float64) + 0.5) * self.column_samples / self.sample_rate * 1000.0
        return emb, ts.float().to(emb.device).expand(n, -1).contiguous()

    @torch.no_grad()
    def scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        return self.timestamp_embeddings(audio)[0].mean(dim=1)

    @torch.no_grad()
    def cls_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        """Mean CLS token over the 2-s chunks: (n, D)."""
        audio = self.prepare(audio)
        cls = [self.model.encode(self.chunk_features(audio, s))[1] for s in self.chunk_starts(audio.shape[-1])]
        return torch.stack(cls, dim=1).mean(dim=1).float()


# ---------------------------------------------------------------------- the HEAR functions
def load_model(model_file_path: str = "", *, heads: int | None = None) -> GRAMEmbedder:
    """Load a GRAM checkpoint: a gramlib folder (or its model.safetensors / config.json path), or the GRAM
    authors' released weights in any layout :mod:`gramlib.model.authors_layout` reads (a Hugging Face
    ``model.safetensors`` folder or file, a ``RuntimeGRAMT`` state dict, a Lightning ``.ckpt``), computed with
    their numerics and our chunking (:mod:`gramlib.model.authors`; ``heads``: their attention heads when the
    width does not say, as for widths that are not a multiple of 64)."""
    path = Path(model_file_path or "models/gram-binaural")
    folder = path.parent if path.is_file() else path
    if is_gramlib_checkpoint(folder) and (path.is_dir() or path.name in (CONFIG, "model.safetensors")):
        return GRAMEmbedder(*load_gram(folder))
    if not path.exists():
        raise CheckpointError(f"no GRAM checkpoint at {path}: expected a gramlib checkpoint folder (config.json + "
                                f"model.safetensors) or an authors' checkpoint file or folder")
    return GRAMEmbedder(*authors.load(path, heads=heads))


def is_gramlib_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds our checkpoint format: its config.json has our ``format``, ``features`` and
    ``model`` entries (a Hugging Face folder of the authors' has a config.json of its own, without them)."""
    try:
        meta = json.loads((Path(folder) / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and all(k in meta for k in ("format", "features", "model"))


def get_timestamp_embeddings(audio: torch.Tensor, model: GRAMEmbedder) -> tuple[torch.Tensor, torch.Tensor]:
    return model.timestamp_embeddings(audio)


def get_scene_embeddings(audio: torch.Tensor, model: GRAMEmbedder) -> torch.Tensor:
    return model.scene_embeddings(audio)


def get_cls_embeddings(audio: torch.Tensor, model: GRAMEmbedder) -> torch.Tensor:
    return model.cls_embeddings(audio)


def random_gram(params: dict, variant: str = "gram-binaural") -> GRAMEmbedder:
    """An untrained GRAM (random weights, seeded) with ``variant``'s configuration: a control baseline."""
    spec, model_cfg, _ = resolve_variant(params, variant)
    features_cfg = section(params, "features")
    extractor, model = build_model(spec.format, model_cfg, features_cfg, seed=int(params["seed"]))
    cfg = {"format": spec.format, "features": asdict(features_cfg), "model": asdict(model_cfg), "trained": False}
    return GRAMEmbedder(extractor, model.eval(), cfg)


@lru_cache(maxsize=4)
def _cached(model_dir: str, stamp: int) -> GRAMEmbedder:
    return load_model(model_dir)


def load_embedder(model_dir) -> GRAMEmbedder:
    """:func:`load_model` of a checkpoint folder, cached until its weights file changes (for notebooks)."""
    weights = Path(model_dir) / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"no checkpoint in {model_dir} (model.safetensors missing): run `dvc repro` first, "
                                "or gramlib.interactive.demo.build_demo() for a tiny demo model")
    return _cached(str(Path(model_dir).resolve()), weights.stat().st_mtime_ns)
