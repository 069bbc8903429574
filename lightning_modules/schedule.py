"""Learning-rate schedules: warm-up, then cosine decay (the paper's protocol) or
warmup-stable-decay (WSD: constant at the peak, then a short decay at the end).

WSD is what makes decay branches possible (Hägele et al. 2024, arXiv 2405.18392): the stable
phase of a run of budget D_k is a prefix of any longer run at the same peak, so one long run per
size can be branched at (1 - f) D_k and decayed over f D_k, instead of training every budget from
scratch. A cooldown over 10-20% of training matches cosine there; the 1-sqrt shape beats linear.

Steps are 0 .. total-1 and every schedule reaches its floor at step total-1, the last one
trained. The floor is an absolute learning rate (Step Law's 1e-5), not a fraction of the peak; a
peak below it makes the schedule flat after warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from configs.checks import DECAY_SHAPES


def decay_steps(total: int, fraction: float) -> int:
    """Steps of a WSD run's decay: the fraction of its steps, at least one."""
    return max(1, round(fraction * total))


def decay_start(total: int, fraction: float) -> int:
    """The first step of a WSD run's decay; its checkpoint in a longer parent run (trained steps
    0 .. decay_start-1, all at the stable rate) is where a branch of this budget starts."""
    return total - decay_steps(total, fraction)


def warmup_cosine(step: int, peak_lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up to the peak, then cosine decay to the floor at step total-1."""
    floor = min(min_lr, peak_lr)
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
    return floor + 0.5 * (peak_lr - floor) * (1 + math.cos(math.pi * progress))


def decay_factor(progress: float, shape: str) -> float:
    """How much of (peak - floor) is left at `progress` in (0, 1] of the decay: 1 -> 0."""
    if shape == "1-sqrt":
        return 1.0 - math.sqrt(progress)
    if shape == "linear":
        return 1.0 - progress
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"decay shape {shape!r}: one of {', '.join(DECAY_SHAPES)}")


def warmup_stable_decay(
    step: int,
    peak_lr: float,
    min_lr: float,
    warmup: int,
    total: int,
    fraction: float,
    shape: str = "1-sqrt",
) -> float:
    """Linear warm-up to the peak, the peak until `decay_start`, then a decay of the given shape
    that reaches the floor at step total-1 (its first step already below the peak)."""
    floor = min(min_lr, peak_lr)
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    start = decay_start(total, fraction)
    if step < start:
        return peak_lr
    progress = min(1.0, (step - start + 1) / decay_steps(total, fraction))
    return floor + (peak_lr - floor) * decay_factor(progress, shape)


@dataclass(frozen=True)
class Schedule:
    """One run's schedule, as the module applies it at every optimizer step."""

    kind: str
    peak_lr: float
    min_lr: float
    warmup_steps: int
    total_steps: int
    decay_fraction: float = 0.2
    decay_shape: str = "1-sqrt"

    def __call__(self, step: int) -> float:
        if self.kind == "wsd":
            return warmup_stable_decay(
                step,
                self.peak_lr,
                self.min_lr,
                self.warmup_steps,
                self.total_steps,
                self.decay_fraction,
                self.decay_shape,
            )
        return warmup_cosine(step, self.peak_lr, self.min_lr, self.warmup_steps, self.total_steps)
