"""Typed configuration tree for `train.py`.

Values live in `configs/default.yaml`; this module only fixes the keys and their types, so a
mistyped key fails at once instead of being silently ignored.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from omegaconf import MISSING, DictConfig, OmegaConf

DEFAULT_YAML = Path(__file__).with_name("default.yaml")


@dataclass
class ModelConfig:
    n: Any = MISSING
    d_model: int | None = MISSING
    n_layer: int | None = MISSING
    d_ff: int | None = MISSING
    n_head: int | None = MISSING
    head_dim: int = MISSING
    rope_theta: float = MISSING
    init_std: float = MISSING
    attn_backend: str = MISSING
    compile: bool = MISSING
    activation_checkpointing: bool = MISSING


@dataclass
class DataConfig:
    pool: str | None = MISSING
    tokens: Any = MISSING
    seq_len: int = MISSING
    vocab_size: int = MISSING
    code_fraction: float = MISSING
    tokenizer: str | None = MISSING
    val_fraction: float = MISSING
    cache_dir: str = MISSING
    seed: int = MISSING
    num_workers: int = MISSING


@dataclass
class OptimConfig:
    lr: Any = MISSING
    batch_tokens: Any = MISSING
    micro_batch: Any = MISSING
    min_lr: float = MISSING
    warmup_steps: Any = MISSING
    weight_decay: float = MISSING
    beta1: float = MISSING
    beta2: float = MISSING
    eps: float = MISSING
    grad_clip: float = MISSING


@dataclass
class TrainerConfig:
    accelerator: str = MISSING
    devices: Any = MISSING
    num_nodes: int = MISSING
    strategy: str = MISSING
    precision: str = MISSING
    val_every_steps: int = MISSING
    log_every_steps: int = MISSING
    checkpoint_every_steps: int = MISSING
    progress_bar: bool = MISSING


@dataclass
class ClusterConfig:
    gpus_per_node: int = MISSING
    max_nodes: int | None = MISSING
    gpu_memory_gb: float = MISSING


@dataclass
class RunConfig:
    name: str | None = MISSING
    dir: str = MISSING
    seed: int = MISSING


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    run: RunConfig = field(default_factory=RunConfig)


class ConfigError(ValueError):
    """A configuration problem, worded so the user knows what to change."""


_SUFFIX = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMBGT]?)\s*$", re.IGNORECASE)


def parse_size(value: Any, what: str = "size") -> int:
    """Read a count written as 201M, 1.13B, 2e9, 4K or a plain number."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a size such as 201M, 1.13B or 2e9, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ConfigError(
                f"{what}: cannot read {value!r} as a size; write e.g. 201M, 1.13B, 2e9"
            )
        number = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    if number <= 0:
        raise ConfigError(f"{what}: must be positive, got {value!r}")
    return int(round(number))


def format_size(value: float) -> str:
    """Short human form (1.5M, 2.27B) used in run names."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _schema_tree(cls: type) -> dict[str, Any]:
    """Nested dict of the schema's key names (sections map to sub-dicts)."""
    hints = get_type_hints(cls)
    return {
        f.name: _schema_tree(hints[f.name]) if is_dataclass(hints[f.name]) else None
        for f in fields(cls)
    }


def _check_keys(tree: dict[str, Any], dotted: str, where: str) -> None:
    """Fail with the valid keys (closest first) if `dotted` is not in the schema."""
    parts = dotted.split(".")
    node: Any = tree
    for depth, part in enumerate(parts):
        if not isinstance(node, dict):
            raise ConfigError(
                f"unknown config key '{dotted}' ({where}): '{'.'.join(parts[:depth])}' is a value, "
                "not a section"
            )
        if part not in node:
            section = ".".join(parts[:depth]) or "<top level>"
            valid = list(node)
            close = difflib.get_close_matches(part, valid, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"unknown config key '{dotted}' ({where}): '{part}' is not in {section}.{hint} "
                f"Valid keys there: {', '.join(valid)}."
            )
        node = node[part]


def _flat_keys(cfg: Any, prefix: str = "") -> list[str]:
    if not isinstance(cfg, DictConfig):
        return [prefix.rstrip(".")]
    return [key for name in cfg.keys() for key in _flat_keys(cfg[name], f"{prefix}{name}.")]


def load_config(overrides: list[str] | None = None) -> DictConfig:
    """Defaults, then an optional `config=file.yaml`, then `key=value` overrides, all checked."""
    schema = _schema_tree(Config)
    cfg = OmegaConf.merge(
        OmegaConf.structured(Config),
        _checked(OmegaConf.load(DEFAULT_YAML), schema, str(DEFAULT_YAML)),
    )
    dotlist = []
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. model.n=201M)")
        key, value = item.split("=", 1)
        if key == "config":
            cfg = OmegaConf.merge(cfg, _checked(OmegaConf.load(value), schema, value))
        else:
            _check_keys(schema, key, "command line")
            dotlist.append(item)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotlist))
    except Exception as err:  # OmegaConf validation errors: wrong type for a typed key
        raise ConfigError(f"bad override value: {err}") from err
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _checked(loaded: DictConfig, schema: dict[str, Any], where: str) -> DictConfig:
    for key in _flat_keys(loaded):
        _check_keys(schema, key, where)
    return loaded
