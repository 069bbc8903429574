"""Sizes written as 201M, 1.13B or 2e9, and the error every config problem raises."""

from __future__ import annotations

import math
import re
from typing import Any


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


def parse_weights(value: Any, what: str) -> dict[str, float]:
    """`Python=0.5,C=0.3` -> {"Python": 0.5, "C": 0.3}: names as given, weights >= 0, at least one
    positive (not normalised; each caller says what its weights mean)."""
    weights: dict[str, float] = {}
    for item in (part.strip() for part in str(value).split(",") if part.strip()):
        name, sep, number = item.rpartition("=")
        try:
            weight = float(number) if sep and name.strip() else math.nan
        except ValueError:
            weight = math.nan
        if not weight >= 0 or math.isinf(weight):
            raise ConfigError(f"{what}: {item!r} is not NAME=WEIGHT with a weight >= 0")
        if name.strip() in weights:
            raise ConfigError(f"{what}: {name.strip()} is given twice; give each once")
        weights[name.strip()] = weight
    if not sum(weights.values()) > 0:
        raise ConfigError(f"{what}={value!r}: give at least one NAME=WEIGHT with a weight > 0")
    return weights
