"""A child process for tests/test_numerics.py: an embedding pass, a few GRAM training steps and the
probes, on fixed random inputs; prints one JSON line of md5 digests of their outputs and the torch
settings it ran with. Run it under the environment of gramlib.core.numerics.environment()."""
import hashlib
import json
import sys

import gramlib  # noqa: F401  (applies the pinned settings when GRAM_PINNED=1)
import numpy as np
import torch

from gramlib.core import config, numerics
from gramlib.eval import probes
from gramlib.model import hear
from gramlib.eval.probe_data import SplitData


def digest(array) -> str:
    data = array.detach().contiguous().numpy() if isinstance(array, torch.Tensor) else np.ascontiguousarray(array)
    return hashlib.md5(data.tobytes()).hexdigest()[:12]


def main() -> None:
    params = config.load_params(profile="smoke")
    out = {"settings": numerics.describe()}
    embedder = hear.random_gram(params)
    audio = torch.randn(6, 2, 64000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        emb, _ = embedder.timestamp_embeddings(audio)
    out["embeddings"] = digest(emb)
    model = embedder.model.train()
    crops = embedder.extractor(audio)[..., :200, :]
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(2):
        loss = model(crops, generator=torch.Generator().manual_seed(step)).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    out["train_step"] = digest(torch.cat([p.detach().flatten() for p in model.parameters()]))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 48)).astype(np.float32)
    y = rng.integers(0, 4, 120)
    head = probes.Head("multiclass")
    out["ridge"] = digest(probes.ridge_path(x, head.ridge_target(y, 4), probes.RIDGE_ALPHAS)[2].weight)
    cfg = config.EvaluateConfig(probe_grid="cpu", max_epochs=5, check_every=1)
    train = SplitData(x[:80], y[:80], [f"{i}" for i in range(80)])
    valid = SplitData(x[80:], y[80:], [f"{i}" for i in range(80, 120)])
    fit = probes.train_probe(probes.probe_grid("cpu")[0], train, valid, head, "top1_acc", list("abcd"), cfg, 0, [])
    out["mlp_probe"] = digest(torch.cat([p.detach().flatten() for p in fit.model.parameters()]))
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
