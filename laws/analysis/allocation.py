"""Token allocation across languages: the proportions that minimise a weighted sum of losses.

The law (docs/laws.md, "Allocating tokens across languages"): with proportions p of a total of
D tokens, language i learns from D_i^eff = D (T p)_i tokens, where T is the measured transfer
matrix (T_ii = 1; `laws.analysis.synergy`), and
    L_i(N, D, p) = E_i + A_i N^-alpha_i + B_i (D (T p)_i)^-beta_i.
A per-language law fitted on runs of one mix p0 saw D (T p0)_i effective tokens at total D, so
its data coefficient B'_i (in total tokens) is B_i (T p0)_i^-beta_i: B_i = B'_i (T p0)_i^beta_i.
The objective sum_i w_i L_i is convex in p (each term a decreasing convex power of a linear map),
so the minimum under sum p = 1 and floor_i <= p_i <= supply_i / D is the global one; SLSQP finds
it. The floor keeps each language at the least native share its transfer was measured at: T is
a first-order account of mixing, and a mix below every measured share (a language left with no
tokens of its own, say) is an extrapolation the runs do not support.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from laws.errors import LawsError

FLOOR = 1e-12  # effective-token share below which a language is taken as unlearned
# Share of each language's supply the optimum leaves unused: a run rounds its budget up to whole
# steps and deals each language whole sequences, so a mix at exactly supply / D overdraws it by
# a few hundred tokens (the language study's check: 958,976 C++ tokens asked of 958,811).
SUPPLY_RESERVE = 0.005


@dataclass(frozen=True)
class LanguageLaw:
    """One language's Chinchilla terms, its data coefficient in its own effective tokens."""

    e: float
    a: float
    alpha: float
    b: float
    beta: float

    def loss(self, n: float, effective_tokens: np.ndarray | float) -> np.ndarray:
        d = np.maximum(np.asarray(effective_tokens, dtype=float), FLOOR)
        return self.e + self.a * n**-self.alpha + self.b * d**-self.beta


def own_token_laws(
    fitted: dict[str, dict[str, float]], transfer: np.ndarray, fit_mix: np.ndarray, names: list[str]
) -> list[LanguageLaw]:
    """Per-language Chinchilla params fitted in total tokens at mix `fit_mix` -> laws in each
    language's effective tokens (B_i = B'_i (T p0)_i^beta_i)."""
    share = transfer @ fit_mix
    if (share <= 0).any():
        bad = [names[i] for i in np.flatnonzero(share <= 0)]
        raise LawsError(f"the fit mix gives {', '.join(bad)} no effective tokens; check --fit-mix")
    laws = []
    for name, c in zip(names, share, strict=True):
        p = fitted[name]
        laws.append(LanguageLaw(p["E"], p["A"], p["alpha"], p["B"] * c ** p["beta"], p["beta"]))
    return laws


def losses(
    laws: list[LanguageLaw], transfer: np.ndarray, n: float, tokens: float, p: np.ndarray
) -> np.ndarray:
    share = transfer @ p
    return np.asarray([law.loss(n, tokens * s) for law, s in zip(laws, share, strict=True)])


def allocate(
    laws: list[LanguageLaw],
    transfer: np.ndarray,
    weights: np.ndarray,
    n: float,
    tokens: float,
    supply: np.ndarray,
    floor: np.ndarray | None = None,
    names: list[str] | None = None,
) -> dict:
    """The optimal proportions between the floors (default 0) and the supply caps, with the
    solver's report."""
    caps = np.minimum(supply * (1 - SUPPLY_RESERVE) / tokens, 1.0)
    floor = np.zeros(len(caps)) if floor is None else np.asarray(floor, dtype=float)
    names = names or [f"language {k}" for k in range(len(caps))]
    if caps.sum() < 1 - 1e-12:
        raise LawsError(
            f"the supply ({supply.sum():.4g} tokens) is less than D = {tokens:.4g}: no mix of "
            "these languages fills the budget without repeating data; lower --tokens"
        )
    short = [
        f"{names[k]} (floor {floor[k]:.3g} > supply share {caps[k]:.3g})"
        for k in np.flatnonzero(floor > caps + 1e-12)
    ]
    if short or floor.sum() > 1 + 1e-12:
        raise LawsError(
            "the share floors cannot be met: "
            + (", ".join(short) if short else f"they add up to {floor.sum():.3g} > 1")
            + "; lower --min-share or --tokens"
        )
    # a feasible start: the floors, and what is left shared in proportion to the room above them
    start = floor + (1 - floor.sum()) * (caps - floor) / (caps - floor).sum()
    scale = float(weights @ losses(laws, transfer, n, tokens, start))

    def objective(p: np.ndarray) -> float:
        return float(weights @ losses(laws, transfer, n, tokens, p)) / scale

    result = minimize(
        objective,
        start,
        method="SLSQP",
        bounds=[(float(f), float(c)) for f, c in zip(floor, caps, strict=True)],
        constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    p = np.clip(result.x, floor, caps)
    p = p / p.sum()
    return {
        "proportions": p,
        "converged": bool(result.success),
        "message": str(result.message),
        "iterations": int(result.nit),
        "at_supply_cap": [bool(p[i] >= caps[i] - 1e-6) for i in range(len(p))],
        "at_floor": [bool(floor[i] > 0 and p[i] <= floor[i] + 1e-6) for i in range(len(p))],
    }


def water_filling(scores: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """p_i proportional to `scores` with p_i <= caps_i and sum 1: the languages whose share would
    pass their cap sit at it and the rest share what is left in proportion. (The optimum of the
    law without transfer and with one data exponent; `allocate` is checked against it.)"""
    p = np.zeros_like(scores, dtype=float)
    free = np.ones(len(scores), dtype=bool)
    while True:
        left = 1.0 - p[~free].sum()
        trial = scores * free * left / scores[free].sum()
        over = free & (trial > caps)
        if not over.any():
            p[free] = trial[free]
            return p
        p[over], free[over] = caps[over], False
