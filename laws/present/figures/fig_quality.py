"""Fit quality: predicted vs measured, relative errors, bootstrap intervals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from laws.fit.forms import Law
from laws.fit.result import error_summary
from laws.present.figures.common import (
    PAGE_WIDTH,
    Palette,
    Plot,
    _axis_name,
    _log_axes,
    _plain,
    _styled,
)
from laws.runs.table import Runs
from laws.units import human


@_styled
def quality(
    runs: Runs,
    law: Law,
    held_out: np.ndarray | None = None,
    bootstrap: dict[str, Any] | None = None,
    label: str = "",
    palette: Palette | None = None,
) -> Plot:
    """Fit quality: predicted vs measured (held-out runs marked), relative error vs N and D,
    and, when the fit ran a bootstrap, each quantity's interval relative to its estimate."""
    palette = palette or Palette.for_runs(runs)
    held = np.zeros(len(runs), bool) if held_out is None else np.asarray(held_out, bool)
    predicted = law.predict(runs.n, runs.d)
    rel = predicted / runs.loss - 1.0
    intervals = _intervals(bootstrap)
    shape = (2, 2) if intervals else (1, 3)
    figure = Figure(figsize=(PAGE_WIDTH, 4.6 if intervals else 2.3), layout="constrained")
    axes = figure.subplots(*shape).ravel()
    parity, by_n, by_d = axes[:3]
    colours_n = [palette.n(v) for v in runs.n]
    colours_d = [palette.d(v) for v in runs.d]
    for mask, marker, edge in ((~held, "o", 0.3), (held, "D", 1.0)):
        if not mask.any():
            continue
        style = {"marker": marker, "s": 16, "edgecolors": "k", "linewidths": edge, "zorder": 3}
        parity.scatter(runs.loss[mask], predicted[mask], c=np.array(colours_n)[mask], **style)
        by_n.scatter(runs.n[mask], 100 * rel[mask], c=np.array(colours_d)[mask], **style)
        by_d.scatter(runs.d[mask], 100 * rel[mask], c=np.array(colours_n)[mask], **style)
    span = [min(runs.loss.min(), predicted.min()), max(runs.loss.max(), predicted.max())]
    parity.plot(span, span, color="0.4", lw=0.8, ls="--", label="y = x")
    _log_axes(parity, _plain, _plain)
    parity.set(xlabel="measured loss", ylabel="predicted loss")
    parity.set_title(f"{label or law.name}: predicted vs measured")
    handles = [Line2D([], [], marker="o", ls="", color="0.7", mec="k", mew=0.3, label="fitted")]
    if held.any():
        handles.append(Line2D([], [], marker="D", ls="", color="0.7", mec="k", label="held out"))
    parity.legend(handles=[*handles, Line2D([], [], color="0.4", ls="--", label="y = x")])
    for ax, name in ((by_n, "N"), (by_d, "D")):
        ax.axhline(0, color="0.4", lw=0.8)
        _log_axes(ax, human, None)
        ax.set(xlabel=_axis_name(name), ylabel="relative error (%)")
        ax.set_title(f"error vs {name} (colour: {'D' if name == 'N' else 'N'})")
    data: dict[str, Any] = {
        "n": runs.n.tolist(),
        "d": runs.d.tolist(),
        "measured": runs.loss.tolist(),
        "predicted": predicted.tolist(),
        "rel_error": rel.tolist(),
        "held_out": held.tolist(),
        "errors": {
            "fitted": error_summary(law, runs.subset(~held)) if (~held).any() else None,
            "held_out": error_summary(law, runs.subset(held)) if held.any() else None,
        },
    }
    if intervals:
        _draw_intervals(axes[3], intervals)
        data["bootstrap"] = intervals
    return Plot(figure, data)


def _intervals(boot: dict[str, Any] | None) -> dict[str, Any] | None:
    """Bootstrap intervals as multiples of each estimate (quantities with a non-zero one):
    comparable across parameters and derived quantities, and legible when an interval spans
    orders of magnitude, as it does on a handful of runs."""
    quantities = (boot or {}).get("quantities") or {}
    rows = {
        name: sorted((q["low"] / q["estimate"], q["high"] / q["estimate"]))
        for name, q in quantities.items()
        if q.get("estimate") and all(math.isfinite(q[k]) for k in ("estimate", "low", "high"))
    }
    if not rows:
        return None
    return {
        "names": list(rows),
        "low_ratio": [low for low, _ in rows.values()],
        "high_ratio": [high for _, high in rows.values()],
        "level": boot.get("level", 0.95),
        "resamples": boot.get("succeeded"),
    }


def _draw_intervals(ax: Any, intervals: dict[str, Any]) -> None:
    """One bar per quantity on a log axis around 1 (the estimate); an interval that reaches
    zero or the other sign is drawn in red from the axis's left edge."""
    y = np.arange(len(intervals["names"]))
    low, high = np.array(intervals["low_ratio"]), np.array(intervals["high_ratio"])
    positive = low[low > 0]
    floor = min(0.5, positive.min() if positive.size else 0.5) / 3
    crosses = low <= 0
    ax.hlines(
        y,
        np.maximum(low, floor),
        np.maximum(high, floor),
        color=np.where(crosses, "C3", "C0"),
        lw=2,
    )
    ax.axvline(1.0, color="k", lw=0.8)
    _log_axes(ax, _plain, None)
    ax.set_xlim(left=floor)
    ax.set_yticks(y, intervals["names"], fontsize=6)
    ax.invert_yaxis()
    ax.grid(False, axis="y")
    ax.set_xlabel("interval / estimate (red: reaches zero)")
    ax.set_title(f"bootstrap {intervals['level']:.0%} intervals ({intervals['resamples']} refits)")
