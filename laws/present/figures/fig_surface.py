"""Fig. 4 (left), Fig. 5: loss surfaces L(N, D)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from laws.errors import LawsError
from laws.fit.forms import Law
from laws.present.figures.common import PAGE_WIDTH, Palette, Plot, _styled
from laws.runs.table import Runs


@_styled
def surface(
    laws: dict[str, Law],
    n_range: tuple[float, float],
    d_range: tuple[float, float],
    runs: dict[str, Runs] | None = None,
    palette: Palette | None = None,
    points: int = 40,
) -> Plot:
    """Fig. 4 (left), Fig. 5: the laws' L(N, D) surfaces over log N, log D, with measured runs
    (keyed by a law's label: drawn in its colour; by any other label: in black)."""
    if not laws:
        raise LawsError("a surface plot needs at least one law (--fit)")
    palette = palette or Palette(labels=list(laws))
    runs = runs or {}
    log_n = np.linspace(math.log10(n_range[0]), math.log10(n_range[1]), points)
    log_d = np.linspace(math.log10(d_range[0]), math.log10(d_range[1]), points)
    grid_n, grid_d = np.meshgrid(log_n, log_d, indexing="ij")
    figure = Figure(figsize=(0.62 * PAGE_WIDTH, 3.4), layout="constrained")
    ax = figure.add_subplot(projection="3d")
    data: dict[str, Any] = {
        "log10_n": log_n.tolist(),
        "log10_d": log_d.tolist(),
        "loss": {},
        "runs": {},
    }
    handles = []
    for label, law in laws.items():
        colour = palette.label(label)
        with np.errstate(over="ignore", under="ignore"):
            loss = law.predict(10**grid_n, 10**grid_d)
        ax.plot_surface(grid_n, grid_d, loss, color=colour, alpha=0.45, linewidth=0, shade=True)
        data["loss"][label] = loss.tolist()
        handles.append(Patch(color=colour, alpha=0.6, label=label))
    for label, measured in runs.items():
        colour = palette.label(label) if label in laws else "k"
        ax.scatter(
            np.log10(measured.n),
            np.log10(measured.d),
            measured.loss,
            color=colour,
            edgecolors="k",
            linewidths=0.3,
            s=8,
            depthshade=False,
        )
        data["runs"][label] = {
            "n": measured.n.tolist(),
            "d": measured.d.tolist(),
            "loss": measured.loss.tolist(),
        }
        if label not in laws:
            handles.append(Line2D([], [], marker="o", ls="", color=colour, ms=3, label=label))
    ax.set_xlabel("log10 N", labelpad=-2)
    ax.set_ylabel("log10 D", labelpad=-2)
    ax.set_zlabel("loss", labelpad=-1)
    ax.tick_params(pad=-2)
    ax.view_init(elev=24, azim=-60)  # the high-loss corner (small N, D) in front
    ax.set_box_aspect(None, zoom=0.9)  # room for the axis labels inside the figure
    ax.legend(handles=handles, loc="upper left")
    return Plot(figure, data)
