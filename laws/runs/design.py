"""The (N, D) design of a scaling-law study, and the sweep file that launches it.

Sizes are laid out log-uniformly between bounds; with none given, the paper's: N on the
sqrt(2)-spaced Table 2 sizes 0.2B-3.2B (9), D from 2B to 128B by sqrt(2) (13), 117 runs per
mixture. Each run carries its exact non-embedding N (from the shape rule), 6ND FLOPs and an
estimate of GPU-hours at a stated peak and MFU, so the cost is seen before anything runs. When the
sweep's overrides set `cluster.max_nodes`, each run also carries the layout train.py will choose
for it (nodes, devices per node, micro-batch, accumulation, global batch; paper Appendix A.3) and
its wall-clock hours on that layout.

This module is the bridge from the laws to training: it imports the training config and plan,
the plan lazily, because the plan pulls in torch and the fitting commands must not need it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from configs import ConfigError, format_size, load_config
from laws.errors import LawsError
from lightning_modules.shape import ModelShape, shape_for_target, training_flops_with_attention

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from lightning_modules.plan import RunPlan

PAPER_N = (2e8, 3.2e9, 9)
PAPER_D = (2e9, 128e9, 13)
PAPER_MIXTURES = (1.0, 0.7, 0.3)
H100_BF16_PEAK = 989e12


@dataclass(frozen=True)
class Estimate:
    """How GPU-hours are estimated: the attention-inclusive FLOPs at `mfu` of `peak_flops`."""

    vocab_size: int = 65536
    seq_len: int = 2048
    peak_flops: float = H100_BF16_PEAK
    mfu: float = 0.4


def log_grid(low: float, high: float, count: int) -> np.ndarray:
    if count < 1 or low <= 0 or high < low:
        raise LawsError(f"grid {low:g}:{high:g}:{count}: need 0 < low <= high and count >= 1")
    return np.geomspace(low, high, count) if count > 1 else np.array([low])


def run_name(n: float, d: float, code_fraction: float) -> str:
    """The name train.py gives the same run by default."""
    return f"n{format_size(n)}_d{format_size(d)}_code{round(100 * code_fraction)}"


def design_runs(
    n_grid: np.ndarray,
    d_grid: np.ndarray,
    mixtures: tuple[float, ...] = (1.0,),
    min_d_over_n: float | None = None,
    max_d_over_n: float | None = None,
    max_flops: float | None = None,
    estimate: Estimate = Estimate(),
    shape_of: Callable[[float], ModelShape] = shape_for_target,
) -> list[dict]:
    """Every (N, D, mixture) of the grid that passes the filters, with its cost (training FLOPs
    and GPU-hours; the KV cache per token, what the attention type costs at inference)."""
    runs = []
    for code_fraction in mixtures:
        for n_target in n_grid:
            shape = shape_of(n_target)
            n = shape.n_params
            for d in d_grid:
                d = round(float(d))
                flops = 6.0 * n * d
                if min_d_over_n is not None and d / n < min_d_over_n:
                    continue
                if max_d_over_n is not None and d / n > max_d_over_n:
                    continue
                if max_flops is not None and flops > max_flops:
                    continue
                with_attention = training_flops_with_attention(
                    shape, d, estimate.seq_len, estimate.vocab_size
                )
                runs.append(
                    {
                        "name": run_name(n_target, d, code_fraction),
                        "n": round(float(n_target)),  # the exact target the shape rule sees
                        "tokens": d,
                        "code_fraction": code_fraction,
                        "n_params": n,
                        "d_over_n": round(d / n, 2),
                        "attention": shape.attention,
                        "kv_cache_values_per_token": shape.kv_cache_values_per_token,
                        "flops": flops,
                        "gpu_hours": round(
                            with_attention / (estimate.peak_flops * estimate.mfu) / 3600, 2
                        ),
                    }
                )
    if not runs:
        raise LawsError("the filters leave no runs; widen the bounds or drop a filter")
    return runs


def shape_rule(model: DictConfig) -> Callable[[float], ModelShape]:
    """The shape train.py gives a target N under the config's model keys (head size, attention)."""
    attention = {"attention": model.attention, "n_kv_head": model.n_kv_head, "q_rank": model.q_rank}
    return lambda n_target: shape_for_target(n_target, model.head_dim, **attention)


def launch_plan(cfg: DictConfig, vocab_size: int) -> RunPlan:
    """train.py's plan for a run as sweep.py launches it. The world size passed is the trainer's
    as configured ('auto' devices: one): with `cluster.max_nodes` set the layout is chosen over
    whole nodes regardless, and the world size only sizes FSDP shards for micro_batch=auto."""
    from lightning_modules.plan import make_plan  # lazily: torch, see the module docstring

    devices = cfg.trainer.devices
    world_size = cfg.trainer.num_nodes * (1 if devices == "auto" else int(devices))
    return make_plan(cfg, world_size, vocab_size)


def add_layouts(runs: list[dict], overrides: list[str], vocab_size: int) -> None:
    """Give each run its `layout` (the keys of `train.py --plan`) and `wall_hours` (its GPU-hours
    over the layout's GPUs), planned from the overrides sweep.py will launch it with. GPU-hours
    themselves do not depend on the GPU count: they are FLOPs over the per-GPU rate."""
    plans: dict[tuple[int, int], RunPlan] = {}  # the plan does not depend on the mixture
    for run in runs:
        key = (run["n"], run["tokens"])
        if key not in plans:
            own = [f"model.n={run['n']}", f"data.tokens={run['tokens']}"]
            try:
                plans[key] = launch_plan(load_config([*overrides, *own]), vocab_size)
            except ConfigError as err:
                raise LawsError(f"run {run['name']}: {err}") from err
        plan = plans[key]
        run["layout"] = {
            "num_nodes": plan.layout.num_nodes,
            "devices": plan.layout.devices,
            "micro_batch": plan.micro_batch,
            "grad_accumulation": plan.grad_accumulation,
            "global_batch_sequences": plan.global_batch_sequences,
        }
        run["wall_hours"] = round(run["gpu_hours"] / plan.world_size, 2)


def sweep_document(
    name: str, runs: list[dict], overrides: list[str], estimate: Estimate, description: str
) -> dict:
    """The sweep file's content: overrides for every run, then the runs."""
    return {
        "name": name,
        "description": description,
        "overrides": overrides,
        "estimate": {
            "gpu_hours_at": f"{estimate.mfu:.0%} MFU of {estimate.peak_flops:.3g} FLOP/s",
            "total_flops": float(sum(r.get("trained_flops", r["flops"]) for r in runs)),
            "total_gpu_hours": round(sum(r["gpu_hours"] for r in runs), 1),
        },
        "runs": runs,
    }
