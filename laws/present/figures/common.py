"""What every figure shares: the paper style, `Plot`, `save`, the `Palette`, log axes
with readable ticks, and `summarise` for `plot --json`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, Locator, LogLocator, MaxNLocator
from numpy.typing import ArrayLike

from laws.runs.table import Runs

PAGE_WIDTH = 6.5  # inches: a paper's text width
CHINCHILLA_RATIO = 20.0  # Hoffmann et al.'s tokens per parameter
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "legend.frameon": False,
    "savefig.dpi": 200,
    "pdf.fonttype": 42,  # text stays text in the PDF
}


@dataclass
class Plot:
    """A drawn figure and the numbers it shows (what tests and `plot --json` check)."""

    figure: Figure
    data: dict[str, Any]


def _styled(draw: Callable[..., Plot]) -> Callable[..., Plot]:
    """Build a figure under the paper style (text sizes are fixed when artists are created)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Plot:
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def save(figure: Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """Write STEM.png and STEM.pdf into out_dir; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    with matplotlib.rc_context(STYLE):  # ticks are created at draw time
        for path in paths:
            figure.savefig(path)
    return paths


class Palette:
    """Colours shared across a study's figures.

    N and D are coloured on sequential maps by log value over the study's range, so the same
    size is the same colour everywhere; laws and mixtures get qualitative colours in the order
    they are first asked for (pass the labels up front to fix that order).
    """

    N_MAP, D_MAP, RATIO_MAP = "viridis", "plasma", "cividis"

    def __init__(self, n: ArrayLike = (), d: ArrayLike = (), labels: Sequence[str] = ()) -> None:
        self.n_norm = _log_norm(n)
        self.d_norm = _log_norm(d)
        self._labels: dict[str, str] = {}
        for label in labels:
            self.label(label)

    @classmethod
    def for_runs(cls, runs: Runs | None, labels: Sequence[str] = ()) -> Palette:
        return cls(runs.n, runs.d, labels) if runs is not None and len(runs) else cls(labels=labels)

    def n(self, value: float) -> str:
        return _on_map(self.N_MAP, self.n_norm, value, 0.9)

    def d(self, value: float) -> str:
        return _on_map(self.D_MAP, self.d_norm, value, 0.85)

    def label(self, name: str) -> str:
        if name not in self._labels:
            cycle = colormaps["tab10"].colors
            self._labels[name] = to_hex(cycle[len(self._labels) % len(cycle)])
        return self._labels[name]

    def n_bar(self) -> ScalarMappable:
        return _bar(self.N_MAP, self.n_norm, 0.9)

    def d_bar(self) -> ScalarMappable:
        return _bar(self.D_MAP, self.d_norm, 0.85)


def _log_norm(values: ArrayLike) -> LogNorm:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return LogNorm(1.0, 10.0)
    low, high = float(values.min()), float(values.max())
    return LogNorm(low, high) if high > low else LogNorm(low / 2, low * 2)


def _on_map(name: str, norm: LogNorm, value: float, top: float) -> str:
    """A colour on the map's first `top` fraction (the lightest end is hard to see)."""
    position = float(np.clip(norm(value), 0.0, 1.0))
    return to_hex(colormaps[name](top * position))


def _bar(name: str, norm: LogNorm, top: float) -> ScalarMappable:
    """A colorbar source for the same truncated map as `_on_map`."""
    truncated = ListedColormap(colormaps[name](np.linspace(0, top, 256)))
    return ScalarMappable(norm=norm, cmap=truncated)


NARROW_DECADES = 0.8  # a log axis spanning less than this gets evenly spaced ticks


def _decades(axis: Any) -> float:
    low, high = sorted(axis.get_view_interval())
    return math.log10(high / low) if low > 0 else math.inf


class _LogTicks(Locator):
    """Decade ticks on a wide log axis; evenly spaced round values on a narrow one (a loss
    axis from 0.26 to 0.35 would otherwise carry a single tick)."""

    def __init__(self) -> None:
        self._wide, self._narrow = LogLocator(), MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10])

    def set_axis(self, axis: Any) -> None:
        super().set_axis(axis)
        self._wide.set_axis(axis)
        self._narrow.set_axis(axis)

    def __call__(self) -> Sequence[float]:
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin: float, vmax: float) -> Sequence[float]:
        narrow = vmin > 0 and vmax > 0 and abs(math.log10(vmax / vmin)) < NARROW_DECADES
        ticks = np.asarray((self._narrow if narrow else self._wide).tick_values(vmin, vmax))
        return ticks[ticks > 0]  # evenly spaced values can include 0, which a log axis cannot show


class _LogLabels(Formatter):
    """Tick labels written by `text` (200M, 0.3, 20) instead of 3x10^-1, which is hard to
    read at 7 pt: powers of ten where two or more are in view, else 1-2-5, and the round values
    of `_LogTicks` on a narrow axis (where minor ticks stay unlabelled)."""

    def __init__(self, text: Callable[[float], str], minor: bool) -> None:
        self.text, self.minor = text, minor

    def __call__(self, x: float, pos: int | None = None) -> str:
        if not x > 0:
            return ""
        decades = _decades(self.axis)
        if decades < NARROW_DECADES:
            return "" if self.minor else self.text(x)
        low, high = sorted(self.axis.get_view_interval())
        powers = math.floor(math.log10(high)) - math.ceil(math.log10(low)) + 1
        mantissa = x / 10 ** math.floor(math.log10(x) + 1e-9)
        shown = (1,) if powers >= 2 else (1, 2, 5)
        return self.text(x) if any(math.isclose(mantissa, m) for m in shown) else ""


def _plain(value: float) -> str:
    """20, 0.35, 1e14: short enough for a crowded log axis."""
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)) + 1e-9)
    mantissa = round(value / 10**exponent, 2)
    return f"1e{exponent}" if mantissa == 1 else f"{mantissa:g}e{exponent}"


def _log_axes(ax: Any, x: Callable[[float], str] | None, y: Callable[[float], str] | None) -> None:
    """Log scales with readable labels on the axes given a label writer (None: linear)."""
    for axis, text, scale in ((ax.xaxis, x, ax.set_xscale), (ax.yaxis, y, ax.set_yscale)):
        if text is not None:
            scale("log")
            _log_ticks(axis, text)


def _log_ticks(axis: Any, text: Callable[[float], str]) -> None:
    axis.set_major_locator(_LogTicks())
    axis.set_major_formatter(_LogLabels(text, minor=False))
    axis.set_minor_formatter(_LogLabels(text, minor=True))


def _axis_name(symbol: str) -> str:
    return {"N": "parameters N", "D": "tokens D"}[symbol]


def summarise(data: Any, keep: int = 8) -> Any:
    """The plotted data with long number lists shortened to count, min and max (for --json)."""
    if isinstance(data, list) and len(data) > keep and all(isinstance(v, bool) for v in data):
        return {"count": len(data), "true": sum(data)}
    if isinstance(data, dict):
        return {k: summarise(v, keep) for k, v in data.items()}
    if isinstance(data, list) and len(data) > keep and all(_number(v) for v in data):
        values = np.array([np.nan if v is None else v for v in data], dtype=float)
        finite = values[np.isfinite(values)]
        if not finite.size:
            return {"count": len(data)}
        return {"count": len(data), "min": float(finite.min()), "max": float(finite.max())}
    if isinstance(data, list) and len(data) > keep and all(isinstance(v, list) for v in data):
        return summarise([x for row in data for x in row], keep)
    if isinstance(data, list):
        return [summarise(v, keep) for v in data]
    return data


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
