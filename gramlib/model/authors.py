"""The GRAM authors' released weights as a gramlib ``GRAM``: their numerics, their front end, a converter.

    extractor, model, config = load("gramt-binaural/")              # any layout of gramlib.model.authors_layout
    python -m gramlib.model.authors inspect step=500000.ckpt              # variant, prefix, what is dropped
    python -m gramlib.model.authors convert model.safetensors models/gram-authors-binaural

``load`` reads a checkpoint with :mod:`gramlib.model.authors_layout` and builds one of our ``GRAM`` models of
the detected variant, so that it computes what the authors' encoder computes
(``reference/gram-checkpoints.md`` §2-4). Where our model already agrees nothing is changed:

=============================  ===========================================================================
authors' encoder                gramlib
=============================  ===========================================================================
stored sin-cos table            copied into ``GRAM.positions`` as is (first half time, frequency-major rows);
                                its CLS row (zeros) is added to the CLS token, as the authors do
LayerNorm eps 1e-6, exact GELU  set on every encoder LayerNorm / GELU (our defaults already match)
fused q/k/v rows [q; k; v]      ``Attention.qkv`` has the same layout (heads contiguous, 1/sqrt(d) scale);
                                heads are not in the tensors: D / 64 (ViT's 64-d heads) unless given
Conv2d on (B, C, F, T)          its kernel transposed to our (B, C, T, F) patches; same token order
GRAM-M: CLS first, causal       :class:`ClsFirstMambaEncoder` (ours puts the CLS last, bidirectional)
input LayerNorm([C, F, T])      ``features.instance_norm``: the same statistics, eps 1e-5
front end                       ``FeatureExtractor`` with the runtime's log floor (float32 eps for 1/2
                                channels, 1e-6 for 7); FOA input converted by :func:`ambix_to_authors_foa`
=============================  ===========================================================================

Not the authors': the HEAR chunking and timestamps (``gramlib.model.hear``: end-aligned last chunk, column
centres, no extra all-zero chunk), and the decoder, which is not converted (its windowed-bias
indexing and patch order are not documented); the built model has a stub decoder and cannot
reconstruct. ``log_offset=1e-5`` gives the authors' *training* floor for 1/2 channels instead.

The converter writes our safetensors + JSON checkpoint (``gramlib.model.checkpoint``), its config holding
the source file's SHA-256, so the result loads with ``checkpoint.load_gram`` without this module --
for the binaural and clean GRAM-T models. An ambisonics or GRAM-M conversion records what our
config cannot yet express (``features.foa_convention``, ``model.mamba_cls_first``), so that loading it
fails by name until gramlib's config carries those options, rather than computing something else.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import torch
from torch import nn

from ..core.config import ConfigError, FeaturesConfig, ModelConfig
from .authors_layout import AuthorsCheckpoint, Variant, fail, read
from .checkpoint import CONFIG, CheckpointError, load_weights, save_checkpoint, sha256
from .features import FeatureExtractor, IV_EPS
from .gram import GRAM
from .mamba import MambaEncoder

AUTHORS_LN_EPS = 1e-6  # torchvision Encoder(norm_layer=LayerNorm(eps=1e-6))
HEAD_DIM = 64  # ViT-B: 768 / 12 heads
RUNTIME_LOG_FLOOR = {1: float(torch.finfo(torch.float32).eps), 2: float(torch.finfo(torch.float32).eps), 7: 1e-6}
MAMBA_CHUNK = 256  # mamba_ssm's chunk size (the maths does not depend on it)
STUB_DECODER = {"decoder_dim": 8, "decoder_depth": 0, "decoder_heads": 1}  # the decoder is not converted
POSITION_TOL = 1e-6  # stored table vs our formula, for a conversion (our checkpoints recompute positions)
SQRT3 = math.sqrt(3.0)  # SN3D -> N3D gain of the first-order channels


# ---------------------------------------------------------------------------------- configs and model
def features_config(variant: Variant, log_offset: float | None = None) -> FeaturesConfig:
    """The authors' front end (our defaults: 32 kHz, 1024/320, 128 HTK mels 50-16000 Hz, 200-frame chunks)."""
    return FeaturesConfig(log_offset=RUNTIME_LOG_FLOOR[variant.in_channels] if log_offset is None else log_offset)


