"""Transformer blocks and the multi-window (MW-MAE) decoder.

``Block`` is the pre-LN ViT block of both the encoder and the decoder: attention through
``torch.nn.functional.scaled_dot_product_attention``, optionally with a per-head additive mask.

The decoder gives every attention head its own window: head h attends only inside non-overlapping
blocks of ``w_h`` consecutive tokens of the flattened (frequency-major) sequence, with a learnable
relative-position bias inside the block, or globally when ``w_h = 0`` -- MW-MAE's local-global
attention as the authors configure it (``gram-reference.md`` §3.3). Heads are grouped by window: a
global group runs plain SDPA over all N tokens; a local group of window w reshapes the tokens into
N / w blocks and runs SDPA inside each block with its (w, w) bias -- N * w work instead of N^2, and no
(H, N, N) mask is ever materialised. Windows that do not divide N (explicit ones only) fall back to one
additive (H, N, N) mask, built once per grid, in a single SDPA call.

Window rule, used when ``ModelConfig.decoder_windows`` is None (N tokens, H heads):

1. candidates: the values of :data:`WINDOW_LADDER` (2, 5, 10, 25, 50, 100, 250, ...) that divide N
   and are smaller than N, so that every window holds exactly w tokens;
2. global heads: ``max(1, H // 4, H - len(candidates))`` -- at least a quarter of the heads see
   everything, and heads left over when the candidates run out are global too;
3. local heads: the remaining ``L`` heads take candidates at evenly spread ranks
   ``floor((i + 0.5) * len(candidates) / L)``, i = 0..L-1, ascending, then the global heads.

It reproduces the paper's windows: 200 tokens, 8 heads -> [2, 5, 10, 25, 50, 100, 0, 0];
100 tokens (time patching), 8 heads -> [2, 5, 10, 25, 50, 0, 0, 0]. With frequency-major tokens a
window of ``n_cols`` is one mel band over the whole crop. Explicit windows need not divide N (the
last block of a head is then shorter), and a window >= N is global.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

WINDOW_LADDER = (2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)  # the paper's windows, continued
LN_EPS = 1e-6  # ViT / the authors' torchvision encoder


class Attention(nn.Module):
    """Multi-head self-attention: (B, N, D) -> (B, N, D), with an optional (H, N, N) additive mask."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def attend(self, x: torch.Tensor, attn_mask: torch.Tensor | list | None = None) -> torch.Tensor:
        """Each head's output before the projection: (B, N, D) -> (B, H, N, D / H).

        ``attn_mask``: None, an additive (H, N, N) mask, or window groups (:func:`windowed_attention`).
        """
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        if isinstance(attn_mask, list):
            return windowed_attention(q, k, v, attn_mask)
        if attn_mask is not None:
            attn_mask = attn_mask.to(q.dtype)  # SDPA wants the query's dtype (bf16 under autocast)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | list | None = None) -> torch.Tensor:
        return self.proj(rearrange(self.attend(x, attn_mask), "b h n d -> b n (h d)"))


def windowed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, groups: list) -> torch.Tensor:
    """Per-head windowed attention; q, k, v (B, H, N, d) -> (B, H, N, d).

    ``groups``: (window, head indices (h,), bias (h, w, w) or None) with window 0 = global; every local
    window divides N, and the blocks are the aligned runs of w consecutive tokens.
    """
    B, H, N, d = q.shape
    parts, order = [], []
    for w, heads, bias in groups:
        qh, kh, vh = q[:, heads], k[:, heads], v[:, heads]  # (B, h, N, d)
        if w == 0:
            out = F.scaled_dot_product_attention(qh, kh, vh)
        else:
            qb, kb, vb = (t.reshape(B, len(heads), N // w, w, d) for t in (qh, kh, vh))  # (B, h, N/w, w, d)
            out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=bias[:, None].to(q.dtype))
            out = out.reshape(B, len(heads), N, d)
        parts.append(out)
        order.append(heads)
    inverse = torch.argsort(torch.cat(order))
    return torch.cat(parts, dim=1)[:, inverse]


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), attn_mask)
        return x + self.mlp(self.norm2(x))


