"""GRAM: patching, shapes, loss, determinism, overfitting, decoder windows, checkpoints."""
import dataclasses
import json

import pytest
import torch

from gramlib.model.checkpoint import CheckpointError, load_gram, save_checkpoint
from gramlib.core.config import ConfigError, FeaturesConfig, ModelConfig
from gramlib.model.decoder import MultiWindowDecoder, derive_windows, resolve_windows
from gramlib.model.features import instance_norm
from gramlib.model.gram import GRAM, masked_mse, sincos_2d

FEATURES = FeaturesConfig()  # 128 mel x 200 frames
TINY = ModelConfig(embed_dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=8,
                   mamba_state=8, mamba_headdim=8, mamba_chunk=16)
FRAME, TIME = dict(patch_mels=16, patch_frames=8), dict(patch_mels=128, patch_frames=2)
SMALL_FEATURES = FeaturesConfig(n_mels=32, crop_frames=32)  # 4 x 8 patches of 8 mel x 4 frames


def tiny_model(channels=2, features=FEATURES, seed=0, **model):
    torch.manual_seed(seed)
    return GRAM(dataclasses.replace(TINY, **model), features, channels)


def crops(batch, channels, features=FEATURES, seed=1):
    g = torch.Generator().manual_seed(seed)
    return instance_norm(torch.randn(batch, channels, features.crop_frames, features.n_mels, generator=g))


# ---- shapes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 2, 7])
@pytest.mark.parametrize("patching, grid, column_ms", [(FRAME, (8, 25), 80.0), (TIME, (1, 100), 20.0)])
@pytest.mark.parametrize("encoder", ["transformer", "mamba"])
def test_shapes(channels, patching, grid, column_ms, encoder):
    model = tiny_model(channels, encoder=encoder, **patching)
    x = crops(2, channels)
    N, P = grid[0] * grid[1], channels * patching["patch_mels"] * patching["patch_frames"]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert model.grid == grid and out.pred.shape == out.target.shape == (2, N, P)
    assert out.mask.shape == (2, N) and out.mask.sum(1).tolist() == [round(0.8 * N)] * 2
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    tokens, cls = model.encode(x)
    assert tokens.shape == (2, N, 32) and cls.shape == (2, 32)
    stamps = model.timestamp_embeddings(x)
    assert stamps.shape == (2, grid[1], model.timestamp_embedding_size) == (2, grid[1], grid[0] * 32)
    row = grid[0] - 1  # column 3 of the last mel band
    assert torch.equal(stamps[:, 3, row * 32:(row + 1) * 32], tokens[:, row * grid[1] + 3])
    assert model.column_ms == column_ms and model.frames_per_column == patching["patch_frames"]
    assert model.scene_embedding_size == grid[0] * 32


