"""What a run trains on, as a record its folder keeps: one folder holds one run.

A run folder is reused (a completed result returned, a checkpoint resumed) only when the
command's identity equals the recorded one. The identity is the resolved config without the keys
that may change between the sessions of one run (hardware layout, logging, paths), plus the
pool's fingerprint, so a different pool, tokenizer, data order, mixture, learning rate, batch,
shape or sequence length can never pick up another run's result or checkpoint. Default run
names carry a hash of it, so such runs never share a folder to begin with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from configs import ConfigError, format_size, load_config, parse_size
from datamodules.config_pool import PoolSource, pool_source

# May differ between sessions of one run: where and how it runs, not what it trains. A resumed
# run keeps its recorded global batch and step count whatever the layout (see plan.py).
SESSION_KEYS = (
    "model.attn_backend",
    "model.compile",
    "model.activation_checkpointing",
    "data.pool",  # a path: the pool is identified by its fingerprint instead
    "data.tokenizer",  # checked against the pool by hash; the fingerprint names it
    "data.cache_dir",
    "data.num_workers",
    "optim.micro_batch",
    "family",  # a parent's branch points and a branch's parent folder: not what either trains
    "trainer",
    "cluster",
    "run.name",
    "run.dir",
)
# Added after runs were recorded: null (the default) leaves those runs' identities as they were.
NULL_AS_ABSENT = ("data.languages",)
SIZE_KEYS = (
    "model.n",
    "data.tokens",
    "optim.batch_tokens",
    "optim.reference_tokens",
)  # 2M and 2e6 are one run
FINGERPRINT_FILE = "pool_fingerprint.json"


def pool_fingerprint(source: PoolSource) -> dict[str, str]:
    """The pool (its meta.json, written once when the pool is complete), its tokenizer and its
    shuffle seed. The embedded pool's folder name already hashes everything that shapes it."""
    if source.embedded:
        return {"pool": f"embedded:{source.path.name}"}
    raw = (source.path / "meta.json").read_bytes()
    meta = json.loads(raw)
    return {
        "pool": hashlib.sha256(raw).hexdigest()[:16],
        "tokenizer": meta["tokenizer_hash"],
        "pool_seed": str(meta.get("spec", {}).get("seed")),
    }


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run_identity(cfg: DictConfig, fingerprint: dict[str, str]) -> dict[str, Any]:
    """Flat {key: value} of everything that decides what the run trains."""
    flat = _flatten(OmegaConf.to_container(cfg, resolve=True))
    identity = {
        key: value
        for key, value in flat.items()
        if not any(key == s or key.startswith(s + ".") for s in SESSION_KEYS)
        and not (key in NULL_AS_ABSENT and value is None)
    }
    for key in SIZE_KEYS:
        if identity.get(key) not in (None, "auto"):
            identity[key] = parse_size(identity[key], key)
    return {**identity, **fingerprint}


def default_run_name(cfg: DictConfig, n_params: int, identity: dict[str, Any]) -> str:
    """Readable part (N, D, mixture) and the identity's hash, e.g. n500K_d2M_code100_1a2b3c4d."""
    n = format_size(n_params if cfg.model.d_model is not None else parse_size(cfg.model.n))
    d = format_size(parse_size(cfg.data.tokens, "data.tokens"))
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return f"n{n}_d{d}_code{round(100 * cfg.data.code_fraction)}_{digest}"


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """'key: recorded -> now' for every key whose value differs (or exists on one side only)."""
    missing = "(none)"
    return [
        f"{key}: {recorded.get(key, missing)} -> {now.get(key, missing)}"
        for key in sorted(set(recorded) | set(now))
        if recorded.get(key, missing) != now.get(key, missing)
    ]


def recorded_identity(run_dir: Path) -> dict[str, Any] | None:
    """The identity of the run a folder holds, from its config.yaml read through today's schema
    (keys added since take their defaults) and the pool fingerprint it recorded. Folders from
    before fingerprints were recorded are fingerprinted by the pool their config names."""
    config = run_dir / "config.yaml"
    if not config.exists():
        return None
    try:
        cfg = load_config([f"config={config}"])
    except ConfigError as err:
        raise ConfigError(f"{config} (this run's own config) no longer loads: {err}") from None
    saved = run_dir / FINGERPRINT_FILE
    if saved.exists():
        fingerprint = json.loads(saved.read_text())
    else:
        try:
            fingerprint = pool_fingerprint(pool_source(cfg))
        except (ConfigError, OSError, ValueError):
            fingerprint = {"pool": f"{cfg.data.pool} (no longer a pool)"}
    return run_identity(cfg, fingerprint)


def write_fingerprint(run_dir: Path, fingerprint: dict[str, str]) -> None:
    (run_dir / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