def model_config(variant: Variant, *, heads: int | None = None, file: Path | str = "") -> ModelConfig:
    """Our ``ModelConfig`` of ``variant``; ``heads`` (GRAM-T) defaults to D / 64."""
    D = variant.embed_dim
    common = dict(patch_mels=variant.patch_mels, patch_frames=variant.patch_frames, embed_dim=D,
                  depth=variant.depth, **STUB_DECODER)
    if variant.encoder == "mamba":
        if variant.mamba_inner % D or variant.mamba_inner % variant.mamba_heads:
            raise fail(file, f"a Mamba-2 inner width {variant.mamba_inner} that is not a multiple of D {D} and of "
                             f"{variant.mamba_heads} heads is not supported")
        return ModelConfig(encoder="mamba", mamba_state=variant.mamba_state, mamba_expand=variant.mamba_inner // D,
                           mamba_headdim=variant.mamba_inner // variant.mamba_heads, mamba_chunk=MAMBA_CHUNK,
                           mamba_depth=variant.depth, mamba_bidirectional=False, **common)
    if heads is None:
        if D % HEAD_DIM:
            raise fail(file, f"the number of attention heads is not in the tensors and width {D} is not a multiple "
                             f"of {HEAD_DIM}; pass heads=")
        heads = D // HEAD_DIM
    if D % heads or int(D * (variant.mlp_dim / D)) != variant.mlp_dim:
        raise fail(file, f"width {D} with {heads} heads and MLP width {variant.mlp_dim} is not a supported block")
    return ModelConfig(encoder="transformer", heads=heads, mlp_ratio=variant.mlp_dim / D, **common)


