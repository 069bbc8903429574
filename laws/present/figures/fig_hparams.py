"""Hyperparameter landscapes: each cell's loss over lr x batch with its near-optimal contour, the
cell's best run and the fitted law's choice, then the fitted lr and batch laws against the
per-cell optima (Step Law's Fig. 1 and 4, in spirit)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from laws.analysis.hparams import GridRuns
from laws.present.figures.common import PAGE_WIDTH, Plot, _log_axes, _styled
from laws.units import human


@_styled
def hparams(grid: GridRuns, law: dict) -> Plot:
    """One heat map per cell (relative loss above the cell's best, log lr x log batch), then
    optimum-vs-law panels for lr and batch."""
    cells = law["cells"]
    columns = max(len(cells), 2)
    figure = Figure(figsize=(PAGE_WIDTH, 4.6), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[1.1, 1])
    axes = np.atleast_1d(top.subplots(1, columns))
    drawn = []
    for ax, cell in zip(axes, cells, strict=False):
        rows = (grid.n == cell["n"]) & (grid.d == cell["d"])
        lr, batch, loss = grid.lr[rows], grid.batch[rows], grid.loss[rows]
        excess = 100 * (loss / loss.min() - 1)
        points = ax.scatter(lr, batch, c=excess, cmap="viridis_r", s=70, marker="s", vmin=0)
        if len(np.unique(lr)) > 1 and len(np.unique(batch)) > 1 and len(lr) >= 4:
            ax.tricontour(
                lr, batch, excess, levels=[100 * law["tolerance"]], colors="w", linewidths=0.8
            )
        best = cell["best"]
        ax.plot(best["lr"], best["batch_tokens"], "*", color="r", ms=9, label="best run")
        guess = cell["predicted"]
        ax.plot(guess["lr"], guess["batch_tokens"], "x", color="k", ms=7, label="law")
        _log_axes(ax, lambda v: f"{v:.0e}", human)
        edge = [k for k, v in cell["used"].items() if not v]
        flag = f"\n{', '.join(edge)} on the edge" if edge else ""
        ax.set_title(f"N={human(cell['n'])}, D={human(cell['d'])}{flag}")
        ax.set_xlabel("peak lr")
        drawn.append({"n": cell["n"], "d": cell["d"], "runs": int(rows.sum())})
        top.colorbar(points, ax=ax, label="% above best", shrink=0.8)
    axes[0].set_ylabel("batch (tokens)")
    axes[0].legend(loc="upper right", fontsize=6)
    used = [c for c in cells if c["used"]["lr"]]
    best_lr = np.array([c["best"]["lr"] for c in used])
    law_lr = np.array([c["predicted"]["lr"] for c in used])
    lr_ax, batch_ax = bottom.subplots(1, 2)
    lr_ax.loglog(law_lr, best_lr, "o")
    for x, y, c in zip(law_lr, best_lr, used, strict=True):
        lr_ax.annotate(f"{human(c['n'])}/{human(c['d'])}", (x, y), fontsize=6)
    span = np.geomspace(min(best_lr.min(), law_lr.min()), max(best_lr.max(), law_lr.max()), 2)
    lr_ax.plot(span, span, "--", color="0.5", lw=0.8)
    lr_ax.set(xlabel="law's lr", ylabel="cell's best lr", title="lr(N, D)")
    d = np.array([c["d"] for c in cells])
    marks = ["o" if c["used"]["batch"] else "v" for c in cells]
    for x, c, mark in zip(d, cells, marks, strict=True):
        batch_ax.loglog(x, c["best"]["batch_tokens"], mark, color="C0")
    fitted = law["batch_tokens"]
    if fitted is not None:
        line = np.geomspace(d.min(), d.max(), 20)
        batch_ax.loglog(line, fitted["coef"] * line ** fitted["d_exponent"], "-", label="law")
    batch_ax.set(xlabel="tokens D", ylabel="batch (tokens)", title="batch(D); v: on the edge")
    data = {"cells": drawn, "best_lr": best_lr.tolist(), "law_lr": law_lr.tolist()}
    return Plot(figure, data)
