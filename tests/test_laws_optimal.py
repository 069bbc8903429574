"""Compute-optimal allocation, frontier, optimal D for a given N, crossovers."""

import math
import warnings

import numpy as np
import pytest

from laws import (
    Chinchilla,
    LawsError,
    RunawayWarning,
    TrustRegion,
    compute_optimal,
    crossovers,
    frontier,
    optimal_tokens,
)
from laws.fit.paper import EQ1_CHINCHILLA, EQ2_FARSEER

C = 5.36e21


class Opaque:
    """A law the allocator cannot recognise, to force the numerical search."""

    name = "opaque"

    def __init__(self, law):
        self.law = law

    def predict(self, n, d):
        return self.law.predict(n, d)

    def log_slopes(self, n, d):
        return self.law.log_slopes(n, d)


def test_eq1_closed_form_at_the_table_1_budget():
    opt = compute_optimal(EQ1_CHINCHILLA, C)
    assert opt.d_over_n == pytest.approx(199, abs=1)
    assert opt.n_opt == pytest.approx(2.1e9, rel=0.02)
    assert 6 * opt.n_opt * opt.d_opt == pytest.approx(C, rel=1e-12)
    # the formula of docs/reference.md §5.1, by hand
    a, b = 0.4853, 0.2983
    g = (a * 534.374 / (b * 76.0743)) ** (1 / (a + b))
    assert opt.n_opt == pytest.approx(g * (C / 6) ** (b / (a + b)), rel=1e-12)


def test_closed_form_equals_the_numerical_search():
    closed = compute_optimal(EQ1_CHINCHILLA, C)
    searched = compute_optimal(Opaque(EQ1_CHINCHILLA), C)
    assert searched.n_opt == pytest.approx(closed.n_opt, rel=1e-6)
    assert searched.note is None


def test_eq2_local_optimum_not_the_runaway():
    with pytest.warns(RunawayWarning, match="runaway"):
        opt = compute_optimal(EQ2_FARSEER, C)
    assert opt.n_opt == pytest.approx(2.4e9, rel=0.03)
    assert opt.d_over_n == pytest.approx(155, abs=3)
    assert opt.d_opt >= opt.n_opt
    assert opt.loss == pytest.approx(0.2504, abs=5e-4)
    # the surface really does run away: far larger N with tiny D gives a lower "loss"
    assert EQ2_FARSEER.predict(1e13, C / 6e13) < opt.loss
    assert "runaway" in opt.note and "note" in opt.to_json()


def test_flops_per_token_is_configurable():
    six = compute_optimal(EQ1_CHINCHILLA, C)
    eight = compute_optimal(EQ1_CHINCHILLA, C * 8 / 6, flops_per_token=8)
    assert eight.n_opt == pytest.approx(six.n_opt, rel=1e-12)
    assert eight.d_opt == pytest.approx(six.d_opt, rel=1e-12)


def test_optimal_tokens_inverts_the_allocation():
    for law in (EQ1_CHINCHILLA, EQ2_FARSEER):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunawayWarning)
            opt = compute_optimal(law, C)
        back = optimal_tokens(law, opt.n_opt)
        assert back.d_opt == pytest.approx(opt.d_opt, rel=1e-5)
        assert back.compute == pytest.approx(C, rel=1e-5)


def test_frontier_decreases_with_compute():
    points = frontier(EQ1_CHINCHILLA, np.geomspace(1e19, 1e24, 6))
    losses = [p.loss for p in points]
    assert all(np.diff(losses) < 0)
    assert all(p.loss > EQ1_CHINCHILLA.irreducible() for p in points)


def test_trust_region_from_the_data():
    region = TrustRegion.around({"n": [2e8, 3.2e9], "d": [2e9, 1.28e11]}, factor=10)
    assert (region.n_min, region.n_max) == (2e7, 3.2e10)
    assert TrustRegion.around(None) == TrustRegion()
    with pytest.raises(LawsError, match="leaves no N in the trust region"):
        compute_optimal(EQ2_FARSEER, 1e18, region=TrustRegion(n_min=1e10, n_max=1e11))


def test_an_optimum_outside_the_fitted_sizes_is_labelled_an_extrapolation():
    n_opt = compute_optimal(EQ1_CHINCHILLA, C).n_opt
    below = TrustRegion.around({"n": [4 * n_opt, 40 * n_opt]})
    marked = compute_optimal(EQ1_CHINCHILLA, C, region=below)
    assert marked.n_opt == n_opt and "is 4x below the smallest fitted size" in marked.extrapolation
    above = compute_optimal(
        EQ1_CHINCHILLA, C, region=TrustRegion.around({"n": [n_opt / 8, n_opt / 2]})
    )
    assert "is 2x above the largest fitted size" in above.extrapolation
    inside = compute_optimal(
        EQ1_CHINCHILLA, C, region=TrustRegion.around({"n": [n_opt / 2, 2 * n_opt]})
    )
    assert inside.extrapolation is None and "extrapolation" not in inside.to_json()


def test_no_interior_optimum_is_flagged():
    tight = TrustRegion(n_min=1e8, n_max=5e8)
    with pytest.warns(RunawayWarning, match="no optimum inside the trust region"):
        opt = compute_optimal(EQ2_FARSEER, C, region=tight)
    assert opt.n_opt == pytest.approx(5e8, rel=1e-9)


def test_crossover_of_two_surfaces_at_fixed_n():
    # same N term and exponent; the mixture has a higher floor but a smaller data term, so
    # it wins at small D and loses at large D. They cross where 0.02 = 40 D^-0.3.
    code = Chinchilla(E=0.22, A=500.0, alpha=0.5, B=80.0, beta=0.3)
    mixture = Chinchilla(E=0.24, A=500.0, alpha=0.5, B=40.0, beta=0.3)
    n = 1e9
    (ratio,) = crossovers(code, mixture, n)
    assert ratio * n == pytest.approx((40 / 0.02) ** (1 / 0.3), rel=1e-8)
    assert crossovers(code, code, n) == []


def test_bad_budget():
    with pytest.raises(LawsError, match="compute must be positive"):
        compute_optimal(EQ1_CHINCHILLA, -1.0)


def test_optimal_tokens_outside_the_ratio_range():
    with pytest.raises(LawsError, match="compute-optimal"):
        optimal_tokens(EQ2_FARSEER, 2.4e9, region=TrustRegion(max_d_over_n=10))
    assert math.isfinite(optimal_tokens(EQ1_CHINCHILLA, 1e9).d_opt)
