"""Everything a run derives from its config before training: shape, sizes, batch, steps, FLOPs.

`train.py --plan` prints this; `train.py` trains by it and saves it with the run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from omegaconf import DictConfig

from configs import ConfigError, parse_size
from lightning_modules.resources import Layout, choose_layout, estimate_micro_batch
from lightning_modules.schedule import decay_start
from lightning_modules.shape import (
    TABLE2_TARGETS,
    ModelShape,
    in_config_names,
    kv_cache,
    shape_for_target,
    training_flops,
    training_flops_with_attention,
)
from lightning_modules.steplaw import load_hparam_law

MAX_WARMUP = 2000  # Step Law's recipe
# Short runs keep the recipe's warm-up as a share of the run: 2000 steps is 20% of a 10k-step
# run. (5% was measured too short for the tiny CPU models: Step Law's lr then diverges early.)
WARMUP_FRACTION = 0.2


@dataclass(frozen=True)
class RunPlan:
    shape: ModelShape
    n_target: int | None
    vocab_size: int
    seq_len: int
    tokens_requested: int
    lr: float
    batch_tokens_target: float
    layout: Layout
    steps: int
    warmup_steps: int
    schedule: str = "cosine"
    decay_fraction: float = 0.2
    decay_shape: str = "1-sqrt"
    reference_tokens: int | None = None  # the budget Step Law's lr and batch are taken at
    hparam_law: str | None = "step-law"  # whose lr / batch law `auto` used (None: both given)

    @property
    def decay_start_step(self) -> int | None:
        """WSD: the first step of the decay (where a branch of this budget leaves its parent)."""
        return decay_start(self.steps, self.decay_fraction) if self.schedule == "wsd" else None

    @property
    def micro_batch(self) -> int:
        return self.layout.micro_batch

    @property
    def grad_accumulation(self) -> int:
        return self.layout.grad_accumulation

    @property
    def world_size(self) -> int:
        return self.layout.world_size

    @property
    def global_batch_sequences(self) -> int:
        return self.layout.global_batch_sequences

    @property
    def global_batch_tokens(self) -> int:
        return self.global_batch_sequences * self.seq_len

    @property
    def tokens(self) -> int:
        """Tokens actually trained on: whole global batches."""
        return self.steps * self.global_batch_tokens

    @property
    def warnings(self) -> list[str]:
        """What the user should know before spending compute on this plan."""
        embedding = self.shape.n_params_with_embedding(self.vocab_size) - self.shape.n_params
        if embedding <= self.shape.n_params:
            return []
        return [
            f"the embedding and output layers hold {embedding:,} parameters, "
            f"{embedding / self.shape.n_params:.1f}x the non-embedding N={self.shape.n_params:,} "
            f"that laws fit on (vocabulary {self.vocab_size}, d_model {self.shape.d_model}): at "
            "this size they dominate compute and capacity; a smaller vocabulary keeps N meaningful"
        ]

    def as_dict(self) -> dict:
        s = self.shape
        return {
            **s.as_dict(),
            "n_target": self.n_target,
            "n_params": s.n_params,
            "n_params_with_embedding": s.n_params_with_embedding(self.vocab_size),
            **kv_cache(s),
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "tokens": self.tokens,
            "tokens_requested": self.tokens_requested,
            "lr": self.lr,
            "warmup_steps": self.warmup_steps,
            "schedule": self.schedule,
            "decay_fraction": self.decay_fraction if self.schedule == "wsd" else None,
            "decay_shape": self.decay_shape if self.schedule == "wsd" else None,
            "decay_start_step": self.decay_start_step,
            "reference_tokens": self.reference_tokens or self.tokens_requested,
            "hparam_law": self.hparam_law,
            "global_batch_tokens": self.global_batch_tokens,
            "global_batch_tokens_step_law": self.batch_tokens_target,
            "global_batch_sequences": self.global_batch_sequences,
            "micro_batch": self.micro_batch,
            "grad_accumulation": self.grad_accumulation,
            "num_nodes": self.layout.num_nodes,
            "devices": self.layout.devices,
            "world_size": self.world_size,
            "steps": self.steps,
            "flops": training_flops(s, self.tokens),
            "flops_per_token": training_flops_with_attention(s, 1, self.seq_len, self.vocab_size),
            "flops_with_attention": training_flops_with_attention(
                s, self.tokens, self.seq_len, self.vocab_size
            ),
        }


def model_shape(model: DictConfig) -> tuple[ModelShape, int | None]:
    """The explicit shape if all four dimensions are given, else the rule's shape for model.n;
    either with the configured attention type."""
    attention = {k: model[k] for k in ("attention", "n_kv_head", "q_rank")}
    try:
        return _model_shape(model, attention)
    except ValueError as err:  # the shape's own checks, in the config's names
        raise ConfigError(in_config_names(err)) from None


def _model_shape(model: DictConfig, attention: dict) -> tuple[ModelShape, int | None]:
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
        return ModelShape(**explicit, **attention), None
    n_target = table2_target(parse_size(model.n, "model.n"))
    try:
        return shape_for_target(n_target, model.head_dim, **attention), round(n_target)
    except ValueError as err:
        raise ValueError(f"model.n={model.n}: {err}") from None


def table2_target(n: int) -> float:
    """The rule's target for a size written as one of Table 2's row names (2.27B: 2e8 * 2**3.5,
    which gives the row's d_ff 6064; 2.27e9 itself would give 6096), else the size itself."""
    for name, target in TABLE2_TARGETS.items():
        if n == parse_size(name):
            return target
    return float(n)


def micro_batch(cfg: DictConfig, shape: ModelShape, vocab_size: int, world_size: int) -> int:
    """The configured micro-batch, or (`auto`) the memory model's estimate for the device."""
    value = cfg.optim.micro_batch
    if value != "auto":
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"optim.micro_batch={value!r}: a positive integer or auto")
        return value
    shards = world_size if cfg.trainer.strategy == "fsdp" else 1
    try:
        return estimate_micro_batch(
            shape,
            vocab_size,
            cfg.data.seq_len,
            cfg.cluster.gpu_memory_gb * 2**30,
            activation_checkpointing=cfg.model.activation_checkpointing,
            shards=shards,
        )
    except ValueError as err:
        raise ConfigError(f"optim.micro_batch=auto: {err}") from err


