"""One run on Lightning: its folder, the Trainer, fit, the final validation and result.json.

A run folder holds one run (see `run_identity`): a completed result is returned only for the
same config, a checkpoint resumed only by the same config, and an attempt killed before its first
checkpoint starts over with its partial TensorBoard curve removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from configs import ConfigError
from datamodules.config_pool import PoolSource, pool_source
from datamodules.datamodule import PoolDataModule
from datamodules.language_mix import parse_languages
from datamodules.pool import TokenPool, unigram_bits_per_char
from lightning_modules.attention import check_backend, check_head_dim
from lightning_modules.bpc import ValidationBPC
from lightning_modules.branches import BranchPoints, branch_start, branch_steps
from lightning_modules.cpu_share import cpu_threads
from lightning_modules.guards import (
    AtomicCheckpointIO,
    FiniteLossGuard,
    NonFiniteLoss,
    PreemptionCheckpoint,
    StepCheckpoint,
    WallClock,
)
from lightning_modules.model import DecoderConfig
from lightning_modules.module import DecoderLM, OptimSettings, training_strategy
from lightning_modules.plan import RunPlan, make_plan, resumed_plan, world_size
from lightning_modules.progress import RunProgressBar, quiet_lightning
from lightning_modules.run_identity import (
    default_run_name,
    differences,
    pool_fingerprint,
    recorded_identity,
    run_identity,
    write_fingerprint,
)
from lightning_modules.shape import ModelShape
from lightning_modules.throughput import ThroughputLogger, flops_per_token


class RunFailed(RuntimeError):
    """The run stopped for good (non-finite loss, or a failure recorded earlier)."""


def precision(cfg: DictConfig) -> str:
    if cfg.trainer.precision != "auto":
        return cfg.trainer.precision
    cuda = cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if cuda and torch.cuda.is_bf16_supported() else "32-true"


def training_threads(cfg: DictConfig, plan: RunPlan, label: str):
    """On the CPU, this machine's cores claimed for the run (lightning_modules/cpu_share.py);
    on CUDA, nothing to claim (yields None)."""
    if cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return nullcontext(None)
    per_node = max(plan.world_size // cfg.trainer.num_nodes, 1)
    return cpu_threads(cfg.trainer.threads, per_node, label)


def newest_checkpoint(run_dir: Path) -> str | None:
    """The latest of last.ckpt and Lightning's SLURM requeue checkpoints (hpc_ckpt_*.ckpt)."""
    found = [run_dir / "checkpoints" / "last.ckpt", *run_dir.glob("hpc_ckpt_*.ckpt")]
    found = [path for path in found if path.exists()]
    return str(max(found, key=lambda path: path.stat().st_mtime)) if found else None


def write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def require_same_run(run_dir: Path, identity: dict, what: str) -> None:
    """Refuse a folder whose recorded run differs from this command's, naming the keys."""
    recorded = recorded_identity(run_dir)
    changed = differences(recorded, identity) if recorded is not None else []
    if changed:
        raise ConfigError(
            f"{run_dir} {what} a different run ({'; '.join(changed)}); rerun with its settings, "
            "or pick another run.name (or delete the folder) to train this one"
        )


def previous_result(run_dir: Path, identity: dict) -> dict | None:
    """This run's completed result if the folder holds it; a failed run is never retried."""
    result_path = run_dir / "result.json"
    if not result_path.exists():
        return None
    try:
        previous = json.loads(result_path.read_text())
    except json.JSONDecodeError as err:
        raise RunFailed(
            f"{result_path} is not valid JSON ({err}); it is kept as it is: move it away "
            "to train the run again (its checkpoints resume it)"
        ) from None
    if previous.get("status") != "completed":
        raise RunFailed(
            f"{run_dir} failed before ({previous.get('error')}); its checkpoints may hold the bad "
            "state, so it is not resumed: delete the folder (or pick another run.name) to retry"
        )
    require_same_run(run_dir, identity, "holds the completed result of")
    return previous


def start_over(run_dir: Path) -> None:
    """An attempt killed before its first checkpoint left nothing to resume: say so, and drop its
    TensorBoard events so the new attempt is the folder's only curve."""
    if rank_zero_only.rank == 0 and (run_dir / "tb").exists():
        print(f"{run_dir}: an earlier attempt left no checkpoint; the run starts over")
        shutil.rmtree(run_dir / "tb")


