"""The embedded default pool: this Python installation's standard library as code, its
docstrings and pydoc topics as English prose. Built once through the same `prepare` as any
research pool, then cached; the cache key changes with everything that shapes the pool."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from datamodules.pool import POOL_FORMAT, TokenPool
from datamodules.prepare import PREPARE_VERSION, STDLIB, PrepareSpec, prepare


def embedded_spec(vocab_size: int, val_fraction: float, seed: int) -> PrepareSpec:
    return PrepareSpec(
        code=(STDLIB,),
        nl=(STDLIB,),
        val_fraction=val_fraction,
        vocab_size=vocab_size,
        seed=seed,
    )


def embedded_pool_dir(
    cache_dir: str | Path, vocab_size: int, val_fraction: float, seed: int
) -> Path:
    spec = embedded_spec(vocab_size, val_fraction, seed).to_json()
    key = json.dumps([POOL_FORMAT, PREPARE_VERSION, sys.version, sys.prefix, spec], sort_keys=True)
    return Path(cache_dir) / f"stdlib-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def ensure_embedded_pool(
    cache_dir: str | Path, vocab_size: int, val_fraction: float, seed: int
) -> TokenPool:
    path = embedded_pool_dir(cache_dir, vocab_size, val_fraction, seed)
    if not (path / "meta.json").exists():
        print(f"building the embedded default pool in {path} (once; cached afterwards)")
        prepare(embedded_spec(vocab_size, val_fraction, seed), path)
    return TokenPool(path)
