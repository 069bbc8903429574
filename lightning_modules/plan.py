"""Everything a run derives from its config before training: shape, sizes, batch, steps, FLOPs.

`train.py --plan` prints this; `train.py` trains by it and saves it with the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from configs import ConfigError, format_size, parse_size
from lightning_modules.attention import check_backend
from lightning_modules.shape import (
    ModelShape,
    shape_for_target,
    training_flops,
    training_flops_with_attention,
)
from lightning_modules.steplaw import step_law_batch_tokens, step_law_lr

MAX_WARMUP = 2000  # Step Law's recipe


@dataclass(frozen=True)
class RunPlan:
    shape: ModelShape
    n_target: int | None
    vocab_size: int
    seq_len: int
    tokens_requested: int
    lr: float
    batch_tokens_target: float
    micro_batch: int
    grad_accumulation: int
    world_size: int
    steps: int
    warmup_steps: int

    @property
    def global_batch_sequences(self) -> int:
        return self.micro_batch * self.grad_accumulation * self.world_size

    @property
    def global_batch_tokens(self) -> int:
        return self.global_batch_sequences * self.seq_len

    @property
    def tokens(self) -> int:
        """Tokens actually trained on: whole global batches."""
        return self.steps * self.global_batch_tokens

    def as_dict(self) -> dict:
        s = self.shape
        return {
            **s.as_dict(),
            "n_params": s.n_params,
            "n_params_with_embedding": s.n_params_with_embedding(self.vocab_size),
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "tokens": self.tokens,
            "tokens_requested": self.tokens_requested,
            "lr": self.lr,
            "warmup_steps": self.warmup_steps,
            "global_batch_tokens": self.global_batch_tokens,
            "global_batch_tokens_step_law": self.batch_tokens_target,
            "global_batch_sequences": self.global_batch_sequences,
            "micro_batch": self.micro_batch,
            "grad_accumulation": self.grad_accumulation,
            "world_size": self.world_size,
            "steps": self.steps,
            "flops": training_flops(s, self.tokens),
            "flops_with_attention": training_flops_with_attention(
                s, self.tokens, self.seq_len, self.vocab_size
            ),
        }


def model_shape(model: DictConfig) -> tuple[ModelShape, int | None]:
    """The explicit shape if all four dimensions are given, else the rule's shape for model.n."""
    explicit = {k: model[k] for k in ("d_model", "n_layer", "d_ff", "n_head")}
    given = [k for k, v in explicit.items() if v is not None]
    if given and len(given) < 4:
        missing = [k for k in explicit if k not in given]
        raise ConfigError(
            f"model.{', model.'.join(given)} given without model.{', model.'.join(missing)}: set "
            "all four shape keys, or none and model.n"
        )
    if given:
        if explicit["d_model"] % explicit["n_head"]:
            raise ConfigError(
                f"model.d_model={explicit['d_model']} is not divisible by "
                f"model.n_head={explicit['n_head']}"
            )
        return ModelShape(**explicit), None
    n_target = parse_size(model.n, "model.n")
    try:
        return shape_for_target(n_target, model.head_dim), n_target
    except ValueError as err:
        raise ConfigError(f"model.n={model.n}: {err}") from err


def batch_layout(global_sequences: float, micro_batch: int, world_size: int) -> tuple[int, int]:
    """(micro_batch, accumulation) whose product with the world size is nearest the target.

    The micro-batch is taken as given (it is what fits in memory) unless the whole global batch
    is smaller than one micro-batch per device.
    """
    micro = max(1, min(micro_batch, round(global_sequences / world_size)))
    accumulation = max(1, round(global_sequences / (micro * world_size)))
    return micro, accumulation


def make_plan(cfg: DictConfig, world_size: int, vocab_size: int) -> RunPlan:
    try:
        check_backend(cfg.model.attn_backend)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(str(err)) from err
    shape, n_target = model_shape(cfg.model)
    tokens = parse_size(cfg.data.tokens, "data.tokens")
    seq_len = cfg.data.seq_len
    if seq_len < 1:
        raise ConfigError(f"data.seq_len must be positive, got {seq_len}")
    lr = step_law_lr(shape.n_params, tokens) if cfg.optim.lr == "auto" else float(cfg.optim.lr)
    batch_tokens = (
        step_law_batch_tokens(tokens)
        if cfg.optim.batch_tokens == "auto"
        else parse_size(cfg.optim.batch_tokens, "optim.batch_tokens")
    )
    micro, accumulation = batch_layout(batch_tokens / seq_len, cfg.optim.micro_batch, world_size)
    global_tokens = micro * accumulation * world_size * seq_len
    steps = max(1, round(tokens / global_tokens))
    warmup = cfg.optim.warmup_steps
    warmup = min(MAX_WARMUP, max(1, round(0.05 * steps))) if warmup == "auto" else int(warmup)
    return RunPlan(
        shape=shape,
        n_target=n_target,
        vocab_size=vocab_size,
        seq_len=seq_len,
        tokens_requested=tokens,
        lr=lr,
        batch_tokens_target=batch_tokens,
        micro_batch=micro,
        grad_accumulation=accumulation,
        world_size=world_size,
        steps=steps,
        warmup_steps=warmup,
    )


def default_run_name(cfg: DictConfig, plan: RunPlan) -> str:
    n = format_size(plan.n_target or plan.shape.n_params)
    return f"n{n}_d{format_size(plan.tokens_requested)}_code{round(100 * cfg.data.code_fraction)}"
