"""Farseer fit: the piecewise differential method (docs/reference.md §5.2), then a joint refinement.

Write the law as L = exp(s N^q + S) + c(N) D^-k(N) with c(N) = exp(B N^b + Q) and
k(N) = exp(A N^a + E). For one N, the loss difference between two runs at D_lo < D_hi is
c (D_lo^-k - D_hi^-k): the first term cancels, so each model size's differences pin its own
k and c. The steps:

1. per N (with at least `min_differences` positive differences between consecutive D), fit
   ln dL = ln c - k ln D_lo + ln(1 - (D_lo/D_hi)^-k) for k and c. This is the Farseer authors'
   regression of ln dL on ln D, written exactly so that D need not be spaced by sqrt(2);
2. fit ln k_N = A N^a + E, then ln c_N = B N^b + Q (grid over the exponent, least squares for
   the coefficients), scoring each exponent by how well the implied differences match the
   observed ones; then once more, each per-N value re-estimated given the other law;
3. with c(N) and k(N) fixed, fit ln(L - c D^-k) = s N^q + S (grid over q).

The joint refinement is nonlinear least squares (Levenberg-Marquardt) on ln L from the
piecewise solution; the fit keeps whichever of the two has the lower mean relative error and
reports both. Internally N is divided by its geometric mean N0 (s, B, A rescaled by N0^q, N0^b,
N0^a), and the joint step works in Box-Cox coordinates (see `_joint`): the same law, far better
conditioned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, minimize_scalar

from laws.data import Runs, check_fittable
from laws.errors import LawsError
from laws.fit_result import Fit, error_summary
from laws.forms import Farseer, farseer_log_terms

EXPONENT_GRID = np.concatenate([np.linspace(-1.5, -0.005, 250), np.linspace(0.005, 1.5, 250)])
K_GRID = np.geomspace(1e-4, 5.0, 400)  # per-N exponent of D
TOL, MAX_NFEV = 1e-12, 2000  # joint refinement


@dataclass
class _Differences:
    """Loss differences between consecutive D of each kept model size, flattened."""

    group: np.ndarray  # index of the model size of each difference
    ln_d_lo: np.ndarray
    ln_ratio: np.ndarray  # ln(D_hi / D_lo)
    ln_dl: np.ndarray
    ln_n: np.ndarray  # per group, ln(N / N0)
    mean: np.ndarray  # (groups, differences): averages a per-difference quantity per group

    def log_shape(self, k: np.ndarray) -> np.ndarray:
        """ln(D_lo^-k - D_hi^-k) for k given per group, broadcast over leading axes."""
        kd = k[..., self.group]
        with np.errstate(divide="ignore"):
            return -kd * self.ln_d_lo + np.log(-np.expm1(-kd * self.ln_ratio))

    def sse(self, k: np.ndarray, ln_c: np.ndarray | None = None) -> np.ndarray:
        """Sum of squared log residuals of the differences; ln c per group profiled if None."""
        resid = self.ln_dl - self.log_shape(k)
        if ln_c is None:
            ln_c = resid @ self.mean.T
        return _sum_squares(resid - ln_c[..., self.group])

    def profile_ln_c(self, k: np.ndarray) -> np.ndarray:
        return (self.ln_dl - self.log_shape(k)) @ self.mean.T


def _sum_squares(resid: np.ndarray) -> np.ndarray:
    """Sum of squares over the last axis; a non-finite residual makes the sum infinite."""
    return np.square(np.where(np.isfinite(resid), resid, np.inf)).sum(axis=-1)


def fit(
    runs: Runs,
    *,
    weights: np.ndarray | None = None,
    min_differences: int = 5,
    refine: bool = True,
    start: Farseer | None = None,
) -> Fit:
    """Fit the 9-parameter Farseer law; weights (resampling counts) enter the joint step only.

    With `start` (the bootstrap's warm refits), the piecewise stage is skipped and the joint
    refinement starts from that law.
    """
    check_fittable(runs, "farseer", n_params=9, min_sizes=3)
    w = np.ones(len(runs)) if weights is None else np.asarray(weights, dtype=float)
    ln_n0 = float(np.mean(np.log(np.unique(runs.n))))
    ln_n, ln_d, ln_loss = np.log(runs.n) - ln_n0, np.log(runs.d), np.log(runs.loss)
    if start is None:
        candidates = {"piecewise": _piecewise(runs, ln_n, ln_d, ln_loss, min_differences)}
    else:
        candidates = {"start": _from_law(start, ln_n0)}
    notes = {}
    if refine:
        theta = next(iter(candidates.values()))
        candidates["joint"], converged, nfev = _joint(theta, ln_n, ln_d, ln_loss, w)
        notes = {"joint_converged": converged, "joint_evaluations": nfev}
    reports, laws, usable = {}, {}, []
    for name, t in candidates.items():
        laws[name] = _to_law(t, ln_n0)
        reports[name] = {
            "params": laws[name].params,
            "objective": _objective(t, ln_n, ln_d, ln_loss, w),
            **error_summary(laws[name], runs, w),
        }
        finite = np.all(np.isfinite(t)) and np.isfinite(reports[name]["mean_rel_error"])
        if finite and not (name == "joint" and not notes["joint_converged"]) and name != "start":
            usable.append(name)  # a warm start is only a start, never an answer
    if not usable:
        raise LawsError(
            "the Farseer fit failed: "
            + "; ".join(
                f"{k}: mean relative error {r['mean_rel_error']}" for k, r in reports.items()
            )
            + (
                " (the joint refinement did not converge)"
                if notes.get("joint_converged") is False
                else ""
            )
        )
    chosen = min(usable, key=lambda name: reports[name]["mean_rel_error"])
    problems = farseer_problems(laws[chosen], chosen)
    if "joint" in candidates and "joint" not in usable:
        problems.append("the joint refinement did not converge or went non-finite; not used")
    return Fit(
        law=laws[chosen],
        method=f"farseer-{chosen}",
        objective=reports[chosen]["objective"],
        errors=error_summary(laws[chosen], runs, w),
        n_runs=len(runs),
        domain=runs.domain(),
        details={"chosen": chosen, **notes, "candidates": reports},
        problems=problems,
    )


def farseer_problems(law: Farseer, chosen: str) -> list[str]:
    """The Farseer procedure's sign constraints (the D-coefficient grows as B N^b with B > 0,
    b < 0), and piecewise exponents left on the edge of their search grid."""
    p, problems = law.params, []
    if not (p["B"] > 0 and p["b"] < 0):
        problems.append(
            f"violates the procedure's sign constraints B > 0, b < 0 (B = {p['B']:.3g}, "
            f"b = {p['b']:.3g})"
        )
    if chosen == "piecewise":
        low, high = EXPONENT_GRID.min(), EXPONENT_GRID.max()
        gap = EXPONENT_GRID[EXPONENT_GRID > 0].min()
        for name in "qba":
            x = p[name]
            if np.isclose(abs(x), high) or abs(x) <= gap * (1 + 1e-9) or not low <= x <= high:
                problems.append(f"exponent {name} = {x:.4g} is on its search grid's edge")
    return problems


def _objective(theta: np.ndarray, ln_n, ln_d, ln_loss, w) -> float:
    log_pred, _ = farseer_log_terms(theta, ln_n, ln_d)
    return float(w @ (log_pred - ln_loss) ** 2)


def _to_law(theta: np.ndarray, ln_n0: float) -> Farseer:
    """Undo the N0 scaling: s N^q = (s N0^-q) (N)^q, likewise for B and A."""
    s, q, S, B, b, Q, A, a, E = theta
    scale = np.exp(-ln_n0 * np.array([q, b, a]))
    return Farseer.from_vector([s * scale[0], q, S, B * scale[1], b, Q, A * scale[2], a, E])


def _from_law(law: Farseer, ln_n0: float) -> np.ndarray:
    """The fitter's parameters (N divided by N0) of a law: the inverse of `_to_law`."""
    s, q, S, B, b, Q, A, a, E = law.vector()
    scale = np.exp(ln_n0 * np.array([q, b, a]))
    return np.array([s * scale[0], q, S, B * scale[1], b, Q, A * scale[2], a, E])


