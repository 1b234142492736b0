"""Shared test setup: one torch thread (a busy core makes multi-threaded torch 4-60x slower),
a headless matplotlib backend, and small shared fixtures."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

import pytest  # noqa: E402

try:
    import torch  # noqa: E402

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
