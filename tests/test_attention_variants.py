"""The attention family of seed 000 (GQA/MQA, MFA, MFA-KR): equivalences with multi-head
attention, parameter counts and KV-cache sizes against their formulas, and the config's errors."""

import csv
import json
import math
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from configs import ConfigError, load_config
from laws.runs.collect import collect
from lightning_modules import attention
from lightning_modules.attention import causal_attention, check_head_dim
from lightning_modules.model import Decoder, DecoderConfig
from lightning_modules.module import DecoderLM, OptimSettings
from lightning_modules.plan import model_shape
from lightning_modules.shape import (
    TABLE2_TARGETS,
    ModelShape,
    kv_cache,
    shape_for_target,
    training_flops_with_attention,
)

D, LAYERS, FF, HEADS = 128, 2, 344, 8  # head size 16, so GQA has heads to group


def decoder(**attention_kw) -> Decoder:
    torch.manual_seed(0)
    shape = ModelShape(D, LAYERS, FF, HEADS, **attention_kw)
    return Decoder(DecoderConfig(shape=shape, vocab_size=300, seq_len=24)).double()


def tokens() -> torch.Tensor:
    return torch.randint(0, 300, (2, 24), generator=torch.Generator().manual_seed(1))


def reference_attention(q, k, v):
    """Explicit per-head softmax with a causal mask, k and v given per query head."""
    s, h = q.shape[1], q.shape[-1]
    scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(h)
    scores = scores.masked_fill(torch.ones(s, s, dtype=torch.bool).triu(1), float("-inf"))
    return torch.einsum("bhij,bjhd->bihd", scores.softmax(-1), v)