class ClsFirstMambaEncoder(MambaEncoder):
    """GRAM-M's order: (B, 1 + K, D) with the CLS token first, scanned first, causally.

    Same parameters as :class:`~gramlib.model.mamba.MambaEncoder` (residual pre-RMSNorm layers, output
    RMSNorm): mamba_ssm's fused add + norm computes x + mixer(norm(x)) and norm_f of the last sum.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


def build_model(ckpt: AuthorsCheckpoint, *, heads: int | None = None, log_offset: float | None = None) -> GRAM:
    """Our ``GRAM`` of the checkpoint's variant, its encoder loaded strictly, with the authors' numerics."""
    variant = ckpt.variant
    model_cfg = model_config(variant, heads=heads, file=ckpt.file)
    model = GRAM(model_cfg, features_config(variant, log_offset), variant.in_channels)
    if variant.encoder == "mamba":
        model.encoder = ClsFirstMambaEncoder(model_cfg)
    own = model.state_dict()
    encoder_keys = {k for k in own if not k.startswith("decoder.")}
    if encoder_keys != set(ckpt.state):  # the layout's map and our model disagree: a gramlib bug, say so
        raise fail(ckpt.file, f"gramlib's {variant.name} has encoder keys the layout does not fill: "
                              f"{sorted(encoder_keys ^ set(ckpt.state))}")
    for key, value in ckpt.state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise fail(ckpt.file, f"{ckpt.source_keys[key]} has shape {tuple(value.shape)}; a {variant.name} needs "
                                  f"{tuple(own[key].shape)} there")
    state = {**own, **ckpt.state, "cls_token": ckpt.state["cls_token"] + ckpt.cls_position}  # their CLS input
    model.load_state_dict(state, strict=True)
    model.positions.copy_(ckpt.positions)  # (N, D): their stored table, not our formula
    for module in model.encoder.modules():
        if isinstance(module, nn.LayerNorm):
            module.eps = AUTHORS_LN_EPS
        elif isinstance(module, nn.GELU):
            module.approximate = "none"
    return model.eval()


# ---------------------------------------------------------------------------------- front end
def ambix_to_authors_foa(wav: torch.Tensor) -> torch.Tensor:
    """ambiX (ACN W, Y, Z, X; SN3D) ``(..., 4, S)`` -> the authors' simulator convention ``(..., 4, S)``.

    Their channels are [W, up, -front, right] in N3D (gram-checkpoints.md §1.3, as their later
    runtime remaps TAU data): [W, sqrt3 Z, -sqrt3 X, -sqrt3 Y].
    """
    if wav.shape[-2] != 4:
        raise ValueError(f"FOA audio must have 4 channels (ambiX W, Y, Z, X) on dim -2; got shape {tuple(wav.shape)}")
    w, y, z, x = wav.unbind(-2)
    return torch.stack([w, SQRT3 * z, -SQRT3 * x, -SQRT3 * y], dim=-2)


class AuthorsFeatures(nn.Module):
    """Waveforms ``(B, A, S)`` in gramlib's conventions -> the authors' runtime features ``(B, C, T, F)``.

    1/2 channels: our :class:`~gramlib.model.features.FeatureExtractor` (same STFT, mel bank and log,
    with the configured floor). FOA: ambiX input converted by :func:`ambix_to_authors_foa`, then
    [log-mel W, c1, c2, c3, IV1, IV2, IV3] with IV_c = mel(2 Re(conj(W) c) / (1e-6 + |W|^2 + sum |c|^2))
    in *their* channel order. A clip whose four channels are identical (mono duplicated, as
    ``gramlib.model.hear`` does) is passed unconverted, as the authors' runtime stacks mono as W = X = Y = Z.
    """

    def __init__(self, cfg: FeaturesConfig, format: str):
        super().__init__()
        self.base = FeatureExtractor(cfg, format)
        self.cfg, self.format = cfg, format

    @property
    def audio_channels(self) -> int:
        return self.base.audio_channels

    @property
    def n_channels(self) -> int:
        return self.base.n_channels

    def frames(self, n_samples: int) -> int:
        return self.base.frames(n_samples)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if self.format != "foa":
            return self.base(wav)
        if wav.ndim != 3 or wav.shape[1] != 4 or wav.shape[-1] < self.cfg.n_fft // 2 + 1:
            raise ValueError(f"foa features need waveforms shaped (batch, 4, samples >= {self.cfg.n_fft // 2 + 1}) in "
                             f"ambiX order W, Y, Z, X; got {tuple(wav.shape)}")
        mono = (wav == wav[:, :1]).all(dim=2).all(dim=1)  # (B,) W = Y = Z = X
        wav = torch.where(mono[:, None, None], wav, ambix_to_authors_foa(wav)).float()
        with torch.autocast(device_type=wav.device.type, enabled=False):
            spec = self.base.spectrogram(wav)  # (B, 4, K, T) complex
            power = spec.real.square() + spec.imag.square()
            logmel = torch.log(self.base.mel(power) + self.cfg.log_offset)  # (B, 4, F, T)
            intensity = 2 * (spec[:, :1].conj() * spec[:, 1:]).real / (power.sum(dim=1, keepdim=True) + IV_EPS)
            feats = torch.cat([logmel, self.base.mel(intensity)], dim=1)  # (B, 7, F, T)
        return feats.transpose(-1, -2).contiguous()  # (B, 7, T, F)


def check_frontend(ckpt: AuthorsCheckpoint, extractor: AuthorsFeatures, tol: float = 1e-5) -> None:
    """The file's own mel filterbank / window (when it has them) against the front end we run."""
    ours = {"window": extractor.base.spectrogram.window, "fb": extractor.base.mel.fb}
    for name, theirs in ckpt.frontend.items():
        if theirs.shape != ours[name].shape or (theirs.float() - ours[name]).abs().max() > tol:
            raise fail(ckpt.file, f"its stored mel {name} differs from the authors' documented front end (Hann 1024, "
                                  f"128 HTK mels 50-16000 Hz at 32 kHz, shape {tuple(ours[name].shape)}); this "
                                  f"file's features are not the ones gramlib computes")


# ---------------------------------------------------------------------------------- loading, converting
def load(path: Path | str, *, heads: int | None = None,
         log_offset: float | None = None) -> tuple[AuthorsFeatures, GRAM, dict]:
    """(feature extractor, model in eval mode, config) from an authors' checkpoint, as ``load_gram`` gives
    for ours; ``gramlib.model.hear.GRAMEmbedder(*load(path))`` is the HEAR API on it."""
    ckpt = read(path)
    model = build_model(ckpt, heads=heads, log_offset=log_offset)
    extractor = AuthorsFeatures(model.features_cfg, ckpt.variant.format)
    check_frontend(ckpt, extractor)
    return extractor, model, {**describe(model, ckpt), "source": source(ckpt)}


