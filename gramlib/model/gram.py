"""GRAM: a multi-channel masked autoencoder (MAE) on log-mel spectrograms.

Shape letters, fixed for every module of gramlib:

    B batch            C feature channels (1 clean, 2 binaural, 7 FOA)
    T frames           F mel bins
    N patches          K kept (visible) patches, N - K masked
    D encoder width    P values per patch = C * patch_frames * patch_mels

Patches tile a (T, F) crop on a grid of n_rows = F / patch_mels mel bands by n_cols = T / patch_frames
time steps: "frame" patching (16 mel x 8 frames) gives 8 x 25 = 200 tokens per 200-frame crop, "time"
patching (128 x 2) gives 1 x 100. Tokens are frequency-major, index = row * n_cols + col (as the
authors), and every patch spans all C channels, so one token fuses e.g. both ears.

The MAE, step by step (:meth:`GRAM.forward`): patch embedding (one Conv2d over all channels) ->
fixed 2-D sin-cos positions -> mask (``gramlib.model.masking``) -> the visible tokens and a CLS token
through the encoder (Transformer or Mamba-2) -> the multi-window decoder fills in mask tokens and
predicts every patch (``gramlib.model.decoder``) -> MSE on the masked patches only. Targets are the raw
patches of the per-crop normalised input (``features.instance_norm``), no per-patch normalisation.
The authors multiply that loss by C; we do not, so losses compare across formats.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import nn

from ..core.config import FeaturesConfig, ModelConfig
from .decoder import Block, LN_EPS, MultiWindowDecoder
from .features import FeatureExtractor
from .mamba import MambaEncoder
from .masking import Mask, STRATEGIES, make_mask, n_masked


class MAEOutput(NamedTuple):
    """loss: scalar MSE over masked patches; pred, target (B, N, P); mask (B, N), 1 = masked."""

    loss: torch.Tensor
    pred: torch.Tensor
    mask: torch.Tensor
    target: torch.Tensor


def sincos_1d(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """Positions (N,) -> (N, dim): sines then cosines at geometrically spaced frequencies."""
    freqs = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = pos.double()[:, None] * freqs  # (N, dim / 2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(n_rows: int, n_cols: int, dim: int) -> torch.Tensor:
    """Fixed positions of a frequency-major grid, (n_rows * n_cols, dim): half time, half frequency."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos positions need a width divisible by 4; got {dim}")
    rows, cols = torch.meshgrid(torch.arange(n_rows), torch.arange(n_cols), indexing="ij")
    return torch.cat([sincos_1d(cols.flatten(), dim // 2), sincos_1d(rows.flatten(), dim // 2)], dim=1)


class TransformerEncoder(nn.Module):
    """(B, L, D) -> (B, L, D): ``depth`` pre-LN blocks and a final LayerNorm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg.embed_dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


ENCODERS = {"transformer": TransformerEncoder, "mamba": MambaEncoder}  # ModelConfig.encoder


class GRAM(nn.Module):
    """The MAE of the module docstring, for ``in_channels`` = C feature channels."""

    def __init__(self, model_cfg: ModelConfig, features_cfg: FeaturesConfig, in_channels: int):
        super().__init__()
        self.cfg, self.features_cfg, self.in_channels = model_cfg, features_cfg, in_channels
        pm, pf = model_cfg.patch_mels, model_cfg.patch_frames
        if features_cfg.n_mels % pm or features_cfg.crop_frames % pf:
            raise ValueError(f"patches of {pm} mel x {pf} frames do not tile a crop of {features_cfg.n_mels} mel x "
                             f"{features_cfg.crop_frames} frames: patch_mels must divide n_mels and patch_frames "
                             f"must divide crop_frames")
        if model_cfg.masking not in STRATEGIES:
            raise ValueError(f"unknown masking {model_cfg.masking!r}; accepted: {list(STRATEGIES)}")
        if model_cfg.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {model_cfg.encoder!r}; accepted: {list(ENCODERS)}")
        n_masked(self.n_patches, model_cfg.mask_ratio)  # fail now, not at the first step
        D = model_cfg.embed_dim
        self.patch_embed = nn.Conv2d(in_channels, D, kernel_size=(pf, pm), stride=(pf, pm))  # on (B, C, T, F)
        self.register_buffer("positions", sincos_2d(*self.grid, D), persistent=False)  # (N, D); CLS: none
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.encoder = ENCODERS[model_cfg.encoder](model_cfg)
        self.decoder = MultiWindowDecoder(
            in_dim=D, dim=model_cfg.decoder_dim, depth=model_cfg.decoder_depth, heads=model_cfg.decoder_heads,
            mlp_ratio=model_cfg.mlp_ratio, patch_dim=self.patch_dim, windows=model_cfg.decoder_windows,
            positions=sincos_2d(*self.grid, model_cfg.decoder_dim))
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform linear layers with zero bias (as MAE and the authors); tokens N(0, 0.02)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(self.cfg.embed_dim, -1))  # as the linear it is
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.decoder.mask_token, std=0.02)

    # ---- sizes ------------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        """(n_rows, n_cols): mel bands x time steps of patches, e.g. (8, 25) or (1, 100)."""
        f, m = self.features_cfg, self.cfg
        return f.n_mels // m.patch_mels, f.crop_frames // m.patch_frames

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def patch_dim(self) -> int:
        """P: values per patch."""
        return self.in_channels * self.cfg.patch_frames * self.cfg.patch_mels

    @property
    def frames_per_column(self) -> int:
        """Frames per patch column (8 = 80 ms for frame patching, 2 = 20 ms for time patching)."""
        return self.cfg.patch_frames

    @property
    def column_ms(self) -> float:
        """Duration of one patch column, i.e. the timestamp-embedding hop, in ms."""
        return 1000.0 * self.frames_per_column * self.features_cfg.hop_length / self.features_cfg.sample_rate_hz

    @property
    def timestamp_embedding_size(self) -> int:
        """n_rows * D: the frequency rows' tokens of one column, concatenated."""
        return self.grid[0] * self.cfg.embed_dim

    @property
    def scene_embedding_size(self) -> int:
        """Scene embeddings are the mean of timestamp embeddings over time, as the authors."""
        return self.timestamp_embedding_size

    def n_params(self, *, trainable: bool = True) -> int:
        """Number of parameters (only those that train, by default); buffers are not counted."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable)

    # ---- patches ----------------------------------------------------------------------------
    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, F) -> (B, N, P), in the patch embedding's token and weight order."""
        return rearrange(x, "b c (nc pf) (nr pm) -> b (nr nc) (c pf pm)",
                         pf=self.cfg.patch_frames, pm=self.cfg.patch_mels)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, N, P) -> (B, C, T, F): the inverse of :meth:`patchify` (e.g. to plot reconstructions)."""
        return rearrange(patches, "b (nr nc) (c pf pm) -> b c (nc pf) (nr pm)", nr=self.grid[0],
                         pf=self.cfg.patch_frames, pm=self.cfg.patch_mels)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, F) normalised crops -> patch tokens with positions, (B, N, D)."""
        self._check_input(x)
        # The Conv2d's stride is its kernel, so it is one matrix product over the patches; done as such it
        # runs the pinned GEMM everywhere (no oneDNN convolution, whose kernels vary by CPU).
        conv = self.patch_embed
        tokens = nn.functional.linear(self.patchify(x), conv.weight.flatten(1), conv.bias)  # (B, N, D), freq-major
        return tokens + self.positions

    def _check_input(self, x: torch.Tensor) -> None:
        want = (self.in_channels, self.features_cfg.crop_frames, self.features_cfg.n_mels)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"GRAM expects crops shaped (batch, C, T, F) = (batch, {', '.join(map(str, want))}); "
                             f"got {tuple(x.shape)} (longer audio: cut it into {want[1]}-frame chunks)")

    # ---- MAE --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None,
                mask: Mask | None = None) -> MAEOutput:
        """Masked reconstruction of normalised crops ``x`` (B, C, T, F).

        The mask is ``mask`` when given (e.g. drawn per example from its own seed), else drawn from
        ``generator`` with ``ModelConfig.masking`` and ``mask_ratio``.
        """
        tokens = self.embed(x)  # (B, N, D)
        B, N, D = tokens.shape
        if mask is None:
            mask = self.draw_mask(B, generator)
        mask = Mask(*(idx.to(x.device) for idx in mask))
        visible = tokens.gather(1, mask.keep[..., None].expand(-1, -1, D))  # (B, K, D)
        latent = self.encoder(torch.cat([self.cls_token.expand(B, -1, -1), visible], dim=1))  # (B, 1 + K, D)
        pred = self.decoder(latent, mask.restore)  # (B, N, P)
        target = self.patchify(x)  # (B, N, P)
        masked = mask.binary()  # (B, N)
        return MAEOutput(masked_mse(pred, target, masked), pred, masked, target)

    def draw_mask(self, batch: int, generator: torch.Generator | None = None) -> Mask:
        """A mask for ``batch`` crops by this model's strategy and ratio (indices on the generator's device)."""
        return make_mask(batch, self.n_patches, self.cfg.mask_ratio, generator, strategy=self.cfg.masking,
                         grid=self.grid)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unmasked encoding of normalised crops (B, C, T, F) -> (tokens (B, N, D), cls (B, D))."""
        tokens = self.embed(x)  # (B, N, D)
        out = self.encoder(torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1))
        return out[:, 1:], out[:, 0]

    def timestamp_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, F) -> (B, n_cols, n_rows * D): per patch column, its rows' tokens concatenated."""
        tokens, _ = self.encode(x)
        return rearrange(tokens, "b (nr nc) d -> b nc (nr d)", nr=self.grid[0])


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per patch, averaged over the patches where ``mask`` (B, N) is 1; fp32."""
    per_patch = (pred.float() - target.float()).square().mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)


def build_model(fmt: str, model_cfg: ModelConfig, features_cfg: FeaturesConfig, seed: int):
    """The feature extractor and a freshly initialised GRAM for one input format (seeded by ``seed``).

    An unknown ``fmt`` is a ValueError naming the accepted formats (from :class:`FeatureExtractor`)."""
    torch.manual_seed(seed)
    extractor = FeatureExtractor(features_cfg, fmt)
    return extractor, GRAM(model_cfg, features_cfg, in_channels=extractor.n_channels)