@pytest.mark.parametrize("encoder", ["transformer", "mamba"])
def test_encode_batched_equals_one_by_one(encoder):
    model = tiny_model(encoder=encoder).eval()
    x = crops(3, 2)
    tokens, cls = model.encode(x)
    one_tokens, one_cls = model.encode(x[1:2])
    torch.testing.assert_close(one_tokens[0], tokens[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(one_cls[0], cls[1], atol=1e-5, rtol=1e-4)


def test_patchify_matches_conv_and_token_order():
    model = tiny_model(3)
    x = crops(2, 3)
    patches = model.patchify(x)  # (B, N, P)
    weight = model.patch_embed.weight.view(32, -1)  # the conv is a linear map of patchify's patches
    torch.testing.assert_close(model.embed(x) - model.positions, patches @ weight.T + model.patch_embed.bias)
    assert torch.equal(model.unpatchify(patches), x)
    probe = torch.zeros(1, 3, 200, 128)
    probe[0, :, 5 * 8:6 * 8, 2 * 16:3 * 16] = 1.0  # time column 5, mel band 2
    assert model.patchify(probe).abs().sum(-1).nonzero()[:, 1].tolist() == [2 * 25 + 5]  # f * n_cols + t


def test_grid_must_divide_and_input_is_checked():
    with pytest.raises(ValueError, match="do not tile"):
        tiny_model(patch_mels=12)
    with pytest.raises(ValueError, match="expects crops shaped"):
        tiny_model()(torch.zeros(2, 2, 100, 128))
    with pytest.raises(ValueError, match="mask_ratio"):
        tiny_model(mask_ratio=1.0)


def test_positions_are_fixed_and_distinct():
    pos = sincos_2d(8, 25, 32)
    assert pos.shape == (200, 32) and torch.cdist(pos, pos).add(torch.eye(200)).min() > 1e-3
    assert "positions" not in tiny_model().state_dict()  # derived from the config, not stored


# ---- loss -------------------------------------------------------------------------------------
def test_loss_counts_masked_patches_only():
    target = torch.randn(2, 10, 4)
    mask = torch.zeros(2, 10)
    mask[:, :3] = 1
    pred = target.clone()
    pred[:, 3:] += 100.0  # wrong only where visible
    assert masked_mse(pred, target, mask) == 0
    pred[:, 0] += 1.0
    torch.testing.assert_close(masked_mse(pred, target, mask), torch.tensor(1 / 3))


def test_same_seed_same_loss_and_silence_is_finite():
    x = crops(3, 2)
    a = tiny_model(seed=5)(x, generator=torch.Generator().manual_seed(7)).loss
    b = tiny_model(seed=5)(x, generator=torch.Generator().manual_seed(7)).loss
    c = tiny_model(seed=5)(x, generator=torch.Generator().manual_seed(8)).loss
    assert a.item() == b.item() and a.item() != c.item()
    given = tiny_model(seed=5).draw_mask(3, torch.Generator().manual_seed(7))
    assert tiny_model(seed=5)(x, mask=given).loss.item() == a.item()  # a mask passed in = the same draw
    silence = instance_norm(torch.full((2, 2, 200, 128), -11.5))  # log(1e-5): a silent crop
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = tiny_model()(silence)
    assert torch.isfinite(out.loss) and out.loss.dtype == torch.float32


@pytest.mark.parametrize("encoder", ["transformer", "mamba"])
def test_overfits_a_fixed_batch(encoder):
    model = tiny_model(2, SMALL_FEATURES, patch_mels=8, patch_frames=4, embed_dim=64, decoder_dim=64,
                       decoder_heads=4, encoder=encoder)
    x = crops(2, 2, SMALL_FEATURES)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0, foreach=True)
    first = None
    for _ in range(300):
        loss = model(x, generator=torch.Generator().manual_seed(0)).loss
        first = first or loss.item()
        if loss.item() < 0.1 * first:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first, f"loss fell only from {first:.3f} to {loss.item():.3f}"


# ---- decoder windows --------------------------------------------------------------------------
def test_window_rule_reproduces_the_paper():
    assert derive_windows(200, 8) == [2, 5, 10, 25, 50, 100, 0, 0]
    assert derive_windows(100, 8) == [2, 5, 10, 25, 50, 0, 0, 0]
    assert derive_windows(200, 4) == [5, 25, 100, 0]
    assert derive_windows(16, 8) == [2, 0, 0, 0, 0, 0, 0, 0]
    assert derive_windows(200, 1) == [0]
    assert resolve_windows([3, 500, 0], 200, 3) == [3, 0, 0]
    with pytest.raises(ValueError, match="one window"):
        resolve_windows([2, 5], 200, 8)
    assert tiny_model(**TIME).decoder.windows == [2, 5, 10, 25, 50, 0, 0, 0]


def test_window_confines_attention():
    torch.manual_seed(0)
    windows = [2, 5, 10, 0]
    decoder = MultiWindowDecoder(in_dim=8, dim=16, depth=1, heads=4, mlp_ratio=2.0, patch_dim=4,
                                 positions=sincos_2d(2, 10, 16), windows=windows)
    with torch.no_grad():
        decoder.rel_bias.normal_()  # a trained-looking bias must not leak out of the window either
    attn, mask = decoder.blocks[0].attn, decoder.attn_masks()[0]
    x = torch.randn(1, 20, 16)
    for head, w in enumerate(windows):
        query, outside = 7, 13 if w else None  # token 13 is outside the windows of 2, 5 and 10 around 7
        y = x.clone()
        y[0, 13] += 3.0
        a, b = attn.attend(x, mask)[0, head, query], attn.attend(y, mask)[0, head, query]
        if outside is not None:
            torch.testing.assert_close(a, b, atol=0, rtol=0)
        else:
            assert (a - b).abs().max() > 1e-4  # the global head sees it
    y = x.clone()
    y[0, 6] += 3.0  # inside the window of 2 around 7 ([6, 7])
    assert (attn.attend(x, mask)[0, 0, 7] - attn.attend(y, mask)[0, 0, 7]).abs().max() > 1e-4


def test_all_global_decoder_needs_no_mask():
    model = tiny_model(decoder_windows=[0] * 8)
    assert model.decoder.attn_masks() == [None] and not hasattr(model.decoder, "rel_bias")


# ---- checkpoints ------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path):
    model = tiny_model(7).eval()
    save_checkpoint(tmp_path, model, config={"format": "foa", "variant": "test", "step": 3})
    extractor, loaded, config = load_gram(tmp_path)
    assert config["variant"] == "test" and config["in_channels"] == 7 and extractor.n_channels == 7
    assert loaded.cfg == model.cfg and loaded.features_cfg == model.features_cfg
    x = crops(2, 7)
    torch.testing.assert_close(loaded.encode(x)[0], model.encode(x)[0], atol=0, rtol=0)
    a = model(x, generator=torch.Generator().manual_seed(1)).loss
    b = loaded(x, generator=torch.Generator().manual_seed(1)).loss
    assert a.item() == b.item()


def test_checkpoint_rejects_corruption_and_mismatch(tmp_path):
    model = tiny_model(2)
    with pytest.raises(CheckpointError, match="format"):
        save_checkpoint(tmp_path, model, config={})
    with pytest.raises(CheckpointError, match="7 channels"):
        save_checkpoint(tmp_path, model, config={"format": "foa"})
    save_checkpoint(tmp_path, model, config={"format": "binaural"})
    weights, config_path = tmp_path / "model.safetensors", tmp_path / "config.json"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0xFF  # one flipped byte in a tensor
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_gram(tmp_path)
    weights.write_bytes(b"not a safetensors file at all")
    config = json.loads(config_path.read_text())
    config.pop("weights_sha256")
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_gram(tmp_path)
    save_checkpoint(tmp_path, model, config={"format": "binaural"})
    config = json.loads(config_path.read_text())
    config["model"]["depth"] = 2  # a config that does not match the weights
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"missing key\(s\) \['encoder.blocks.1"):
        load_gram(tmp_path)
    config["model"]["depth"], config["model"]["widht"] = 1, 3
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="widht"):
        load_gram(tmp_path)


