"""Farseer's joint refinement: least squares on ln L over all nine parameters, inside the
procedure's constraints (B >= 0, b <= -B_EXPONENT_LIMIT) and the piecewise grids' range of
exponents (|q|, |b|, |a| <= EXPONENT_LIMIT: beyond it a term only separates the smallest size
from the rest, and B or A run to infinity).

Each power term c N^p + o is refitted as level + slope (n^p - 1) / p (a Box-Cox transform;
level = c + o and slope = c p at N = N0). The data often favour p -> 0, where c and o run off to
+-infinity in Farseer's own coordinates and the optimiser crawls; in these coordinates that limit
is an ordinary point, and the constraints are plain bounds: b < 0 and B = slope / b > 0 is
slope < 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from laws.fit.farseer_piecewise import MAGNITUDES
from laws.fit.forms import Farseer

TOL, MAX_NFEV = 1e-12, 2000
B_EXPONENT_LIMIT = float(MAGNITUDES[0])  # b <= -this: the piecewise grid's inner edge
EXPONENT_LIMIT = float(MAGNITUDES[-1])  # the grids' outer edge
NAMES = ("level s", "slope s", "q", "level B", "slope B", "b", "level A", "slope A", "a")
_LOWER, _UPPER = np.full(9, -np.inf), np.full(9, np.inf)
_LOWER[[2, 5, 8]], _UPPER[[2, 8]] = -EXPONENT_LIMIT, EXPONENT_LIMIT
_UPPER[4], _UPPER[5] = 0.0, -B_EXPONENT_LIMIT


@dataclass
class Joint:
    """The refined parameters (Farseer's order, N scaled by N0) and how the optimiser ended."""

    theta: np.ndarray
    converged: bool
    evaluations: int
    message: str
    at_bounds: list[tuple[str, float]]  # (parameter, bound) active at the end point

    def problems(self) -> list[str]:
        out = []
        if not self.converged:
            out.append(
                f"joint refinement did not converge ({self.message}; "
                f"{self.evaluations} evaluations)"
            )
        bad = [
            f"{k} = {v}"
            for k, v in zip(Farseer.keys, self.theta, strict=True)
            if not np.isfinite(v)
        ]
        if bad:
            out.append(f"joint refinement ended with non-finite parameters ({', '.join(bad)})")
        for name, bound in self.at_bounds:
            out.append(f"joint refinement: {_bound_text(name, bound)}")
        return out


def _bound_text(name: str, bound: float) -> str:
    if name == "slope B":
        return "B reached its bound B > 0 (the D coefficient c(N) does not vary with N)"
    if name == "b" and bound < 0 and bound > -1:
        return (
            f"b reached its bound b <= {bound:g} (the constraint b < 0): the data prefer "
            "b -> 0 or b > 0, where B and Q run to +-infinity"
        )
    return f"exponent {name} reached the end of its range, {bound:g}: the optimum may lie beyond"


def refine(theta0: np.ndarray, ln_n, ln_d, ln_loss, w) -> Joint:
    """Bounded least squares (trust-region reflective) from theta0, clipped into the bounds."""
    root_w = np.sqrt(w)

    def residuals(phi: np.ndarray) -> np.ndarray:
        log_pred, _ = box_cox_log_terms(phi, ln_n, ln_d)
        return root_w * (log_pred - ln_loss)

    def jacobian(phi: np.ndarray) -> np.ndarray:
        _, jac = box_cox_log_terms(phi, ln_n, ln_d)
        return root_w[:, None] * jac

    phi0 = np.clip(to_box_cox(theta0), _LOWER, _UPPER)
    with np.errstate(over="ignore", invalid="ignore"):
        result = least_squares(
            residuals,
            phi0,
            jac=jacobian,
            bounds=(_LOWER, _UPPER),
            method="trf",
            x_scale="jac",
            ftol=TOL,
            xtol=TOL,
            gtol=TOL,
            max_nfev=MAX_NFEV,
        )
    active = result.active_mask
    bounds = np.where(active < 0, _LOWER, _UPPER)
    at_bounds = [(NAMES[i], float(bounds[i])) for i in np.flatnonzero(active)]
    return Joint(
        theta=from_box_cox(result.x),
        converged=bool(result.status > 0),
        evaluations=int(result.nfev),
        message=str(result.message),
        at_bounds=at_bounds,
    )


def to_box_cox(theta: np.ndarray) -> np.ndarray:
    """(coef, power, offset) x 3 -> (level, slope, power) x 3."""
    out = np.empty(9)
    for i in (0, 3, 6):
        coef, power, offset = theta[i : i + 3]
        out[i : i + 3] = coef + offset, coef * power, power
    return out


def from_box_cox(phi: np.ndarray) -> np.ndarray:
    out = np.empty(9)
    with np.errstate(divide="ignore", invalid="ignore"):
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


def box_cox_log_terms(
    phi: np.ndarray, ln_n: np.ndarray, ln_d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ln L and its Jacobian in the (level, slope, power) x 3 coordinates of `refine`."""
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
