"""Fig. 6 and 7: data mixtures' laws compared, crossovers marked."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from laws.analysis.optimal import crossovers
from laws.errors import LawsError
from laws.fit.forms import Law
from laws.present.figures.common import PAGE_WIDTH, Palette, Plot, _log_axes, _plain, _styled
from laws.present.figures.inputs import PAPER_N_RANGE
from laws.units import human

DEFAULT_RATIOS = (5.0, 20.0, 100.0, 500.0)  # D/N of the loss-vs-N mixture panels


@_styled
def mixtures(
    laws: dict[str, Law],
    sizes: Sequence[float],
    ratios: Sequence[float],
    ratio_range: tuple[float, float] = (1.0, 1e4),
    n_range: tuple[float, float] = PAPER_N_RANGE,
    palette: Palette | None = None,
    points: int = 96,
) -> Plot:
    """Fig. 6 and 7: loss vs D/N at fixed N with crossovers marked, loss vs N at fixed D/N."""
    if not laws or not sizes or not ratios:
        raise LawsError("a mixtures plot needs at least one law, one model size and one D/N")
    palette = palette or Palette(labels=list(laws))
    columns = max(len(sizes), len(ratios))
    figure = Figure(figsize=(PAGE_WIDTH, 4.4), layout="constrained")
    axes = figure.subplots(2, columns, squeeze=False)
    ratio_grid = np.geomspace(*ratio_range, points)
    n_grid = np.geomspace(*n_range, points)
    data: dict[str, Any] = {"by_n": [], "by_ratio": []}
    for ax, n in zip(axes[0], sizes, strict=False):
        curves = {}
        for label, law in laws.items():
            curves[label] = law.predict(n, n * ratio_grid)
            ax.plot(ratio_grid, curves[label], color=palette.label(label), label=label)
        crossings = []
        for (name_a, law_a), (name_b, _) in itertools.combinations(laws.items(), 2):
            for r in crossovers(law_a, laws[name_b], n, ratio_range):
                loss = float(law_a.predict(n, n * r))
                crossings.append({"between": [name_a, name_b], "d_over_n": r, "loss": loss})
        if crossings:
            r_cross = [c["d_over_n"] for c in crossings]
            l_cross = [c["loss"] for c in crossings]
            ax.plot(r_cross, l_cross, "x", color="k", ms=6, mew=1.2, gid="crossover", zorder=4)
            for r in r_cross:
                ax.axvline(r, color="k", lw=0.5, ls=":")
        _log_axes(ax, _plain, _plain)
        ax.set(xlabel="D/N", title=f"N = {human(n)}")
        data["by_n"].append(
            {
                "n": float(n),
                "d_over_n": ratio_grid.tolist(),
                "loss": {k: v.tolist() for k, v in curves.items()},
                "crossovers": crossings,
            }
        )
    for ax, ratio in zip(axes[1], ratios, strict=False):
        curves = {}
        for label, law in laws.items():
            curves[label] = law.predict(n_grid, ratio * n_grid)
            ax.plot(n_grid, curves[label], color=palette.label(label), label=label)
        _log_axes(ax, human, _plain)
        ax.set(xlabel="parameters N", title=f"D/N = {ratio:g}")
        data["by_ratio"].append(
            {
                "d_over_n": float(ratio),
                "n": n_grid.tolist(),
                "loss": {k: v.tolist() for k, v in curves.items()},
            }
        )
    for row, used in zip(axes, (len(sizes), len(ratios)), strict=True):
        row[0].set_ylabel("predicted loss")
        for ax in row[used:]:
            ax.set_visible(False)
    handles, _ = axes[0][0].get_legend_handles_labels()
    handles.append(Line2D([], [], marker="x", ls="", color="k", label="crossover"))
    axes[0][0].legend(handles=handles, loc="best")
    return Plot(figure, data)
