"""Typed configuration tree for `train.py`.

Values live in `configs/default.yaml`; this module only fixes the keys and their types, so a
mistyped key fails at once instead of being silently ignored.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from configs.checks import check_values
from configs.sizes import ConfigError

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
    attention: str = MISSING
    n_kv_head: int | None = MISSING
    q_rank: int | None = MISSING
    compile: bool = MISSING
    activation_checkpointing: bool = MISSING


@dataclass
class DataConfig:
    pool: str | None = MISSING
    corpus: str = MISSING
    tokens: Any = MISSING
    seq_len: int = MISSING
    vocab_size: int = MISSING
    code_fraction: float = MISSING
    languages: str | None = MISSING
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
    schedule: str = MISSING
    decay_fraction: float = MISSING
    decay_shape: str = MISSING
    reference_tokens: Any = MISSING
    hparam_law: str | None = MISSING


@dataclass
class FamilyConfig:
    branches: list[Any] = MISSING
    parent: str | None = MISSING


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
    threads: Any = MISSING


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
    family: FamilyConfig = field(default_factory=FamilyConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    run: RunConfig = field(default_factory=RunConfig)


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
    """Defaults, then an optional `config=file.yaml`, then `key=value` overrides, all checked:
    keys against the schema, types, then every value's range (`configs.checks`)."""
    schema = _schema_tree(Config)
    cfg = _merge(OmegaConf.structured(Config), _load_file(DEFAULT_YAML, schema))
    dotlist = []
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. model.n=201M)")
        key, value = item.split("=", 1)
        if key == "config":
            cfg = _merge(cfg, _load_file(Path(value), schema))
        else:
            _check_keys(schema, key, "command line")
            dotlist.append(item)
    cfg = _merge(cfg, OmegaConf.from_dotlist(dotlist))
    check_values(cfg)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _load_file(path: Path, schema: dict[str, Any]) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config={path}: no such file")
    try:
        loaded = OmegaConf.load(path)
    except (YAMLError, OmegaConfBaseException) as err:
        raise ConfigError(f"config={path} is not valid YAML: {err}") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"config={path} must hold sections (model:, data:, ...), not a list")
    for key in _flat_keys(loaded):
        _check_keys(schema, key, str(path))
    return loaded


def _merge(cfg: DictConfig, update: DictConfig) -> DictConfig:
    """Merge, turning OmegaConf's type errors into one line that names the key."""
    try:
        return OmegaConf.merge(cfg, update)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "a key"
        value = OmegaConf.select(update, key, default="?") if key != "a key" else "?"
        raise ConfigError(f"{key}={value!r}: must be {_expected(key)}") from None


def _expected(key: str) -> str:
    """The schema type of `key` in words."""
    hints = get_type_hints(Config)
    section, _, name = key.partition(".")
    kind = get_type_hints(hints[section]).get(name) if section in hints else None
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    for base, word in words.items():
        if kind is base:
            return word
        if kind == base | None:
            return f"{word} or null"
    return "of the schema's type"