def test_default_is_todays_mha_same_tensors_and_outputs():
    """The default keeps the fused (3d, d) qkv matrix and output projection of earlier
    checkpoints; its attention equals an explicit softmax over the weights' row blocks."""
    model = decoder()
    names = {
        n: tuple(p.shape) for n, p in model.named_parameters() if n.startswith("blocks.0.attn.")
    }
    assert names == {"blocks.0.attn.qkv.weight": (3 * D, D), "blocks.0.attn.proj.weight": (D, D)}
    attn, x = model.blocks[0].attn, torch.randn(2, 24, D, dtype=torch.float64)
    wq, wk, wv = attn.qkv.weight.split(D)
    heads = lambda t: t.view(2, 24, HEADS, D // HEADS)  # noqa: E731
    q, k, v = heads(x @ wq.T), heads(x @ wk.T), heads(x @ wv.T)
    expected = (
        reference_attention(attn.rope(q), attn.rope(k), v).reshape(2, 24, D) @ attn.proj.weight.T
    )
    torch.testing.assert_close(attn(x), expected, rtol=1e-10, atol=1e-10)


def test_gqa_with_as_many_kv_heads_as_query_heads_is_mha():
    mha, gqa = decoder(), decoder(attention="gqa", n_kv_head=HEADS)
    gqa.load_state_dict(mha.state_dict())  # same names and shapes: a checkpoint loads across
    torch.testing.assert_close(gqa(tokens()), mha(tokens()), rtol=0, atol=0)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_gqa_equals_mha_with_each_kv_head_repeated(groups):
    """Query head i reads key/value head i // (n/g); MQA is g = 1. An MHA whose k and v rows
    repeat each of GQA's heads n/g times gives the same model, with repeated heads in memory."""
    gqa, mha = decoder(attention="gqa", n_kv_head=groups), decoder()
    h, state = D // HEADS, gqa.state_dict()
    for i in range(LAYERS):
        key = f"blocks.{i}.attn.qkv.weight"
        wq, wk, wv = state[key].split([D, groups * h, groups * h])

        def repeat(w):
            return w.view(groups, h, D).repeat_interleave(HEADS // groups, 0).reshape(D, D)

        state[key] = torch.cat([wq, repeat(wk), repeat(wv)])
    mha.load_state_dict(state)
    torch.testing.assert_close(gqa(tokens()), mha(tokens()), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", ["auto", "sdpa"])
def test_grouped_kernel_matches_repeated_heads(backend):
    torch.manual_seed(0)
    q = torch.randn(2, 9, 6, 16, dtype=torch.float64)
    k, v = (
        torch.randn(2, 9, 2, 16, dtype=torch.float64),
        torch.randn(2, 9, 2, 16, dtype=torch.float64),
    )
    expected = reference_attention(q, k.repeat_interleave(3, 2), v.repeat_interleave(3, 2))
    torch.testing.assert_close(causal_attention(q, k, v, backend), expected, rtol=1e-10, atol=1e-10)


def test_mfa_is_low_rank_queries_over_one_shared_key_and_value_head():
    model = decoder(attention="mfa", q_rank=48)
    attn, x = model.blocks[0].attn, torch.randn(2, 24, D, dtype=torch.float64)
    down = x @ attn.q_down.weight.T
    normed = down * torch.rsqrt(down.pow(2).mean(-1, keepdim=True) + 1e-5) * attn.q_norm.weight
    h = D // HEADS
    q = (normed @ attn.q_up.weight.T).view(2, 24, HEADS, h)
    wk, wv = attn.kv.weight.split(h)
    k = (x @ wk.T).view(2, 24, 1, h).expand(2, 24, HEADS, h)
    v = (x @ wv.T).view(2, 24, 1, h).expand(2, 24, HEADS, h)
    expected = (
        reference_attention(attn.rope(q), attn.rope(k), v).reshape(2, 24, D) @ attn.proj.weight.T
    )
    torch.testing.assert_close(attn(x), expected, rtol=1e-10, atol=1e-10)


def test_mfa_kr_value_is_the_pre_rope_key_at_initialisation_then_k_plus_kM_alpha():
    model = decoder(attention="mfa_kr", q_rank=48)
    attn, x = model.blocks[0].attn, torch.randn(2, 24, D, dtype=torch.float64)
    k, v = attn.key_value(x)
    torch.testing.assert_close(k, (x @ attn.k.weight.T).view(2, 24, 1, D // HEADS), rtol=0, atol=0)
    torch.testing.assert_close(v, k, rtol=0, atol=0)
    with torch.no_grad():
        attn.reuse_gain.uniform_(-1, 1)
    matrix_m = attn.reuse.weight.T  # v = k + (k M) * alpha
    _, v = attn.key_value(x)
    torch.testing.assert_close(v, k + (k @ matrix_m) * attn.reuse_gain, rtol=1e-12, atol=1e-12)


def test_alpha_and_the_query_norm_are_not_weight_decayed():
    shape = ModelShape(D, LAYERS, FF, HEADS, attention="mfa_kr", q_rank=48)
    decoder_cfg = DecoderConfig(shape=shape, vocab_size=300, seq_len=24)
    optim = OptimSettings(
        peak_lr=1e-3,
        min_lr=1e-5,
        warmup_steps=1,
        total_steps=10,
        weight_decay=0.1,
        beta1=0.9,
        beta2=0.95,
        eps=1e-8,
    )
    module = DecoderLM.create(decoder_cfg, optim)
    decayed, free = (group["params"] for group in module.configure_optimizers().param_groups)
    names = {id(p): n for n, p in module.named_parameters()}
    free_names = sorted(
        names[id(p)].split(".")[-2] + "." + names[id(p)].split(".")[-1] for p in free
    )
    assert {"attn.reuse_gain", "q_norm.weight", "attn_norm.weight", "mlp_norm.weight"} <= set(
        free_names
    )
    assert not any("norm" in names[id(p)] or "gain" in names[id(p)] for p in decayed)


def hand_count(shape: ModelShape) -> int:
    """Per layer, written out for each type (h = head size, g = key/value heads, C = q_rank)."""
    d, h, g, c, ff = shape.d_model, shape.head_dim, shape.n_kv_head, shape.q_rank, shape.d_ff
    attn = {
        "mha": lambda: 4 * d * d,
        "gqa": lambda: d * d + 2 * d * g * h + d * d,
        "mfa": lambda: d * c + c * d + d * h + d * h + d * d,
        "mfa_kr": lambda: d * c + c * d + d * h + h * h + h + d * d,
    }[shape.attention]()
    return shape.n_layer * (attn + 3 * d * ff)


def hand_cache(shape: ModelShape) -> int:
    per_layer = {
        "mha": 2 * shape.d_model,
        "gqa": 2 * shape.n_kv_head * shape.head_dim,
        "mfa": 2 * shape.head_dim,
        "mfa_kr": shape.head_dim,
    }[shape.attention]
    return shape.n_layer * per_layer


VARIANTS = [("mha", None), ("gqa", "n/4"), ("gqa", 1), ("mfa", 512), ("mfa_kr", 512)]


def quarter_groups(n_head: int) -> int:
    """The largest divisor of n_head not above n_head / 4 (Table 2 has 25 and 23 heads)."""
    return max(g for g in range(1, max(1, n_head // 4) + 1) if n_head % g == 0)


@pytest.mark.parametrize("name", list(TABLE2_TARGETS))
@pytest.mark.parametrize("kind, setting", VARIANTS)
def test_table2_sizes_counts_and_caches_equal_their_formulas(name, kind, setting):
    target = TABLE2_TARGETS[name]
    mha = shape_for_target(target)
    kw = {
        "gqa": {"n_kv_head": quarter_groups(mha.n_head) if setting == "n/4" else setting},
        "mfa": {"q_rank": setting},
        "mfa_kr": {"q_rank": setting},
    }.get(kind, {})
    shape = shape_for_target(target, attention=kind, **kw)
    assert (shape.d_model, shape.n_layer, shape.n_head) == (mha.d_model, mha.n_layer, mha.n_head)
    assert shape.d_ff % 8 == 0
    assert abs(shape.n_params / target - 1) < 0.005 + 0.001 * (kind == "mha")  # Table 2: 0.60%
    assert shape.n_params == hand_count(shape)
    with torch.device("meta"):  # the tensors themselves, without their memory
        model = Decoder(DecoderConfig(shape=shape, vocab_size=65536, seq_len=16))
    counts = model.parameter_counts()
    assert counts["non_embedding"] == shape.n_params
    assert counts["norm"] == shape.n_norm_params()
    assert shape.kv_cache_values_per_token == hand_cache(shape)
    assert kv_cache(shape)["kv_cache_bytes_bf16_at_context"] == hand_cache(shape) * 2 * 32768


def test_mha_cache_of_table2_201m_by_hand():
    # 16 layers x (keys + values) x 1024 = 32,768 values per token; 64 KiB at bf16; 2 GiB at 32K
    cache = kv_cache(shape_for_target(TABLE2_TARGETS["201M"]))
    assert cache["kv_cache_values_per_token"] == 32768
    assert cache["kv_cache_bytes_bf16_at_context"] == 2 * 1024**3


def config(*overrides: str):
    return load_config(["model.n=4M", *overrides]).model  # d_model 256, 4 heads of 64


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.attention=gqa"], "model.attention=gqa needs model.n_kv_head"),
        (["model.attention=gqa", "model.n_kv_head=3"], "a divisor of the 4 query heads"),
        (["model.attention=mfa"], "model.attention=mfa needs model.q_rank"),
        (["model.q_rank=64"], "model.q_rank applies to mfa and mfa_kr"),
        (["model.n_kv_head=2"], "model.attention=mha has 4 key/value heads"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        model_shape(config(*overrides))


def test_unknown_attention_lists_the_choices():
    with pytest.raises(ConfigError, match="mha, gqa, mfa, mfa_kr"):
        load_config(["model.attention=mla"])


def test_flash_refuses_head_sizes_it_has_no_kernel_for(monkeypatch):
    monkeypatch.setattr(attention, "_FLASH_FUNC", lambda *a, **k: None)  # as if installed
    with pytest.raises(ValueError, match="head sizes multiples of 8 up to 256, not 320"):
        check_head_dim("auto", 320, cuda=True)
    check_head_dim("auto", 320, cuda=False)  # SDPA serves any head size
    check_head_dim("sdpa", 320, cuda=True)
    check_head_dim("auto", 128, cuda=True)


def test_plan_of_the_issue_prints_shape_n_flops_and_cache():
    out = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--plan",
            "model.n=1.13B",
            "model.attention=mfa",
            "model.q_rank=1024",
            "data.vocab_size=65536",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    plan = json.loads(out)
    assert abs(plan["n_params"] / 1.13e9 - 1) < 0.005
    layers, d = plan["n_layer"], plan["d_model"]
    assert plan["kv_cache_values_per_token"] == layers * 2 * 64  # one key, one value head of 64
    per_token = 6 * (plan["n_params"] + 65536 * d) + 12 * layers * plan["seq_len"] * d
    assert plan["flops_per_token"] == per_token
    assert (plan["attention"], plan["q_rank"], plan["n_kv_head"]) == ("mfa", 1024, 1)


def test_collect_carries_the_attention_and_its_cache(tmp_path):
    """A GQA run's table row names its type and cache; a result from before attention types
    were recorded (no attention keys in its plan) is MHA with 2 * n_layer * d_model."""
    base = {
        "status": "completed",
        "tokens": 10**6,
        "flops": 1.0,
        "code_fraction": 1.0,
        "steps": 10,
        "wall_seconds": 1.0,
        "val_bpc": 2.5,
    }
    plans = {
        "gqa": {
            "d_model": 256,
            "n_layer": 3,
            "d_ff": 704,
            "n_head": 4,
            "attention": "gqa",
            "n_kv_head": 2,
            "q_rank": None,
        },
        "old": {"d_model": 128, "n_layer": 2, "d_ff": 344, "n_head": 2},
    }
    for name, plan in plans.items():
        (tmp_path / name).mkdir()
        result = {**base, "n_params": 1000, "plan": plan}
        (tmp_path / name / "result.json").write_text(json.dumps(result))
    collect(tmp_path, tmp_path / "results.csv")
    with (tmp_path / "results.csv").open() as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    assert (rows["gqa"]["attention"], rows["gqa"]["kv_cache_values_per_token"]) == (
        "gqa",
        "768",
    )  # 3 x (k, v) x 2 heads x 64
    assert (rows["old"]["attention"], rows["old"]["kv_cache_values_per_token"]) == ("mha", "512")


@pytest.mark.parametrize(
    "kind, kw", [("gqa", {"n_kv_head": 2}), ("mfa", {"q_rank": 48}), ("mfa_kr", {"q_rank": 48})]
)
def test_flops_per_token_match_a_count_of_each_model(kind, kw):
    """torch's FlopCounterMode counts every matmul of the forward (the head included); the
    S x S scores and their product with the values, which SDPA hides from it on CPU, are
    counted on explicit matmuls of n query heads of size h. Training is 3x the forward."""
    shape, vocab, seq = ModelShape(D, LAYERS, FF, HEADS, attention=kind, **kw), 300, 32
    model = Decoder(DecoderConfig(shape=shape, vocab_size=vocab, seq_len=seq))
    with FlopCounterMode(display=False) as linear:
        model(torch.zeros(1, seq, dtype=torch.long))
    q = torch.randn(HEADS, seq, D // HEADS)
    with FlopCounterMode(display=False) as scores:
        (q @ q.transpose(1, 2)).softmax(-1) @ q
    forward = linear.get_total_flops() + LAYERS * scores.get_total_flops()
    if kind == "mfa_kr":  # (k M) * alpha + k: a multiply and an add per alpha, 2 FLOPs as any
        forward += LAYERS * seq * 2 * (D // HEADS)  # parameter; elementwise, so not counted
    assert training_flops_with_attention(shape, seq, seq, vocab) == 3 * forward