def batch_layout(cfg: DictConfig, target_sequences: float, micro: int, world_size: int) -> Layout:
    """Whole nodes and accumulation for the target batch (`cluster.max_nodes` set: the node count
    is chosen; else the trainer's devices and nodes are used as given). The micro-batch shrinks
    only when the whole global batch is smaller than one micro-batch per device."""
    cluster = cfg.cluster
    if cluster.max_nodes is None:
        nodes = [cfg.trainer.num_nodes]
        per_node = world_size // cfg.trainer.num_nodes
    else:
        nodes, per_node = range(1, cluster.max_nodes + 1), cluster.gpus_per_node
    micro = max(1, min(micro, round(target_sequences / (per_node * nodes[0]))))
    return choose_layout(target_sequences, micro, per_node, nodes)


def world_size(cfg: DictConfig) -> int:
    """Devices x nodes as Lightning will resolve them ('auto': every GPU, or one CPU process)."""
    devices = cfg.trainer.devices
    if devices == "auto" or devices == -1:
        import torch  # only here: a plan for a CPU or an explicit device count needs no torch

        on_gpu = cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        devices = torch.cuda.device_count() if on_gpu else 1
    return int(devices) * cfg.trainer.num_nodes


def make_plan(cfg: DictConfig, world_size: int, vocab_size: int) -> RunPlan:
    """The run's plan. Step Law's lr and batch are taken at `optim.reference_tokens` (default:
    the run's own budget): a WSD family shares its longest budget's, since a branch cannot change
    them mid-run. The auto warm-up is a share of the reference budget's steps likewise."""
    # The backend's name is checked with the config; whether it imports is checked where the
    # run trains (a plan, or a SLURM script, may be made on a login node without flash-attn).
    shape, n_target = model_shape(cfg.model)
    tokens = parse_size(cfg.data.tokens, "data.tokens")
    reference = cfg.optim.reference_tokens
    reference = tokens if reference is None else parse_size(reference, "optim.reference_tokens")
    seq_len = cfg.data.seq_len
    law = load_hparam_law(cfg.optim.hparam_law)
    lr = law.lr(shape.n_params, reference) if cfg.optim.lr == "auto" else float(cfg.optim.lr)
    if lr < cfg.optim.min_lr:
        raise ConfigError(
            f"the learning rate of {law.source} for N={shape.n_params:,}, D={reference:,} is "
            f"{lr:.3g}, below optim.min_lr={cfg.optim.min_lr}: lower optim.min_lr or set optim.lr"
        )
    batch_tokens = (
        law.batch_tokens(reference, shape.n_params)
        if cfg.optim.batch_tokens == "auto"
        else parse_size(cfg.optim.batch_tokens, "optim.batch_tokens")
    )
    auto = [k for k in ("lr", "batch_tokens") if cfg.optim[k] == "auto"]
    micro = micro_batch(cfg, shape, vocab_size, world_size)
    layout = batch_layout(cfg, batch_tokens / seq_len, micro, world_size)
    global_tokens = layout.global_batch_sequences * seq_len
    steps = max(1, round(tokens / global_tokens))
    plan = RunPlan(
        shape=shape,
        n_target=n_target,
        vocab_size=vocab_size,
        seq_len=seq_len,
        tokens_requested=tokens,
        lr=lr,
        batch_tokens_target=batch_tokens,
        layout=layout,
        steps=steps,
        warmup_steps=warmup_steps(cfg, steps, max(1, round(reference / global_tokens))),
        schedule=cfg.optim.schedule,
        decay_fraction=cfg.optim.decay_fraction,
        decay_shape=cfg.optim.decay_shape,
        reference_tokens=reference if cfg.optim.reference_tokens is not None else None,
        hparam_law=law.source if auto else None,
    )
    check_decay(plan)
    return plan


