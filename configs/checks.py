"""Value checks for every config key: a value that cannot train fails here, in one line that names
the key and its valid range, before torch or Lightning are even imported (so within a second).

Checks that need derived numbers (warm-up against the step count, the floor against Step Law's
learning rate) live in `lightning_modules.plan`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig

from configs.sizes import ConfigError, parse_size, parse_weights

ATTN_BACKENDS = ("auto", "flash", "sdpa")
ATTENTIONS = ("mha", "gqa", "mfa", "mfa_kr")  # docs/attention.md
CORPORA = ("installed", "stdlib")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
STRATEGIES = ("auto", "ddp", "fsdp")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
SCHEDULES = ("cosine", "wsd")  # lightning_modules.schedule implements them
DECAY_SHAPES = ("1-sqrt", "linear", "cosine")

Rule = Callable[[Any], str | None]  # None if the value is fine, else the valid range in words


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def positive(value: Any) -> str | None:
    number = _number(value)
    return None if number is not None and number > 0 else "a positive number"


def non_negative(value: Any) -> str | None:
    number = _number(value)
    return None if number is not None and number >= 0 else "a number >= 0"


def fraction(low_open: bool, high_open: bool) -> Rule:
    low, high = "(" if low_open else "[", ")" if high_open else "]"

    def rule(value: Any) -> str | None:
        x = _number(value)
        ok = x is not None and (x > 0 if low_open else x >= 0) and (x < 1 if high_open else x <= 1)
        return None if ok else f"a number in {low}0, 1{high}"

    return rule


def integer(minimum: int, optional: bool = False, auto: bool = False) -> Rule:
    words = f"an integer >= {minimum}" + (" or auto" if auto else "")
    words += " or null" if optional else ""

    def rule(value: Any) -> str | None:
        if (optional and value is None) or (auto and value == "auto"):
            return None
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        return None if ok else words

    return rule


def size(auto: bool = False) -> Rule:
    def rule(value: Any) -> str | None:
        if auto and value == "auto":
            return None
        try:
            parse_size(value)
        except ConfigError:
            return "a positive size such as 201M, 1.13B or 2e9" + (", or auto" if auto else "")
        return None

    return rule


def positive_or_auto(value: Any) -> str | None:
    return None if value == "auto" else (positive(value) and "a positive number or auto")


def one_of(choices: tuple[str, ...]) -> Rule:
    return lambda value: None if value in choices else f"one of {', '.join(choices)}"


def devices(value: Any) -> str | None:
    ok = value == "auto" or value == -1 or (isinstance(value, int) and value >= 1)
    return None if ok else "a positive integer, -1 or auto"


def optional_size(value: Any) -> str | None:
    if value is None or size()(value) is None:
        return None
    return "a positive size such as 201M, 1.13B or 2e9, or null"


def sizes(value: Any) -> str | None:
    ok = isinstance(value, (list, tuple, ListConfig)) and all(size()(v) is None for v in value)
    return None if ok else "a list of sizes such as [1M, 2M, 4M] (empty: no branches)"


def optional_path(value: Any) -> str | None:
    return None if value is None or (isinstance(value, str) and value) else "a path or null"


def language_weights(value: Any) -> str | None:
    if value is None:
        return None
    try:
        parse_weights(value, "data.languages")
    except ConfigError:
        return "null or LANGUAGE=WEIGHT,... with weights >= 0, e.g. Python=0.5,C=0.3,C++=0.2"
    return None


def run_name(value: Any) -> str | None:
    ok = value is None or (isinstance(value, str) and value and "/" not in value)
    return None if ok else "null or a folder name without '/'"


RULES: dict[str, Rule] = {
    "model.d_model": integer(1, optional=True),
    "model.n_layer": integer(1, optional=True),
    "model.d_ff": integer(1, optional=True),
    "model.n_head": integer(1, optional=True),
    "model.head_dim": integer(1),
    "model.rope_theta": positive,
    "model.init_std": positive,
    "model.attn_backend": one_of(ATTN_BACKENDS),
    "model.attention": one_of(ATTENTIONS),
    "model.n_kv_head": integer(1, optional=True),
    "model.q_rank": integer(1, optional=True),
    "data.corpus": one_of(CORPORA),
    "trainer.threads": integer(1, auto=True),
    "data.tokens": size(),
    "data.seq_len": integer(1),
    "data.vocab_size": integer(258),  # 256 byte tokens and the separator at least
    "data.code_fraction": fraction(False, False),
    "data.languages": language_weights,
    "data.val_fraction": fraction(True, True),
    "data.num_workers": integer(0),
    "optim.lr": positive_or_auto,
    "optim.batch_tokens": size(auto=True),
    "optim.micro_batch": integer(1, auto=True),
    "optim.min_lr": positive,
    "optim.warmup_steps": integer(0, auto=True),
    "optim.weight_decay": non_negative,
    "optim.beta1": fraction(False, True),
    "optim.beta2": fraction(False, True),
    "optim.eps": positive,
    "optim.grad_clip": non_negative,
    "optim.schedule": one_of(SCHEDULES),
    "optim.decay_fraction": fraction(True, True),
    "optim.decay_shape": one_of(DECAY_SHAPES),
    "optim.reference_tokens": optional_size,
    "optim.hparam_law": optional_path,
    "family.branches": sizes,
    "family.parent": optional_path,
    "trainer.accelerator": one_of(ACCELERATORS),
    "trainer.devices": devices,
    "trainer.num_nodes": integer(1),
    "trainer.strategy": one_of(STRATEGIES),
    "trainer.precision": one_of(PRECISIONS),
    "trainer.val_every_steps": integer(0),
    "trainer.log_every_steps": integer(1),
    "trainer.checkpoint_every_steps": integer(1),
    "cluster.gpus_per_node": integer(1),
    "cluster.max_nodes": integer(1, optional=True),
    "cluster.gpu_memory_gb": positive,
    "run.name": run_name,
}


def check_values(cfg: DictConfig) -> None:
    """Every key's range, then the relations between keys that need no derived numbers."""
    rules = {**RULES, **({"model.n": size()} if cfg.model.d_model is None else {})}
    for key, rule in rules.items():
        section, name = key.split(".")
        value = cfg[section][name]
        problem = rule(value)
        if problem:
            raise ConfigError(f"{key}={value!r}: must be {problem}")
    check_family(cfg)
    lr, floor = cfg.optim.lr, cfg.optim.min_lr
    if lr != "auto" and float(floor) > float(lr):
        raise ConfigError(
            f"optim.min_lr={floor} is above optim.lr={lr}: the floor must not exceed the peak"
        )


def check_family(cfg: DictConfig) -> None:
    """A WSD family's keys fit together: only WSD runs branch, a run is a parent or a branch, and
    a branch leaves its parent before the parent's own end."""
    family, wsd = cfg.family, cfg.optim.schedule == "wsd"
    if (family.branches or family.parent) and not wsd:
        key = "family.branches" if family.branches else "family.parent"
        raise ConfigError(
            f"{key} is set but optim.schedule={cfg.optim.schedule}: only a WSD run's stable phase "
            "is a prefix of a longer run; set optim.schedule=wsd"
        )
    if family.branches and family.parent:
        raise ConfigError(
            "family.branches and family.parent are both set: a run is a family's parent (it "
            "trains the longest budget) or one of its branches, not both"
        )
    tokens = parse_size(cfg.data.tokens, "data.tokens")
    longer = [b for b in family.branches if parse_size(b) >= tokens]
    if longer:
        raise ConfigError(
            f"family.branches={list(family.branches)} holds budgets not below this run's "
            f"data.tokens={cfg.data.tokens} ({longer}): a branch leaves its parent before the "
            "parent's decay, so the parent is the family's longest run"
        )
