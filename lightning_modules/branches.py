"""WSD families: one parent run per size at a constant rate, and branches that leave it.

The parent trains the family's longest budget D_K with a WSD schedule; every step before a
shorter budget's decay is also a step of that budget's own WSD run (same peak, warm-up, batch and
data order: the training order is a function of the global step alone), so the parent saves its
state at each branch point (1 - f) D_k once, as `checkpoints/branch_step<S>.ckpt`, and keeps it.
Branch k starts from that checkpoint and trains only its decay, f D_k tokens. A branch never
trains from step 0: until its checkpoint exists it is refused, naming the parent, and a branch
whose plan differs from its parent's (shape, lr, batch, warm-up, data, seed) is refused naming
the keys. Once started, a branch resumes from its own checkpoints like any run.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from configs import ConfigError, parse_size
from lightning_modules.guards import at_step_boundary
from lightning_modules.plan import RunPlan
from lightning_modules.run_identity import differences, recorded_identity
from lightning_modules.schedule import decay_start

# The plan keys a branch must share with its parent: what the shared prefix was trained with.
SHARED_PLAN_KEYS = (
    "d_model",
    "n_layer",
    "d_ff",
    "n_head",
    "n_params",
    "vocab_size",
    "seq_len",
    "lr",
    "warmup_steps",
    "global_batch_sequences",
    "global_batch_tokens",
    "schedule",
    "decay_fraction",
    "decay_shape",
)  # not reference_tokens: what it decides (lr, batch, warm-up) is compared itself


def branch_checkpoint(parent_dir: Path, step: int) -> Path:
    return parent_dir / "checkpoints" / f"branch_step{step}.ckpt"


def branch_steps(cfg: DictConfig, plan: RunPlan) -> dict[int, int]:
    """{decay start step: budget} of the parent's branches, on the parent's global batch."""
    points = {}
    for budget in cfg.family.branches:
        tokens = parse_size(budget, "family.branches")
        steps = max(1, round(tokens / plan.global_batch_tokens))
        start = decay_start(steps, plan.decay_fraction)
        if start < plan.warmup_steps:
            raise ConfigError(
                f"family.branches: the branch of {budget} tokens ({steps} steps) would leave at "
                f"step {start}, inside the warm-up of {plan.warmup_steps} steps; drop it or "
                "shorten optim.warmup_steps"
            )
        points[start] = tokens
    return points


class BranchPoints(L.Callback):
    """Saves the parent's state at each branch point, once (a resumed parent skips the points
    already saved). Which points remain is settled when training starts, on every rank alike,
    because saving is collective and must not depend on a file another rank is writing."""

    def __init__(self, points: dict[int, int], run_dir: Path):
        self.points, self.run_dir = points, run_dir
        self.remaining: set[int] = set()

    def on_train_start(self, trainer, pl_module) -> None:
        self.remaining = {
            step for step in self.points if not branch_checkpoint(self.run_dir, step).exists()
        }

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step in self.remaining and at_step_boundary(trainer):
            trainer.save_checkpoint(branch_checkpoint(self.run_dir, step), weights_only=False)
            self.remaining.discard(step)


def branch_start(cfg: DictConfig, plan: RunPlan, identity: dict) -> tuple[Path, float]:
    """The parent checkpoint a branch starts from, and the parent's wall seconds at it, after
    checking the parent trained the same prefix; ConfigError (naming the keys, or the missing
    checkpoint) otherwise."""
    parent = Path(cfg.family.parent)
    saved_plan = parent / "plan.json"
    if not saved_plan.exists():
        raise ConfigError(
            f"family.parent={parent} has no plan.json: the parent has not started; run it first "
            "(sweep.py launches parents before their branches)"
        )
    parent_plan = json.loads(saved_plan.read_text())
    mine = plan.as_dict()
    changed = [
        f"{key}: {parent_plan.get(key)} -> {mine[key]}"
        for key in SHARED_PLAN_KEYS
        if parent_plan.get(key) != mine[key]
    ]
    recorded = recorded_identity(parent) or {}
    own = ("data.tokens", "optim.reference_tokens")  # a budget each; the plan compares the rest
    changed += differences(
        {k: v for k, v in recorded.items() if k not in own},
        {k: v for k, v in identity.items() if k not in own},
    )
    if changed:
        raise ConfigError(
            f"this branch's plan differs from its parent {parent} ({'; '.join(changed)}): a "
            "branch continues the parent's run and must share its shape, lr, batch, warm-up, "
            "schedule, data and seed; give it the parent's settings"
        )
    start = plan.decay_start_step
    checkpoint = branch_checkpoint(parent, start)
    if not checkpoint.exists():
        raise ConfigError(
            f"{checkpoint} does not exist yet: the parent {parent} has not reached this branch's "
            f"decay start (step {start}), or was not told to save it (its family.branches needs "
            f"{plan.tokens_requested:,}); the branch does not train from step 0, so rerun it "
            "once the parent has passed that step"
        )
    saved = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=False)
    if saved["global_step"] != start:
        raise ConfigError(f"{checkpoint} holds step {saved['global_step']}, not step {start}")
    seconds = (saved.get("callbacks") or {}).get("WallClock", {}).get("seconds", 0.0)
    return checkpoint, float(seconds)
