"""Mamba-2: the chunked SSD scan equals the step-by-step recurrence; causality; parameter matching."""
import dataclasses

import pytest
import torch

from gramlib.core.config import ModelConfig
from gramlib.model.decoder import Block
from gramlib.model.mamba import Mamba2Mixer, MambaEncoder, MambaLayer, causal_depthwise_conv, matched_depth, \
    ssd_chunked, ssd_sequential

TINY = ModelConfig(encoder="mamba", embed_dim=32, depth=2, heads=2, mamba_state=8, mamba_headdim=8, mamba_chunk=8)


def scan_inputs(length, seed=0, b=2, h=3, p=4, n=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, h, p, generator=g)
    log_a = -torch.rand(b, length, h, generator=g) * 0.5  # decays in (0.6, 1]
    B, C = torch.randn(b, length, n, generator=g), torch.randn(b, length, n, generator=g)
    return x, log_a, B, C


@pytest.mark.parametrize("length, chunk", [(37, 8), (32, 8), (5, 8), (20, 1), (64, 64)])
def test_chunked_scan_equals_recurrence(length, chunk):
    x, log_a, B, C = scan_inputs(length)
    want = ssd_sequential(x, log_a, B, C)
    got = ssd_chunked(x, log_a, B, C, chunk)
    assert got.shape == want.shape == x.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_chunked_scan_gradients_equal_recurrence():
    inputs = [t.requires_grad_() for t in scan_inputs(19, seed=1)]
    weights = torch.randn(2, 19, 3, 4)
    grads_seq = torch.autograd.grad((ssd_sequential(*inputs) * weights).sum(), inputs)
    grads_chunk = torch.autograd.grad((ssd_chunked(*inputs, 8) * weights).sum(), inputs)
    for got, want in zip(grads_chunk, grads_seq):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("length", [1, 3, 4, 29])
def test_causal_depthwise_conv_equals_conv1d_and_its_gradients(length):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 6, 4, groups=6, padding=3)
    x = torch.randn(2, length, 6, requires_grad=True)
    want = conv(x.transpose(1, 2))[..., :length].transpose(1, 2)
    got = causal_depthwise_conv(x, conv.weight, conv.bias)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    weights = torch.randn_like(want)
    grads_want = torch.autograd.grad((want * weights).sum(), [x, conv.weight, conv.bias])
    grads_got = torch.autograd.grad((causal_depthwise_conv(x, conv.weight, conv.bias) * weights).sum(),
                                    [x, conv.weight, conv.bias])
    for got_g, want_g in zip(grads_got, grads_want):
        torch.testing.assert_close(got_g, want_g, atol=1e-5, rtol=1e-5)
    later = x.detach().clone()
    later[:, -1] += 1.0  # a change at the last step moves no earlier output (causal)
    moved = causal_depthwise_conv(later, conv.weight, conv.bias).detach()
    assert torch.equal(moved[:, :-1], got.detach()[:, :-1]) and not torch.equal(moved[:, -1], got.detach()[:, -1])


def test_long_strong_decay_stays_finite():
    x, log_a, B, C = scan_inputs(200, seed=2)
    y = ssd_chunked(x, log_a * 40, B, C, 32)  # decay down to exp(-20) per step: no inf * 0
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, ssd_sequential(x, log_a * 40, B, C), atol=1e-5, rtol=1e-5)


def test_mixer_is_causal_and_bidirectional_sees_both_ways():
    torch.manual_seed(0)
    mixer = Mamba2Mixer(32, state=8, expand=2, headdim=8, chunk=8)
    u = torch.randn(2, 21, 32)
    v = u.clone()
    v[:, 12] += 1.0
    a, b = mixer(u), mixer(v)
    torch.testing.assert_close(a[:, :12], b[:, :12])  # nothing before the change moves
    assert (a[:, 12:] - b[:, 12:]).abs().amax() > 1e-3
    both = Mamba2Mixer(32, state=8, expand=2, headdim=8, chunk=8, bidirectional=True)
    assert (both(u)[:, :12] - both(v)[:, :12]).abs().amax() > 1e-3  # the reverse scan sees the future
    assert sum(p.numel() for p in both.parameters()) == sum(p.numel() for p in mixer.parameters())


def test_cls_sees_every_token_even_unidirectional():
    torch.manual_seed(0)
    encoder = MambaEncoder(dataclasses.replace(TINY, mamba_bidirectional=False))
    x = torch.randn(2, 10, 32)  # CLS first, as the MAE wrapper passes it
    y = x.clone()
    y[:, -1] += 1.0  # the last patch token
    assert (encoder(x)[:, 0] - encoder(y)[:, 0]).abs().amax() > 1e-4


@pytest.mark.parametrize("dim, depth, heads", [(192, 6, 3), (768, 12, 12)])
def test_parameter_matched_depth(dim, depth, heads):
    cfg = dataclasses.replace(ModelConfig(), embed_dim=dim, depth=depth, heads=heads)
    per_layer = sum(p.numel() for p in MambaLayer(cfg).parameters())
    transformer = depth * sum(p.numel() for p in Block(dim, heads).parameters())
    mamba = matched_depth(cfg) * per_layer
    assert abs(mamba - transformer) <= per_layer / 2
    paper = dataclasses.replace(cfg, mamba_state=128, mamba_headdim=64)
    if dim == 768:
        assert matched_depth(paper) == 23  # nearest ViT-B; GRAM-M used 24 (90.4 M vs 85.1 M)
