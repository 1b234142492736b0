"""Bootstrap intervals over test items (the statistics behind every reported score's 95 % interval)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def bootstrap_interval(score: Callable[[list[np.ndarray]], float], sizes: Sequence[int], *, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``score`` when the items of each group are resampled with replacement.

    ``sizes[g]`` items in group g (a fold's test split); ``score(indices)`` gets one index array per
    group and returns the statistic (e.g. the mean over folds of a metric). Groups are resampled
    separately, so a k-fold score keeps its k folds. NaN replicates (a metric undefined on a
    resample) are dropped; ``(nan, nan)`` if all are.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    if n_boot < 1 or not sizes or min(sizes) < 1:
        raise ValueError(f"need n_boot >= 1 and non-empty groups; got n_boot={n_boot}, sizes={list(sizes)}")
    rng = np.random.default_rng(seed)
    values = np.array([score([rng.integers(0, n, n) for n in sizes]) for _ in range(n_boot)], np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - level) / 2.0
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))
