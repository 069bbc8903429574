"""Hyperparameter laws measured Step Law's way: a grid of lr x batch at several (N, D) cells, each
cell's optimum and near-optimal set, and power laws fitted through them.

In each cell the runs whose loss is within `tolerance` (0.25%) of the cell's best are the
near-optimal set (the landscape is broad and convex, so its minimum alone is noisy); log lr is
regressed on (log N, log D) and log batch on log D over those runs, and bootstrap resamples of
them give the coefficients' spread. A cell whose best run sits on an edge of its grid (the lowest
or highest lr or batch tried) is flagged and left out of the fit: its optimum may lie beyond
the grid, which must be widened there. The loss the fitted law's own choice would cost in a cell
is read off the landscape, interpolated linearly in (log lr, log batch) at the law's point.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import griddata

from laws.errors import LawsError
from laws.units import parse_quantity

TOLERANCE = 0.0025
CSV_COLUMNS = ("n", "d", "lr", "batch_tokens", "loss")
LEVEL = 0.95


@dataclass(frozen=True)
class GridRuns:
    """One hyperparameter grid: a row per run."""

    n: np.ndarray
    d: np.ndarray
    lr: np.ndarray
    batch: np.ndarray
    loss: np.ndarray
    source: str
    left_out: tuple[str, ...] = ()  # result files read without a completed result

    def cells(self) -> list[np.ndarray]:
        keys = sorted(set(zip(self.n.tolist(), self.d.tolist(), strict=True)))
        return [np.flatnonzero((self.n == n) & (self.d == d)) for n, d in keys]


def read_grid(path: str | Path) -> GridRuns:
    """A runs/ directory of a `laws design --hparam-grid` sweep (val_bpc as the loss, lr and
    global batch from each run's plan, D the budget asked for) or a CSV with columns N, D, lr,
    batch_tokens, loss (any case), e.g. a published grid."""
    path = Path(path)
    left_out: list[str] = []
    if path.is_dir():
        rows = _result_rows(path, left_out)
    elif path.suffix.lower() == ".csv":
        rows = _csv_rows(path)
    else:
        raise LawsError(
            f"{path}: expected a runs/ directory or a .csv (N, D, lr, batch_tokens, loss)"
        )
    if not rows:
        raise LawsError(f"{path}: no completed runs")
    values = {k: np.array([r[k] for r in rows], dtype=float) for k in CSV_COLUMNS}
    bad = [k for k, v in values.items() if not np.all(np.isfinite(v) & (v > 0))]
    if bad:
        raise LawsError(f"{path}: {', '.join(bad)} must be positive finite numbers in every row")
    columns = [values[k] for k in ("n", "d", "lr", "batch_tokens", "loss")]
    return GridRuns(*columns, str(path), tuple(left_out))


def _result_rows(root: Path, left_out: list[str]) -> list[dict[str, float]]:
    rows = []
    for file in sorted(root.rglob("result.json")):
        result = json.loads(file.read_text())
        if result.get("status") != "completed":
            left_out.append(str(file))
            continue
        plan = result.get("plan") or {}
        try:
            rows.append(
                {
                    "n": result["n_params"],
                    "d": plan.get("tokens_requested", result["tokens"]),
                    "lr": plan["lr"],
                    "batch_tokens": plan["global_batch_tokens"],
                    "loss": result["val_bpc"],
                }
            )
        except KeyError as err:
            raise LawsError(f"{file}: a completed run without {err}") from None
    return rows


def _csv_rows(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = {k.strip().lower(): k for k in reader.fieldnames or []}
        missing = [c for c in CSV_COLUMNS if c not in columns]
        if missing:
            raise LawsError(
                f"{path}: a hyperparameter grid CSV needs columns N, D, lr, batch_tokens, loss; "
                f"missing {', '.join(missing)}"
            )
        return [
            {c: parse_quantity(row[columns[c]], f"{path} {c}") for c in CSV_COLUMNS}
            for row in reader
        ]


def fit_hparams(
    grid: GridRuns, tolerance: float = TOLERANCE, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The fitted lr and batch laws with bootstrap intervals, and every cell's story.

    The two laws are fitted apart, as Step Law does: a cell whose best lr is on its grid's edge
    is left out of the lr law only, one whose best batch is on the edge out of the batch law
    only. The lr law must be measurable (else LawsError); a batch law that is not (no cell with
    an interior batch optimum over two budgets) is null, with the reason in `problems`.
    """
    if not 0 < tolerance < 0.1:
        raise LawsError(f"--tolerance {tolerance}: a relative loss margin such as 0.0025")
    cells = [_cell(grid, rows, tolerance) for rows in grid.cells()]
    lr_rows = _near(cells, "lr")
    _check_spans(grid, lr_rows, cells)
    x = np.log(np.column_stack([grid.n[lr_rows], grid.d[lr_rows]]))
    lr = _least_squares(x, np.log(grid.lr[lr_rows]))
    lr_draws = _bootstrap(x, np.log(grid.lr[lr_rows]), resamples, seed, _separable)
    if resamples and not len(lr_draws):
        raise LawsError(f"none of the {resamples} bootstrap draws could fit the lr law")
    law: dict[str, Any] = {
        "lr": {
            "coef": float(np.exp(lr[0])),
            "n_exponent": float(lr[1]),
            "d_exponent": float(lr[2]),
        },
        "batch_tokens": None,
    }
    law["lr"].update(_spread(lr_draws, ("coef", "n_exponent", "d_exponent")))
    problems = [f"cell N={c['n']:.4g} D={c['d']:.4g}: {e}" for c in cells for e in c["edges"]]
    if grid.left_out:
        problems.append(
            f"{len(grid.left_out)} runs without a completed result left out, "
            f"e.g. {grid.left_out[0]}"
        )
    batch_rows = _near(cells, "batch")
    test: dict[str, Any] = {"n_exponent": None, "interval": None, "supported": None}
    if len(np.unique(grid.d[batch_rows])) < 2:
        problems.append(
            "no batch law: fewer than 2 budgets have a cell whose best batch lies inside its grid"
        )
    else:
        xb = np.log(np.column_stack([grid.d[batch_rows], grid.n[batch_rows]]))
        yb = np.log(grid.batch[batch_rows])
        batch = _least_squares(xb[:, :1], yb)
        draws = _bootstrap(xb[:, :1], yb, resamples, seed, _two_values)
        law["batch_tokens"] = {
            "coef": float(np.exp(batch[0])),
            "d_exponent": float(batch[1]),
            **_spread(draws, ("coef", "d_exponent")),
        }
        if len(np.unique(grid.n[batch_rows])) > 1 and _separable(xb):
            test = _n_term(xb, yb, resamples, seed)
    for cell in cells:
        _score(grid, cell, law)
    return {
        "law": "hparams",
        "source": grid.source,
        **law,
        "batch_n_test": test,
        "tolerance": tolerance,
        "near_optimal_runs": {"lr": int(len(lr_rows)), "batch": int(len(batch_rows))},
        "bootstrap": {
            "resamples": resamples,
            "failed": resamples - len(lr_draws),
            "seed": seed,
            "level": LEVEL,
            "unit": "near-optimal runs",
        },
        "cells": [{k: v for k, v in c.items() if k != "near_rows"} for c in cells],
        "problems": problems,
    }


def _cell(grid: GridRuns, rows: np.ndarray, tolerance: float) -> dict[str, Any]:
    best = rows[np.argmin(grid.loss[rows])]
    minimum = float(grid.loss[best])
    near = rows[grid.loss[rows] <= minimum * (1 + tolerance)]
    edges, used = [], {}
    for name, values in (("lr", grid.lr), ("batch", grid.batch)):
        tried = np.unique(values[rows])
        if len(tried) == 1:  # nothing measured along this axis
            used[name] = False
            edges.append(f"only one {name} tried ({tried[0]:.4g}); left out of the {name} law")
            continue
        on_edge = values[best] in (tried[0], tried[-1])
        used[name] = not on_edge
        if on_edge:
            side = "lowest" if values[best] == tried[0] else "highest"
            tried_text = f"the best {name} is the {side} tried ({values[best]:.4g})"
            edges.append(f"{tried_text}; left out of the {name} law, widen the grid")
    return {
        "n": float(grid.n[best]),
        "d": float(grid.d[best]),
        "runs": int(len(rows)),
        "best": {
            "lr": float(grid.lr[best]),
            "batch_tokens": float(grid.batch[best]),
            "loss": minimum,
        },
        "near_optimal": int(len(near)),
        "edges": edges,
        "used": used,
        "near_rows": near,
    }


def _near(cells: list[dict], axis: str) -> np.ndarray:
    rows = [c["near_rows"] for c in cells if c["used"][axis]]
    return np.concatenate(rows) if rows else np.array([], dtype=int)


def _check_spans(grid: GridRuns, near: np.ndarray, cells: list[dict]) -> None:
    usable = sum(c["used"]["lr"] for c in cells)
    if not _separable(np.log(np.column_stack([grid.n[near], grid.d[near]]))):
        raise LawsError(
            f"{usable} of {len(cells)} cells have their best lr inside the grid, and their N and "
            "D do not separate lr's two exponents (they need 2 sizes, 2 budgets, and not a fixed "
            "D/N or a fixed N D): add cells, or widen the grids of the flagged ones"
        )


def _separable(x: np.ndarray) -> bool:
    """Whether y = a + b x1 + c x2 is determined by these rows."""
    return len(x) > 3 and np.linalg.matrix_rank(np.column_stack([np.ones(len(x)), x])) == 3


def _two_values(x: np.ndarray) -> bool:
    return len(np.unique(x[:, 0])) > 1


def _least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(y)), x])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def _bootstrap(x: np.ndarray, y: np.ndarray, resamples: int, seed: int, fits) -> np.ndarray:
    """Least-squares coefficients of resampled rows; draws that cannot fit are dropped (the
    caller counts them)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(y), size=(resamples, len(y)))
    found = [_least_squares(x[p], y[p]) for p in picks if fits(x[p])]
    return np.array(found).reshape(-1, x.shape[1] + 1)


def _n_term(x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> dict[str, Any]:
    """ln batch on (ln D, ln N): N's exponent and whether its interval excludes 0."""
    draws = _bootstrap(x, y, resamples, seed, _separable)
    interval = _interval(draws[:, 2])
    return {
        "n_exponent": float(_least_squares(x, y)[2]),
        "interval": interval,
        "supported": None if interval is None else not interval[0] <= 0 <= interval[1],
    }