def _differences(runs: Runs, ln_n: np.ndarray, min_differences: int) -> _Differences:
    group, ln_d_lo, ln_ratio, ln_dl, sizes = [], [], [], [], []
    report = []
    for size in np.unique(runs.n):
        rows = np.flatnonzero(runs.n == size)
        rows = rows[np.argsort(runs.d[rows])]
        d, loss = runs.d[rows], runs.loss[rows]
        dl = loss[:-1] - loss[1:]
        keep = dl > 0
        report.append(f"N={size:.3g}: {int(keep.sum())}")
        if keep.sum() < min_differences:
            continue
        group += [len(sizes)] * int(keep.sum())
        ln_d_lo.append(np.log(d[:-1][keep]))
        ln_ratio.append(np.log(d[1:][keep] / d[:-1][keep]))
        ln_dl.append(np.log(dl[keep]))
        sizes.append(ln_n[rows[0]])
    if len(sizes) < 3:
        raise LawsError(
            f"the piecewise Farseer fit needs at least 3 model sizes with >= {min_differences} "
            f"positive loss differences between consecutive D; found ({'; '.join(report)}). "
            "Add runs at more D per model size"
        )
    group = np.array(group)
    mean = (group[None, :] == np.arange(len(sizes))[:, None]).astype(float)
    mean /= mean.sum(axis=1, keepdims=True)
    return _Differences(
        group=group,
        ln_d_lo=np.concatenate(ln_d_lo),
        ln_ratio=np.concatenate(ln_ratio),
        ln_dl=np.concatenate(ln_dl),
        ln_n=np.array(sizes),
        mean=mean,
    )


