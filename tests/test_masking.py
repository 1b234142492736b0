"""Masking: exact counts, structure, restore indices, determinism from the generator."""
import pytest
import torch

from gramlib.model.masking import STRATEGIES, cat_masks, make_mask, n_masked

GRIDS = [(8, 25), (1, 100), (4, 6)]


def draw(strategy, grid, ratio=0.8, seed=0, batch=16):
    g = torch.Generator().manual_seed(seed)
    return make_mask(batch, grid[0] * grid[1], ratio, g, strategy=strategy, grid=grid)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("ratio", [0.4, 0.6, 0.8, 0.9])
def test_exact_count_and_partition(strategy, grid, ratio):
    N = grid[0] * grid[1]
    mask = draw(strategy, grid, ratio)
    count = round(N * ratio)
    assert mask.masked.shape == (16, count) and mask.keep.shape == (16, N - count)
    both = torch.cat([mask.keep, mask.masked], dim=1).sort(dim=1).values
    assert torch.equal(both, torch.arange(N).expand(16, N))  # disjoint, together every patch once
    assert (mask.keep.diff(dim=1) > 0).all() and (mask.masked.diff(dim=1) > 0).all()  # ascending
    assert torch.equal(mask.binary().sum(1), torch.full((16,), float(count)))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_restore_inverts_the_shuffle(strategy):
    mask = draw(strategy, (8, 25))
    x = torch.randn(16, 200, 3)
    parts = [x.gather(1, idx[..., None].expand(-1, -1, 3)) for idx in (mask.keep, mask.masked)]
    assert torch.equal(torch.cat(parts, dim=1).gather(1, mask.restore[..., None].expand(-1, -1, 3)), x)


@pytest.mark.parametrize("ratio, full_cols", [(0.8, 20), (0.5, 12)])
def test_time_masking_masks_whole_columns(ratio, full_cols):
    mask = draw("time", (8, 25), ratio).binary().view(16, 8, 25)  # (B, rows, cols)
    whole = mask.all(dim=1).sum(dim=1)  # fully masked columns per example
    assert (whole >= full_cols).all()
    assert (mask.sum(dim=(1, 2)) == round(200 * ratio)).all()


def test_freq_masking_masks_whole_rows():
    mask = draw("freq", (8, 25), 0.8).binary().view(16, 8, 25)
    assert (mask.all(dim=2).sum(dim=1) >= 6).all()  # 160 = 6 bands x 25 + 10 single patches


def test_unstructured_is_not_structured():
    mask = draw("unstructured", (8, 25), 0.8, batch=64).binary().view(64, 8, 25)
    assert mask.all(dim=1).sum() < 64 * 5  # whole columns only by chance (p = 0.8^8 each)
    assert abs(mask.mean().item() - 0.8) < 1e-6


def test_same_seed_same_mask():
    for strategy in STRATEGIES:
        a, b, c = draw(strategy, (8, 25), seed=3), draw(strategy, (8, 25), seed=3), draw(strategy, (8, 25), seed=4)
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        assert not torch.equal(a.masked, c.masked)


def test_bad_ratio_and_strategy():
    for ratio in (0.0, 1.0, 0.001, 0.999):
        with pytest.raises(ValueError, match="mask_ratio"):
            n_masked(200, ratio)
    with pytest.raises(ValueError, match="unknown masking strategy"):
        draw("cluster", (8, 25))
    with pytest.raises(ValueError, match="does not hold"):
        make_mask(2, 100, 0.8, strategy="time", grid=(8, 25))


def test_cat_masks_keeps_each_part():
    a, b = draw("time", (8, 25), seed=1, batch=2), draw("time", (8, 25), seed=2, batch=3)
    both = cat_masks([a, b])
    assert both.keep.shape == (5, 40) and torch.equal(both.restore[2:], b.restore)
    assert torch.equal(both.binary()[:2], a.binary())
