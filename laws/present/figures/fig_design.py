"""Fig. 2: the study's design."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from laws.present.figures.common import (
    CHINCHILLA_RATIO,
    PAGE_WIDTH,
    Palette,
    Plot,
    _log_axes,
    _log_norm,
    _log_ticks,
    _plain,
    _styled,
)
from laws.runs.table import Runs
from laws.units import human


@_styled
def design(runs: Runs) -> Plot:
    """Fig. 2: the (N, D) runs, log-log, coloured by tokens per parameter."""
    pairs = np.unique(np.stack([runs.n, runs.d], axis=1), axis=0)
    n, d = pairs[:, 0], pairs[:, 1]
    ratio = d / n
    figure = Figure(figsize=(PAGE_WIDTH / 2, 2.5), layout="constrained")
    ax = figure.add_subplot()
    norm = _log_norm(ratio)
    points = ax.scatter(
        n, d, c=ratio, cmap=Palette.RATIO_MAP, norm=norm, s=18, edgecolors="k", linewidths=0.3
    )
    guide = np.geomspace(n.min(), n.max(), 2)
    ax.plot(guide, CHINCHILLA_RATIO * guide, "--", color="0.5", lw=0.8)
    _log_axes(ax, human, human)
    ax.set(
        xlabel="parameters N",
        ylabel="tokens D",
        title=f"{len(pairs)} (N, D) pairs (dashed: D/N = 20)",
    )
    _log_ticks(figure.colorbar(points, ax=ax, label="D/N").ax.yaxis, _plain)
    data = {"n": n.tolist(), "d": d.tolist(), "d_over_n": ratio.tolist()}
    return Plot(figure, data)