def _argmin_refined(score: Callable[[np.ndarray], np.ndarray], grid: np.ndarray) -> float:
    """Best grid value of a vectorised 1-D score, refined by a bounded scalar search."""
    scores = np.where(np.isfinite(s := score(grid)), s, np.inf)
    i = int(np.argmin(scores))
    if not np.isfinite(scores[i]):
        raise LawsError("the piecewise Farseer fit found no finite solution; check the losses")
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(
        lambda v: float(score(np.array([v]))[0]),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-12 * max(1.0, abs(grid[i]))},
    )
    return float(res.x) if np.isfinite(res.fun) and res.fun <= scores[i] else float(grid[i])


def _power_law(ln_n: np.ndarray, target: np.ndarray, exponent: np.ndarray):
    """Least-squares coefficient and offset of target = coef * n^exponent + offset, for each
    candidate exponent (rows) at once."""
    x = np.exp(exponent[:, None] * ln_n[None, :])
    xc = x - x.mean(axis=1, keepdims=True)
    yc = target - target.mean(axis=-1, keepdims=True)
    var = (xc**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = (xc * yc).sum(axis=1) / var
    offset = target.mean(axis=-1) - coef * x.mean(axis=1)
    return coef, offset, x


def _law_fit(
    ln_n: np.ndarray, target: np.ndarray, score_values: Callable[[np.ndarray], np.ndarray]
) -> tuple[float, float, float]:
    """(coef, exponent, offset) of target ~ coef * n^exponent + offset; the exponent is chosen
    by `score_values` applied to the fitted values (candidates, groups)."""

    def score(exponents: np.ndarray) -> np.ndarray:
        coef, offset, x = _power_law(ln_n, target, exponents)
        return score_values(coef[:, None] * x + offset[:, None])

    exponent = _argmin_refined(score, EXPONENT_GRID)
    coef, offset, _ = _power_law(ln_n, target, np.array([exponent]))
    return float(coef[0]), exponent, float(offset[0])


def _piecewise(runs: Runs, ln_n, ln_d, ln_loss, min_differences: int) -> np.ndarray:
    diffs = _differences(runs, ln_n, min_differences)
    groups = len(diffs.ln_n)

    def per_group_k(ln_c: np.ndarray | None) -> np.ndarray:
        """k for each model size alone (ln c profiled, or given per size)."""
        ks = np.empty(groups)
        for j in range(groups):
            part = diffs.group == j
            lo, ratio, ln_dl = diffs.ln_d_lo[part], diffs.ln_ratio[part], diffs.ln_dl[part]

            def score(k: np.ndarray, j=j, lo=lo, ratio=ratio, ln_dl=ln_dl) -> np.ndarray:
                with np.errstate(divide="ignore"):
                    shape = -k[:, None] * lo + np.log(-np.expm1(-k[:, None] * ratio))
                resid = ln_dl - shape
                resid -= resid.mean(axis=1, keepdims=True) if ln_c is None else ln_c[j]
                return _sum_squares(resid)

            ks[j] = _argmin_refined(score, K_GRID)
        return ks

    def k_law(ln_k: np.ndarray, ln_c: np.ndarray | None) -> tuple[float, float, float]:
        return _law_fit(diffs.ln_n, ln_k, lambda fitted: diffs.sse(np.exp(fitted), ln_c))

    def c_law(k: np.ndarray) -> tuple[float, float, float]:
        return _law_fit(diffs.ln_n, diffs.profile_ln_c(k), lambda fitted: diffs.sse(k, fitted))

    def at(law: tuple[float, float, float], ln_n_values: np.ndarray) -> np.ndarray:
        coef, exponent, offset = law
        return coef * np.exp(exponent * ln_n_values) + offset

    a_law = k_law(np.log(per_group_k(None)), None)
    b_law = c_law(np.exp(at(a_law, diffs.ln_n)))
    a_law = k_law(np.log(per_group_k(at(b_law, diffs.ln_n))), at(b_law, diffs.ln_n))
    b_law = c_law(np.exp(at(a_law, diffs.ln_n)))

    second = at(b_law, ln_n) - np.exp(at(a_law, ln_n)) * ln_d  # ln of c(N) D^-k(N)
    with np.errstate(invalid="ignore", divide="ignore"):
        rest = np.log(np.exp(ln_loss) - np.exp(second))
    usable = np.isfinite(rest)
    if usable.sum() < 3:
        raise LawsError(
            "the data term fitted from loss differences exceeds the loss at almost every run; "
            "the runs do not follow the Farseer form (fit the chinchilla law instead)"
        )

    def first_term(fitted: np.ndarray) -> np.ndarray:
        pred = np.logaddexp(fitted, second[usable])
        return ((pred - ln_loss[usable]) ** 2).sum(axis=-1)

    s_law = _law_fit(ln_n[usable], rest[usable], first_term)
    return np.array([*s_law, *b_law, *a_law])


def _joint(theta0: np.ndarray, ln_n, ln_d, ln_loss, w) -> tuple[np.ndarray, bool, int]:
    """Least squares on ln L over all nine parameters, started from the piecewise solution.

    Each power term c N^p + o is refitted as level + slope * (n^p - 1) / p (a Box-Cox
    transform; level = c + o and slope = c p at N = N0). The data often favour p -> 0, where
    c and o run off to +-infinity in Farseer's own coordinates and the optimiser never
    converges; in these coordinates that limit is an ordinary point.
    """
    root_w = np.sqrt(w)

    def residuals(phi: np.ndarray) -> np.ndarray:
        log_pred, _ = _box_cox_log_terms(phi, ln_n, ln_d)
        return root_w * (log_pred - ln_loss)

    def jacobian(phi: np.ndarray) -> np.ndarray:
        _, jac = _box_cox_log_terms(phi, ln_n, ln_d)
        return root_w[:, None] * jac

    with np.errstate(over="ignore", invalid="ignore"):
        result = least_squares(
            residuals,
            _to_box_cox(theta0),
            jac=jacobian,
            method="lm",
            x_scale="jac",
            ftol=TOL,
            xtol=TOL,
            gtol=TOL,
            max_nfev=MAX_NFEV,
        )
    return _from_box_cox(result.x), bool(result.status > 0), int(result.nfev)


def _to_box_cox(theta: np.ndarray) -> np.ndarray:
    """(coef, power, offset) x 3 -> (level, slope, power) x 3."""
    out = np.empty(9)
    for i in (0, 3, 6):
        coef, power, offset = theta[i : i + 3]
        out[i : i + 3] = coef + offset, coef * power, power
    return out


def _from_box_cox(phi: np.ndarray) -> np.ndarray:
    out = np.empty(9)
    for i in (0, 3, 6):
        level, slope, power = phi[i : i + 3]
        out[i : i + 3] = slope / power, power, level - slope / power
    return out


def _box_cox(x: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray]:
    """(e^(p x) - 1) / p and its derivative in p; a series where p x is tiny (p -> 0 gives x)."""
    px = power * np.max(np.abs(x), initial=0.0)
    if abs(px) < 1e-5:
        value = x * (1 + power * x / 2 + (power * x) ** 2 / 6)
        slope = x**2 / 2 + power * x**3 / 3 + power**2 * x**4 / 8
        return value, slope
    value = np.expm1(power * x) / power
    return value, (x * np.exp(power * x) - value) / power


def _box_cox_log_terms(
    phi: np.ndarray, ln_n: np.ndarray, ln_d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ln L and its Jacobian in the (level, slope, power) x 3 coordinates of `_joint`."""
    u0, u1, q, v0, v1, b, w0, w1, a = phi
    bq, dq = _box_cox(ln_n, q)
    bb, db = _box_cox(ln_n, b)
    ba, da = _box_cox(ln_n, a)
    first = u0 + u1 * bq
    k = np.exp(w0 + w1 * ba)
    second = v0 + v1 * bb - k * ln_d
    log_loss = np.logaddexp(first, second)
    p1, p2 = np.exp(first - log_loss), np.exp(second - log_loss)
    dk = -p2 * ln_d * k
    jac = np.stack(
        [p1, p1 * bq, p1 * u1 * dq, p2, p2 * bb, p2 * v1 * db, dk, dk * ba, dk * w1 * da], axis=-1
    )
    return log_loss, jac
