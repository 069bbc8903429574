"""A design's runs as WSD families: per size and mixture, one parent at the longest budget and a
decay branch at every shorter one (lightning_modules.branches trains them).

A family shares one learning rate, global batch and warm-up, because a branch cannot change them
mid-run: Step Law's at a reference budget (the longest, by default) and a warm-up of 20% of the
smallest member's steps (capped at Step Law's 2000), so that every branch's decay starts after
it. The parent trains D_K; branch k trains only its decay, about f D_k: the family costs
6N (D_K + f sum_{k<K} D_k) instead of the cosine protocol's 6N sum_k D_k.
"""

from __future__ import annotations

from collections import defaultdict

from configs import ConfigError, load_config
from laws.errors import LawsError
from laws.runs.design import launch_plan
from lightning_modules.plan import RunPlan, auto_warmup
from lightning_modules.schedule import decay_start


def add_families(
    runs: list[dict],
    overrides: list[str],
    vocab_size: int,
    decay_fraction: float,
    reference: str = "longest",  # or "shortest": the budget whose Step Law lr and batch it shares
) -> None:
    """Give each run its family: `role` (parent or branch), `family`, the parent's `branches`
    or the branch's `parent`, its own train.py `overrides`, and the tokens and FLOPs it trains
    itself (`trained_tokens`, `trained_flops`; GPU-hours scaled alike)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["n"], run["code_fraction"])].append(run)
    for members in groups.values():
        members.sort(key=lambda r: r["tokens"])
        parent = members[-1]
        budget = _reference(members, reference)
        shared = [*overrides, "optim.schedule=wsd", f"optim.decay_fraction={decay_fraction}"]
        shared.append(f"optim.reference_tokens={budget}")
        batch = _plan(parent, [*shared, "optim.warmup_steps=1"], vocab_size).global_batch_tokens
        smallest = max(1, round(members[0]["tokens"] / batch))
        warmup = auto_warmup(smallest)
        own = [f"optim.reference_tokens={budget}", f"optim.warmup_steps={warmup}"]
        for run in members:
            steps = max(1, round(run["tokens"] / batch))
            role = "parent" if run is parent else "branch"
            decay = steps - decay_start(steps, decay_fraction)
            trained = (steps if role == "parent" else decay) * batch
            run.update(
                {
                    "role": role,
                    "family": parent["name"],
                    "overrides": list(own),
                    "trained_tokens": trained,
                    "trained_flops": 6.0 * run["n_params"] * trained,
                    "gpu_hours": round(run["gpu_hours"] * trained / run["tokens"], 2),
                }
            )
            if role == "branch":
                run["parent"] = parent["name"]
        parent["branches"] = [r["tokens"] for r in members[:-1]]
        parent["overrides"].append(f"family.branches=[{','.join(map(str, parent['branches']))}]")


def _reference(members: list[dict], reference: str) -> int:
    if reference not in ("longest", "shortest"):
        raise LawsError(f"the WSD reference budget {reference!r}: longest or shortest")
    return members[-1 if reference == "longest" else 0]["tokens"]


def _plan(run: dict, overrides: list[str], vocab_size: int) -> RunPlan:
    own = [f"model.n={run['n']}", f"data.tokens={run['tokens']}"]
    try:
        return launch_plan(load_config([*overrides, *own]), vocab_size)
    except ConfigError as err:
        raise LawsError(f"run {run['name']}: {err}") from err


def protocol_costs(runs: list[dict]) -> dict[str, float]:
    """FLOPs of the design trained from scratch with cosine, and as WSD families."""
    cosine = float(sum(r["flops"] for r in runs))
    wsd = float(sum(r.get("trained_flops", r["flops"]) for r in runs))
    return {"cosine_flops": cosine, "wsd_flops": wsd, "saving": 1.0 - wsd / cosine}
