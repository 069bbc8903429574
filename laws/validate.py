"""How far a fitted law can be trusted: held-out extrapolation, leave-one-size-out, bootstrap.

The bootstrap resamples whole runs with replacement and refits each resample to convergence.
A resample is passed as its distinct runs with their counts as weights (the Chinchilla objective
sums weighted Huber terms, Farseer's joint step weights its squares), which is the same
objective as the duplicated runs without tripping the duplicate check. Resample indices are
drawn up front from the seed, so the result does not depend on the number of workers.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from laws import fit_chinchilla
from laws.data import DEFAULT_FLOPS_PER_TOKEN, Runs, parse_quantity
from laws.errors import LawsError, RunawayWarning
from laws.fit_result import Fit, error_summary, relative_errors
from laws.fitting import fit_law
from laws.forms import Law
from laws.optimal import TrustRegion, compute_optimal
from laws.parallel import available_cores, parallel_map

REFITS = ("warm", "full")
UNRELIABLE = "__unreliable__"  # a refit's status, carried beside its quantities
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


@dataclass
class Bootstrap:
    """Resampled parameter and derived-quantity draws with percentile intervals."""

    names: list[str]
    samples: np.ndarray  # (successful resamples, quantities)
    estimate: dict[str, float]
    resamples: int
    failures: list[str]  # refits that raised or gave non-finite quantities: not in `samples`
    unreliable: int  # kept refits whose fit status was not "ok"
    seed: int
    level: float
    refit_from: str

    def interval(self, name: str) -> tuple[float, float]:
        column = self.samples[:, self.names.index(name)]
        tail = 50 * (1 - self.level)
        low, high = np.percentile(column, [tail, 100 - tail])  # failed draws are not in it
        return float(low), float(high)

    def to_json(self) -> dict[str, Any]:
        table = {}
        for i, name in enumerate(self.names):
            low, high = self.interval(name)
            table[name] = {
                "estimate": self.estimate.get(name),
                "median": float(np.median(self.samples[:, i])),
                "low": low,
                "high": high,
            }
        return {
            "resamples": self.resamples,
            "succeeded": int(len(self.samples)),
            "failed": len(self.failures),
            "unreliable": self.unreliable,
            "first_failure": self.failures[0] if self.failures else None,
            "seed": self.seed,
            "level": self.level,
            "refit_from": self.refit_from,
            "quantities": table,
        }


def derived_quantities(
    law: Law,
    budgets: Sequence[float],
    points: Sequence[tuple[float, float]],
    flops_per_token: float,
    region: TrustRegion,
) -> dict[str, float]:
    """N_opt, D_opt and D/N at each budget, and the loss at each (N, D) point."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunawayWarning)
        for c in budgets:
            opt = compute_optimal(law, c, flops_per_token, region)
            out |= {
                f"n_opt@C={c:.3g}": opt.n_opt,
                f"d_opt@C={c:.3g}": opt.d_opt,
                f"d_over_n@C={c:.3g}": opt.d_over_n,
            }
    for n, d in points:
        out[f"loss@N={n:.3g},D={d:.3g}"] = float(law.predict(n, d))
    return out


def bootstrap(
    runs: Runs,
    law: str,
    resamples: int = 1000,
    *,
    seed: int = 0,
    workers: int | None = None,
    budgets: Sequence[float] = (),
    points: Sequence[tuple[float, float]] = (),
    level: float = 0.95,
    refit_from: str = "warm",
    base: Fit | None = None,
    flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN,
    **options: Any,
) -> Bootstrap:
    """Percentile intervals for every parameter and derived quantity, from `resamples` refits.

    refit_from="warm" starts each refit at the full-data optimum and iterates it to convergence
    (Chinchilla: one L-BFGS run instead of the grid; Farseer: the joint refinement without the
    piecewise stage); "full" repeats the whole fitting procedure for every resample. `options`
    go to every fit (e.g. Chinchilla `starts` for the full-data fit and "full" refits).
    """
    if resamples < 2:
        raise LawsError(f"a bootstrap needs at least 2 resamples, got {resamples}")
    if refit_from not in REFITS:
        raise LawsError(f"bootstrap refits are 'warm' or 'full', got {refit_from!r}")
    if not 0 < level < 1:
        raise LawsError(f"the interval level must be between 0 and 1, got {level}")
    base = base or fit_law(runs, law, **options)
    if refit_from == "warm" and law == "chinchilla":
        options = {**options, "starts": fit_chinchilla.from_law(base.law)[None, :]}
    elif refit_from == "warm":
        options = {**options, "start": base.law}
    region = TrustRegion.around(base.domain)
    derive = partial(
        derived_quantities,
        budgets=list(budgets),
        points=list(points),
        flops_per_token=flops_per_token,
        region=region,
    )
    estimate = {**base.law.params, **derive(base.law)}
    draws = np.random.default_rng(seed).integers(0, len(runs), size=(resamples, len(runs)))
    count = max(1, min(resamples, 8 * (workers or available_cores())))
    pieces = [(part, draws[part]) for part in np.array_split(np.arange(resamples), count)]
    task = partial(_refit, runs=runs, law=law, options=options, derive=derive)
    results = [r for part in parallel_map(task, pieces, workers) for r in part]
    failures = [r for r in results if isinstance(r, str)]
    if len(failures) == resamples:
        raise LawsError(f"every bootstrap refit failed; the first: {failures[0]}")
    names = list(estimate)
    kept = [r for r in results if isinstance(r, dict)]
    samples = [[r[k] for k in names] for r in kept]
    return Bootstrap(
        names=names,
        samples=np.array(samples, dtype=float),
        estimate=estimate,
        resamples=resamples,
        failures=failures,
        unreliable=int(sum(r[UNRELIABLE] for r in kept)),
        seed=seed,
        level=level,
        refit_from=refit_from,
    )


def _refit(
    piece: tuple[np.ndarray, np.ndarray],
    runs: Runs,
    law: str,
    options: dict[str, Any],
    derive: Callable[[Law], dict[str, float]],
) -> list[dict[str, float] | str]:
    """Refit the resamples (numbers, drawn run indices) of one piece; a failed refit is
    returned as its message."""
    out: list[dict[str, float] | str] = []
    for number, drawn in zip(*piece, strict=True):
        counts = np.bincount(drawn, minlength=len(runs))
        present = np.flatnonzero(counts)
        try:
            fit = fit_law(runs.subset(present), law, weights=counts[present], **options)
        except LawsError as error:
            out.append(f"resample {number}: {error}")
            continue
        values = {**fit.law.params, **derive(fit.law)}
        bad = [k for k, v in values.items() if not np.isfinite(v)]
        if bad:
            out.append(f"resample {number}: non-finite {', '.join(bad)}")
        else:
            out.append({**values, UNRELIABLE: float(fit.status != "ok")})
    return out
