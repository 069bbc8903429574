"""Attention backends against a plain softmax reference, and causality of the whole model."""

import math

import pytest
import torch

from lightning_modules import attention
from lightning_modules.attention import causal_attention, check_backend
from lightning_modules.model import Decoder, DecoderConfig
from lightning_modules.shape import ModelShape


def reference_attention(q, k, v):
    """Explicit loops over positions: position i attends to 0..i with softmax weights."""
    b, s, h, d = q.shape
    out = torch.zeros_like(q)
    for i in range(s):
        scores = torch.einsum("bhd,bjhd->bhj", q[:, i], k[:, : i + 1]) / math.sqrt(d)
        out[:, i] = torch.einsum("bhj,bjhd->bhd", scores.softmax(-1), v[:, : i + 1])
    return out


@pytest.mark.parametrize("backend", ["auto", "sdpa"])
def test_backend_matches_reference(backend):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 9, 3, 16, dtype=torch.float64) for _ in range(3))
    got = causal_attention(q, k, v, backend)
    torch.testing.assert_close(got, reference_attention(q, k, v), rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(
    not attention.flash_available() or not torch.cuda.is_available(),
    reason="flash-attn and a CUDA device are needed for the flash kernel",
)
def test_flash_matches_sdpa_in_bf16():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 128, 4, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    torch.testing.assert_close(
        causal_attention(q, k, v, "flash"), causal_attention(q, k, v, "sdpa"), rtol=2e-2, atol=2e-2
    )


@pytest.mark.skipif(
    not attention.flash_available() or not torch.cuda.is_available(),
    reason="flash-attn and a CUDA device are needed for the flash kernel",
)
def test_flash_and_sdpa_gradients_agree_in_bf16():
    torch.manual_seed(0)
    q, k, v = (
        torch.randn(2, 512, 4, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        for _ in range(3)
    )
    upstream = torch.randn_like(q)
    flash, sdpa = (
        torch.autograd.grad(causal_attention(q, k, v, backend), (q, k, v), upstream)
        for backend in ("flash", "sdpa")
    )
    for a, b in zip(flash, sdpa, strict=True):
        assert ((a.float() - b.float()).norm() / b.float().norm()).item() < 1e-2


def test_unknown_backend():
    with pytest.raises(ValueError, match="auto, flash, sdpa"):
        check_backend("xformers")


def test_flash_requested_but_missing(monkeypatch):
    monkeypatch.setattr(attention, "_FLASH_FUNC", None)
    with pytest.raises(RuntimeError, match="flash-attn cannot be imported"):
        check_backend("flash")


def test_flash_on_cpu_tensors_is_refused(monkeypatch):
    monkeypatch.setattr(attention, "_FLASH_FUNC", lambda *a, **k: None)
    q = torch.zeros(1, 2, 1, 8)
    with pytest.raises(RuntimeError, match="CUDA tensors in bf16/fp16"):
        causal_attention(q, q, q, "flash")
    assert causal_attention(q, q, q, "auto").shape == q.shape  # auto falls back to SDPA


def test_future_tokens_never_change_past_logits():
    torch.manual_seed(0)
    model = Decoder(DecoderConfig(shape=ModelShape(64, 2, 176, 2), vocab_size=100, seq_len=32))
    tokens = torch.randint(0, 100, (2, 32))
    changed = tokens.clone()
    changed[:, 20:] = torch.randint(0, 100, (2, 12))
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :20], b[:, :20], rtol=0, atol=1e-6)
    assert (a[:, 20:] - b[:, 20:]).abs().max() > 1e-3  # and the later positions do see them


def test_rope_is_relative():
    """Scores depend on positions only through their difference."""
    from lightning_modules.model import RotaryEmbedding

    rope = RotaryEmbedding(head_dim=16, max_len=64, theta=10000.0)
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(i, j):
        qs, ks = torch.zeros(1, 64, 1, 16), torch.zeros(1, 64, 1, 16)
        qs[:, i], ks[:, j] = q[:, 0], k[:, 0]
        return (rope(qs)[:, i] * rope(ks)[:, j]).sum()

    torch.testing.assert_close(score(10, 3), score(40, 33), rtol=1e-5, atol=1e-5)


def test_flash_gets_bshd_views_and_its_output_is_not_copied(monkeypatch):
    """The qkv projection is viewed straight as (B, S, 3, H, D): v reaches the kernel as a view,
    and the kernel's (B, S, H, D) output reaches the output projection as a view."""
    seen = {}

    def fake_flash(q, k, v, causal):
        seen.update(q=q, v=v, causal=causal, out=reference_attention(q, k, v))
        return seen["out"]

    monkeypatch.setattr(attention, "_FLASH_FUNC", fake_flash)
    monkeypatch.setattr(attention, "flash_supports", lambda q: True)
    shape = ModelShape(d_model=128, n_layer=1, d_ff=344, n_head=2)
    cfg = DecoderConfig(shape=shape, vocab_size=100, seq_len=16, attn_backend="flash")
    attn = Decoder(cfg).blocks[0].attn
    proj_input = {}
    attn.proj.register_forward_pre_hook(lambda module, args: proj_input.update(x=args[0]))
    attn(torch.randn(3, 16, 128))
    assert seen["causal"] and seen["q"].shape == seen["v"].shape == (3, 16, 2, 64)
    assert seen["v"]._base is not None and seen["v"].stride(-1) == 1
    assert proj_input["x"].data_ptr() == seen["out"].data_ptr()
