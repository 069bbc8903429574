"""Train one scaling-law run: from a target size N and token budget D to a validation BPC.

    python train.py [--plan] [config=file.yaml] [key=value ...]

`--plan` prints the derived plan (shape, sizes, learning rate, batch, steps, FLOPs) as JSON and
exits. `--help` shows every key with its default.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from configs import ConfigError, load_config
from configs.schema import DEFAULT_YAML
from datamodules.datamodule import PoolDataModule
from datamodules.embedded import embedded_pool_dir, ensure_embedded_pool
from datamodules.mixture import BudgetError
from datamodules.pool import PoolError, TokenPool, unigram_bits_per_char
from lightning_modules.attention import check_backend
from lightning_modules.bpc import ValidationBPC
from lightning_modules.guards import (
    AtomicCheckpointIO,
    FiniteLossGuard,
    NonFiniteLoss,
    PreemptionCheckpoint,
    WallClock,
)
from lightning_modules.model import DecoderConfig
from lightning_modules.module import DecoderLM, OptimSettings, training_strategy
from lightning_modules.plan import RunPlan, default_run_name, make_plan, resumed_plan
from lightning_modules.throughput import ThroughputLogger, flops_per_token

USAGE = __doc__.strip()


def world_size(cfg: DictConfig) -> int:
    """Devices x nodes as Lightning will resolve them ('auto': every GPU, or one CPU process)."""
    devices = cfg.trainer.devices
    if devices == "auto" or devices == -1:
        on_gpu = cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        devices = torch.cuda.device_count() if on_gpu else 1
    return int(devices) * cfg.trainer.num_nodes


def precision(cfg: DictConfig) -> str:
    if cfg.trainer.precision != "auto":
        return cfg.trainer.precision
    cuda = cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if cuda and torch.cuda.is_bf16_supported() else "32-true"


def pool_source(cfg: DictConfig) -> tuple[Path, Callable[[], None], int]:
    """(pool folder, how to build it if absent, its vocabulary size) for this config."""
    d = cfg.data
    if not 0.0 <= d.code_fraction <= 1.0:
        raise ConfigError(f"data.code_fraction={d.code_fraction} must be between 0 and 1")
    if d.pool is not None:
        path = Path(d.pool)
        if not (path / "meta.json").exists():
            raise ConfigError(
                f"data.pool={d.pool} is not a token pool folder (no meta.json); build one with "
                "`python -m datamodules prepare`"
            )
        pool = TokenPool(path)
        if d.tokenizer is not None:
            pool.check_tokenizer(d.tokenizer)
        return path, lambda: None, pool.vocab_size
    if d.tokenizer is not None:
        raise ConfigError(
            "data.tokenizer applies to a prepared data.pool, not the embedded default"
        )
    path = embedded_pool_dir(d.cache_dir, d.vocab_size, d.val_fraction, d.seed)
    return (
        path,
        lambda: ensure_embedded_pool(d.cache_dir, d.vocab_size, d.val_fraction, d.seed),
        d.vocab_size,
    )


class RunFailed(RuntimeError):
    """The run stopped for good (non-finite loss, or a failure recorded earlier)."""


def newest_checkpoint(run_dir: Path) -> str | None:
    """The latest of last.ckpt and Lightning's SLURM requeue checkpoints (hpc_ckpt_*.ckpt)."""
    found = [run_dir / "checkpoints" / "last.ckpt", *run_dir.glob("hpc_ckpt_*.ckpt")]
    found = [path for path in found if path.exists()]
    return str(max(found, key=lambda path: path.stat().st_mtime)) if found else None