def derive_windows(n_tokens: int, heads: int) -> list[int]:
    """Per-head windows (0 = global) by the rule of the module docstring."""
    candidates = [w for w in WINDOW_LADDER if w < n_tokens and n_tokens % w == 0]
    n_global = min(heads, max(1, heads // 4, heads - len(candidates)))
    n_local = heads - n_global
    local = [candidates[int((i + 0.5) * len(candidates) / n_local)] for i in range(n_local)]
    return local + [0] * n_global


def resolve_windows(windows: list[int] | None, n_tokens: int, heads: int) -> list[int]:
    """``windows`` checked against the head count (or derived when None); 0 or >= N means global."""
    if windows is None:
        return derive_windows(n_tokens, heads)
    if len(windows) != heads or any(w < 0 for w in windows):
        raise ValueError(f"decoder_windows {windows} must list one window >= 0 (0 = global) per head "
                         f"({heads} decoder heads)")
    return [0 if w >= n_tokens else int(w) for w in windows]


def window_layout(windows: list[int], n_tokens: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-head window masks and relative-position indices.

    Returns ``allowed`` (H, N, N) bool (query i may see key j), ``index`` (H, N, N) long into a
    bias table of ``n_table`` entries (head h, offset j - i; global heads and pairs outside the window
    point at the extra last entry, which stays 0), and ``n_table``.
    """
    pos = torch.arange(n_tokens)
    allowed, index, start = [], [], 0
    for w in windows:
        if w == 0:
            allowed.append(torch.ones(n_tokens, n_tokens, dtype=torch.bool))
            index.append(torch.full((n_tokens, n_tokens), -1))
            continue
        same = (pos[:, None] // w) == (pos[None, :] // w)  # (N, N) same block
        offset = pos[None, :] - pos[:, None] + (w - 1)  # (N, N) in 0 .. 2w - 2 inside a block
        allowed.append(same)
        index.append(torch.where(same, start + offset, -1))
        start += 2 * w - 1
    index = torch.stack(index)  # (H, N, N)
    return torch.stack(allowed), torch.where(index < 0, start, index), start + 1


class MultiWindowDecoder(nn.Module):
    """Encoder tokens + mask tokens -> per-patch predictions (B, N, P) for all N patches.

    ``positions`` (N, dim): fixed positional embeddings of the patch grid, frequency-major.
    """

    def __init__(self, *, in_dim: int, dim: int, depth: int, heads: int, mlp_ratio: float, patch_dim: int,
                 positions: torch.Tensor, windows: list[int] | None = None):
        super().__init__()
        n_tokens = positions.shape[0]
        self.windows = resolve_windows(windows, n_tokens, heads)
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))  # trained (the authors' GRAM-T froze it by accident)
        self.register_buffer("positions", positions, persistent=False)  # (N, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, patch_dim)
        self.local = any(w > 0 for w in self.windows)
        self.blocked = self.local and all(w == 0 or n_tokens % w == 0 for w in self.windows)
        if self.local:  # all-global heads need no mask: plain SDPA, flash kernels on GPU
            allowed, index, n_table = window_layout(self.windows, n_tokens)
            self.register_buffer("allowed", allowed, persistent=False)  # (H, N, N)
            self.register_buffer("bias_index", index, persistent=False)  # (H, N, N)
            self.rel_bias = nn.Parameter(torch.zeros(depth, n_table - 1))  # per layer, per head and offset

    def attn_masks(self) -> list:
        """Per layer: window groups with their (w, w) biases (the fast path), or one additive (H, N, N)
        mask (relative bias inside a window, -inf outside) when a window does not divide N."""
        if not self.local:
            return [None] * len(self.blocks)
        if self.blocked:
            return [self.window_groups(layer) for layer in range(len(self.blocks))]
        return self.dense_masks()

    def dense_masks(self) -> list[torch.Tensor]:
        """One additive (H, N, N) mask per layer (the reference the blocked path is tested against)."""
        table = F.pad(self.rel_bias, (0, 1))  # (depth, n_table): the last entry is the fixed 0
        return [t[self.bias_index].masked_fill(~self.allowed, float("-inf")) for t in table]

    def window_groups(self, layer: int) -> list:
        """(window, head indices, bias (h, w, w) or None) per distinct window of this layer."""
        table = F.pad(self.rel_bias[layer], (0, 1))  # (n_table,): the last entry is the fixed 0
        groups = []
        for w in sorted(set(self.windows)):
            heads = [h for h, hw in enumerate(self.windows) if hw == w]
            index = torch.tensor(heads, device=table.device)
            bias = None if w == 0 else table[self.bias_index[index, :w, :w]]  # (h, w, w): one block's offsets
            groups.append((w, index, bias))
        return groups

    def forward(self, latent: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """``latent`` (B, 1 + K, D_enc) with the CLS token first (dropped here); ``restore`` (B, N)."""
        x = self.embed(latent[:, 1:])  # (B, K, dim)
        B, K, dim = x.shape
        N = restore.shape[1]
        x = torch.cat([x, self.mask_token.expand(B, N - K, dim).to(x.dtype)], dim=1)  # (B, N, dim) shuffled
        x = x.gather(1, restore[..., None].expand(B, N, dim)) + self.positions  # (B, N, dim) grid order
        for block, mask in zip(self.blocks, self.attn_masks()):
            x = block(x, mask)
        return self.head(self.norm(x))  # (B, N, P)
