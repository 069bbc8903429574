"""Decoder shapes as a deterministic function of the target non-embedding size N.

The rule (docs/reference.md §2.3, from the Farseer work) reproduces the paper's Table 2: among all
(d_model multiple of 64, n_layer, d_ff multiple of 8) that put N within +-0.5% of the target,
take the one closest to d_ff/d_model = 8/3 and d_model/n_layer = 64. Shapes whose MLP ratio
lies within a factor FFN_BAND of 8/3 are preferred to any outside it: below ~1M parameters the
two terms trade off, and without the preference the rule gives 200K a d_ff of 88 at d_model 128
(ratio 0.69), a model that measured worse than the 100K one at every budget (docs/design.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace

import numpy as np

from configs.checks import ATTENTIONS

TOLERANCE = 0.005
D_MODEL_STEP = 64
D_FF_STEP = 8
FFN_RATIO = 8 / 3
ASPECT = 64  # d_model / n_layer
FFN_BAND = 1.5  # d_ff/d_model in [8/3 / 1.5, 8/3 * 1.5] = [1.78, 4] is preferred

# Table 2's rows are printed as rounded sizes, but the rule reproduces them from the targets
# 2e8 * 2**(k/2) (2.27B is 2.263e9): the printed name of a row means that row's target.
TABLE2_NAMES = ("201M", "284M", "398M", "568M", "798M", "1.13B", "1.61B", "2.27B", "3.18B")
TABLE2_TARGETS = {name: 2e8 * 2 ** (k / 2) for k, name in enumerate(TABLE2_NAMES)}


@dataclass(frozen=True)
class ModelShape:
    """A decoder's dimensions. The query width n_head * head_dim is d_model for every attention
    type, so architectures of one size compare at equal width and depth (docs/attention.md)."""

    d_model: int
    n_layer: int
    d_ff: int
    n_head: int
    attention: str = "mha"  # mha | gqa | mfa | mfa_kr
    n_kv_head: int | None = None  # key/value heads: n_head (mha), given (gqa; 1 = MQA), 1 (mfa*)
    q_rank: int | None = None  # mfa, mfa_kr: C_q, the rank of the query's factorisation

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention={self.attention!r}: choose one of {', '.join(ATTENTIONS)}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        kv = {"mha": self.n_head, "mfa": 1, "mfa_kr": 1}.get(self.attention, self.n_kv_head)
        if kv is None or kv < 1 or self.n_head % kv:
            raise ValueError(
                f"attention=gqa needs n_kv_head, a divisor of the {self.n_head} query heads "
                f"(1 = MQA), got {self.n_kv_head}"
            )
        if self.n_kv_head is not None and self.n_kv_head != kv:
            raise ValueError(
                f"attention={self.attention} has {kv} key/value heads, not {self.n_kv_head} "
                "(fewer key/value heads than query heads is attention=gqa)"
            )
        object.__setattr__(self, "n_kv_head", kv)
        factorised = self.attention in ("mfa", "mfa_kr")
        if factorised and (self.q_rank is None or self.q_rank < 1):
            raise ValueError(f"attention={self.attention} needs q_rank (C_q), got {self.q_rank}")
        if not factorised and self.q_rank is not None:
            raise ValueError(f"q_rank applies to mfa and mfa_kr, not attention={self.attention}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def attention_params(self) -> int:
        """One layer's attention matrices (and MFA-KR's re-use vector)."""
        d, h, c = self.d_model, self.head_dim, self.q_rank
        if self.attention in ("mha", "gqa"):
            return 2 * d * d + 2 * d * self.n_kv_head * h  # q and o; k and v of g heads
        query = d * c + c * d  # W_qdown: d -> C_q, W_q: C_q -> n*h = d
        if self.attention == "mfa":
            return query + 2 * d * h + d * d  # one key head, one value head; W_o
        return query + d * h + h * h + h + d * d  # one key head, M (h x h), alpha (h); W_o

    @property
    def n_params(self) -> int:
        """Non-embedding parameters, the paper's N: attention and SwiGLU's 3*d*d_ff per layer
        (for MHA n_layer * d_model * (4*d_model + 3*d_ff))."""
        return self.n_layer * (self.attention_params + 3 * self.d_model * self.d_ff)

    def n_params_with_embedding(self, vocab_size: int) -> int:
        """N plus the untied input embedding and output head (norm gains are not counted)."""
        return self.n_params + 2 * vocab_size * self.d_model

    def n_norm_params(self) -> int:
        """RMSNorm gains (two per layer, the final one, MFA's query norm); outside both counts."""
        query_norm = self.q_rank if self.q_rank else 0
        return (2 * self.n_layer + 1) * self.d_model + self.n_layer * query_norm

    @property
    def kv_cache_values_per_token(self) -> int:
        """Values a decoder caches per token, all layers: keys and values of n_kv_head heads;
        MFA-KR caches its single key alone (its value is re-derived from it)."""
        per_head = 1 if self.attention == "mfa_kr" else 2
        return self.n_layer * per_head * self.n_kv_head * self.head_dim

    def as_dict(self) -> dict[str, int | str | None]:
        return asdict(self)


def shape_objective(d_model: int, n_layer: int, d_ff: int) -> float:
    return abs(d_ff / d_model / FFN_RATIO - 1) + abs(d_model / n_layer / ASPECT - 1)


def outside_ffn_band(ratio):
    """True where d_ff/d_model is more than a factor FFN_BAND from 8/3 (works on arrays)."""
    return (ratio < FFN_RATIO / FFN_BAND) | (ratio > FFN_RATIO * FFN_BAND)


def shape_for_target(
    n_target: float,
    head_dim: int = 64,
    attention: str = "mha",
    n_kv_head: int | None = None,
    q_rank: int | None = None,
) -> ModelShape:
    """The rule's shape for `n_target` and an attention type: the MHA rule's d_model and n_layer,
    with d_ff re-balanced (nearest multiple of 8) so N stays the target. Architectures of one
    size thus differ only in how their layers split N between attention and MLP."""
    mha = mha_shape_for_target(n_target, head_dim)
    if attention == "mha":
        return replace(mha, n_kv_head=n_kv_head, q_rank=q_rank)  # which refuses either
    probe = replace(mha, attention=attention, n_kv_head=n_kv_head, q_rank=q_rank, d_ff=0)
    per_layer_mlp = n_target / mha.n_layer - probe.attention_params
    d_ff = int(math.floor(per_layer_mlp / (3 * mha.d_model) / D_FF_STEP + 0.5)) * D_FF_STEP
    if d_ff < D_FF_STEP:
        raise ValueError(
            f"attention={attention} at d_model {mha.d_model} takes {probe.attention_params:,} "
            f"parameters per layer, leaving no MLP within N={n_target:.4g}: choose a larger "
            "model.n" + (" or a smaller model.q_rank" if q_rank else "")
        )
    return replace(probe, d_ff=d_ff)


def mha_shape_for_target(n_target: float, head_dim: int = 64) -> ModelShape:
    """The best-proportioned MHA shape whose size lands within 0.5% of `n_target`.

    The band constrains the continuous d_ff; the chosen value (the point of the band nearest to
    8/3*d_model) is then rounded to a multiple of 8, so N can end up to 12*n_layer*d_model
    parameters outside the band. This is what reproduces Table 2: its 201M and 398M rows sit
    0.60% above and 0.57% below their targets 2e8 and 4e8.
    """
    if n_target <= 0:
        raise ValueError(f"target size must be positive, got {n_target}")
    lo, hi = n_target * (1 - TOLERANCE), n_target * (1 + TOLERANCE)
    best: tuple[bool, float, int, int, int] | None = None
    # One layer of attention alone costs 4*d^2, which bounds d_model and then n_layer.
    for d_model in range(D_MODEL_STEP, int(math.sqrt(hi / 4)) + 1, D_MODEL_STEP):
        layers = np.arange(1, int(hi // (4 * d_model * d_model)) + 1)
        ff_lo = (lo / (layers * d_model) - 4 * d_model) / 3
        ff_hi = (hi / (layers * d_model) - 4 * d_model) / 3
        keep = ff_hi >= D_FF_STEP / 2  # d_ff rounds to at least one step of 8
        layers, ff_lo, ff_hi = layers[keep], ff_lo[keep], ff_hi[keep]
        if layers.size == 0:
            continue
        d_ff = np.clip(FFN_RATIO * d_model, ff_lo, ff_hi)
        d_ff = np.maximum(D_FF_STEP, np.floor(d_ff / D_FF_STEP + 0.5) * D_FF_STEP).astype(int)
        ratio = d_ff / d_model
        objective = np.abs(ratio / FFN_RATIO - 1) + np.abs(d_model / layers / ASPECT - 1)
        outside = outside_ffn_band(ratio)
        i = int(np.lexsort((objective, outside))[0])  # in band first, then the first minimum
        key = (bool(outside[i]), float(objective[i]), d_model, int(layers[i]), int(d_ff[i]))
        if best is None or key < best:
            best = key
    if best is None:
        smallest = D_MODEL_STEP * (4 * D_MODEL_STEP + 3 * D_FF_STEP)
        raise ValueError(
            f"no decoder shape has N near {n_target:.4g}: the smallest (d_model=64, n_layer=1, "
            f"d_ff=8) has {smallest}; choose a larger model.n"
        )
    _, _, d_model, n_layer, d_ff = best
    if d_model % head_dim:
        raise ValueError(f"d_model={d_model} is not a multiple of head_dim={head_dim}")
    return ModelShape(d_model=d_model, n_layer=n_layer, d_ff=d_ff, n_head=d_model // head_dim)


def in_config_names(err: Exception) -> str:
    """A shape error in the config's key names (attention= -> model.attention=, ...)."""
    return re.sub(r"(?<![\w.])(attention=|n_kv_head|q_rank)", r"model.\1", str(err))


KV_CONTEXT = 32768  # the context whose cache plans and tables state (a long-context serving case)
BF16_BYTES = 2


def kv_cache(shape: ModelShape, context: int = KV_CONTEXT) -> dict[str, int]:
    """The inference cost of the attention type: cached values per token (all layers), their
    bytes at bf16, and the bytes of one sequence of `context` tokens."""
    values = shape.kv_cache_values_per_token
    return {
        "kv_cache_values_per_token": values,
        "kv_cache_bytes_per_token_bf16": values * BF16_BYTES,
        "kv_cache_context": context,
        "kv_cache_bytes_bf16_at_context": values * BF16_BYTES * context,
    }


def training_flops(shape: ModelShape, tokens: int) -> int:
    """C = 6 N D, the paper's compute measure (non-embedding, attention scores excluded)."""
    return 6 * shape.n_params * tokens


def training_flops_with_attention(
    shape: ModelShape, tokens: int, seq_len: int, vocab_size: int
) -> int:
    """Model FLOPs including the LM-head matmul and the attention scores (QK^T and AV).

    Per token, forward: 2N for the layers, 2*V*d for the head, 4*L*S*n*h for the S x S scores
    and their product with the values (counted dense, as in PaLM's MFU convention, not halved
    for the causal mask); training is three times the forward. The scores cost the same for
    every attention type: each of the n query heads of size h meets every key, shared or not,
    and n*h = d_model throughout.
    """
    per_token = 6 * (shape.n_params + vocab_size * shape.d_model)
    per_token += 12 * shape.n_layer * seq_len * shape.n_head * shape.head_dim
    return per_token * tokens
