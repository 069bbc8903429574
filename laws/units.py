"""Sizes as the paper writes them: 2.27B, 341B, 5.36e21, read and written."""

from __future__ import annotations

import re

from laws.errors import LawsError

_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
_QUANTITY = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMBGT]?)\s*$", re.I)


def parse_quantity(text: str | float, what: str = "value") -> float:
    """Read 2.27B, 341e9, 5.36e21 or 120M as a float (K, M, B/G, T suffixes)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _QUANTITY.match(str(text))
    if not match:
        raise LawsError(
            f"{what}: cannot read {text!r} as a number; write e.g. 2.27B, 341e9, 5.36e21"
        )
    return float(match.group(1)) * _SUFFIX[match.group(2).upper()]


def human(value: float) -> str:
    """2.27B, 341B, 120M: the way sizes are written in the paper."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(float(f"{value:.3g}")) >= scale:  # 999,936 is 1M, not 1e+03K
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.4g}"