def _interval(values: np.ndarray) -> list[float] | None:
    if not len(values):
        return None  # no bootstrap asked for
    tail = 100 * (1 - LEVEL) / 2
    return [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def _spread(draws: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """Intervals and standard deviations of the coefficient (first: from its log) and exponents."""
    columns = [np.exp(draws[:, 0]), *(draws[:, i] for i in range(1, draws.shape[1]))]
    return {
        "interval": {k: _interval(v) for k, v in zip(names, columns, strict=True)},
        "std": {
            k: float(np.std(v)) if len(v) else None for k, v in zip(names, columns, strict=True)
        },
        "draws": int(len(draws)),
    }


def _score(grid: GridRuns, cell: dict, law: dict) -> None:
    """The law's lr and batch for the cell (the cell's best batch where there is no batch law),
    and the loss the landscape has there."""
    lr_law, batch_law = law["lr"], law["batch_tokens"]
    lr = lr_law["coef"] * cell["n"] ** lr_law["n_exponent"] * cell["d"] ** lr_law["d_exponent"]
    if batch_law is None:
        batch = cell["best"]["batch_tokens"]
    else:
        batch = batch_law["coef"] * cell["d"] ** batch_law["d_exponent"]
    rows = np.flatnonzero((grid.n == cell["n"]) & (grid.d == cell["d"]))
    loss = landscape_at(grid.lr[rows], grid.batch[rows], grid.loss[rows], lr, batch)
    cell["predicted"] = {"lr": float(lr), "batch_tokens": float(batch)}
    cell["loss_at_predicted"] = loss
    cell["loss_lost"] = None if loss is None else loss / cell["best"]["loss"] - 1


def landscape_at(
    lrs: np.ndarray, batches: np.ndarray, losses: np.ndarray, lr: float, batch: float
) -> float | None:
    """Loss interpolated linearly in (log lr, log batch); None outside the grid."""
    x, y = np.log(lrs), np.log(batches)
    if len(np.unique(y)) == 1 or len(np.unique(x)) == 1:
        axis, at = (x, np.log(lr)) if len(np.unique(y)) == 1 else (y, np.log(batch))
        order = np.argsort(axis)
        if not axis.min() <= at <= axis.max():
            return None
        return float(np.interp(at, axis[order], losses[order]))
    value = griddata(np.column_stack([x, y]), losses, [(np.log(lr), np.log(batch))])[0]
    return None if not np.isfinite(value) else float(value)
