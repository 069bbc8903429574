"""The pool a run's config names: a prepared pool folder, or the embedded default (built on
first use, by the datamodule's `prepare_data`, so only one process per node builds it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from configs import ConfigError
from datamodules.embedded import embedded_pool_dir, ensure_embedded_pool
from datamodules.pool import TokenPool


@dataclass(frozen=True)
class PoolSource:
    path: Path
    build: Callable[[], None]  # makes the pool if it is absent (a no-op for a prepared pool)
    vocab_size: int
    embedded: bool


def pool_source(cfg: DictConfig) -> PoolSource:
    d = cfg.data
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
        return PoolSource(path, lambda: None, pool.vocab_size, embedded=False)
    if d.tokenizer is not None:
        raise ConfigError(
            "data.tokenizer applies to a prepared data.pool, not the embedded default"
        )
    path = embedded_pool_dir(d.cache_dir, d.corpus, d.vocab_size, d.val_fraction, d.seed)
    return PoolSource(
        path,
        lambda: ensure_embedded_pool(d.cache_dir, d.corpus, d.vocab_size, d.val_fraction, d.seed),
        d.vocab_size,
        embedded=True,
    )
