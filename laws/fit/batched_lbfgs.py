"""L-BFGS run from many starting points at once, each start with its own history and step.

Hoffmann's Approach 3 runs L-BFGS from 4500 grid points. Through scipy that is 4500 sequential
Python-level optimisations (tens of seconds: most of the time is per-iteration overhead on a
5-parameter problem); here every start advances in lockstep inside numpy arrays, so one
objective call evaluates all unfinished starts. It is the same method (every start iterated to
its own convergence), not a pre-screen. The line search is a weak-Wolfe bracketing search; the
caller polishes the best end points with scipy's L-BFGS-B.

Each start ends with a status, as scipy's L-BFGS-B reports it: converged (gradient or relative
reduction of f within tolerance), stalled (the line search found no decrease: scipy's
ABNORMAL_TERMINATION_IN_LNSRCH, not convergence) or out of iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BatchObjective = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


# Why a start stopped (BatchResult.status).
MAX_ITER, GTOL_MET, FTOL_MET, STALLED = 0, 1, 2, 3
STATUS_NAMES = {GTOL_MET: "gtol", FTOL_MET: "ftol", STALLED: "stalled", MAX_ITER: "max_iter"}


@dataclass
class BatchResult:
    x: np.ndarray  # (starts, dim) end points
    fun: np.ndarray  # (starts,) objective at the end points
    nit: np.ndarray  # (starts,) iterations taken
    status: np.ndarray  # (starts,) GTOL_MET, FTOL_MET, STALLED or MAX_ITER

    @property
    def converged(self) -> np.ndarray:
        """Met gtol, or ftol after a step that decreased f."""
        return (self.status == GTOL_MET) | (self.status == FTOL_MET)

    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.status == code)) for code, name in STATUS_NAMES.items()}


def minimize_batched(
    fun: BatchObjective,
    x0: np.ndarray,
    *,
    memory: int = 10,
    ftol: float = 1e-15,
    gtol: float = 1e-10,
    max_iter: int = 2000,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_trials: int = 60,
) -> BatchResult:
    """Minimise each row's problem from each row of x0; `fun(X)` returns (f(X), grad f(X)).

    Stopping rules follow scipy's L-BFGS-B: relative reduction of f below ftol (relative to
    max(|f|, 1)) or largest gradient component below gtol; a start whose line search finds no
    decrease stops as STALLED.
    """
    x = np.array(x0, dtype=float)
    starts, dim = x.shape
    f, g = fun(x)
    s_hist = np.zeros((starts, memory, dim))
    y_hist = np.zeros((starts, memory, dim))
    rho = np.zeros((starts, memory))
    stored = np.zeros(starts, dtype=int)
    nit = np.zeros(starts, dtype=int)
    status = np.where(np.abs(g).max(axis=1) <= gtol, GTOL_MET, MAX_ITER)
    active = np.flatnonzero(status == MAX_ITER)
    for _ in range(max_iter):
        if active.size == 0:
            break
        direction = _two_loop(
            g[active], s_hist[active], y_hist[active], rho[active], stored[active]
        )
        slope = np.einsum("ij,ij->i", g[active], direction)
        uphill = ~(slope < 0)
        if uphill.any():  # a stale history: restart those starts from steepest descent
            stored[active[uphill]] = 0
            rho[active[uphill]] = 0.0
            steep = -g[active[uphill]]
            direction[uphill] = steep / np.linalg.norm(steep, axis=1, keepdims=True)
            slope[uphill] = np.einsum("ij,ij->i", g[active[uphill]], direction[uphill])
        x_new, f_new, g_new, moved = _wolfe_search(
            fun, x[active], f[active], g[active], slope, direction, c1, c2, ftol, max_trials
        )
        step_s, step_y = x_new - x[active], g_new - g[active]
        sy = np.einsum("ij,ij->i", step_s, step_y)
        keep = moved & (sy > 1e-12 * np.einsum("ij,ij->i", step_y, step_y))
        rows = active[keep]  # push the new pair in front; rho = 0 marks empty slots
        s_hist[rows] = np.concatenate([step_s[keep, None], s_hist[rows, :-1]], axis=1)
        y_hist[rows] = np.concatenate([step_y[keep, None], y_hist[rows, :-1]], axis=1)
        rho[rows] = np.concatenate([1.0 / sy[keep, None], rho[rows, :-1]], axis=1)
        stored[rows] = np.minimum(stored[rows] + 1, memory)
        scale = np.maximum(np.maximum(np.abs(f[active]), np.abs(f_new)), 1.0)
        with np.errstate(invalid="ignore"):  # inf - inf on a start that never moved
            small = (f[active] - f_new) <= ftol * scale
        reason = np.select(
            [~moved, np.abs(g_new).max(axis=1) <= gtol, small],
            [STALLED, GTOL_MET, FTOL_MET],
            MAX_ITER,
        )
        x[active], f[active], g[active] = x_new, f_new, g_new
        nit[active] += 1
        status[active] = reason
        active = active[reason == MAX_ITER]
    return BatchResult(x=x, fun=f, nit=nit, status=status)


def _two_loop(
    g: np.ndarray, s_hist: np.ndarray, y_hist: np.ndarray, rho: np.ndarray, stored: np.ndarray
) -> np.ndarray:
    """The L-BFGS direction -H g for each row from its (s, y) pairs, newest first."""
    depth = int(stored.max(initial=0))
    q = g.copy()
    alphas = np.zeros((len(g), depth))
    for j in range(depth):
        alphas[:, j] = rho[:, j] * np.einsum("ij,ij->i", s_hist[:, j], q)
        q -= alphas[:, j, None] * y_hist[:, j]
    if depth:
        yy = np.einsum("ij,ij->i", y_hist[:, 0], y_hist[:, 0])
        gamma = np.einsum("ij,ij->i", s_hist[:, 0], y_hist[:, 0]) / np.where(yy > 0, yy, 1.0)
    else:
        gamma = np.zeros(len(g))
    # no curvature yet: a unit-length steepest-descent step
    first = 1.0 / np.maximum(np.linalg.norm(g, axis=1), 1e-300)
    r = np.where(stored > 0, gamma, first)[:, None] * q
    for j in reversed(range(depth)):
        beta = rho[:, j] * np.einsum("ij,ij->i", y_hist[:, j], r)
        r += s_hist[:, j] * (alphas[:, j] - beta)[:, None]
    return -r


def _wolfe_search(
    fun: BatchObjective,
    x: np.ndarray,
    f: np.ndarray,
    g: np.ndarray,
    slope: np.ndarray,
    direction: np.ndarray,
    c1: float,
    c2: float,
    ftol: float,
    max_trials: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weak-Wolfe bracketing line search for every row at once, starting from a unit step.

    A step without sufficient decrease becomes the upper end of the bracket, one whose slope is
    still steep the lower end; the next trial bisects the bracket (or doubles the step while no
    upper end is known). Rows that never find an acceptable step keep their best sufficient
    decrease, or their point with moved=False.
    """
    rows = len(x)
    x_new, f_new, g_new = x.copy(), f.copy(), g.copy()
    moved = np.zeros(rows, dtype=bool)
    step, low, high = np.ones(rows), np.zeros(rows), np.full(rows, np.inf)
    pending = np.arange(rows)
    for _ in range(max_trials):
        trial = x[pending] + step[pending, None] * direction[pending]
        f_t, g_t = fun(trial)
        armijo = np.isfinite(f_t) & (f_t <= f[pending] + c1 * step[pending] * slope[pending])
        steep = np.einsum("ij,ij->i", g_t, direction[pending]) < c2 * slope[pending]
        better = armijo & (~moved[pending] | (f_t < f_new[pending]))
        keep = pending[better]
        x_new[keep], f_new[keep], g_new[keep] = trial[better], f_t[better], g_t[better]
        moved[keep] = True
        high[pending[~armijo]] = step[pending[~armijo]]
        low[pending[armijo & steep]] = step[pending[armijo & steep]]
        pending = pending[~armijo | steep]
        bounded = np.isfinite(high[pending])
        step[pending] = np.where(bounded, 0.5 * (low[pending] + high[pending]), 2 * low[pending])
        # a step whose predicted decrease is below ftol could not count as progress anyway
        scale = np.maximum(np.abs(f[pending]), 1.0)
        pending = pending[step[pending] * -slope[pending] > ftol * scale]
        if pending.size == 0:
            break
    return x_new, f_new, g_new, moved