def train(cfg: DictConfig) -> dict:
    """Run (or resume) the configured run; returns its result (written to result.json) on rank 0,
    an empty dict on the other ranks."""
    source = pool_source(cfg)
    plan = make_plan(cfg, world_size(cfg), source.vocab_size)
    try:
        check_backend(cfg.model.attn_backend)
        check_head_dim(cfg.model.attn_backend, plan.shape.head_dim)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(str(err)) from err
    fingerprint = pool_fingerprint(source)
    identity = run_identity(cfg, fingerprint)
    run_dir = Path(cfg.run.dir) / (
        cfg.run.name or default_run_name(cfg, plan.shape.n_params, identity)
    )
    previous = previous_result(run_dir, identity)
    if previous is not None:
        print(f"{run_dir} is already completed with this config: {run_dir / 'result.json'}")
        return previous

    clock = WallClock()
    branch_points = branch_steps(cfg, plan)  # a parent's; checked before anything trains
    resume = newest_checkpoint(run_dir)
    family = family_record(cfg, plan, branch_points)
    purge_step = None
    if resume is None and cfg.family.parent:
        start, seconds = branch_start(cfg, plan, identity)  # refused unless the parent wrote it
        resume = str(start)
        family.update(parent_checkpoint=resume, parent_seconds=seconds)
    if resume is None:
        start_over(run_dir)
    else:
        require_same_run(run_dir, identity, "holds a checkpoint of")
        if (run_dir / "plan.json").exists():
            saved = json.loads((run_dir / "plan.json").read_text())
            plan = resumed_plan(cfg, plan, saved)
            if family.get("parent_checkpoint", "") is None:  # a branch resuming its own run
                recorded = saved.get("family") or {}
                for key in ("parent_checkpoint", "parent_seconds"):
                    family[key] = recorded.get(key)
        # TensorBoard drops what the killed session logged after this step: one curve.
        purge_step = torch.load(resume, map_location="cpu", mmap=True, weights_only=False)[
            "global_step"
        ]
    quiet_lightning()
    with training_threads(cfg, plan, run_dir.name) as threads:
        L.seed_everything(cfg.run.seed, workers=True, verbose=False)
        trainer = make_trainer(cfg, plan, run_dir, clock, purge_step, branch_points)
        if trainer.is_global_zero:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
            write_fingerprint(run_dir, fingerprint)
            write_json_atomic(run_dir / "plan.json", {**plan.as_dict(), "family": family})
            for warning in plan.warnings:
                print(f"note: {warning}")
            print(describe(plan))
            if threads is not None:
                print(f"CPU: {threads} math threads per process (trainer.threads)")
            if resume is not None:
                print(f"resuming from {resume} (step {purge_step} of {plan.steps})")
        return fit_and_record(cfg, plan, trainer, source, run_dir, clock, resume, family)


def family_record(cfg: DictConfig, plan: RunPlan, branch_points: dict[int, int]) -> dict:
    """What plan.json and result.json say of the run's WSD family (role None: no family)."""
    if cfg.family.parent:
        start = plan.decay_start_step
        return {
            "role": "branch",
            "parent": str(cfg.family.parent),
            "parent_checkpoint": None,  # set when the branch starts from it
            "parent_seconds": None,  # the parent's wall seconds there, within wall_seconds
            "start_step": start,
            "trained_tokens": (plan.steps - start) * plan.global_batch_tokens,
        }
    if branch_points:
        return {
            "role": "parent",
            "branches": {str(step): tokens for step, tokens in sorted(branch_points.items())},
            "trained_tokens": plan.tokens,
        }
    return {"role": None, "trained_tokens": plan.tokens}


def attention_note(s: ModelShape) -> str:
    if s.attention == "mha":
        return ""
    rank = f", C_q {s.q_rank}" if s.q_rank else ""
    return (
        f" ({s.attention}: {s.n_kv_head} key/value heads{rank}; KV cache "
        f"{s.kv_cache_values_per_token:,} values per token)"
    )


def describe(plan: RunPlan) -> str:
    s = plan.shape
    return (
        f"model: N={s.n_params:,} non-embedding ({s.n_params_with_embedding(plan.vocab_size):,} "
        f"with embeddings), d_model {s.d_model}, {s.n_layer} layers, d_ff {s.d_ff}, {s.n_head} "
        f"heads{attention_note(s)}; {plan.steps} steps of {plan.global_batch_sequences} x "
        f"{plan.seq_len} tokens, "
        f"peak lr {plan.lr:.3g}, {plan.schedule}"
        + (f" (decay from step {plan.decay_start_step})" if plan.schedule == "wsd" else "")
    )


def make_trainer(
    cfg: DictConfig,
    plan: RunPlan,
    run_dir: Path,
    clock: WallClock,
    purge_step: int | None,
    branch_points: dict[int, int],
) -> L.Trainer:
    t = cfg.trainer
    val_every = t.val_every_steps if 0 < t.val_every_steps < plan.steps else plan.steps + 1
    logger = TensorBoardLogger(
        save_dir=str(run_dir), name="tb", version="", default_hp_metric=False, purge_step=purge_step
    )
    return L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices if cfg.cluster.max_nodes is None else plan.layout.devices,
        num_nodes=t.num_nodes if cfg.cluster.max_nodes is None else plan.layout.num_nodes,
        strategy=training_strategy(t.strategy),
        precision=precision(cfg),
        max_steps=plan.steps,
        accumulate_grad_batches=plan.grad_accumulation,
        gradient_clip_val=cfg.optim.grad_clip,
        val_check_interval=val_every * plan.grad_accumulation,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=t.log_every_steps,
        logger=logger,
        plugins=[AtomicCheckpointIO()],
        callbacks=[
            ValidationBPC(),
            clock,
            FiniteLossGuard(every=t.log_every_steps),
            PreemptionCheckpoint(run_dir / "checkpoints" / "last.ckpt"),
            StepCheckpoint(
                dirpath=run_dir / "checkpoints",
                save_last=True,
                save_top_k=0,
                every_n_train_steps=t.checkpoint_every_steps,
            ),
            ThroughputLogger(flops_per_token(plan.shape, plan.seq_len, plan.vocab_size)),
            *([BranchPoints(branch_points, run_dir)] if branch_points else []),
            # The bar reads the logged loss (a host-device sync) only when it refreshes.
            *([RunProgressBar(refresh_rate=t.log_every_steps)] if t.progress_bar else []),
        ],
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,  # `describe` prints the paper's counts instead
        default_root_dir=str(run_dir),
    )


