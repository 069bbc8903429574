"""The embedded default pool, built from what every Python installation has: `installed` (the
standard library and every installed distribution's sources, cleaned and deduplicated, with
their documentation and docstrings as prose) or `stdlib` (the standard library alone). Built
once through the same `prepare` as any research pool, then cached; the cache key changes with
everything that shapes the pool, the installed distributions and their versions included."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from datamodules.installed import distributions
from datamodules.pool import POOL_FORMAT, TokenPool
from datamodules.prepare import INSTALLED, PREPARE_VERSION, STDLIB, PrepareSpec, prepare

# The BPE of the installed corpus is trained on a sample this large (of about 270 MB): the
# merges of a small vocabulary are settled long before, and the sample's size sets the build time.
INSTALLED_TOKENIZER_SAMPLE = 64 << 20


def embedded_spec(corpus: str, vocab_size: int, val_fraction: float, seed: int) -> PrepareSpec:
    if corpus not in (INSTALLED, STDLIB):
        raise ValueError(f"corpus={corpus!r}: one of {INSTALLED}, {STDLIB}")
    sample = {"tokenizer_sample_bytes": INSTALLED_TOKENIZER_SAMPLE} if corpus == INSTALLED else {}
    return PrepareSpec(
        code=(corpus,),
        nl=(corpus,),
        val_fraction=val_fraction,
        vocab_size=vocab_size,
        seed=seed,
        **sample,
    )


def installed_set() -> list[str]:
    """`name==version` of every distribution the installed corpus reads."""
    return [f"{d.metadata['Name']}=={d.version}" for d in distributions()]


def embedded_pool_dir(
    cache_dir: str | Path, corpus: str, vocab_size: int, val_fraction: float, seed: int
) -> Path:
    spec = embedded_spec(corpus, vocab_size, val_fraction, seed).to_json()
    installed = installed_set() if corpus == INSTALLED else []
    key = [POOL_FORMAT, PREPARE_VERSION, sys.version, sys.prefix, spec, installed]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{corpus}-{digest}"


def ensure_embedded_pool(
    cache_dir: str | Path, corpus: str, vocab_size: int, val_fraction: float, seed: int
) -> TokenPool:
    path = embedded_pool_dir(cache_dir, corpus, vocab_size, val_fraction, seed)
    if not (path / "meta.json").exists():
        print(f"building the embedded default pool in {path} (once; cached afterwards)")
        prepare(embedded_spec(corpus, vocab_size, val_fraction, seed), path)
    return TokenPool(path)
