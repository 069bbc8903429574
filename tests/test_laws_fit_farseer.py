"""Farseer: the piecewise method, the joint refinement, the choice between them and the
problems a fit reports, on Eq. 2 data (noise-free and at the paper's 0.8% noise)."""

import numpy as np
import pytest
from scipy.optimize import check_grad

from laws import LawsError, Runs, fit_law
from laws.fit import farseer as fit_farseer
from laws.fit import farseer_joint
from laws.fit.farseer import farseer_problems
from laws.fit.farseer_joint import box_cox_log_terms, from_box_cox, to_box_cox
from laws.fit.forms import Farseer, farseer_log_terms
from laws.fit.paper import EQ2_FARSEER, paper_design


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


def paper_replica(seed: int, law=EQ2_FARSEER, noise: float = 0.008):
    """The paper's 117 runs with multiplicative log-normal noise, and each run's true loss."""
    n, d = paper_design()
    truth = law.predict(n, d)
    rng = np.random.default_rng(seed)
    return Runs.from_arrays(n, d, truth * np.exp(rng.normal(0, noise, len(n)))), truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_noise_fits_at_the_noise_floor(seed):
    """At the paper's 0.8% noise on its 117-run design, the fit's in-sample mean relative error
    is within 0.1 points of the noise floor: the true law's own error on the same noisy runs (a
    9-parameter fit may go a little below it). The returned law obeys B > 0, b < 0, every
    stage says whether it converged, and a fit that is not "ok" says why."""
    runs, truth = paper_replica(seed)
    floor = np.mean(np.abs(truth / runs.loss - 1))
    fit = fit_law(runs, "farseer")
    assert abs(fit.errors["mean_rel_error"] - floor) < 0.001
    p = fit.law.params
    assert p["B"] > 0 and p["b"] < 0
    stages = fit.details["candidates"]["piecewise"]["stages"]
    assert set(stages) >= {"k_N", "a", "b", "q"}
    assert all(isinstance(s["converged"], bool) for group in stages.values() for s in group)
    assert isinstance(fit.details["joint_converged"], bool)
    assert (fit.status == "ok") == (fit.problems == [])
    # held out: fitted below the largest size, the largest size is still predicted to 1.5%
    big = runs.n == runs.n.max()
    held = fit_law(runs.subset(~big), "farseer")
    error = np.mean(np.abs(held.law.predict(runs.n[big], runs.d[big]) / runs.loss[big] - 1))
    assert error < 0.015


def test_candidates_are_chosen_by_leaving_the_largest_size_out():
    """Each candidate procedure is rerun without the largest size and scored on it; the lower
    score wins, whatever the in-sample errors say. The scores are reproduced here from the
    public entry point on the smaller sizes."""
    runs, _ = paper_replica(3)
    fit = fit_law(runs, "farseer")
    choice, reports = fit.details["choice"], fit.details["candidates"]
    values = choice["values"]
    assert set(values) == {"piecewise", "joint"} == set(reports)
    assert fit.details["chosen"] == min(values, key=values.get)
    assert fit.method == f"farseer-{fit.details['chosen']}"
    # the joint step starts at the piecewise solution and minimises squares: never higher
    assert reports["joint"]["objective"] <= reports["piecewise"]["objective"]
    big = runs.n == runs.n.max()
    largest = runs.subset(big)
    smaller = fit_law(runs.subset(~big), "farseer")
    for name in values:
        law = Farseer(**smaller.details["candidates"][name]["params"])
        error = np.mean(np.abs(law.predict(largest.n, largest.d) / largest.loss - 1))
        assert values[name] == pytest.approx(error, rel=1e-9)
    only = fit_law(runs, "farseer", refine=False)
    assert set(only.details["candidates"]) == {"piecewise"}
    assert only.details["choice"]["criterion"] is None


