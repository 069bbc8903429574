"""The runs of a hyperparameter grid (Step Law's method): at each (N, D) cell, lr in sqrt(2) steps
and the global batch in 2x steps, centred on the current law's prediction, so that the cell's
optimum lies inside the grid (`laws hparams` flags a cell whose best run is on an edge).
"""

from __future__ import annotations

from configs import format_size
from laws.errors import LawsError
from laws.runs.design import Estimate
from lightning_modules.shape import shape_for_target, training_flops_with_attention
from lightning_modules.steplaw import HparamLaw

LR_STEP, BATCH_STEP = 2**0.5, 2.0
MIN_LR = 1e-5  # the schedule's floor: a peak below it would never decay


def steps_around(centre: float, step: float, count: int) -> list[float]:
    """`count` values `step` apart, centred on `centre` (for an even count, half a step off)."""
    if count < 1:
        raise LawsError(f"a grid needs at least one value per axis, got {count}")
    return [centre * step ** (k - (count - 1) / 2) for k in range(count)]


def grid_runs(
    cells: list[tuple[float, float]],
    law: HparamLaw,
    lr_steps: int,
    batch_steps: int,
    estimate: Estimate,
    code_fraction: float = 1.0,
) -> list[dict]:
    """One run per (cell, lr, batch), each with its train.py overrides and its place."""
    runs, seq_len = [], estimate.seq_len
    for n_target, tokens in cells:
        shape = shape_for_target(n_target)
        n, d = shape.n_params, round(tokens)
        flops = training_flops_with_attention(shape, d, seq_len, estimate.vocab_size)
        hours = round(flops / (estimate.peak_flops * estimate.mfu) / 3600, 2)
        lrs = steps_around(law.lr(n, d), LR_STEP, lr_steps)
        batches = steps_around(law.batch_tokens(d, n), BATCH_STEP, batch_steps)
        if lrs[0] <= MIN_LR:
            raise LawsError(
                f"cell {format_size(n_target)}:{format_size(d)}: the grid's lowest lr "
                f"{lrs[0]:.3g} is not above the floor 1e-5; use fewer --lr-steps"
            )
        small = [b for b in batches if b < seq_len]
        if small:
            raise LawsError(
                f"cell {format_size(n_target)}:{format_size(d)}: a batch of {small[0]:.0f} tokens "
                f"is less than one sequence of {seq_len}; use fewer --batch-steps or a shorter "
                "--seq-len"
            )
        for i, lr in enumerate(lrs):
            for j, batch in enumerate(batches):
                sequences = max(1, round(batch / seq_len))
                name = f"n{format_size(n_target)}_d{format_size(d)}_lr{i}_b{j}"
                runs.append(
                    {
                        "name": name,
                        "n": round(float(n_target)),
                        "tokens": d,
                        "code_fraction": code_fraction,
                        "n_params": n,
                        "d_over_n": round(d / n, 2),
                        "flops": 6.0 * n * d,
                        "gpu_hours": hours,
                        "cell": f"{format_size(n_target)}:{format_size(d)}",
                        "lr": float(f"{lr:.4g}"),
                        "batch_tokens": sequences * seq_len,
                        "overrides": [
                            f"optim.lr={lr:.4g}",
                            f"optim.batch_tokens={sequences * seq_len}",
                        ],
                    }
                )
    return runs
