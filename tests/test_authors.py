"""The authors' released checkpoint layouts (gramlib.model.authors_layout, gramlib.model.authors).

The weights cannot be downloaded here, so every file is written by these tests in the authors' layouts,
from the key lists and shapes of ``reference/gram-checkpoints.md`` §2, out of small models of ours (the
same tensors, renamed and reshaped), or as meta tensors at paper size.
"""
import hashlib
import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import torchaudio
from safetensors.torch import load_file, save_file
from torch import nn

from gramlib.model import authors, authors_layout, checkpoint, hear
from gramlib.model.authors_layout import AuthorsCheckpointError
from gramlib.core.config import ConfigError, FeaturesConfig, ModelConfig
from gramlib.model.mamba import MambaLayer
from gramlib.model.gram import GRAM, sincos_2d

torch.set_num_threads(1)
D, DEPTH, HEADS = 32, 2, 2
PATCH = {"frame": (16, 8), "time": (128, 2)}  # (mels, frames)
CHANNELS = {"clean": 1, "binaural": 2, "foa": 7}
FB = torchaudio.functional.melscale_fbanks(513, 50.0, 16000.0, 128, 32000, norm=None, mel_scale="htk")  # (513, 128)
EPS32 = torch.finfo(torch.float32).eps


def ours(fmt="binaural", patching="frame", *, encoder="transformer", seed=0) -> GRAM:
    """A small GRAM of ours with every parameter perturbed (no LayerNorm left at 1 / 0)."""
    torch.manual_seed(seed)
    pm, pf = PATCH[patching]
    mamba = dict(mamba_state=16, mamba_expand=2, mamba_headdim=16, mamba_depth=DEPTH, mamba_bidirectional=False)
    cfg = ModelConfig(encoder=encoder, embed_dim=D, depth=DEPTH, heads=HEADS, patch_mels=pm, patch_frames=pf,
                      decoder_dim=16, decoder_depth=1, decoder_heads=2, **mamba)
    model = GRAM(cfg, FeaturesConfig(), CHANNELS[fmt])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def extras(model: GRAM, prefix_mamba=False) -> dict:
    """Decoder, head and mel buffers as the authors' files hold them (dropped by the loader)."""
    blocks = "decoder_v" if prefix_mamba else "decoder_blocks"
    return {"mask_token": torch.randn(1, 1, 16), "decoder_pos_embed": torch.zeros(1, model.n_patches, 16),
            "decoder_embed.weight": torch.randn(16, model.cfg.embed_dim), "decoder_embed.bias": torch.zeros(16),
            f"{blocks}.0.norm1.weight": torch.ones(16), f"{blocks}.0.wmha.qkv.weight": torch.randn(48, 16),
            f"{blocks}.0.wmha.attn_heads.0.relative_position_bias_table": torch.zeros(3, 1),
            f"{blocks}.0.wmha.attn_heads.0.relative_position_index": torch.zeros(2, 2, dtype=torch.long),
            "decoder_norm.weight": torch.ones(16), "decoder_norm.bias": torch.zeros(16),
            "spec_pred.0.weight": torch.randn(model.patch_dim, 16), "spec_pred.0.bias": torch.zeros(model.patch_dim),
            "melspec.spectrogram.window": torch.hann_window(1024), "melspec.mel_scale.fb": FB}


