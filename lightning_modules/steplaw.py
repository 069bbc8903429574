"""Step Law (seed 003): near-optimal peak learning rate and global batch from N and D.

N is the non-embedding parameter count, D the training tokens. The published (rounded)
coefficients are used: they give the batch sizes the paper's Table 1 starts from (620.0, 1089.7
and 1456.8 sequences of 2048); the unrounded fit (1.7973, -0.71292, 0.30749; 0.58069, 0.57094)
differs by under 0.1% in batch and under 2% in learning rate over the study's range.
"""

from __future__ import annotations

import math

LR_COEF, LR_N_EXP, LR_D_EXP = 1.79, -0.713, 0.307
BATCH_COEF, BATCH_D_EXP = 0.58, 0.571


def step_law_lr(n_params: float, tokens: float) -> float:
    """Peak learning rate: 1.79 * N^-0.713 * D^0.307."""
    return LR_COEF * n_params**LR_N_EXP * tokens**LR_D_EXP


def step_law_batch_tokens(tokens: float) -> float:
    """Global batch in tokens: 0.58 * D^0.571 (independent of N)."""
    return BATCH_COEF * tokens**BATCH_D_EXP


def warmup_cosine(step: int, peak_lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up to the peak, then cosine decay to a fixed floor at the last trained step.

    Steps are 0 .. total-1, so the floor is reached at step total-1 (the recipe decays to it; a
    schedule that reaches it at `total` never trains at it). The floor is an absolute learning
    rate (1e-5 in Step Law's recipe); a peak below it makes the schedule flat after warm-up.
    """
    floor = min(min_lr, peak_lr)
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
    return floor + 0.5 * (peak_lr - floor) * (1 + math.cos(math.pi * progress))