def check_decay(plan: RunPlan) -> None:
    """A WSD run's decay starts after its warm-up ends (else the budget is too small for it)."""
    start = plan.decay_start_step
    if start is not None and start < plan.warmup_steps:
        raise ConfigError(
            f"data.tokens={plan.tokens_requested:,} is {plan.steps} steps of "
            f"{plan.global_batch_tokens:,} tokens, whose decay would start at step {start}, "
            f"before the warm-up of {plan.warmup_steps} steps ends: the budget is smaller than "
            "the warm-up; lower optim.warmup_steps or optim.decay_fraction, or raise data.tokens"
        )


def auto_warmup(steps: int) -> int:
    """`optim.warmup_steps=auto`: a share of the steps, at most Step Law's 2000."""
    return min(MAX_WARMUP, max(1, round(WARMUP_FRACTION * steps)))


def warmup_steps(cfg: DictConfig, steps: int, reference_steps: int | None = None) -> int:
    """The configured warm-up, or (auto) a share of the reference budget's steps."""
    warmup = cfg.optim.warmup_steps
    if warmup == "auto":
        return auto_warmup(reference_steps or steps)
    if warmup >= steps:
        raise ConfigError(
            f"optim.warmup_steps={warmup} is not shorter than the run ({steps} steps): the rate "
            f"would never decay; use fewer than {steps} steps, or auto"
        )
    return int(warmup)


# What may change when a run resumes on other hardware: how its global batch is laid out.
LAYOUT_KEYS = ("micro_batch", "grad_accumulation", "num_nodes", "devices", "world_size")


def resumed_plan(cfg: DictConfig, plan: RunPlan, saved: dict) -> RunPlan:
    """The plan of a run resuming from `saved` (its plan.json) on this command's devices.

    A resumed run keeps its global batch and step count, whatever the device count now, so it
    trains on the same global batches with the same schedule: the batch is re-laid out as
    micro-batch x accumulation on this world size. Anything else that differs from the saved
    plan (a changed budget, shape, learning rate, ...) is an error, since the checkpoint belongs
    to the saved plan.
    """
    world = plan.world_size
    global_batch = int(saved["global_batch_sequences"])
    per_device, rest = divmod(global_batch, world)
    if rest:
        raise ConfigError(
            f"this run was started with a global batch of {global_batch} sequences, which "
            f"{world} devices cannot share evenly; resume it on a device count that divides "
            f"{global_batch} (it ran on {saved['world_size']})"
        )
    micro = max(m for m in range(1, min(plan.micro_batch, per_device) + 1) if per_device % m == 0)
    nodes = plan.layout.num_nodes
    layout = Layout(nodes, world // nodes, micro, per_device // micro)
    steps = int(saved["steps"])
    reference = plan.reference_tokens or plan.tokens_requested
    reference_steps = max(1, round(reference / (global_batch * plan.seq_len)))
    warmup = warmup_steps(cfg, steps, reference_steps)
    resumed = replace(plan, layout=layout, steps=steps, warmup_steps=warmup)
    now = resumed.as_dict()
    changed = [k for k in now if k in saved and k not in LAYOUT_KEYS and saved[k] != now[k]]
    if changed:
        listed = ", ".join(f"{k}: {saved[k]} -> {now[k]}" for k in changed)
        raise ConfigError(
            f"the command differs from the plan of the run it would resume ({listed}); resume "
            "with the original settings, or pick another run.name to start a new run"
        )
    return resumed