def authors_state(model: GRAM, table=None) -> dict:
    """Our GRAM-T's tensors under the authors' names (§2.1; the Lightning names: no prefix)."""
    width = model.cfg.embed_dim
    table = torch.cat([torch.zeros(1, width), model.positions]) if table is None else table  # (1 + N, D), CLS row 0
    sd = {"cls_token": model.cls_token, "encoder.pos_embedding": table[None]}
    for i, b in enumerate(model.encoder.blocks):
        p = f"encoder.layers.encoder_layer_{i}."
        sd.update({p + "ln_1.weight": b.norm1.weight, p + "ln_1.bias": b.norm1.bias,
                   p + "self_attention.in_proj_weight": b.attn.qkv.weight,
                   p + "self_attention.in_proj_bias": b.attn.qkv.bias,
                   p + "self_attention.out_proj.weight": b.attn.proj.weight,
                   p + "self_attention.out_proj.bias": b.attn.proj.bias,
                   p + "ln_2.weight": b.norm2.weight, p + "ln_2.bias": b.norm2.bias,
                   p + "mlp.0.weight": b.mlp[0].weight, p + "mlp.0.bias": b.mlp[0].bias,
                   p + "mlp.3.weight": b.mlp[2].weight, p + "mlp.3.bias": b.mlp[2].bias})
    sd.update({"encoder.ln.weight": model.encoder.norm.weight, "encoder.ln.bias": model.encoder.norm.bias,
               "patch_embed.proj.weight": model.patch_embed.weight.transpose(2, 3),  # (D, C, F, T), as they convolve
               "patch_embed.proj.bias": model.patch_embed.bias, **extras(model)})
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def mamba_state(model: GRAM) -> dict:
    """Our (causal) Mamba GRAM's tensors under GRAM-M's names (§2.5)."""
    table = torch.cat([torch.zeros(1, D), model.positions])
    sd = {"cls_token": model.cls_token, "encoder_pos_embed": table[None],
          "patch_embed.proj.weight": model.patch_embed.weight.transpose(2, 3),
          "patch_embed.proj.bias": model.patch_embed.bias,
          "encoder_norm.weight": torch.ones(D), "encoder_norm.bias": torch.zeros(D),
          "encoder_v.norm_f.weight": model.encoder.norm.weight, **extras(model, prefix_mamba=True)}
    for i, layer in enumerate(model.encoder.layers):
        p, m = f"encoder_v.layers.{i}.", layer.mixer
        sd.update({p + "norm.weight": layer.norm.weight, p + "mixer.in_proj.weight": m.in_proj.weight,
                   p + "mixer.conv1d.weight": m.conv.weight, p + "mixer.conv1d.bias": m.conv.bias,
                   p + "mixer.dt_bias": m.dt_bias, p + "mixer.A_log": m.A_log, p + "mixer.D": m.D,
                   p + "mixer.norm.weight": m.norm.weight, p + "mixer.out_proj.weight": m.out_proj.weight})
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def write(sd: dict, path, container="safetensors", prefix="model."):
    """``sd`` written as the authors' containers hold it, under ``prefix`` (with the runtime's mel buffers
    beside ``model.`` as RuntimeGRAMT.state_dict() has them)."""
    sd = {prefix + k: v for k, v in sd.items()}
    if prefix.endswith("model."):
        root = prefix[:-len("model.")]
        sd.update({root + "mel_spec.melspec.spectrogram.window": torch.hann_window(1024),
                   root + "mel_spec.melspec.mel_scale.fb": FB.clone()})
    if container == "hub":
        path.mkdir()
        save_file(sd, str(path / "model.safetensors"))
    elif container == "safetensors":
        save_file(sd, str(path))
    elif container == "state_dict":
        torch.save(sd, path)
    else:  # a Lightning checkpoint, with the loop and optimizer state it also holds
        torch.save({"epoch": 3, "global_step": 500000, "pytorch-lightning_version": "2.6.6", "state_dict": sd,
                    "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]}],
                    "lr_schedulers": [], "callbacks": {}}, path)
    return path


