"""Compute-optimal allocation: how to split a budget C = k N D between parameters and tokens.

Chinchilla has a closed form. Farseer is searched numerically over ln N inside a trust region
around the fitted data: taken literally it decreases again towards absurd N with tiny D
(docs/reference.md §4.3), so the search returns the local optimum inside the region and warns when
the surface falls below it outside.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq, minimize_scalar

from laws.errors import LawsError, RunawayWarning
from laws.fit.forms import Chinchilla, Law
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN

SCAN_POINTS = 801
RUNAWAY_SCAN = math.log(1e4)  # how far (in ln N) beyond the region to look for a runaway


@dataclass(frozen=True)
class Allocation:
    compute: float
    n_opt: float
    d_opt: float
    d_over_n: float
    loss: float
    note: str | None = None  # trouble in the search (no interior optimum, a runaway)
    extrapolation: str | None = None  # N_opt outside the sizes the law was fitted on

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TrustRegion:
    """Where a numerical optimum may lie: N within [n_min, n_max] and D/N within bounds.

    D >= N by default: below it the Farseer form runs away. `around` widens the fitted data's
    N range by `factor` on each side and keeps that range as `fitted_n`, so an optimum outside
    the sizes the law was fitted on is labelled an extrapolation (for Chinchilla too).
    """

    n_min: float = 0.0
    n_max: float = math.inf
    min_d_over_n: float = 1.0
    max_d_over_n: float = 1e5
    fitted_n: tuple[float, float] | None = None

    @classmethod
    def around(cls, domain: dict[str, list[float]] | None, factor: float = 100.0) -> TrustRegion:
        if not domain or "n" not in domain:
            return cls()
        low, high = domain["n"]
        return cls(n_min=low / factor, n_max=high * factor, fitted_n=(low, high))

    def extrapolation_note(self, n: float) -> str | None:
        """Why an optimum at N is not measured: it lies outside the fitted sizes."""
        if self.fitted_n is None:
            return None
        low, high = self.fitted_n
        if low <= n <= high:
            return None
        factor, side = (
            (low / n, "below the smallest") if n < low else (n / high, "above the largest")
        )
        return (
            f"N_opt={n:.3g} is {factor:.3g}x {side} fitted size (fitted N {low:.3g} to "
            f"{high:.3g}): an extrapolation of the law, not a measured optimum"
        )

    def log_n_bounds(self, compute: float, flops_per_token: float) -> tuple[float, float]:
        """ln N bounds for a budget: D/N = C / (k N^2) turns the ratio bounds into N bounds."""
        tokens_x_params = compute / flops_per_token
        low = max(self.n_min, math.sqrt(tokens_x_params / self.max_d_over_n), 1.0)
        high = min(self.n_max, math.sqrt(tokens_x_params / self.min_d_over_n))
        if not low < high:
            raise LawsError(
                f"budget C={compute:.3g} leaves no N in the trust region (N in "
                f"[{self.n_min:.3g}, {self.n_max:.3g}], D/N in [{self.min_d_over_n:g}, "
                f"{self.max_d_over_n:g}]); widen it with --n-range or the D/N bounds"
            )
        return math.log(low), math.log(high)


def compute_optimal(
    law: Law,
    compute: float,
    flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN,
    region: TrustRegion | None = None,
) -> Allocation:
    """N_opt, D_opt, D/N and the loss at budget `compute` (closed form for Chinchilla), marked
    when the optimum lies outside the region's fitted sizes."""
    if not compute > 0:
        raise LawsError(f"compute must be positive, got {compute}")
    region = region or TrustRegion()
    if isinstance(law, Chinchilla):
        found = _chinchilla_optimal(law, compute, flops_per_token)
    else:
        found = _searched_optimal(law, compute, flops_per_token, region)
    return replace(found, extrapolation=region.extrapolation_note(found.n_opt))


def frontier(
    law: Law,
    computes: ArrayLike,
    flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN,
    region: TrustRegion | None = None,
) -> list[Allocation]:
    """The loss-vs-compute frontier: the compute-optimal point at each budget."""
    return [compute_optimal(law, float(c), flops_per_token, region) for c in np.ravel(computes)]


def _chinchilla_optimal(law: Chinchilla, compute: float, k: float) -> Allocation:
    """G = (alpha A / (beta B))^(1/(alpha+beta)), N = G (C/k)^(beta/(alpha+beta)), D = C/(kN).

    Only a law whose loss falls with both N and D (A, B, alpha, beta > 0) has this optimum."""
    if not (law.alpha > 0 and law.beta > 0 and law.A > 0 and law.B > 0):
        raise LawsError(
            f"no compute-optimal allocation: the law's loss does not fall with both N and D "
            f"(alpha={law.alpha:.3g}, beta={law.beta:.3g}, A={law.A:.3g}, B={law.B:.3g})"
        )
    total = law.alpha + law.beta
    g = (law.alpha * law.A / (law.beta * law.B)) ** (1 / total)
    n = g * (compute / k) ** (law.beta / total)
    d = (compute / k) ** (law.alpha / total) / g
    return Allocation(compute, n, d, d / n, float(law.predict(n, d)))


