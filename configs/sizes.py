"""Sizes written as 201M, 1.13B or 2e9, and the error every config problem raises."""

from __future__ import annotations

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