def crops(C, n=2, seed=1):
    return torch.randn(n, C, 200, 128, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("container,prefix,name", [
    ("safetensors", "", "w.safetensors"), ("safetensors", "model.", "w.safetensors"),
    ("safetensors", "encoder.", "w.safetensors"), ("safetensors", "encoder.model.", "model.bin"),
    ("hub", "encoder.model.", "gramt-binaural"), ("hub", "model.", "gramt-binaural"),
    ("state_dict", "model.", "runtime.pt"), ("state_dict", "", "w.bin"), ("lightning", "", "step=500000.ckpt"),
    ("lightning", "model.", "step=500000.ckpt")])
def test_every_container_and_prefix_gives_identical_embeddings(tmp_path, container, prefix, name):
    model = ours()
    path = write(authors_state(model), tmp_path / name, container, prefix)
    extractor, loaded, config = authors.load(path, heads=HEADS)
    x = crops(2)
    with torch.no_grad():
        assert torch.equal(loaded.timestamp_embeddings(x), model.timestamp_embeddings(x))
        assert torch.equal(loaded.encode(x)[1], model.encode(x)[1])
    src = config["source"]
    assert src["prefix"] == prefix and src["container"] == ("safetensors" if container == "hub" else container)
    assert src["dropped_keys"] == len(extras(model)) + (2 if prefix.endswith("model.") else 0)


@pytest.mark.parametrize("fmt,patching", [("binaural", "time"), ("foa", "frame"), ("foa", "time"), ("clean", "frame")])
def test_every_variant_round_trips(tmp_path, fmt, patching):
    model = ours(fmt, patching)
    _, loaded, config = authors.load(write(authors_state(model), tmp_path / "w.safetensors"), heads=HEADS)
    assert config["format"] == fmt and (loaded.cfg.patch_mels, loaded.cfg.patch_frames) == PATCH[patching]
    x = crops(CHANNELS[fmt])
    with torch.no_grad():
        assert torch.equal(loaded.timestamp_embeddings(x), model.timestamp_embeddings(x))


def test_older_torchvision_mlp_names_are_read(tmp_path):
    model = ours()
    sd = {k.replace(".mlp.0.", ".mlp.linear_1.").replace(".mlp.3.", ".mlp.linear_2."): v
          for k, v in authors_state(model).items()}
    _, loaded, _ = authors.load(write(sd, tmp_path / "old.safetensors"), heads=HEADS)
    x = crops(2)
    with torch.no_grad():
        assert torch.equal(loaded.timestamp_embeddings(x), model.timestamp_embeddings(x))


def test_authors_numerics_are_set():
    model = authors.build_model(authors_layout.from_state(authors_state(ours()), "memory", "mem"), heads=HEADS)
    norms = [m for m in model.encoder.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 * DEPTH + 1 and all(m.eps == 1e-6 for m in norms)
    assert all(m.approximate == "none" for m in model.encoder.modules() if isinstance(m, nn.GELU))
    assert model.features_cfg.log_offset == EPS32 and model.cfg.heads == HEADS


# ---------------------------------------------------------------------------------- the authors' computation
def authors_encoder(sd: dict, x: torch.Tensor, heads: int) -> torch.Tensor:
    """The authors' per-chunk encoder (§3.6, §4) from their tensors: Conv2d on (B, C, F, T), + table,
    CLS + row 0, torchvision's pre-norm blocks with torch's own nn.MultiheadAttention, final LN."""
    w = sd["patch_embed.proj.weight"]
    tokens = F.conv2d(x.transpose(-1, -2), w, sd["patch_embed.proj.bias"], stride=tuple(w.shape[2:]))
    tokens = tokens.flatten(2).transpose(1, 2)  # (B, N, D), n = f * Tp + t
    table = sd["encoder.pos_embedding"]
    h = torch.cat([(sd["cls_token"] + table[:, :1]).expand(len(x), -1, -1), tokens + table[:, 1:]], dim=1)
    for i in range(DEPTH):
        p = f"encoder.layers.encoder_layer_{i}."
        mha = nn.MultiheadAttention(D, heads, batch_first=True)
        mha.load_state_dict({k: sd[p + "self_attention." + k] for k in
                             ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")})
        y = F.layer_norm(h, (D,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], eps=1e-6)
        h = h + mha(y, y, y, need_weights=False)[0]
        y = F.layer_norm(h, (D,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], eps=1e-6)
        h = h + F.linear(F.gelu(F.linear(y, sd[p + "mlp.0.weight"], sd[p + "mlp.0.bias"])),
                         sd[p + "mlp.3.weight"], sd[p + "mlp.3.bias"])
    return F.layer_norm(h, (D,), sd["encoder.ln.weight"], sd["encoder.ln.bias"], eps=1e-6)


def test_hand_built_table_and_one_tokens_encoding(tmp_path):
    table = torch.randn(201, D, generator=torch.Generator().manual_seed(5))  # not the formula; CLS row not zero
    sd = authors_state(ours(), table=table)
    _, loaded, _ = authors.load(write(sd, tmp_path / "w.safetensors"), heads=HEADS)
    x = crops(2)
    f, t = 3, 7  # mel band 3 (mels 48-63), time step 7 (frames 56-63): token 3 * 25 + 7
    patch = x[:, :, 8 * t:8 * t + 8, 16 * f:16 * f + 16].transpose(-1, -2)  # (B, C, 16 mels, 8 frames)
    want = torch.einsum("dcft,bcft->bd", sd["patch_embed.proj.weight"], patch) + sd["patch_embed.proj.bias"]
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed(x)[:, f * 25 + t], want + table[1 + f * 25 + t], rtol=0, atol=1e-5)
        tokens, cls = loaded.encode(x)
        ref = authors_encoder(sd, x, HEADS)
    torch.testing.assert_close(tokens, ref[:, 1:], rtol=0, atol=2e-5)
    torch.testing.assert_close(cls, ref[:, 0], rtol=0, atol=2e-5)


def test_our_positions_are_the_authors_formula():
    """§2.3: row (f, t), w_k = 10000^(-k / (D/4)): [sin t w, cos t w, sin f w, cos f w]; first half time."""
    d = 768
    w = 10000.0 ** (-torch.arange(d // 4, dtype=torch.float64) / (d // 4))
    f, t = torch.meshgrid(torch.arange(8, dtype=torch.float64), torch.arange(25, dtype=torch.float64), indexing="ij")
    f, t = f.flatten()[:, None], t.flatten()[:, None]
    want = torch.cat([(t * w).sin(), (t * w).cos(), (f * w).sin(), (f * w).cos()], dim=1).float()
    table = sincos_2d(8, 25, d)
    torch.testing.assert_close(table, want, rtol=0, atol=1e-6)
    assert abs(table[1, 0] - math.sin(1)) < 1e-6 and abs(table[1, 192] - math.cos(1)) < 1e-6  # row (f=0, t=1)


def test_gram_m_maps_onto_a_cls_first_causal_mamba(tmp_path):
    model = ours(encoder="mamba")
    _, loaded, config = authors.load(write(mamba_state(model), tmp_path / "m.ckpt", "lightning", ""))
    assert isinstance(loaded.encoder, authors.ClsFirstMambaEncoder) and "GRAM-M" in config["source"]["variant"]
    assert (loaded.cfg.mamba_state, loaded.cfg.mamba_headdim, loaded.cfg.mamba_bidirectional) == (16, 16, False)
    x = crops(2)
    with torch.no_grad():
        h = torch.cat([model.cls_token.expand(2, -1, -1), model.embed(x)], dim=1)  # CLS first, no reordering
        for layer in model.encoder.layers:
            h = layer(h)
        h = model.encoder.norm(h)
        tokens, cls = loaded.encode(x)
    torch.testing.assert_close(tokens, h[:, 1:], rtol=0, atol=1e-5)
    torch.testing.assert_close(cls, h[:, 0], rtol=0, atol=1e-5)


def test_hear_api_on_an_authors_checkpoint(tmp_path):
    embedder = hear.GRAMEmbedder(*authors.load(write(authors_state(ours()), tmp_path / "w.safetensors"), heads=HEADS))
    audio = torch.rand(2, 2, 32000 * 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    emb, ts = hear.get_timestamp_embeddings(audio, embedder)
    assert emb.shape == (2, ts.shape[1], 8 * D) and torch.isfinite(emb).all()
    torch.testing.assert_close(ts[0, 1:] - ts[0, :-1], torch.full((ts.shape[1] - 1,), 80.0))
    assert hear.get_scene_embeddings(audio, embedder).shape == (2, 8 * D)
    assert hear.get_cls_embeddings(audio, embedder).shape == (2, D)


@pytest.mark.parametrize("container", ["hub", "safetensors", "lightning"])
def test_load_model_takes_an_authors_checkpoint_by_path(tmp_path, container):
    """The HEAR module's own load_model reads the authors' files: the same embeddings as authors.load."""
    path = write(authors_state(ours()), tmp_path / f"w.{container}", container=container)
    if container == "hub":  # the hub's config.json ({"in_channels", "strategy"}) is not ours: not read
        (path / "config.json").write_text('{"in_channels": 2, "strategy": "raw"}')
    audio = torch.rand(1, 2, 32000 * 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    loaded = hear.load_model(str(path), heads=HEADS)
    direct = hear.GRAMEmbedder(*authors.load(path, heads=HEADS))
    assert loaded.config["source"]["sha256"] == direct.config["source"]["sha256"]
    torch.testing.assert_close(hear.get_scene_embeddings(audio, loaded), hear.get_scene_embeddings(audio, direct),
                               rtol=0, atol=0)


def test_load_model_tells_ours_from_theirs(tmp_path):
    ckpt = checkpoint.save_checkpoint(tmp_path / "ours", ours(), config={"format": "binaural"})
    assert "source" not in hear.load_model(str(ckpt)).config  # our folder: load_gram
    assert "source" not in hear.load_model(str(ckpt / "model.safetensors")).config
    with pytest.raises(checkpoint.CheckpointError, match="no GRAM checkpoint at"):
        hear.load_model(str(tmp_path / "absent"))


def paper_gram(fmt="binaural", seed=0) -> GRAM:
    """A GRAM-T of ours at the paper's size (768 wide, 12 blocks, 12 heads), random weights."""
    torch.manual_seed(seed)
    cfg = ModelConfig(embed_dim=768, depth=12, heads=12, patch_mels=16, patch_frames=8,
                      decoder_dim=16, decoder_depth=1, decoder_heads=2)
    return GRAM(cfg, FeaturesConfig(), CHANNELS[fmt]).eval()


@pytest.mark.slow
def test_official_validator_on_a_paper_size_authors_checkpoint(tmp_path):
    """hearvalidator passes on gramlib.model.hear loading a paper-size checkpoint in the authors' hub layout."""
    path = write(authors_state(paper_gram()), tmp_path / "gramt-binaural", container="hub")
    embedder = hear.load_model(str(path))
    assert embedder.timestamp_embedding_size == 6144 and embedder.column_samples == 2560  # 8 rows x 768, 80 ms
    proc = subprocess.run([sys.executable, "-m", "gramlib.eval.validate", "gramlib.model.hear", "-m", str(path),
                           "-d", "cpu"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "Looks good!" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


# ---------------------------------------------------------------------------------- variants at paper size
def paper_shapes(C=2, patching="frame") -> dict:
    """Every key of the authors' GRAM-T at paper size (§2.1, §2.4), Lightning names, as meta tensors."""
    pm, pf = PATCH[patching]
    N = (128 // pm) * (200 // pf)
    s = {"cls_token": (1, 1, 768), "mask_token": (1, 1, 512), "decoder_pos_embed": (1, N, 512),
         "encoder.pos_embedding": (1, N + 1, 768)}
    for i in range(12):
        p = f"encoder.layers.encoder_layer_{i}."
        s.update({p + "ln_1.weight": (768,), p + "ln_1.bias": (768,), p + "self_attention.in_proj_weight": (2304, 768),
                  p + "self_attention.in_proj_bias": (2304,), p + "self_attention.out_proj.weight": (768, 768),
                  p + "self_attention.out_proj.bias": (768,), p + "ln_2.weight": (768,), p + "ln_2.bias": (768,),
                  p + "mlp.0.weight": (3072, 768), p + "mlp.0.bias": (3072,), p + "mlp.3.weight": (768, 3072),
                  p + "mlp.3.bias": (768,)})
    s.update({"encoder.ln.weight": (768,), "encoder.ln.bias": (768,), "patch_embed.proj.weight": (768, C, pm, pf),
              "patch_embed.proj.bias": (768,), "decoder_embed.weight": (512, 768), "decoder_embed.bias": (512,)})
    for j in range(8):
        p = f"decoder_blocks.{j}."
        s.update({p + "norm1.weight": (512,), p + "norm1.bias": (512,), p + "wmha.qkv.weight": (1536, 512),
                  p + "wmha.qkv.bias": (1536,), p + "wmha.proj.weight": (512, 512), p + "wmha.proj.bias": (512,),
                  p + "norm2.weight": (512,), p + "norm2.bias": (512,), p + "mlp.fc1.weight": (2048, 512),
                  p + "mlp.fc1.bias": (2048,), p + "mlp.fc2.weight": (512, 2048), p + "mlp.fc2.bias": (512,)})
        for h, w in enumerate([2, 5, 10, 25, 50, 100] if patching == "frame" else [2, 5, 10, 25, 50]):
            s[p + f"wmha.attn_heads.{h}.relative_position_bias_table"] = (2 * w - 1, 1)
            s[p + f"wmha.attn_heads.{h}.relative_position_index"] = (w, w)
    s.update({"spec_pred.0.weight": (pm * pf * C, 512), "spec_pred.0.bias": (pm * pf * C,),
              "melspec.spectrogram.window": (1024,), "melspec.mel_scale.fb": (513, 128),
              "decoder_norm.weight": (512,), "decoder_norm.bias": (512,)})
    return {k: torch.empty(v, device="meta") for k, v in s.items()}


@pytest.mark.parametrize("C,patching,fmt", [(2, "frame", "binaural"), (2, "time", "binaural"), (7, "frame", "foa"),
                                            (7, "time", "foa"), (1, "frame", "clean")])
def test_paper_size_variants_are_detected(C, patching, fmt):
    shapes = paper_shapes(C, patching)
    runtime = {"model." + k: v for k, v in shapes.items()} | {
        "mel_spec.melspec.spectrogram.window": torch.empty(1024, device="meta"),
        "mel_spec.melspec.mel_scale.fb": torch.empty(513, 128, device="meta")}
    assert len(runtime) == (354 if patching == "frame" else 338)  # the RuntimeGRAMT key counts of §2.1 / the check
    ckpt = authors_layout.from_state(runtime, "meta", "paper")
    v = ckpt.variant
    assert (v.encoder, v.format, v.patching) == ("transformer", fmt, patching)
    assert (v.embed_dim, v.depth, v.mlp_dim) == (768, 12, 3072)
    assert len(ckpt.state) == 149 and len(ckpt.dropped) == len(runtime) - 150  # 150 encoder tensors, with the table
    cfg = authors.model_config(v)
    assert (cfg.heads, cfg.mlp_ratio, cfg.embed_dim) == (12, 4.0, 768)
    encoder = sum(t.numel() for k, t in ckpt.state.items() if k.startswith("encoder."))
    table = ckpt.positions.numel() + ckpt.cls_position.numel()
    assert encoder + table == 12 * 7_087_872 + 1_536 + shapes["encoder.pos_embedding"].numel()
    assert patching == "time" or encoder + table == 85_210_368  # §2.1


def test_paper_size_gram_m_is_detected():
    s = {"patch_embed.proj.weight": (768, 2, 16, 8), "patch_embed.proj.bias": (768,),
         "encoder_pos_embed": (1, 201, 768), "cls_token": (1, 1, 768),
         "encoder_norm.weight": (768,), "encoder_norm.bias": (768,),
         "encoder_v.norm_f.weight": (768,), "mask_token": (1, 1, 512), "decoder_embed.weight": (512, 768),
         "decoder_v.0.wmha.qkv.weight": (1536, 512), "decoder_pos_embed": (1, 200, 512), "spec_pred.0.weight": (256, 512)}
    for i in range(24):
        p = f"encoder_v.layers.{i}."
        s.update({p + "norm.weight": (768,), p + "mixer.in_proj.weight": (3352, 768),
                  p + "mixer.conv1d.weight": (1792, 1, 4), p + "mixer.conv1d.bias": (1792,),
                  p + "mixer.dt_bias": (24,), p + "mixer.A_log": (24,),
                  p + "mixer.D": (24,), p + "mixer.norm.weight": (1536,), p + "mixer.out_proj.weight": (768, 1536)})
    ckpt = authors_layout.from_state({k: torch.empty(v, device="meta") for k, v in s.items()}, "meta", "paper-m")
    v = ckpt.variant
    assert (v.encoder, v.depth, v.mamba_inner, v.mamba_heads, v.mamba_state) == ("mamba", 24, 1536, 24, 128)
    cfg = authors.model_config(v)
    assert (cfg.mamba_expand, cfg.mamba_headdim, cfg.mamba_state, cfg.mamba_bidirectional) == (2, 64, 128, False)
    per_layer = sum(t.numel() for k, t in ckpt.state.items() if k.startswith("encoder.layers.0."))
    assert per_layer == 3_765_320 == sum(p.numel() for p in MambaLayer(cfg).parameters())  # §2.5


# ---------------------------------------------------------------------------------- bad input
def one_line(err, *needles):
    text = str(err.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text


def test_truncated_and_foreign_files(tmp_path):
    good = write(authors_state(ours()), tmp_path / "w.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(cut)
    one_line(err, "cut.safetensors", "safetensors")
    text = tmp_path / "notes.safetensors"
    text.write_text("not weights")
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(text)
    one_line(err, "notes.safetensors", "expected")
    zipped = write(authors_state(ours()), tmp_path / "w.pt", "state_dict")
    (tmp_path / "cut.pt").write_bytes(zipped.read_bytes()[:4000])
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(tmp_path / "cut.pt")
    one_line(err, "cut.pt", "torch checkpoint")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(tmp_path / "empty")
    one_line(err, "empty", "model.safetensors")


class Opaque:  # an object weights_only=True will not unpickle
    pass


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "full.ckpt"
    torch.save({"state_dict": {"model." + k: v for k, v in authors_state(ours()).items()}, "hparams": Opaque()}, path)
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(path)
    one_line(err, "full.ckpt", "weights_only=True")


def test_unknown_architecture(tmp_path):
    timm_like = {"patch_embed.proj.weight": torch.zeros(D, 2, 16, 8), "blocks.0.attn.qkv.weight": torch.zeros(3 * D, D)}
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(write(timm_like, tmp_path / "audiomae.safetensors", prefix=""))
    one_line(err, "audiomae.safetensors", "unknown architecture", "encoder_layer")
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(write({"fc.weight": torch.zeros(2, 2)}, tmp_path / "mlp.safetensors", prefix=""))
    one_line(err, "mlp.safetensors", "unknown architecture", "patch_embed.proj.weight")


@pytest.mark.parametrize("shape,needle", [((D, 3, 16, 8), "C = 1 (clean), 2 (binaural) or 7"),
                                          ((D, 2, 16, 16), "(D, C, 16, 8)")])
def test_a_shape_matching_no_variant(tmp_path, shape, needle):
    sd = authors_state(ours())
    sd["patch_embed.proj.weight"] = torch.zeros(shape)
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(write(sd, tmp_path / "odd.safetensors"), heads=HEADS)
    one_line(err, "odd.safetensors", needle)


def test_a_table_for_the_other_patching(tmp_path):
    sd = authors_state(ours())
    sd["encoder.pos_embedding"] = torch.zeros(1, 101, D)
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(write(sd, tmp_path / "w.safetensors"), heads=HEADS)
    one_line(err, "model.encoder.pos_embedding", "(1, 201, 32)")


def test_missing_unexpected_and_misshapen_keys(tmp_path):
    sd = authors_state(ours())
    del sd["encoder.layers.encoder_layer_1.ln_2.bias"]
    sd["encoder.layers.encoder_layer_0.extra.weight"] = torch.zeros(2)
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(write(sd, tmp_path / "w.safetensors"), heads=HEADS)
    one_line(err, "w.safetensors", "missing key(s) [model.encoder.layers.encoder_layer_1.ln_2.bias]",
             "unexpected key(s) [model.encoder.layers.encoder_layer_0.extra.weight]")
    sd = authors_state(ours())
    sd["encoder.layers.encoder_layer_0.self_attention.in_proj_bias"] = torch.zeros(3 * D + 1)
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(write(sd, tmp_path / "v.safetensors"), heads=HEADS)
    one_line(err, "model.encoder.layers.encoder_layer_0.self_attention.in_proj_bias", f"({3 * D},)")
    stray = {"model." + k: v for k, v in authors_state(ours()).items()} | {"optimizer.lr": torch.zeros(1)}
    save_file(stray, str(tmp_path / "s.safetensors"))
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(tmp_path / "s.safetensors", heads=HEADS)
    one_line(err, "outside the model prefix", "optimizer.lr")


def test_a_foreign_front_end_is_refused(tmp_path):
    sd = authors_state(ours())
    sd["melspec.mel_scale.fb"] = torchaudio.functional.melscale_fbanks(513, 0.0, 16000.0, 128, 32000, norm="slaney")
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(write(sd, tmp_path / "w.safetensors", prefix=""), heads=HEADS)
    one_line(err, "w.safetensors", "mel fb")


def test_heads_are_needed_when_the_width_does_not_say(tmp_path):
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.load(write(authors_state(ours()), tmp_path / "w.safetensors"))
    one_line(err, "heads")


# ---------------------------------------------------------------------------------- converter
def test_convert_loads_without_the_layout_code(tmp_path):
    model = ours()
    src = write(authors_state(model), tmp_path / "step=500000.ckpt", "lightning", "")
    out = authors.convert(src, tmp_path / "converted", heads=HEADS)
    extractor, loaded, config = checkpoint.load_gram(out)
    assert config["source"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert config["source"]["container"] == "lightning" and config["features"]["log_offset"] == EPS32
    x = crops(2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.timestamp_embeddings(x), model.timestamp_embeddings(x), rtol=0, atol=1e-6)
    wav = torch.rand(1, 2, 16000, generator=torch.Generator().manual_seed(0)) - 0.5
    assert torch.equal(extractor(wav), authors.AuthorsFeatures(loaded.features_cfg, "binaural")(wav))


def test_convert_command_line(tmp_path):
    src = write(authors_state(ours()), tmp_path / "w.safetensors")
    proc = subprocess.run([sys.executable, "-m", "gramlib.model.authors", "convert", str(src), str(tmp_path / "out"),
                           "--heads", str(HEADS)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "config.json").read_text())["source"]["variant"].startswith("GRAM-T binaural")
    assert authors.main(["convert", str(tmp_path / "nothing.pt"), str(tmp_path / "o2")]) == 2
    with pytest.raises(SystemExit) as stop:
        authors.main(["convert", "--help"])
    assert stop.value.code == 0


def test_inspect_command(tmp_path, capsys):
    assert authors.main(["inspect", str(write(authors_state(ours()), tmp_path / "w.safetensors"))]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["prefix"] == "model." and "model.mask_token" in report["dropped"]
    assert report["frontend_buffers"] == ["fb", "window"]


def test_convert_refuses_a_table_our_format_cannot_hold(tmp_path):
    sd = authors_state(ours(), table=torch.randn(201, D))
    with pytest.raises(AuthorsCheckpointError) as err:
        authors.convert(write(sd, tmp_path / "w.safetensors"), tmp_path / "out", heads=HEADS)
    one_line(err, "positional table", "gramlib.model.authors.load")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt,encoder,pending", [("foa", "transformer", "foa_convention"),
                                                 ("binaural", "mamba", "mamba_cls_first")])
def test_conversions_our_config_cannot_express_yet_fail_by_name(tmp_path, fmt, encoder, pending):
    model = ours(fmt, encoder=encoder)
    sd = mamba_state(model) if encoder == "mamba" else authors_state(model)
    out = authors.convert(write(sd, tmp_path / "w.safetensors"), tmp_path / "out", heads=HEADS)
    with pytest.raises(ConfigError, match=pending):
        checkpoint.load_gram(out)


# ---------------------------------------------------------------------------------- front end and FOA
def test_binaural_front_end_is_the_runtimes():
    """§3.3: torchaudio MelSpectrogram (1024 / 320, 50-16000 Hz, 128 HTK mels, power 2), log(mel + float32 eps)."""
    wav = torch.rand(1, 2, 32000, generator=torch.Generator().manual_seed(0)) - 0.5
    mel = torchaudio.transforms.MelSpectrogram(32000, n_fft=1024, win_length=1024, hop_length=320, f_min=50.0,
                                               f_max=16000.0, n_mels=128, power=2.0)
    want = torch.log(mel(wav) + EPS32).transpose(-1, -2)  # (1, 2, 101, 128)
    got = authors.AuthorsFeatures(authors.features_config(authors_layout.Variant("transformer", 2, 16, 8, D, 2)),
                                  "binaural")(wav)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


def foa_features(sources: torch.Tensor) -> torch.Tensor:
    """The authors' 7-channel extractor (§3.4) on signals already in their convention [W, c1, c2, c3]."""
    spec = torchaudio.transforms.Spectrogram(n_fft=1024, win_length=1024, hop_length=320, power=None)(sources)
    mel = torchaudio.transforms.MelScale(128, 32000, 50.0, 16000.0, 513, norm=None, mel_scale="htk")
    energy = 1e-6 + spec.abs().square().sum(dim=1, keepdim=True)
    iv = 2 * (spec[:, :1].conj() * spec[:, 1:]).real / energy
    return torch.cat([torch.log(mel(spec.abs().square()) + 1e-6), mel(iv)], dim=1).transpose(-1, -2)


def plane_wave(direction, seconds=0.5, seed=0):
    """An anechoic plane wave of white noise from unit ``direction`` (x front, y left, z up) in ambiX."""
    s = torch.randn(1, int(32000 * seconds), generator=torch.Generator().manual_seed(seed)) * 0.1
    x, y, z = direction
    return torch.stack([s, y * s, z * s, x * s], dim=1)  # (1, 4, S): W, Y, Z, X (SN3D)


FOA = authors.AuthorsFeatures(FeaturesConfig(log_offset=1e-6), "foa")


@pytest.mark.parametrize("direction,axis,sign", [((0, 1, 0), 2, -1), ((1, 0, 0), 1, -1), ((0, 0, 1), 0, 1)])
def test_plane_wave_intensity_points_where_the_authors_convention_says(direction, axis, sign):
    """Their channels 1-3 are up, -front, right (N3D): a source on the left (+y) gives IV3 = -sqrt3 / 2 per bin."""
    feats = FOA(plane_wave(direction))  # (1, 7, T, 128)
    iv = feats[0, 4:].mean(dim=1) / FB.sum(dim=0)  # (3, 128): per mel band, in units of the band's weight
    want = torch.zeros(3, 128)
    want[axis] = sign * math.sqrt(3) / 2  # 2 sqrt3 |W|^2 / (|W|^2 + 3 |W|^2)
    torch.testing.assert_close(iv, want, rtol=0, atol=1e-3)
    torch.testing.assert_close(feats[0, 1 + axis], feats[0, 0] + math.log(3), rtol=0, atol=1e-3)  # N3D gain


def test_foa_front_end_matches_the_authors_extractor_and_keeps_mono_unconverted():
    wav = plane_wave((0.6, 0.0, 0.8)) + plane_wave((0.0, -1.0, 0.0), seed=1)  # two sources
    torch.testing.assert_close(FOA(wav), foa_features(authors.ambix_to_authors_foa(wav)), rtol=0, atol=1e-4)
    mono = plane_wave((1, 0, 0))[:, :1].expand(1, 4, -1)  # W = Y = Z = X, as gramlib.model.hear duplicates mono
    torch.testing.assert_close(FOA(mono), foa_features(mono), rtol=0, atol=1e-4)


def test_a_safetensors_header_length_ending_in_0x80_is_not_taken_for_a_pickle(tmp_path):
    """safetensors files start with their header's length: a low byte of 0x80 is also a pickle's first byte."""
    tensors = load_file(str(write(authors_state(ours()), tmp_path / "w.safetensors")))
    path = tmp_path / "padded.safetensors"
    for pad in range(300):  # grow the header (its metadata) one character at a time until its length ends in 0x80
        save_file(tensors, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no header length ending in 0x80 within 300 sizes")
    assert authors_layout.read(path).container == "safetensors"
