"""The shape rule against the paper's Table 2, and parameter counts three independent ways."""

import pytest
import torch

from lightning_modules.model import Decoder, DecoderConfig
from lightning_modules.shape import (
    ModelShape,
    shape_for_target,
    training_flops,
    training_flops_with_attention,
)

# Paper Table 2: N (rounded), d_model, d_ff, n_head, n_layer, N_with_emb (rounded), V = 65536.
TABLE_2 = [
    (201e6, 1024, 2728, 16, 16, 335e6),
    (284e6, 1152, 3032, 18, 18, 435e6),
    (398e6, 1280, 3472, 20, 20, 566e6),
    (568e6, 1472, 3888, 23, 22, 761e6),
    (798e6, 1600, 4264, 25, 26, 1.01e9),
    (1.13e9, 1792, 4832, 28, 29, 1.36e9),
    (1.61e9, 2048, 5448, 32, 32, 1.88e9),
    (2.27e9, 2304, 6064, 36, 36, 2.58e9),
    (3.18e9, 2560, 6952, 40, 40, 3.52e9),
]


@pytest.mark.parametrize("k", range(9))
def test_rule_reproduces_table_2(k):
    n, d_model, d_ff, n_head, n_layer, n_with_emb = TABLE_2[k]
    shape = shape_for_target(2e8 * 2 ** (k / 2))
    assert shape == ModelShape(d_model=d_model, n_layer=n_layer, d_ff=d_ff, n_head=n_head)
    assert three_digits(shape.n_params) == n  # the table prints 3 significant digits
    with_emb = shape.n_params_with_embedding(65536)
    if k == 2:  # the table prints 566M, but 397,721,600 + 2*65536*1280 = 565,493,760
        assert with_emb == 565_493_760
    else:
        assert three_digits(with_emb) == n_with_emb


def three_digits(x: int) -> float:
    return float(f"{x:.3g}")


def test_hand_computed_counts():
    shape = ModelShape(d_model=1024, n_layer=16, d_ff=2728, n_head=16)
    # 16 * 1024 * (4*1024 + 3*2728) = 16 * 1024 * 12280
    assert shape.n_params == 201_195_520
    assert shape.n_params_with_embedding(65536) == 201_195_520 + 134_217_728
    assert shape.n_norm_params() == 33 * 1024


@pytest.mark.parametrize("target", [2e4, 1e5, 5e5, 1.5e6, 1e7])
def test_tiny_shapes_follow_the_rule(target):
    shape = shape_for_target(target)
    assert shape.d_model % 64 == 0 and shape.d_ff % 8 == 0 and shape.n_layer >= 1
    # within the band up to d_ff's rounding to a multiple of 8 (12 * n_layer * d_model params)
    slack = 12 * shape.n_layer * shape.d_model
    assert abs(shape.n_params - target) <= 0.005 * target + slack


def test_target_too_small_is_a_clear_error():
    with pytest.raises(ValueError, match="choose a larger model.n"):
        shape_for_target(1000)


@pytest.mark.parametrize("shape", [ModelShape(128, 2, 344, 2), ModelShape(192, 3, 608, 3)])
def test_counts_match_the_tensors(shape):
    vocab = 500
    model = Decoder(DecoderConfig(shape=shape, vocab_size=vocab, seq_len=16))
    counts = model.parameter_counts()
    assert counts["non_embedding"] == shape.n_params
    assert counts["embedding"] == 2 * vocab * shape.d_model
    assert counts["norm"] == shape.n_norm_params()
    total = sum(p.numel() for p in model.parameters())
    assert total == shape.n_params_with_embedding(vocab) + shape.n_norm_params()
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    assert model.embed.weight.data_ptr() != model.head.weight.data_ptr()  # untied


def test_flops():
    shape = ModelShape(d_model=1024, n_layer=16, d_ff=2728, n_head=16)
    assert training_flops(shape, 10**9) == 6 * 201_195_520 * 10**9
    per_token = 6 * (201_195_520 + 65536 * 1024) + 12 * 16 * 2048 * 1024
    assert training_flops_with_attention(shape, 10**9, 2048, 65536) == per_token * 10**9


def test_forward_shape():
    model = Decoder(DecoderConfig(shape=ModelShape(64, 1, 176, 1), vocab_size=300, seq_len=8))
    assert model(torch.zeros(2, 8, dtype=torch.long)).shape == (2, 8, 300)
