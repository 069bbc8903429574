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

    def cells(self) -> list[np.ndarray]:
        keys = sorted(set(zip(self.n.tolist(), self.d.tolist(), strict=True)))
        return [np.flatnonzero((self.n == n) & (self.d == d)) for n, d in keys]


def read_grid(path: str | Path) -> GridRuns:
    """A runs/ directory of a `laws design --hparam-grid` sweep (val_bpc as the loss, lr and
    global batch from each run's plan, D the budget asked for) or a CSV with columns N, D, lr,
    batch_tokens, loss (any case), e.g. a published grid."""
    path = Path(path)
    if path.is_dir():
        rows = _result_rows(path)
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
    return GridRuns(
        values["n"], values["d"], values["lr"], values["batch_tokens"], values["loss"], str(path)
    )


def _result_rows(root: Path) -> list[dict[str, float]]:
    rows = []
    for file in sorted(root.rglob("result.json")):
        result = json.loads(file.read_text())
        if result.get("status") != "completed":
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
    """The fitted lr and batch laws with bootstrap intervals, and every cell's story."""
    if not 0 < tolerance < 0.1:
        raise LawsError(f"--tolerance {tolerance}: a relative loss margin such as 0.0025")
    cells = [_cell(grid, rows, tolerance) for rows in grid.cells()]
    used = [c for c in cells if c["used"]]
    near = np.concatenate([c["near_rows"] for c in used]) if used else np.array([], dtype=int)
    _check_spans(grid, near, cells)
    x = np.log(np.column_stack([grid.n[near], grid.d[near]]))
    y_lr, y_batch = np.log(grid.lr[near]), np.log(grid.batch[near])
    lr = _least_squares(x, y_lr)
    batch = _least_squares(x[:, 1:], y_batch)
    with_n = _least_squares(x[:, ::-1], y_batch)  # ln B on (ln D, ln N): is N's term supported?
    draws = _bootstrap(x, y_lr, y_batch, resamples, seed)
    if resamples and not len(draws["lr"]):
        raise LawsError(f"none of the {resamples} bootstrap draws could fit the law")
    law = {
        "lr": {
            "coef": float(np.exp(lr[0])),
            "n_exponent": float(lr[1]),
            "d_exponent": float(lr[2]),
        },
        "batch_tokens": {"coef": float(np.exp(batch[0])), "d_exponent": float(batch[1])},
    }
    for cell in cells:
        _score(grid, cell, law)
    n_interval = _interval(draws["batch_n"])
    return {
        "law": "hparams",
        "source": grid.source,
        **_with_intervals(law, draws),
        "batch_n_test": {
            "n_exponent": float(with_n[2]),
            "interval": n_interval,
            "supported": None
            if n_interval is None
            else bool(n_interval[0] > 0 or n_interval[1] < 0),
        },
        "tolerance": tolerance,
        "near_optimal_runs": int(len(near)),
        "bootstrap": {
            "resamples": resamples,
            "failed": resamples - len(draws["lr"]),
            "seed": seed,
            "level": LEVEL,
            "unit": "near-optimal runs",
        },
        "cells": [{k: v for k, v in c.items() if k != "near_rows"} for c in cells],
        "problems": [
            f"cell N={c['n']:.4g} D={c['d']:.4g}: {c['edge']}" for c in cells if c["edge"]
        ],
    }


def _cell(grid: GridRuns, rows: np.ndarray, tolerance: float) -> dict[str, Any]:
    best = rows[np.argmin(grid.loss[rows])]
    minimum = float(grid.loss[best])
    near = rows[grid.loss[rows] <= minimum * (1 + tolerance)]
    edges = []
    for name, values in (("lr", grid.lr), ("batch", grid.batch)):
        tried = np.unique(values[rows])
        if len(tried) > 1 and values[best] in (tried[0], tried[-1]):
            side = "lowest" if values[best] == tried[0] else "highest"
            edges.append(
                f"the best {name} is the {side} tried ({values[best]:.4g}); widen the grid"
            )
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
        "edge": "; ".join(edges) or None,
        "used": not edges,
        "near_rows": near,
    }


def _check_spans(grid: GridRuns, near: np.ndarray, cells: list[dict]) -> None:
    usable = sum(c["used"] for c in cells)
    if not _separable(np.log(np.column_stack([grid.n[near], grid.d[near]]))):
        raise LawsError(
            f"{usable} of {len(cells)} cells are usable (optimum inside the grid), and their N and "
            "D do not separate lr's two exponents (they need 2 sizes, 2 budgets, and not a fixed "
            "D/N or a fixed N D): add cells, or widen the grids of the flagged ones"
        )


def _separable(x: np.ndarray) -> bool:
    """Whether ln lr = a + b ln N + c ln D is determined by these rows."""
    return len(x) > 3 and np.linalg.matrix_rank(np.column_stack([np.ones(len(x)), x])) == 3


def _least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(y)), x])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def _bootstrap(
    x: np.ndarray, y_lr: np.ndarray, y_batch: np.ndarray, resamples: int, seed: int
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y_lr), size=(resamples, len(y_lr)))
    out: dict[str, list[float]] = {k: [] for k in ("lr", "batch", "batch_n")}
    for pick in rows:
        if not _separable(x[pick]):
            continue  # counted as failed: the draw cannot fit the law
        out["lr"].append(_least_squares(x[pick], y_lr[pick]))
        out["batch"].append(_least_squares(x[pick, 1:], y_batch[pick]))
        out["batch_n"].append(_least_squares(x[pick, ::-1], y_batch[pick])[2])
    return {k: np.array(v) for k, v in out.items()}


def _interval(values: np.ndarray) -> list[float] | None:
    if not len(values):
        return None  # no bootstrap asked for
    tail = 100 * (1 - LEVEL) / 2
    return [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def _with_intervals(law: dict, draws: dict[str, np.ndarray]) -> dict:
    lr, batch = draws["lr"].reshape(-1, 3), draws["batch"].reshape(-1, 2)
    columns = {
        "lr": {"coef": np.exp(lr[:, 0]), "n_exponent": lr[:, 1], "d_exponent": lr[:, 2]},
        "batch_tokens": {"coef": np.exp(batch[:, 0]), "d_exponent": batch[:, 1]},
    }
    out = {}
    for part, values in columns.items():
        out[part] = {
            **law[part],
            "interval": {k: _interval(v) for k, v in values.items()},
            "std": {k: float(np.std(v)) if len(v) else None for k, v in values.items()},
            "draws": int(len(lr)),
        }
    return out


def _score(grid: GridRuns, cell: dict, law: dict) -> None:
    """The law's lr and batch for the cell, and the loss the landscape has there."""
    lr_law, batch_law = law["lr"], law["batch_tokens"]
    lr = lr_law["coef"] * cell["n"] ** lr_law["n_exponent"] * cell["d"] ** lr_law["d_exponent"]
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