def _searched_optimal(law: Law, compute: float, k: float, region: TrustRegion) -> Allocation:
    lo, hi = region.log_n_bounds(compute, k)

    def loss_at(ln_n: np.ndarray) -> np.ndarray:
        n = np.exp(ln_n)
        with np.errstate(over="ignore", under="ignore"):
            return law.predict(n, compute / (k * n))

    grid = np.linspace(lo, hi, SCAN_POINTS)
    values = loss_at(grid)
    inner = np.flatnonzero((values[1:-1] <= values[:-2]) & (values[1:-1] <= values[2:])) + 1
    note = None
    if inner.size == 0:
        best = lo if values[0] <= values[-1] else hi
        note = (
            f"no optimum inside the trust region at C={compute:.3g}: the loss keeps falling "
            f"toward its edge N={math.exp(best):.3g}; the law does not pin an optimum here"
        )
    else:
        i = inner[np.argmin(values[inner])]
        res = minimize_scalar(
            lambda v: float(loss_at(np.array(v))),
            bounds=(grid[i - 1], grid[i + 1]),
            method="bounded",
            options={"xatol": 1e-10},
        )
        best = float(res.x)
        outside = np.concatenate(
            [np.linspace(hi, hi + RUNAWAY_SCAN, 200), np.linspace(lo - RUNAWAY_SCAN, lo, 200)]
        )
        far = loss_at(outside)
        j = int(np.nanargmin(far))
        if far[j] < float(loss_at(np.array(best))):
            n_far = math.exp(outside[j])
            note = (
                f"the law falls below this optimum outside the trust region (L={far[j]:.4g} at "
                f"N={n_far:.3g}, D/N={compute / (k * n_far * n_far):.3g}): the form's runaway "
                "to huge N and tiny D; returning the local optimum inside the region"
            )
    if note:
        warnings.warn(note, RunawayWarning, stacklevel=3)
    n = math.exp(best)
    d = compute / (k * n)
    return Allocation(compute, n, d, d / n, float(law.predict(n, d)), note)


def optimal_tokens(
    law: Law,
    n: float,
    flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN,
    region: TrustRegion | None = None,
) -> Allocation:
    """The D for which a model of N parameters is compute-optimal, with that budget.

    At the optimum dL/dlnN = dL/dlnD (moving along C = kND); Chinchilla solves it in closed form,
    other laws by a root search over D/N within the trust region's ratio bounds.
    """
    if isinstance(law, Chinchilla):
        d = (law.beta * law.B / (law.alpha * law.A) * n**law.alpha) ** (1 / law.beta)
    else:
        region = region or TrustRegion()
        ln_d = np.linspace(
            math.log(n * region.min_d_over_n), math.log(n * region.max_d_over_n), SCAN_POINTS
        )

        def balance(x: np.ndarray) -> np.ndarray:
            by_n, by_d = law.log_slopes(n, np.exp(x))
            return by_n - by_d

        values = balance(ln_d)
        crossings = np.flatnonzero((values[:-1] > 0) & (values[1:] <= 0))
        if crossings.size == 0:
            raise LawsError(
                f"no D/N in [{region.min_d_over_n:g}, {region.max_d_over_n:g}] makes N={n:.3g} "
                "compute-optimal under this law"
            )
        i = crossings[0]
        d = math.exp(brentq(lambda x: float(balance(np.array(x))), ln_d[i], ln_d[i + 1]))
    return Allocation(flops_per_token * n * d, n, d, d / n, float(law.predict(n, d)))


def crossovers(
    law_a: Law, law_b: Law, n: float, ratio_range: tuple[float, float] = (1e-2, 1e5)
) -> list[float]:
    """The D/N values at which two surfaces swap order at fixed N (e.g. code vs a mixture)."""
    ln_r = np.linspace(math.log(ratio_range[0]), math.log(ratio_range[1]), SCAN_POINTS)

    def gap(x: np.ndarray) -> np.ndarray:
        d = n * np.exp(x)
        return law_a.predict(n, d) - law_b.predict(n, d)

    values = gap(ln_r)
    found = []
    for i in np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0):
        found.append(math.exp(brentq(lambda x: float(gap(np.array(x))), ln_r[i], ln_r[i + 1])))
    return found
