"""Which patches the encoder sees: pure functions of an explicit ``torch.Generator``.

Patches lie on a (n_rows, n_cols) grid -- rows are mel bands, columns are time steps -- flattened
frequency-major (token index = row * n_cols + col), as ``gramlib.model.gram`` orders them. Every strategy
masks exactly ``n_masked(N, ratio)`` of the N patches in every example, because the encoder takes a
dense (B, K, D) batch of visible tokens.

Strategies (``ModelConfig.masking``):

* ``unstructured`` -- a uniform random subset (the paper; the authors' ``gen_maskid_frame``).
* ``time`` -- whole time columns (every mel band of a 80-ms step for frame patching): as many
  random columns as fit in the count, then random single patches to reach it exactly.
* ``freq`` -- whole mel-band rows (a band over the whole crop), then random single patches.

On a 1-row grid (time patching, 1 x 100) ``time`` masking is ``unstructured`` and ``freq`` can mask no
whole row, so it falls back to single patches too.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

STRATEGIES = ("unstructured", "time", "freq")


class Mask(NamedTuple):
    """Indices into the N patches of each example; ``keep`` and ``masked`` are ascending.

    keep (B, K) visible patches; masked (B, N - K) hidden patches; restore (B, N) the inverse of
    ``cat([keep, masked], 1)``: ``cat([x_keep, x_masked], 1).gather(1, restore) == x``.
    """

    keep: torch.Tensor
    masked: torch.Tensor
    restore: torch.Tensor

    def binary(self) -> torch.Tensor:
        """(B, N) float: 1 where masked, 0 where visible."""
        out = torch.zeros(self.restore.shape, device=self.restore.device)
        return out.scatter_(1, self.masked, 1.0)


def n_masked(n_patches: int, mask_ratio: float) -> int:
    """The exact masked count, ``round(N * ratio)``; at least one patch visible and one masked."""
    count = round(n_patches * mask_ratio)
    if not 0.0 < mask_ratio < 1.0 or not 1 <= count <= n_patches - 1:
        raise ValueError(f"mask_ratio {mask_ratio} masks {count} of {n_patches} patches; it must leave at "
                         f"least one patch visible and mask at least one (0 < ratio < 1)")
    return count


def make_mask(batch: int, n_patches: int, mask_ratio: float, generator: torch.Generator | None = None, *,
              strategy: str = "unstructured", grid: tuple[int, int] | None = None,
              device: torch.device | str | None = None) -> Mask:
    """Draw one mask per example: ``Mask(keep (B, K), masked (B, N - K), restore (B, N))``.

    ``grid`` is (n_rows, n_cols) with n_rows * n_cols = ``n_patches`` (default: one row). Random numbers
    come from ``generator`` (on its own device; the global RNG when None); the indices are returned on
    ``device`` (default: the generator's).
    """
    grid = grid if grid is not None else (1, n_patches)
    if grid[0] * grid[1] != n_patches:
        raise ValueError(f"a grid of {grid[0]} x {grid[1]} patches does not hold {n_patches} patches")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown masking strategy {strategy!r}; accepted: {list(STRATEGIES)}")
    n_rows, n_cols = grid
    N = n_patches
    count = n_masked(N, mask_ratio)
    rand_device = generator.device if generator is not None else torch.device("cpu")
    score = torch.rand(batch, N, generator=generator, device=rand_device)  # (B, N) in [0, 1)
    if strategy == "time":  # whole columns first: they score above every single patch
        whole = _whole_lines(batch, n_cols, count // n_rows, generator, rand_device)  # (B, n_cols)
        score = score + 2.0 * whole[:, None, :].expand(batch, n_rows, n_cols).reshape(batch, N)
    elif strategy == "freq":
        whole = _whole_lines(batch, n_rows, count // n_cols, generator, rand_device)  # (B, n_rows)
        score = score + 2.0 * whole[:, :, None].expand(batch, n_rows, n_cols).reshape(batch, N)
    order = score.argsort(dim=1, descending=True)  # (B, N): the highest `count` scores are masked
    masked = order[:, :count].sort(dim=1).values  # (B, N - K)
    keep = order[:, count:].sort(dim=1).values  # (B, K)
    restore = torch.cat([keep, masked], dim=1).argsort(dim=1)  # (B, N)
    device = device if device is not None else rand_device
    return Mask(keep.to(device), masked.to(device), restore.to(device))


def cat_masks(masks: list[Mask]) -> Mask:
    """Masks of several batches (same N and ratio) as one, in order along the batch axis."""
    return Mask(*(torch.cat(parts, dim=0) for parts in zip(*masks)))


def _whole_lines(batch: int, n_lines: int, n_chosen: int, generator, device) -> torch.Tensor:
    """(B, n_lines) float: 1 for ``n_chosen`` lines (rows or columns) drawn without replacement."""
    rank = torch.rand(batch, n_lines, generator=generator, device=device).argsort(dim=1).argsort(dim=1)
    return (rank < n_chosen).float()
