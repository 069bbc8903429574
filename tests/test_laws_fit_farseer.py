"""Farseer by the piecewise differential method plus joint refinement, on Eq. 2 data."""

import numpy as np
import pytest
from scipy.optimize import check_grad

from laws import LawsError, Runs, fit_law
from laws.fit_farseer import _box_cox_log_terms, _from_box_cox, _to_box_cox, farseer_problems
from laws.forms import Farseer, farseer_log_terms
from laws.paper import EQ2_FARSEER, paper_design


def ragged_design(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Nine jittered model sizes, each with its own 8-13 jittered, roughly sqrt(2)-spaced D."""
    rng = np.random.default_rng(seed)
    n_all, d_all = [], []
    for k in range(9):
        n = 2e8 * 2 ** (k / 2) * np.exp(rng.uniform(-0.1, 0.1))
        count = rng.integers(8, 14)
        d = 2e9 * np.sqrt(2) ** np.arange(count) * np.exp(rng.uniform(-0.12, 0.12, count))
        n_all += [n] * count
        d_all += list(d)
    return np.array(n_all), np.array(d_all)


def runs_from(n, d, noise=0.0, seed=0) -> Runs:
    rng = np.random.default_rng(seed)
    return Runs.from_arrays(n, d, EQ2_FARSEER.predict(n, d) * np.exp(rng.normal(0, noise, len(n))))


def test_noise_free_eq2_on_the_paper_design():
    fit = fit_law(runs_from(*paper_design()), "farseer")
    np.testing.assert_allclose(fit.law.vector(), EQ2_FARSEER.vector(), rtol=1e-3)
    assert fit.errors["mean_rel_error"] < 1e-8
    # the piecewise stage alone already lands on the law
    piecewise = fit.details["candidates"]["piecewise"]
    assert piecewise["mean_rel_error"] < 1e-6
    np.testing.assert_allclose(list(piecewise["params"].values()), EQ2_FARSEER.vector(), rtol=1e-3)


def test_noise_free_recovery_on_a_ragged_design():
    n, d = ragged_design(0)
    fit = fit_law(runs_from(n, d), "farseer")
    np.testing.assert_allclose(fit.law.vector(), EQ2_FARSEER.vector(), rtol=1e-3)


def test_extrapolates_to_held_out_larger_models():
    n, d = paper_design()
    small = n < 2e9
    fit = fit_law(runs_from(n[small], d[small]), "farseer")
    truth = EQ2_FARSEER.predict(n[~small], d[~small])
    assert np.abs(fit.law.predict(n[~small], d[~small]) / truth - 1).max() < 1e-6


@pytest.mark.parametrize("seed", [1, 2])
def test_realistic_noise(seed):
    n, d = ragged_design(seed)
    runs = runs_from(n, d, noise=0.001, seed=seed)
    small = runs.n < 1.8e9
    fit = fit_law(runs.subset(small), "farseer")
    assert fit.errors["mean_rel_error"] < 0.0015  # about the noise, well below 1%
    big = runs.subset(~small)
    truth = EQ2_FARSEER.predict(big.n, big.d)
    assert np.mean(np.abs(fit.law.predict(big.n, big.d) / truth - 1)) < 0.005


def test_reports_both_candidates_and_keeps_the_joint_one_on_noisy_data():
    """With 0.2% log-normal noise the joint step, least squares on ln L over every run, must end
    at or below the squares of the law the data came from (a point it could reach) and below
    the piecewise solution it starts from (which minimises other residuals). Its mean relative
    error is then the noise's own, 0.002 sqrt(2/pi) = 0.160%."""
    runs = runs_from(*ragged_design(3), noise=0.002, seed=3)
    fit = fit_law(runs, "farseer")
    reports = fit.details["candidates"]
    assert set(reports) == {"piecewise", "joint"}
    truth_squares = float(np.sum(np.log(runs.loss / EQ2_FARSEER.predict(runs.n, runs.d)) ** 2))
    assert reports["joint"]["objective"] <= truth_squares
    assert reports["joint"]["objective"] < reports["piecewise"]["objective"]
    assert fit.details["chosen"] == "joint" and fit.method == "farseer-joint"
    assert fit.errors["mean_rel_error"] == pytest.approx(0.002 * np.sqrt(2 / np.pi), rel=0.05)
    assert fit.errors["mean_rel_error"] < reports["piecewise"]["mean_rel_error"]
    json = fit.to_json()
    assert json["law"] == "farseer" and list(json["params"]) == list("sqSBbQAaE")
    only = fit_law(runs_from(*ragged_design(3), noise=0.002, seed=3), "farseer", refine=False)
    assert set(only.details["candidates"]) == {"piecewise"}


def test_too_few_differences_per_size():
    n, d = paper_design()
    keep = (d < 2e9 * np.sqrt(2) ** 4) | (n < 4e8)  # only two sizes keep >= 5 differences
    with pytest.raises(LawsError, match="at least 3 model sizes with >= 5 positive loss"):
        fit_law(runs_from(n[keep], d[keep]), "farseer")


def test_needs_three_model_sizes():
    n, d = paper_design()
    keep = n < 3e8
    with pytest.raises(LawsError, match="needs at least 3 distinct N"):
        fit_law(runs_from(n[keep], d[keep]), "farseer")


def test_fewer_runs_than_parameters():
    n = np.array([2e8, 2e8, 4e8, 4e8, 8e8, 8e8, 8e8])
    d = np.array([2e9, 4e9, 2e9, 4e9, 2e9, 4e9, 8e9])
    with pytest.raises(LawsError, match="7 runs for the farseer law's 9 parameters"):
        fit_law(runs_from(n, d), "farseer")


def test_box_cox_coordinates():
    theta = np.array([-0.3, 0.24, -0.8, 2.0, -0.06, 0.5, -0.5, 0.19, -0.18])
    np.testing.assert_allclose(_from_box_cox(_to_box_cox(theta)), theta, rtol=1e-12)
    ln_n = np.linspace(-2.5, 2.5, 9)
    ln_d = np.linspace(21, 26, 9)
    # the same law in both coordinate systems
    np.testing.assert_allclose(
        _box_cox_log_terms(_to_box_cox(theta), ln_n, ln_d)[0],
        farseer_log_terms(theta, ln_n, ln_d)[0],
        rtol=1e-12,
    )
    # analytic Jacobian, including a power on the series branch (p -> 0)
    for power in (0.24, 1e-7):
        phi = _to_box_cox(theta)
        phi[5] = power
        for row in (0, 4, 8):
            err = check_grad(
                lambda p, row=row: _box_cox_log_terms(p, ln_n, ln_d)[0][row],
                lambda p, row=row: _box_cox_log_terms(p, ln_n, ln_d)[1][row],
                phi,
            )
            assert err < 1e-6


def test_a_warm_start_is_never_returned_unrefitted():
    """The bootstrap's warm refits start from a law; with no refinement there is no answer, and
    with it the answer is the refinement (the start itself was once a candidate and won)."""
    runs = runs_from(*ragged_design(4), noise=0.008, seed=4)
    refitted = fit_law(runs, "farseer", start=EQ2_FARSEER)
    assert refitted.method == "farseer-joint" and refitted.law != EQ2_FARSEER
    with pytest.raises(LawsError, match="Farseer fit failed"):
        fit_law(runs, "farseer", start=EQ2_FARSEER, refine=False)


def test_sign_constraints_and_grid_edges_are_problems():
    eq2 = EQ2_FARSEER.vector()
    assert farseer_problems(EQ2_FARSEER, "joint") == []  # B = 62.89 > 0, b = -0.0614 < 0
    wrong_sign = Farseer.from_vector([*eq2[:4], 0.02, *eq2[5:]])  # b > 0
    assert any("sign constraints" in p for p in farseer_problems(wrong_sign, "joint"))
    on_edge = Farseer.from_vector([eq2[0], 1.5, *eq2[2:]])  # q at the grid's end
    assert any("exponent q" in p for p in farseer_problems(on_edge, "piecewise"))
    assert not any("exponent" in p for p in farseer_problems(on_edge, "joint"))