def write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def train(cfg: DictConfig) -> dict:
    """Run (or resume) the configured run; returns its result (written to result.json) on rank 0,
    an empty dict on the other ranks."""
    try:
        check_backend(cfg.model.attn_backend)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(str(err)) from err
    pool_dir, build_pool, vocab_size = pool_source(cfg)
    plan = make_plan(cfg, world_size(cfg), vocab_size)
    run_dir = Path(cfg.run.dir) / (cfg.run.name or default_run_name(cfg, plan))
    result_path = run_dir / "result.json"
    if result_path.exists():
        try:
            previous = json.loads(result_path.read_text())
        except json.JSONDecodeError as err:
            raise RunFailed(
                f"{result_path} is not valid JSON ({err}); it is kept as it is: move it away "
                "to train the run again (its checkpoints resume it)"
            ) from None
        if previous.get("status") == "completed":
            print(
                f"{run_dir} is already completed; delete it or pick another run.name to train again"
            )
            return previous
        raise RunFailed(
            f"{run_dir} failed before ({previous.get('error')}); its checkpoints may hold the bad "
            "state, so it is not resumed: delete the folder (or pick another run.name) to retry"
        )

    clock = WallClock()
    resume = newest_checkpoint(run_dir)
    if resume is not None and (run_dir / "plan.json").exists():
        plan = resumed_plan(cfg, plan, json.loads((run_dir / "plan.json").read_text()))
    L.seed_everything(cfg.run.seed, workers=True)
    datamodule = PoolDataModule(
        open_pool=lambda: TokenPool(pool_dir),
        build_pool=build_pool,
        code_fraction=cfg.data.code_fraction,
        seq_len=plan.seq_len,
        global_batch=plan.global_batch_sequences,
        micro_batch=plan.micro_batch,
        total_steps=plan.steps,
        val_batch_size=plan.micro_batch,
        num_workers=cfg.data.num_workers,
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
        ),
        compile_model=cfg.model.compile,
    )
    bpc = ValidationBPC()
    last_checkpoint = run_dir / "checkpoints" / "last.ckpt"
    t = cfg.trainer
    val_every = t.val_every_steps if 0 < t.val_every_steps < plan.steps else plan.steps + 1
    trainer = L.Trainer(
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
        logger=TensorBoardLogger(save_dir=str(run_dir), name="tb", version=""),
        plugins=[AtomicCheckpointIO()],
        callbacks=[
            bpc,
            clock,
            FiniteLossGuard(every=t.log_every_steps),
            PreemptionCheckpoint(last_checkpoint),
            ModelCheckpoint(
                dirpath=run_dir / "checkpoints",
                save_last=True,
                save_top_k=0,
                every_n_train_steps=t.checkpoint_every_steps,
            ),
            LearningRateMonitor(logging_interval="step"),
            ThroughputLogger(flops_per_token(plan.shape, plan.seq_len, plan.vocab_size)),
            # The bar reads the logged loss (a host-device sync) only when it refreshes.
            *([TQDMProgressBar(refresh_rate=t.log_every_steps)] if t.progress_bar else []),
        ],
        enable_progress_bar=t.progress_bar,
        default_root_dir=str(run_dir),
    )
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        write_json_atomic(run_dir / "plan.json", plan.as_dict())
    trainer.logger.log_hyperparams(plan.as_dict())

    if resume is not None and trainer.is_global_zero:
        print(f"resuming from {resume}")
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    except NonFiniteLoss as err:
        fail(trainer, result_path, plan, err.step, str(err))
    trainer.validate(module, datamodule=datamodule, verbose=False)
    if not math.isfinite(bpc.result["bpc"]):
        # The loss went non-finite after the guard's last check: never a "completed" result.
        fail(trainer, result_path, plan, plan.steps, f"validation BPC is {bpc.result['bpc']}")
    if trainer.is_global_zero:
        result = make_result(cfg, plan, bpc.result, datamodule.pool, clock.seconds())
        write_json_atomic(result_path, result)
        print(
            f"validation BPC {result['val_bpc']:.4f} (bits per byte {result['val_bpb']:.4f}); "
            f"unigram BPC of the same tokens {result['val_bpc_unigram']:.4f}"
        )
        print(f"result: {result_path}")
        return result
    return {}


def fail(trainer: L.Trainer, result_path: Path, plan: RunPlan, step: int, error: str) -> None:
    """Record the run as failed at `step` (rank 0 writes) and stop it."""
    if trainer.is_global_zero:
        failure = {"status": "failed", "error": error, "step": step, "plan": plan.as_dict()}
        write_json_atomic(result_path, failure)
    raise RunFailed(f"{error}; recorded in {result_path}")


def make_result(
    cfg: DictConfig, plan: RunPlan, final: dict, pool: TokenPool, wall_seconds: float
) -> dict:
    p = plan.as_dict()
    return {
        "status": "completed",
        "n_params": p["n_params"],
        "n_params_with_embedding": p["n_params_with_embedding"],
        "tokens": p["tokens"],
        "code_fraction": cfg.data.code_fraction,
        "flops": p["flops"],
        "flops_with_attention": p["flops_with_attention"],
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
        "wall_seconds": wall_seconds,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "plan": p,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(USAGE + "\n\nKeys and defaults (configs/default.yaml):\n")
        print(DEFAULT_YAML.read_text())
        return 0
    plan_only = "--plan" in argv
    overrides = [a for a in argv if a != "--plan"]
    try:
        cfg = load_config(overrides)
        if plan_only:
            vocab_size = pool_source(cfg)[2]
            print(json.dumps(make_plan(cfg, world_size(cfg), vocab_size).as_dict(), indent=2))
            return 0
        train(cfg)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    except (PoolError, BudgetError) as err:
        print(f"data error: {err}", file=sys.stderr)
        return 2
    except RunFailed as err:
        print(f"run failed: {err}", file=sys.stderr)
        return 1
    except SIGTERMException:
        print("stopped by SIGTERM after saving a checkpoint; run the same command to resume")
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