def test_blocked_windows_equal_the_dense_mask():
    torch.manual_seed(0)
    decoder = MultiWindowDecoder(in_dim=8, dim=32, depth=2, heads=8, mlp_ratio=2.0, patch_dim=4,
                                 positions=sincos_2d(8, 25, 32), windows=None)
    with torch.no_grad():
        decoder.rel_bias.normal_()
    assert decoder.blocked and decoder.windows == [2, 5, 10, 25, 50, 100, 0, 0]
    attn, x = decoder.blocks[1].attn, torch.randn(3, 200, 32)
    fast = attn.attend(x, decoder.attn_masks()[1])
    dense = attn.attend(x, decoder.dense_masks()[1])
    torch.testing.assert_close(fast, dense, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("encoder", ["transformer", "mamba"])
@pytest.mark.parametrize("channels, patching", [(2, FRAME), (7, FRAME), (2, TIME)])
def test_dynamo_traces_the_training_step_as_one_graph(encoder, channels, patching):
    """torch.compile (the GPU recipe) sees the whole masked forward + loss without a graph break, with the
    mask drawn outside the model as the trainer does (a torch.Generator cannot enter a graph)."""
    from gramlib.model.masking import make_mask

    torch._dynamo.reset()
    model = tiny_model(channels, encoder=encoder, **patching)
    mask = make_mask(2, model.n_patches, 0.8, torch.Generator().manual_seed(0), grid=model.grid)
    explained = torch._dynamo.explain(model)(crops(2, channels), mask=mask)
    torch._dynamo.reset()
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1


def test_patch_embedding_as_a_matrix_product_equals_the_strided_convolution():
    """GRAM.embed multiplies patches by the Conv2d's weights (one pinned GEMM, no oneDNN convolution);
    it must equal the convolution it stands for, so checkpoints keep their Conv2d layout."""
    import dataclasses

    from einops import rearrange

    from gramlib.core import config
    from gramlib.model.gram import GRAM

    params = config.load_params(profile="smoke")
    base, features = config.section(params, "model"), config.section(params, "features")
    for channels, cfg in ((2, base), (7, dataclasses.replace(base, patch_mels=128, patch_frames=2))):
        model = GRAM(cfg, features, channels)
        x = torch.randn(2, channels, features.crop_frames, features.n_mels)
        conv = rearrange(model.patch_embed(x), "b d nc nr -> b (nr nc) d") + model.positions
        assert torch.allclose(model.embed(x), conv, atol=1e-5)
