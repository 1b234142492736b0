"""What a pre-trained MAE reconstructs: the standard picture of a 2-s crop, a seeded mask, and the
prediction on the masked patches pasted into the visible input; Figure 1's input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.formats import FEATURE_NAMES
from ..model.hear import load_embedder
from ..nathear.heldout import held_out_scene
from ..scenes.rooms import FORMATS



@torch.no_grad()
def reconstruct(model_dir, audio: np.ndarray, seed: int = 0, *, start_s: float = 0.0) -> dict:
    """The MAE on one 2-s crop of ``audio`` (A, S) (or mono (S,), duplicated to the model's channels).

    The crop starts at ``start_s`` (on the patch-column grid; padded when the audio is shorter) and is
    normalized as in training; the mask is drawn from the model's masking config with a generator
    seeded by ``seed``. Returns {"crop", "recon", "prediction" (C, T, F) float32, "mask_image" (C, T, F)
    bool (True = masked), "mask" (N,) bool (frequency-major), "grid" (n_rows, n_cols), "channels",
    "loss"}; ``recon`` is the prediction on masked patches and the input on visible ones.
    """
    embedder = load_embedder(model_dir)
    model = embedder.model
    wav = embedder.prepare(torch.from_numpy(np.atleast_2d(np.asarray(audio, np.float32)))[None])  # (1, A, S)
    start = int(start_s * embedder.sample_rate) // embedder.column_samples * embedder.column_samples
    if not 0 <= start < wav.shape[-1]:
        raise ValueError(f"start_s={start_s} is outside the audio ({wav.shape[-1] / embedder.sample_rate:.2f} s)")
    crop = embedder.chunk_features(wav, start)  # (1, C, T, F)
    out = model(crop, mask=model.draw_mask(1, torch.Generator().manual_seed(int(seed))))
    masked = out.mask.bool()  # (1, N)
    composite = torch.where(masked[..., None], out.pred, out.target)  # (1, N, P)
    mask_image = model.unpatchify(masked[..., None].expand_as(out.pred).float())[0] > 0.5  # (C, T, F)
    return {"crop": crop[0].numpy(), "recon": model.unpatchify(composite)[0].numpy(),
            "prediction": model.unpatchify(out.pred)[0].numpy(), "mask_image": mask_image.numpy(),
            "mask": masked[0].numpy(), "grid": tuple(model.grid), "channels": FEATURE_NAMES[embedder.format],
            "loss": float(out.loss), "format": embedder.format}


def figure1_scene(paths, variant: str, seed: int = 0) -> dict:
    """The input of :func:`gramlib.figures.panels.figure_1`: held-out test-room scene ``seed`` in ``variant``'s
    format (FOA geometry, W channel for GRAM-Clean), reconstructed by ``models/<variant>``."""
    fmt = load_embedder(paths.model(variant)).format
    scene = held_out_scene(paths, fmt if fmt != "clean" else "foa", index=seed, seed=seed)
    return figure1_from(scene, paths.model(variant), seed, title=f"{variant} · held-out scene: {scene['source']}, "
                        f"test room, RT60 {scene['room']['rt60_s']:.2f} s")


def figure1_from(scene: dict, model_dir, seed: int = 0, title: str | None = None) -> dict:
    """:func:`gramlib.figures.panels.figure_1`'s input for a scene of :func:`make_scene` or :func:`held_out_scene`:
    its room, the model's features of the scene (the version in the model's format; a mono model hears
    the dry source, or W), the seeded mask and the reconstruction."""
    fmt = load_embedder(model_dir).format
    audio = scene.get("dry", np.atleast_2d(scene["audio"])[0]) if fmt == "clean" else scene.get(fmt)
    if audio is None:
        raise ValueError(f"the scene has no {fmt} version (it holds {[k for k in FORMATS if k in scene]})")
    shown = reconstruct(model_dir, audio, seed=seed)
    return {"room": scene["room"], "mixture": shown["crop"], "reconstruction": shown["recon"], "grid": shown["grid"],
            "mask": shown["mask"], "channels": shown["channels"],
            "title": title or f"{Path(model_dir).name}: scene → {fmt} features → masked patches → reconstruction"}
