"""The library route, checked in whatever environment runs this: build a small checkpoint, call the HEAR
API on it, and run the `gram` command's embed and localize on WAV files -- outside any project folder.

    make check-library PYTHON_LIB=python3.13     # a fresh venv, `pip install .` (ranges), then this script
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from gramlib.core.config import FeaturesConfig, ModelConfig
from gramlib.model import checkpoint, hear
from gramlib.model.gram import build_model


def main() -> int:
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="gram-library-"))
    _, model = build_model("foa", ModelConfig(embed_dim=64, depth=2, heads=2), FeaturesConfig(), seed=0)
    ckpt = checkpoint.save_checkpoint(work / "ckpt", model, config={"format": "foa"})
    embedder = hear.load_model(str(ckpt))
    audio = torch.rand(2, 4, 32000 * 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    emb, ts = hear.get_timestamp_embeddings(audio, embedder)
    scene = hear.get_scene_embeddings(audio, embedder)
    assert emb.shape[:2] == ts.shape and scene.shape == (2, embedder.scene_embedding_size)
    assert torch.isfinite(emb).all() and torch.isfinite(scene).all()
    (work / "wavs").mkdir()
    t = np.arange(32000 * 2) / 32000
    w = np.sin(2 * np.pi * 440 * t) * np.exp(-t)  # a plane wave from +y (left): ambiX W, Y, Z, X
    sf.write(work / "wavs" / "left.wav", np.stack([w, w, 0 * w, 0 * w], 1).astype(np.float32), 32000)
    gram = [sys.executable, "-m", "gramlib.interactive.cli"]
    run = dict(cwd=work, capture_output=True, text=True, check=True)
    out = subprocess.run(gram + ["embed", str(ckpt), "wavs", "emb"], **run).stdout
    assert np.load(work / "emb" / "left.npy").shape == (embedder.scene_embedding_size,), out
    found = json.loads(subprocess.run(gram + ["localize", "wavs/left.wav", "--json"], **run).stdout)
    assert abs(found["azimuth_deg"] - 90.0) < 5.0, found
    print(f"library route OK: Python {sys.version.split()[0]}, torch {torch.__version__}, numpy {np.__version__}; "
          f"HEAR API {tuple(emb.shape)} every {float(ts[0, 1] - ts[0, 0]):.0f} ms; gram embed {out.strip()!r}; "
          f"gram localize: azimuth {found['azimuth_deg']:.1f} deg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