def fit_and_record(
    cfg: DictConfig,
    plan: RunPlan,
    trainer: L.Trainer,
    source: PoolSource,
    run_dir: Path,
    clock: WallClock,
    resume: str | None,
    family: dict,
) -> dict:
    datamodule = PoolDataModule(
        open_pool=lambda: TokenPool(source.path),
        build_pool=source.build,
        code_fraction=cfg.data.code_fraction,
        seq_len=plan.seq_len,
        global_batch=plan.global_batch_sequences,
        micro_batch=plan.micro_batch,
        total_steps=plan.steps,
        val_batch_size=plan.micro_batch,
        num_workers=cfg.data.num_workers,
        languages=parse_languages(cfg.data.languages) if cfg.data.languages else None,
    )
    module = DecoderLM.create(
        DecoderConfig(
            shape=plan.shape,
            vocab_size=plan.vocab_size,
            seq_len=plan.seq_len,
            rope_theta=cfg.model.rope_theta,
            init_std=cfg.model.init_std,
            attn_backend=cfg.model.attn_backend,
            activation_checkpointing=cfg.model.activation_checkpointing,
        ),
        OptimSettings(
            peak_lr=plan.lr,
            min_lr=cfg.optim.min_lr,
            warmup_steps=plan.warmup_steps,
            total_steps=plan.steps,
            weight_decay=cfg.optim.weight_decay,
            beta1=cfg.optim.beta1,
            beta2=cfg.optim.beta2,
            eps=cfg.optim.eps,
            schedule=plan.schedule,
            decay_fraction=plan.decay_fraction,
            decay_shape=plan.decay_shape,
        ),
        compile_model=cfg.model.compile,
    )
    result_path = run_dir / "result.json"
    bpc = next(c for c in trainer.callbacks if isinstance(c, ValidationBPC))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=False)
    except NonFiniteLoss as err:
        fail(trainer, result_path, plan, err.step, str(err))
    trainer.validate(module, datamodule=datamodule, verbose=False)
    if not math.isfinite(bpc.result["bpc"]):
        # The loss went non-finite after the guard's last check: never a "completed" result.
        fail(trainer, result_path, plan, plan.steps, f"validation BPC is {bpc.result['bpc']}")
    if not trainer.is_global_zero:
        return {}
    result = make_result(cfg, plan, bpc.result, datamodule, clock.seconds(), family)
    write_json_atomic(result_path, result)
    print(
        f"validation BPC {result['val_bpc']:.4f} (bits per byte {result['val_bpb']:.4f}); "
        f"unigram BPC of the same tokens {result['val_bpc_unigram']:.4f}"
    )
    print(f"result: {result_path}")
    return result


def fail(trainer: L.Trainer, result_path: Path, plan: RunPlan, step: int, error: str) -> None:
    """Record the run as failed at `step` (rank 0 writes) and stop it."""
    if trainer.is_global_zero:
        failure = {"status": "failed", "error": error, "step": step, "plan": plan.as_dict()}
        write_json_atomic(result_path, failure)
    raise RunFailed(f"{error}; recorded in {result_path}")


def make_result(
    cfg: DictConfig,
    plan: RunPlan,
    final: dict,
    datamodule: PoolDataModule,
    wall_seconds: float,
    family: dict,
) -> dict:
    p, pool = plan.as_dict(), datamodule.pool
    return {
        "status": "completed",
        "n_params": p["n_params"],
        "n_params_with_embedding": p["n_params_with_embedding"],
        "tokens": p["tokens"],
        "code_fraction": cfg.data.code_fraction,
        "languages": datamodule.trained_languages(),
        "flops": p["flops"],
        "flops_with_attention": p["flops_with_attention"],
        "attention": p["attention"],
        "kv_cache_values_per_token": p["kv_cache_values_per_token"],
        "val_bpc": final["bpc"],
        "val_bpc_by_language": final["by_language"],
        "val_bpb": final["bpb"],
        "val_loss": final["loss"],
        "val_bpc_unigram": unigram_bits_per_char(pool),
        "val_tokens": final["tokens"],
        "val_chars": final["chars"],
        "val_bytes": final["bytes"],
        "pool": {"path": str(pool.path), "tokenizer_hash": pool.meta["tokenizer_hash"]},
        "steps": p["steps"],
        "schedule": p["schedule"],
        "family": family,
        "wall_seconds": wall_seconds,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "plan": p,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
