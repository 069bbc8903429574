"""Bootstrap intervals for a fitted law: whole runs resampled with replacement, every draw refitted.

A draw resamples the fit's rows (a row is one run, or the mean of a run's repeated seeds) and is
passed as its distinct runs with their counts as weights (the Chinchilla objective sums weighted
Huber terms, Farseer's joint step weights its squares): the same objective as the duplicated
runs, without tripping the duplicate check. Indices are drawn up front from the seed, so the
result does not depend on the number of workers.

Every draw is refitted to convergence. "warm" starts the optimiser at the full-data law, which
is only a start: a draw whose law comes back equal to it was not refitted and fails. A draw also
fails when its fit raises, its law is non-finite, or its status is unreliable (an optimiser
that did not converge, a bound hit): an interval over such laws would look tighter than the
data allow. Failures are counted by kind beside every interval, never dropped unseen; a derived
quantity one draw cannot give (no interior optimum) is counted against that quantity alone.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from laws.analysis.optimal import TrustRegion, compute_optimal
from laws.errors import LawsError, RunawayWarning
from laws.fit import chinchilla as fit_chinchilla
from laws.fit.dispatch import fit_law
from laws.fit.forms import Law
from laws.fit.result import Fit
from laws.parallel import available_cores, parallel_map
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN, Runs

REFITS = ("warm", "full")
FAILURES = ("error", "non-finite", "unreliable", "unrefitted")  # why a draw failed
EXAMPLES = 5  # failure messages kept in the JSON


@dataclass
class Bootstrap:
    """The refitted draws' quantities (NaN where a draw could not give one), the failed draws
    as (kind, message), and percentile intervals over the draws that gave each quantity."""

    names: list[str]
    samples: np.ndarray  # (refitted draws, quantities)
    estimate: dict[str, float]
    resamples: int
    failures: list[tuple[str, str]]
    seed: int
    level: float
    refit_from: str

    def column(self, name: str) -> np.ndarray:
        """The finite draws of one quantity."""
        values = self.samples[:, self.names.index(name)] if len(self.samples) else np.array([])
        return values[np.isfinite(values)]

    def interval(self, name: str) -> tuple[float, float]:
        values = self.column(name)
        if not len(values):
            return float("nan"), float("nan")
        tail = 50 * (1 - self.level)
        low, high = np.percentile(values, [tail, 100 - tail])
        return float(low), float(high)

    def to_json(self) -> dict[str, Any]:
        table = {}
        for name in self.names:
            values = self.column(name)
            low, high = self.interval(name)
            table[name] = {
                "estimate": _finite_or_none(self.estimate.get(name)),
                "median": float(np.median(values)) if len(values) else None,
                "low": _finite_or_none(low),
                "high": _finite_or_none(high),
                "draws": int(len(values)),  # the draws the interval is taken over
                "failed": self.resamples - int(len(values)),  # failed draws + this quantity's
            }
        kinds = Counter(kind for kind, _ in self.failures)
        return {
            "resamples": self.resamples,
            "unit": "runs",  # what was resampled: the fit's rows, whole
            "succeeded": int(len(self.samples)),
            "failed": len(self.failures),
            "failures": {kind: kinds.get(kind, 0) for kind in FAILURES},
            "unreliable": kinds.get("unreliable", 0),
            "first_failure": self.failures[0][1] if self.failures else None,
            "failure_examples": [message for _, message in self.failures[:EXAMPLES]],
            "seed": self.seed,
            "level": self.level,
            "refit_from": self.refit_from,
            "quantities": table,
        }


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal up to the rounding of a change of coordinates (a refit moves far more)."""
    return bool(np.allclose([a[k] for k in b], list(b.values()), rtol=1e-10, atol=0))


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def quantity_names(budgets: Sequence[float], points: Sequence[tuple[float, float]]) -> list[str]:
    """The derived quantities' names: N_opt, D_opt and D/N at each budget, loss at each point."""
    names = []
    for c in budgets:
        names += [f"n_opt@C={c:.3g}", f"d_opt@C={c:.3g}", f"d_over_n@C={c:.3g}"]
    return names + [f"loss@N={n:.3g},D={d:.3g}" for n, d in points]


def derived_quantities(
    law: Law,
    budgets: Sequence[float],
    points: Sequence[tuple[float, float]],
    flops_per_token: float,
    region: TrustRegion,
) -> dict[str, float]:
    """N_opt, D_opt and D/N at each budget (NaN where the law has no optimum in the region),
    and the loss at each (N, D) point."""
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunawayWarning)
        for c in budgets:
            try:
                opt = compute_optimal(law, c, flops_per_token, region)
                values += [opt.n_opt, opt.d_opt, opt.d_over_n]
            except LawsError:
                values += [float("nan")] * 3
    values += [float(law.predict(n, d)) for n, d in points]
    return dict(zip(quantity_names(budgets, points), values, strict=True))


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
    start = None
    if refit_from == "warm":
        start = base.law
        if law == "chinchilla":
            options = {**options, "starts": fit_chinchilla.from_law(base.law)[None, :]}
        else:
            options = {**options, "start": base.law}
    derive = partial(
        derived_quantities,
        budgets=list(budgets),
        points=list(points),
        flops_per_token=flops_per_token,
        region=TrustRegion.around(base.domain),
    )
    estimate = {**base.law.params, **derive(base.law)}
    draws = np.random.default_rng(seed).integers(0, len(runs), size=(resamples, len(runs)))
    count = max(1, min(resamples, 8 * (workers or available_cores())))
    pieces = [(part, draws[part]) for part in np.array_split(np.arange(resamples), count)]
    task = partial(_refit, runs=runs, law=law, options=options, derive=derive, start=start)
    results = [r for part in parallel_map(task, pieces, workers) for r in part]
    failures = [r for r in results if isinstance(r, tuple)]
    if len(failures) == resamples:
        raise LawsError(f"every bootstrap refit failed; the first: {failures[0][1]}")
    names = list(estimate)
    kept = [[r[k] for k in names] for r in results if isinstance(r, dict)]
    return Bootstrap(
        names=names,
        samples=np.array(kept, dtype=float).reshape(len(kept), len(names)),
        estimate=estimate,
        resamples=resamples,
        failures=failures,
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
    start: Law | None,
) -> list[dict[str, float] | tuple[str, str]]:
    """Refit the resamples (numbers, drawn run indices) of one piece: each gives its quantities,
    or (failure kind, message)."""
    out: list[dict[str, float] | tuple[str, str]] = []
    for number, drawn in zip(*piece, strict=True):
        counts = np.bincount(drawn, minlength=len(runs))
        present = np.flatnonzero(counts)
        try:
            fit = fit_law(runs.subset(present), law, weights=counts[present], **options)
        except LawsError as error:
            out.append(("error", f"resample {number}: {error}"))
            continue
        params = fit.law.params
        bad = [k for k, v in params.items() if not np.isfinite(v)]
        if bad:
            out.append(("non-finite", f"resample {number}: non-finite {', '.join(bad)}"))
        elif fit.problems:
            out.append(("unreliable", f"resample {number}: {'; '.join(fit.problems)}"))
        elif start is not None and _same(params, start.params):
            out.append(("unrefitted", f"resample {number}: returned its starting law unrefitted"))
        else:
            out.append({**params, **derive(fit.law)})
    return out
