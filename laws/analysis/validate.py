"""How far a fitted law can be trusted: held-out extrapolation, leave-one-size-out (and the
bootstrap, in `laws.analysis.bootstrap`).

Held-out error is the headline: a law is used to extrapolate, and in-sample error favours the
form with more parameters by construction (Farseer's 9 over Chinchilla's 5). Without a split
chosen by the user, `extrapolation` holds out the largest model size and refits on the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from laws.errors import LawsError
from laws.fit.dispatch import fit_law
from laws.fit.forms import Law
from laws.fit.result import Fit, error_summary, relative_errors
from laws.parallel import parallel_map
from laws.runs.table import Runs
from laws.units import parse_quantity

# The `holdout` section of a fit file (a fit below --holdout), as written before `extrapolation`.
HOLDOUT_KEYS = ("cutoff", "n_train", "n_runs", "mean_rel_error", "max_rel_error")
HOLDOUT_KEYS += ("signed_rel_error", "runs")
_CUTOFF = re.compile(r"^\s*([nc])\s*[<:]\s*(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Cutoff:
    """Fit on runs with N (or C) below `value`; hold out the rest. Written n<2B or c<1e20
    (n:2B, c:1e20 avoid quoting '<' in a shell)."""

    axis: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Cutoff:
        match = _CUTOFF.match(text)
        if not match:
            raise LawsError(
                f"cannot read holdout {text!r}; write n<2.27B (fit on N below 2.27B) or c<1e20 "
                "(fit on compute below 1e20 FLOPs); n:2.27B avoids quoting '<'"
            )
        axis = match.group(1).lower()
        return cls(axis, parse_quantity(match.group(2), f"holdout {axis.upper()}"))

    def train_mask(self, runs: Runs) -> np.ndarray:
        return (runs.n if self.axis == "n" else runs.c) < self.value

    def __str__(self) -> str:
        return f"{self.axis}<{self.value:.4g}"


def evaluate(law: Law, runs: Runs) -> dict[str, Any]:
    """Relative errors of a law on runs: the summary and one row per run."""
    rel = relative_errors(law, runs)
    pred = law.predict(runs.n, runs.d)
    return {
        "n_runs": len(runs),
        **error_summary(law, runs),
        "runs": [
            {"n": float(n), "d": float(d), "loss": float(y), "predicted": float(p), "rel_error": r}
            for n, d, y, p, r in zip(runs.n, runs.d, runs.loss, pred, rel.tolist(), strict=True)
        ],
    }


def split(runs: Runs, cutoff: Cutoff) -> tuple[Runs, Runs]:
    train = cutoff.train_mask(runs)
    if train.all() or not train.any():
        side = "no" if not train.any() else "every"
        raise LawsError(
            f"holdout {cutoff} puts {side} run in the training set "
            f"(N spans {runs.n.min():.3g}-{runs.n.max():.3g}, C {runs.c.min():.3g}-"
            f"{runs.c.max():.3g}); choose a cut inside that range"
        )
    return runs.subset(train), runs.subset(~train)


def holdout(runs: Runs, law: str, cutoff: Cutoff, **options: Any) -> tuple[Fit, dict[str, Any]]:
    """Fit on the runs below the cut-off and report the relative error on the rest."""
    train, test = split(runs, cutoff)
    fit = fit_law(train, law, **options)
    return fit, {"cutoff": str(cutoff), "n_train": len(train), **evaluate(fit.law, test)}


def largest_size_out(runs: Runs) -> Cutoff:
    """The default split: fit on every size but the largest, test on the largest."""
    return Cutoff("n", float(runs.n.max()))


def extrapolation(
    runs: Runs, law: str, cutoff: Cutoff | None = None, **options: Any
) -> tuple[Fit | None, dict[str, Any]]:
    """The fit below the split and its held-out check, with the split stated.

    With no `cutoff` the split is `largest_size_out`: the law the user keeps is then the one
    fitted to every run, and this refit only measures how far it extrapolates, so a split the
    data cannot support is reported as `error` (and no fit) rather than raised. A cut-off the
    user chose fails loudly.
    """
    cut = cutoff or largest_size_out(runs)
    check: dict[str, Any] = {
        "split": str(cut),
        "default": cutoff is None,
        "held_out": f"{cut.axis.upper()} >= {cut.value:.4g}",
    }
    try:
        fit, held = holdout(runs, law, cut, **options)
    except LawsError as error:
        if cutoff is not None:
            raise
        return None, {**check, "error": str(error)}
    return fit, {**check, "status": fit.status, "problems": list(fit.problems), **held}


def leave_one_size_out(
    runs: Runs, law: str, workers: int | None = None, **options: Any
) -> list[dict[str, Any]]:
    """For each model size: fit on the other sizes, report the error on the left-out one.

    The refits run in parallel over sizes; `options` go to each (serial) fit.
    """
    sizes = np.unique(runs.n)
    task = partial(_leave_out, runs=runs, law=law, options=options)
    return parallel_map(task, sizes, workers)


def _leave_out(size: float, runs: Runs, law: str, options: dict[str, Any]) -> dict[str, Any]:
    left = runs.n == size
    row: dict[str, Any] = {"n": float(size), "n_runs": int(left.sum())}
    try:
        fit = fit_law(runs.subset(~left), law, **options)
    except LawsError as error:
        return {**row, "error": str(error)}
    summary = error_summary(fit.law, runs.subset(left))
    return {**row, **summary}
