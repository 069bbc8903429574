"""Hyperparameter landscapes: each cell's loss over lr x batch with its near-optimal contour, the
cell's best run and the fitted law's choice, then the fitted lr and batch laws against the
per-cell optima (Step Law's Fig. 1 and 4, in spirit)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from laws.analysis.hparams import GridRuns
from laws.present.figures.common import PAGE_WIDTH, Plot, _styled
from laws.units import human


@_styled
def hparams(grid: GridRuns, law: dict) -> Plot:
    """One heat map per cell (relative loss above the cell's best, log lr x log batch), then
    optimum-vs-law panels for lr and batch."""
    cells = law["cells"]
    columns = len(cells) + 2
    figure = Figure(figsize=(PAGE_WIDTH, 2.3), layout="constrained")
    axes = figure.subplots(1, columns)
    drawn = []
    for ax, cell in zip(axes, cells, strict=False):
        rows = (grid.n == cell["n"]) & (grid.d == cell["d"])
        lr, batch, loss = grid.lr[rows], grid.batch[rows], grid.loss[rows]
        excess = 100 * (loss / loss.min() - 1)
        points = ax.scatter(lr, batch, c=excess, cmap="viridis_r", s=40, marker="s", vmin=0)
        if len(np.unique(lr)) > 1 and len(np.unique(batch)) > 1 and len(lr) >= 4:
            ax.tricontour(
                lr, batch, excess, levels=[100 * law["tolerance"]], colors="w", linewidths=0.8
            )
        best = cell["best"]
        ax.plot(best["lr"], best["batch_tokens"], "*", color="r", ms=9, label="best run")
        guess = cell["predicted"]
        ax.plot(guess["lr"], guess["batch_tokens"], "x", color="k", ms=7, label="law")
        ax.set_xscale("log")
        ax.set_yscale("log")
        flag = "" if cell["used"] else " (edge: not fitted)"
        ax.set_title(f"N={human(cell['n'])}, D={human(cell['d'])}{flag}")
        ax.set_xlabel("peak lr")
        drawn.append({"n": cell["n"], "d": cell["d"], "runs": int(rows.sum())})
        figure.colorbar(points, ax=ax, label="% above best", shrink=0.8)
    axes[0].set_ylabel("batch (tokens)")
    axes[0].legend(loc="lower left", fontsize=6)
    used = [c for c in cells if c["used"]]
    best_lr = np.array([c["best"]["lr"] for c in used])
    law_lr = np.array([c["predicted"]["lr"] for c in used])
    lr_ax, batch_ax = axes[-2], axes[-1]
    lr_ax.loglog(law_lr, best_lr, "o")
    span = np.geomspace(min(best_lr.min(), law_lr.min()), max(best_lr.max(), law_lr.max()), 2)
    lr_ax.plot(span, span, "--", color="0.5", lw=0.8)
    lr_ax.set(xlabel="law's lr", ylabel="cell's best lr", title="lr(N, D)")
    d = np.array([c["d"] for c in used])
    batch_ax.loglog(d, [c["best"]["batch_tokens"] for c in used], "o", label="cell's best")
    line = np.geomspace(d.min(), d.max(), 20)
    fitted = law["batch_tokens"]
    batch_ax.loglog(line, fitted["coef"] * line ** fitted["d_exponent"], "-", label="law")
    batch_ax.set(xlabel="tokens D", ylabel="batch (tokens)", title="batch(D)")
    batch_ax.legend(fontsize=6)
    data = {"cells": drawn, "best_lr": best_lr.tolist(), "law_lr": law_lr.tolist()}
    return Plot(figure, data)