def describe(model: GRAM, ckpt: AuthorsCheckpoint) -> dict:
    return {"format": ckpt.variant.format, "in_channels": model.in_channels, "trained": True,
            "features": dataclasses.asdict(model.features_cfg), "model": dataclasses.asdict(model.cfg)}


def source(ckpt: AuthorsCheckpoint) -> dict:
    return {"file": str(ckpt.file), "sha256": sha256(ckpt.file), "container": ckpt.container, "prefix": ckpt.prefix,
            "variant": ckpt.variant.name, "dropped_keys": len(ckpt.dropped)}


def pending_options(variant: Variant) -> dict:
    """Config entries our checkpoint format does not have yet but this variant needs (section -> entries)."""
    pending = {}
    if variant.format == "foa":
        pending["features"] = {"foa_convention": "gram-authors"}
    if variant.encoder == "mamba":
        pending["model"] = {"mamba_cls_first": True}
    return pending


def convert(src: Path | str, out_dir: Path | str, *, heads: int | None = None,
            log_offset: float | None = None) -> Path:
    """Write an authors' checkpoint as our safetensors + JSON checkpoint in ``out_dir``; returns it."""
    ckpt = read(src)
    model = build_model(ckpt, heads=heads, log_offset=log_offset)
    check_frontend(ckpt, AuthorsFeatures(model.features_cfg, ckpt.variant.format))
    rebuilt = GRAM(model.cfg, model.features_cfg, model.in_channels)  # what a loader of our format builds
    gap = (rebuilt.positions - ckpt.positions).abs().max().item()
    if gap > POSITION_TOL:
        raise fail(ckpt.file, f"its stored positional table differs from the sin-cos formula by up to {gap:.3g} "
                              f"(> {POSITION_TOL}); gramlib checkpoints recompute positions, so a conversion would "
                              f"change the model: use gramlib.model.authors.load on this file instead")
    config = {"format": ckpt.variant.format, "trained": True, "source": source(ckpt),
              "converted_by": "gramlib.model.authors", "decoder": "not converted (stub): encoder-only model"}
    out = save_checkpoint(out_dir, model, config=config)
    pending = pending_options(ckpt.variant)
    if pending:
        meta = json.loads((out / CONFIG).read_text())
        for section, entries in pending.items():
            meta[section].update(entries)
        (out / CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if ckpt.variant.encoder == "mamba":
        rebuilt.encoder = ClsFirstMambaEncoder(model.cfg)
    load_weights(rebuilt, out, expected_sha256=json.loads((out / CONFIG).read_text())["weights_sha256"])
    x = torch.randn(1, model.in_channels, model.features_cfg.crop_frames, model.features_cfg.n_mels,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if not torch.allclose(rebuilt.eval().encode(x)[0], model.encode(x)[0], atol=1e-5):
            raise fail(out, "the written checkpoint does not reproduce the loaded model's embeddings")
    return out


# ---------------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gramlib.model.authors",
                                     description="Inspect or convert the GRAM authors' released checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("inspect", "print the detected variant, container, prefix and dropped keys"),
                       ("convert", "write gramlib's safetensors + config.json checkpoint")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("src", type=Path, help="model.safetensors, a Hugging Face folder, a .pt/.bin state dict or a "
                                              "Lightning .ckpt")
        if name == "convert":
            p.add_argument("out_dir", type=Path, help="folder to write model.safetensors and config.json into")
            p.add_argument("--heads", type=int, default=None, help="GRAM-T attention heads (default: width / 64)")
            p.add_argument("--log-offset", type=float, default=None,
                           help="log-mel floor (default: the authors' runtime: float32 eps for 1/2 channels, 1e-6 "
                                "for 7; 1e-5 is their training floor for 1/2 channels)")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            ckpt = read(args.src)
            print(json.dumps({**source(ckpt), "dropped": ckpt.dropped, "frontend_buffers": sorted(ckpt.frontend)},
                             indent=2))
        else:
            out = convert(args.src, args.out_dir, heads=args.heads, log_offset=args.log_offset)
            print(f"wrote {out}")
    except (CheckpointError, ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
