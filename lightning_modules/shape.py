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
from dataclasses import asdict, dataclass

import numpy as np

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
    d_model: int
    n_layer: int
    d_ff: int
    n_head: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def n_params(self) -> int:
        """Non-embedding parameters, the paper's N: attention 4d^2 and SwiGLU 3*d*d_ff per layer."""
        return self.n_layer * self.d_model * (4 * self.d_model + 3 * self.d_ff)

    def n_params_with_embedding(self, vocab_size: int) -> int:
        """N plus the untied input embedding and output head (norm gains are not counted)."""
        return self.n_params + 2 * vocab_size * self.d_model

    def n_norm_params(self) -> int:
        """RMSNorm gains: two per layer and the final one; outside both of the paper's counts."""
        return (2 * self.n_layer + 1) * self.d_model

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def shape_objective(d_model: int, n_layer: int, d_ff: int) -> float:
    return abs(d_ff / d_model / FFN_RATIO - 1) + abs(d_model / n_layer / ASPECT - 1)


def outside_ffn_band(ratio):
    """True where d_ff/d_model is more than a factor FFN_BAND from 8/3 (works on arrays)."""
    return (ratio < FFN_RATIO / FFN_BAND) | (ratio > FFN_RATIO * FFN_BAND)


def shape_for_target(n_target: float, head_dim: int = 64) -> ModelShape:
    """The best-proportioned shape whose size lands within 0.5% of `n_target`.

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


def training_flops(shape: ModelShape, tokens: int) -> int:
    """C = 6 N D, the paper's compute measure (non-embedding, attention scores excluded)."""
    return 6 * shape.n_params * tokens


def training_flops_with_attention(
    shape: ModelShape, tokens: int, seq_len: int, vocab_size: int
) -> int:
    """Model FLOPs including the LM-head matmul and the attention scores (QK^T and AV).

    Per token, forward: 2N for the layers, 2*V*d for the head, 4*L*S*d for the S x S scores
    (counted dense, as in PaLM's MFU convention, not halved for the causal mask); training is
    three times the forward.
    """
    per_token = 6 * (shape.n_params + vocab_size * shape.d_model)
    per_token += 12 * shape.n_layer * seq_len * shape.d_model
    return per_token * tokens
