"""A Mamba-2 (SSD) encoder in plain PyTorch, for the Mamba-vs-Transformer ablation (GRAM-M).

The authors' GRAM-M stacks ``mamba_ssm`` Mamba2 mixers in its ``MixerModel`` (pre-RMSNorm residual
blocks, no MLP). ``mamba_ssm`` is CUDA-only and does not install here, so the scan is written out:
per head, with a scalar decay ``a_t = exp(dt_t A)`` and one group of B, C shared by all heads,

    h_t = a_t h_{t-1} + dt_t x_t B_t^T        (state: headdim x d_state)
    y_t = h_t C_t + D x_t

:func:`ssd_chunked` computes it in chunks of Q tokens (quadratic inside a chunk, a short recurrence
across chunks); :func:`ssd_sequential` is the step-by-step recurrence it is tested against. On a GPU
where ``import mamba_ssm`` works, its fused Triton scan replaces :func:`ssd_chunked` (same maths).

Direction. An MAE encoder sees an unordered set of visible patches, and a causal scan lets early
tokens see nothing of later ones; in the authors' unidirectional GRAM-M the CLS token, placed first,
sees no patch at all. We default to a *bidirectional, weight-tied* mixer (``mamba_bidirectional``):
the projections run once, the conv and scan run over the sequence and over its reverse with the same
weights (one batched call), and the two are summed before the gate. That costs a second conv and scan
but no parameters, so parameter matching is the same in both settings. The CLS token is placed
*last*, so even the unidirectional setting gives it a summary of every patch.

Size. ``mamba_depth: null`` picks the depth whose parameter count is nearest the Transformer
encoder's of the same config (the paper compares parameter-matched encoders): with the paper
profile's d_state 128 / headdim 64, ViT-B's 12 blocks (85.1 M) become 23 Mamba-2 layers (86.6 M);
GRAM-M's 24 layers (90.4 M) are one layer further from a match (set ``mamba_depth: 24`` for those).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..core.config import ModelConfig
from .decoder import Block

try:  # the fused CUDA/Triton scan, when installed on a GPU machine (never on CPU)
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
except Exception:  # noqa: BLE001 - any failure (missing package, no CUDA, no triton) means: pure torch
    mamba_chunk_scan_combined = None

CONV_KERNEL = 4  # causal depthwise conv before the scan (Mamba's d_conv)
DT_RANGE = (1e-3, 1e-1)  # initial step sizes, log-uniform (Mamba's dt_min, dt_max)
A_RANGE = (1.0, 16.0)  # initial decay rates -A, uniform (Mamba-2's A_init_range)
RMS_EPS = 1e-5


def _segment_decay(log_a: torch.Tensor) -> torch.Tensor:
    """Log-decays (..., L) -> (..., L, L) holding exp(sum_{j < k <= i} log_a_k) for j <= i, else 0.

    Each entry is summed over its own segment rather than taken as a difference of two running sums,
    which would lose precision when the running sums grow large (strong decay over a long chunk).
    """
    L = log_a.shape[-1]
    ones = torch.ones(L, L, dtype=torch.bool, device=log_a.device)
    steps = log_a[..., :, None].expand(*log_a.shape, L).masked_fill(~ones.tril(-1), 0.0)  # [k, j]: k > j
    sums = steps.cumsum(dim=-2)  # [i, j] = sum over j < k <= i
    return sums.masked_fill(~ones.tril(), float("-inf")).exp()  # masked before exp: no inf * 0


def ssd_chunked(x: torch.Tensor, log_a: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk: int) -> torch.Tensor:
    """The scan h_t = exp(log_a_t) h_{t-1} + x_t B_t^T, y_t = h_t C_t, in chunks of at most ``chunk`` tokens.

    x (b, l, h, p) (already multiplied by dt); log_a (b, l, h) <= 0; B, C (b, l, n). Returns y (b, l, h, p).
    Chunks are balanced (41 tokens, chunk 32 -> 2 chunks of 21), which changes nothing but the padding.
    """
    length = x.shape[1]
    n_chunks = -(-length // chunk)
    chunk = -(-length // n_chunks)
    pad = n_chunks * chunk - length  # zeros at the end change no earlier output (the scan is causal)
    if pad:
        x, log_a = F.pad(x, (0, 0, 0, 0, 0, pad)), F.pad(log_a, (0, 0, 0, pad))
        B, C = F.pad(B, (0, 0, 0, pad)), F.pad(C, (0, 0, 0, pad))
    x = rearrange(x, "b (c q) h p -> b h c q p", q=chunk)  # heads lead, so every product is a batched matmul
    a = rearrange(log_a, "b (c q) h -> b h c q", q=chunk)
    B, C = (rearrange(t, "b (c q) n -> b 1 c q n", q=chunk) for t in (B, C))  # shared by the heads

    # 1. inside each chunk: y_t = sum_{u <= t} decay(u -> t) (C_t . B_u) x_u
    inside = _segment_decay(a)  # (b, h, c, q, q)
    y = (inside * (C @ B.transpose(-1, -2))) @ x  # (b, h, c, q, p)
    # 2. what each chunk alone leaves in the state at its end (the last row of its decay matrix)
    own = (x * inside[..., -1, :, None]).transpose(-1, -2) @ B  # (b, h, c, p, n)
    # 3. the state at the end of each chunk, then the one entering it (zero before chunk 0)
    ends = (_segment_decay(a.sum(-1)) @ own.flatten(-2)).view_as(own)  # (b, h, c, p, n)
    entering = F.pad(ends, (0, 0, 0, 0, 1, 0))[:, :, :-1]  # (b, h, c, p, n)
    # 4. that state, decayed to step t (inclusive) and read out by C_t
    y = y + (C @ entering.transpose(-1, -2)) * a.cumsum(-1).exp()[..., None]  # (b, h, c, q, p)
    return rearrange(y, "b h c q p -> b (c q) h p")[:, :length]


def ssd_sequential(x: torch.Tensor, log_a: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """The same scan one step at a time (the reference for tests). Shapes as :func:`ssd_chunked`."""
    b, length, h, p = x.shape
    state = x.new_zeros(b, h, p, B.shape[-1])  # (b, h, p, n)
    ys = []
    for t in range(length):
        state = state * log_a[:, t, :, None, None].exp() + x[:, t, :, :, None] * B[:, t, None, None, :]
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1)  # (b, l, h, p)


class Mamba2Mixer(nn.Module):
    """One Mamba-2 mixer: (B, L, D) -> (B, L, D); ``expand * D`` inner width in heads of ``headdim``.

    ``bidirectional``: the conv and scan also run over the reversed sequence with the same weights,
    and the two outputs are summed before the gate and the output projection (the projections run
    once, so the second direction costs only its conv and scan).
    """

    def __init__(self, dim: int, *, state: int, expand: int, headdim: int, chunk: int, bidirectional: bool = False):
        super().__init__()
        inner = expand * dim
        if inner % headdim:
            raise ValueError(f"mamba inner width {inner} (= {expand} x {dim}) is not divisible by "
                             f"mamba_headdim {headdim}")
        self.inner, self.state, self.heads, self.headdim = inner, state, inner // headdim, headdim
        self.chunk, self.bidirectional = chunk, bidirectional
        self.in_proj = nn.Linear(dim, 2 * inner + 2 * state + self.heads, bias=False)  # z, x, B, C, dt
        conv_dim = inner + 2 * state
        self.conv = nn.Conv1d(conv_dim, conv_dim, CONV_KERNEL, groups=conv_dim, padding=CONV_KERNEL - 1)
        dt = torch.exp(torch.empty(self.heads).uniform_(*map(math.log, DT_RANGE)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus(dt_bias) = dt
        self.A_log = nn.Parameter(torch.empty(self.heads).uniform_(*A_RANGE).log())
        self.D = nn.Parameter(torch.ones(self.heads))
        self.norm = nn.RMSNorm(inner, eps=RMS_EPS)  # gated: norm(y * silu(z))
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z, xbc, dt = self.in_proj(u).split([self.inner, self.inner + 2 * self.state, self.heads], dim=-1)
        if not self.bidirectional:
            y = self.conv_scan(xbc, dt)
        else:  # both directions in one batched call
            both = self.conv_scan(torch.cat([xbc, xbc.flip(1)]), torch.cat([dt, dt.flip(1)]))  # (2B, L, inner)
            forward, backward = both.chunk(2)
            y = forward + backward.flip(1)
        # the gated norm in fp32 (as mamba_ssm's fused RMSNormGated); under bf16 autocast y and z are bf16
        return self.out_proj(self.norm((y * F.silu(z)).float()))

    def conv_scan(self, xbc: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """(B, L, inner + 2n) conv input and (B, L, H) raw steps -> (B, L, inner) scan output + D skip."""
        xbc = F.silu(causal_depthwise_conv(xbc, self.conv.weight, self.conv.bias))
        x, Bm, Cm = xbc.split([self.inner, self.state, self.state], dim=-1)
        x = rearrange(x, "b l (h p) -> b l h p", p=self.headdim)  # (B, L, H, P)
        dt = F.softplus(dt.float() + self.dt_bias)  # (B, L, H)
        A = -self.A_log.float().exp()  # (H,)
        y = scan(x, dt, A, Bm, Cm, self.chunk) + x * self.D[:, None].to(x.dtype)
        return rearrange(y, "b l h p -> b l (h p)")


def causal_depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``nn.Conv1d(C, C, K, groups=C, padding=K - 1)`` cut to the first L outputs, on (B, L, C) input.

    Written as K shifted multiply-adds over the Conv1d's own weight (C, 1, K) and bias: with oneDNN off
    (pinned numerics) torch's grouped convolution falls back to one small convolution per channel, and
    its backward to a per-channel loop, which made a CPU training step ~300x slower. Same maths, same
    parameters, so checkpoints are unchanged.
    """
    length, taps = x.shape[1], weight.shape[-1]
    padded = F.pad(x, (0, 0, taps - 1, 0))  # K - 1 zeros before the first step: the conv is causal
    y = padded[:, :length] * weight[:, 0, 0]
    for k in range(1, taps):
        y = y + padded[:, k:k + length] * weight[:, 0, k]
    return y if bias is None else y + bias


def scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
         chunk: int) -> torch.Tensor:
    """SSD with per-step ``dt`` (b, l, h) and per-head ``A`` (h,) < 0: the fused kernel on CUDA when
    ``mamba_ssm`` imports, else :func:`ssd_chunked` in fp32. Returns (b, l, h, p) in x's dtype."""
    if mamba_chunk_scan_combined is not None and x.is_cuda:
        return mamba_chunk_scan_combined(x.contiguous(), dt, A, B[:, :, None].contiguous(),
                                         C[:, :, None].contiguous(), chunk_size=chunk)
    with torch.autocast(device_type=x.device.type, enabled=False):
        y = ssd_chunked(x.float() * dt[..., None], dt * A, B.float(), C.float(), chunk)
    return y.to(x.dtype)


class MambaLayer(nn.Module):
    """Pre-norm residual block without MLP, as GRAM-M's MixerModel: x + mixer(RMSNorm(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = nn.RMSNorm(cfg.embed_dim, eps=RMS_EPS)
        self.mixer = Mamba2Mixer(cfg.embed_dim, state=cfg.mamba_state, expand=cfg.mamba_expand,
                                 headdim=cfg.mamba_headdim, chunk=cfg.mamba_chunk,
                                 bidirectional=cfg.mamba_bidirectional)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


class MambaEncoder(nn.Module):
    """(B, 1 + K, D) tokens, CLS first -> (B, 1 + K, D), CLS first; the CLS is scanned last."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        depth = cfg.mamba_depth if cfg.mamba_depth is not None else matched_depth(cfg)
        self.layers = nn.ModuleList(MambaLayer(cfg) for _ in range(depth))
        self.norm = nn.RMSNorm(cfg.embed_dim, eps=RMS_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, 1:], x[:, :1]], dim=1)  # CLS to the end
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return torch.cat([x[:, -1:], x[:, :-1]], dim=1)  # CLS back to the front


def matched_depth(cfg: ModelConfig) -> int:
    """The Mamba depth whose parameter count is nearest ``cfg.depth`` Transformer blocks of ``cfg``."""
    per_block = sum(p.numel() for p in Block(cfg.embed_dim, cfg.heads, cfg.mlp_ratio).parameters())
    per_layer = sum(p.numel() for p in MambaLayer(cfg).parameters())  # one layer each: cheap (~0.1 s at ViT-B)
    return max(1, round(cfg.depth * per_block / per_layer))