def test_an_exponent_pushed_onto_its_bound_is_flagged():
    """Runs from a law whose D coefficient falls with N as -0.0075 N^0.3 (b = +0.3: concave in
    ln N). The constraints B > 0, b < 0 allow only convex decreasing forms, whose best
    approximation to a concave one is the straight line at b -> 0: the fit must end on the
    bound b <= -0.001, keep the constraints, and be unreliable because of b."""
    law = Farseer(**{**EQ2_FARSEER.params, "B": -0.00751, "b": 0.3, "Q": 7.71})
    runs, _ = paper_replica(5, law=law)
    fit = fit_law(runs, "farseer")
    assert fit.law.params["b"] <= -0.001 + 1e-12 and fit.law.params["B"] > 0
    assert fit.status == "unreliable"
    assert any(" b " in f" {p} " and ("bound" in p or "edge" in p) for p in fit.problems)
    assert fit.to_json()["fit"]["status"] == "unreliable"


def test_an_unconverged_joint_refinement_is_not_used(monkeypatch):
    """Three evaluations cannot converge: the joint candidate is reported, not chosen, and the
    fit names it among its problems."""
    monkeypatch.setattr("laws.fit.farseer_joint.MAX_NFEV", 3)
    runs, _ = paper_replica(6)
    fit = fit_law(runs, "farseer")
    assert fit.details["chosen"] == "piecewise" and fit.details["joint_converged"] is False
    assert fit.details["candidates"]["joint"]["converged"] is False
    assert any(
        p.startswith("candidate joint not used: joint refinement did not converge")
        for p in fit.problems
    )
    assert fit.status == "unreliable"


def test_a_non_finite_candidate_is_never_chosen(monkeypatch):
    """A refinement ending at A = -inf (2 of 30 noise replicas before the constraints), even
    one that claims convergence, is never chosen; with no other candidate the fit raises."""

    def broken(theta0, *args):
        theta = np.array(theta0, dtype=float)
        theta[6] = -np.inf
        return farseer_joint.Joint(theta, True, 5, "converged", [])

    monkeypatch.setattr(fit_farseer, "refine_jointly", broken)
    runs, _ = paper_replica(7)
    fit = fit_law(runs, "farseer")
    assert fit.details["chosen"] == "piecewise"
    joint = fit.details["candidates"]["joint"]
    assert joint["finite"] is False and joint["params"]["A"] == -np.inf
    assert any("candidate joint not used" in p and "A = -inf" in p for p in fit.problems)
    with pytest.raises(LawsError, match="Farseer fit failed.*A = -inf"):
        fit_law(runs, "farseer", start=EQ2_FARSEER)


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
    np.testing.assert_allclose(from_box_cox(to_box_cox(theta)), theta, rtol=1e-12)
    ln_n = np.linspace(-2.5, 2.5, 9)
    ln_d = np.linspace(21, 26, 9)
    # the same law in both coordinate systems
    np.testing.assert_allclose(
        box_cox_log_terms(to_box_cox(theta), ln_n, ln_d)[0],
        farseer_log_terms(theta, ln_n, ln_d)[0],
        rtol=1e-12,
    )
    # analytic Jacobian, including a power on the series branch (p -> 0)
    for power in (0.24, 1e-7):
        phi = to_box_cox(theta)
        phi[5] = power
        for row in (0, 4, 8):
            err = check_grad(
                lambda p, row=row: box_cox_log_terms(p, ln_n, ln_d)[0][row],
                lambda p, row=row: box_cox_log_terms(p, ln_n, ln_d)[1][row],
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


def test_sign_constraints_are_checked_on_the_returned_law():
    eq2 = EQ2_FARSEER.vector()
    assert farseer_problems(EQ2_FARSEER) == []  # B = 62.89 > 0, b = -0.0614 < 0
    wrong_sign = Farseer.from_vector([*eq2[:4], 0.02, *eq2[5:]])  # b > 0
    assert any("sign constraints" in p for p in farseer_problems(wrong_sign))
