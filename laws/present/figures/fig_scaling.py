"""Fig. 3: measured loss against N and D with a law's curves."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from laws.fit.forms import Law
from laws.present.figures.common import (
    PAGE_WIDTH,
    Palette,
    Plot,
    _axis_name,
    _log_axes,
    _log_ticks,
    _plain,
    _styled,
)
from laws.runs.table import Runs
from laws.units import human


def _groups(values: np.ndarray, tolerance: float = 0.02) -> list[np.ndarray]:
    """Indices of values that are equal within a relative tolerance (tokens rounded to whole
    batches differ slightly between runs of the same nominal budget)."""
    order = np.argsort(values)
    groups: list[list[int]] = []
    for i in order:
        if groups and values[i] <= values[groups[-1][0]] * (1 + tolerance):
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return [np.array(g) for g in groups]


@_styled
def scaling(runs: Runs, law: Law, palette: Palette | None = None, points: int = 64) -> Plot:
    """Fig. 3: loss vs N at each D and loss vs D at each N, measured points and the law's curves."""
    palette = palette or Palette.for_runs(runs)
    figure = Figure(figsize=(PAGE_WIDTH, 2.5), layout="constrained")
    figure.get_layout_engine().set(wspace=0.08)  # keeps the left colorbar clear of the right
    by_n, by_d = figure.subplots(1, 2)
    data: dict[str, Any] = {}
    panels = (
        (by_n, "by_d", runs.d, runs.n, palette.d, palette.d_bar(), "D", "N"),
        (by_d, "by_n", runs.n, runs.d, palette.n, palette.n_bar(), "N", "D"),
    )
    for ax, key, fixed, moving, colour, bar, fixed_name, moving_name in panels:
        grid = np.geomspace(moving.min(), moving.max(), points)
        lines = []
        for index in _groups(fixed):
            value = float(np.median(fixed[index]))
            order = index[np.argsort(moving[index])]
            n, d = (grid, value) if key == "by_d" else (value, grid)
            with np.errstate(over="ignore", under="ignore"):
                curve = law.predict(n, d) * np.ones_like(grid)
            ax.plot(grid, curve, color=colour(value), lw=1.0)
            ax.plot(moving[order], runs.loss[order], "o", color=colour(value), mec="k", mew=0.3)
            lines.append(
                {
                    fixed_name.lower(): value,
                    "points": {
                        moving_name.lower(): moving[order].tolist(),
                        "loss": runs.loss[order].tolist(),
                    },
                    "curve": {moving_name.lower(): grid.tolist(), "loss": curve.tolist()},
                }
            )
        data[key] = lines
        _log_axes(ax, human, _plain)
        ax.set(xlabel=_axis_name(moving_name), ylabel="loss")
        ax.set_title(f"loss vs {moving_name} at fixed {fixed_name} ({len(lines)} lines)")
        _log_ticks(figure.colorbar(bar, ax=ax, label=fixed_name, pad=0.01).ax.yaxis, human)
    by_n.legend(handles=_measured_vs_law(law.name), loc="upper right")
    return Plot(figure, data)


def _measured_vs_law(name: str) -> list[Line2D]:
    return [
        Line2D([], [], marker="o", ls="", color="0.6", mec="k", mew=0.3, label="measured"),
        Line2D([], [], color="0.4", label=f"{name} law"),
    ]
