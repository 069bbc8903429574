"""The bootstrap: whole runs resampled, every draw refitted, failed draws counted by kind beside
every interval, and intervals that contain a known law's values at about their nominal rate."""

import dataclasses
import importlib

import numpy as np
import pytest

from laws import Chinchilla, LawsError, Runs, bootstrap, fit_law
from laws.analysis.bootstrap import Bootstrap
from laws.fit.chinchilla import from_law, hoffmann_grid
from laws.fit.paper import EQ2_FARSEER, paper_design

TRUTH = Chinchilla(E=0.2193, A=534.374, alpha=0.4853, B=76.0743, beta=0.2983)
GRID = hoffmann_grid(alpha=[0.5], beta=[0.5], e=[-1.0], a=[5.0, 10.0], b=[5.0])
BOOTSTRAP = importlib.import_module("laws.analysis.bootstrap")  # `laws.bootstrap` is the function


def synthetic(noise: float, seed: int = 0) -> Runs:
    n, d = paper_design()
    rng = np.random.default_rng(seed)
    return Runs.from_arrays(n, d, TRUTH.predict(n, d) * np.exp(rng.normal(0, noise, len(n))))


def truth_by_hand() -> dict[str, float]:
    """Eq. 1's values, from its formula: the closed-form optimum at 5.36e21 and the loss at
    Table 1's first row, (6.37B, 127B)."""
    e, a, alpha, b, beta = (TRUTH.params[k] for k in ("E", "A", "alpha", "B", "beta"))
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    n_opt = g * (5.36e21 / 6) ** (beta / (alpha + beta))
    return {
        "E": e,
        "alpha": alpha,
        "beta": beta,
        "d_over_n@C=5.36e+21": 5.36e21 / 6 / n_opt**2,
        "loss@N=6.37e+09,D=1.27e+11": e + a / 6.37e9**alpha + b / 127e9**beta,
    }


def test_intervals_contain_the_truth_at_about_their_nominal_rate():
    """Ten noise replicas of the paper's 117-run design at the paper's 0.8% noise, 80% intervals
    from 40 warm draws each. Measured over 40 replicas with 200 draws: 85-90% at 80%, 92-95% at
    90%, 92-98% at 95% across E, A, alpha, B, beta, N_opt, D/N and the loss at (6.37B, 127B).
    Each quantity must be covered in at least 6 of 10 replicas (at a true 80%, 5 or fewer
    happens with probability 0.03) and not in nearly all of them pooled (intervals too wide)."""
    truth = truth_by_hand()
    assert truth["d_over_n@C=5.36e+21"] == pytest.approx(199.3, abs=0.1)  # reference §4.3
    hits = dict.fromkeys(truth, 0)
    for replica in range(10):
        runs = synthetic(0.008, seed=replica)
        boot = bootstrap(
            runs,
            "chinchilla",
            40,
            seed=replica,
            workers=1,
            budgets=[5.36e21],
            points=[(6.37e9, 127e9)],
            level=0.8,
            starts=np.vstack([GRID, from_law(TRUTH)]),
        )
        assert boot.to_json()["failed"] == 0
        for name, value in truth.items():
            low, high = boot.interval(name)
            hits[name] += low <= value <= high
    assert min(hits.values()) >= 6, hits
    assert 0.65 <= sum(hits.values()) / 50 <= 0.92, hits


def test_no_draw_is_the_unrefitted_starting_law():
    runs = synthetic(0.008, seed=4)
    base = fit_law(runs, "chinchilla", starts=GRID)
    boot = bootstrap(runs, "chinchilla", 20, seed=1, workers=1, base=base)
    start = np.array(list(base.law.params.values()))
    assert len(boot.samples) == 20
    assert all(not np.allclose(row[:5], start, rtol=1e-6) for row in boot.samples)


def flaky_fitter(monkeypatch, spoil):
    """Wrap the bootstrap's fitter: `spoil(fit, runs)` may turn a draw's fit into a bad one (or
    return None to keep it). Returns the kept draws' alpha and the spoiled count, as the test
    itself saw them."""
    real, seen = BOOTSTRAP.fit_law, {"kept": [], "spoiled": 0}

    def fit(runs, law, weights=None, **options):
        result = real(runs, law, weights=weights, **options)
        bad = spoil(result, runs)
        if bad is None:
            seen["kept"].append(result.law.params["alpha"])
            return result
        seen["spoiled"] += 1
        return bad

    monkeypatch.setattr(BOOTSTRAP, "fit_law", fit)
    return seen


def spoiled(kind: str, fit, base):
    """A bad fit of one kind: flagged by its fitter (e.g. an optimiser that did not converge),
    handed back as the warm start itself (as a "warm" bootstrap once could), or non-finite."""
    if kind == "unreliable":
        return dataclasses.replace(fit, problems=["injected: did not converge"])
    if kind == "unrefitted":
        return dataclasses.replace(fit, law=base.law)
    return dataclasses.replace(fit, law=Chinchilla(**{**fit.law.params, "E": float("nan")}))


@pytest.mark.parametrize("kind", ["unreliable", "unrefitted", "non-finite"])
def test_a_spoiled_draw_is_counted_as_failed_and_kept_out(monkeypatch, kind):
    """Draws of fewer than 74 distinct runs (about half of them) are spoiled: each must be
    counted as a failure of its kind and left out of the intervals, which are then the
    percentiles of exactly the draws the test saw kept."""
    runs = synthetic(0.008, seed=5)
    base = fit_law(runs, "chinchilla", starts=GRID)
    seen = flaky_fitter(
        monkeypatch, lambda fit, drawn: spoiled(kind, fit, base) if len(drawn) < 74 else None
    )
    data = bootstrap(runs, "chinchilla", 30, seed=2, workers=1, base=base).to_json()
    assert 5 < seen["spoiled"] < 25
    assert data["failed"] == data["failures"][kind] == seen["spoiled"]
    assert data["succeeded"] == len(seen["kept"]) == 30 - seen["spoiled"]
    alpha = data["quantities"]["alpha"]
    assert (alpha["draws"], alpha["failed"]) == (len(seen["kept"]), seen["spoiled"])
    low, high = np.percentile(seen["kept"], [2.5, 97.5])
    assert (alpha["low"], alpha["high"]) == pytest.approx((low, high), rel=1e-12)
    assert data["first_failure"].startswith("resample ")


def test_a_quantity_one_draw_cannot_give_is_counted_against_it_alone():
    """Three draws; the second has no optimum at the budget (NaN): the budget's interval is over
    two draws with one failed, the parameter's over all three."""
    boot = Bootstrap(
        names=["alpha", "d_over_n@C=1e+21"],
        samples=np.array([[0.4, 100.0], [0.5, np.nan], [0.6, 300.0]]),
        estimate={"alpha": 0.5, "d_over_n@C=1e+21": 200.0},
        resamples=4,
        failures=[("error", "resample 3: too few runs")],
        seed=0,
        level=0.5,
        refit_from="warm",
    )
    data = boot.to_json()
    assert data["failures"] == {"error": 1, "non-finite": 0, "unreliable": 0, "unrefitted": 0}
    ratio, alpha = data["quantities"]["d_over_n@C=1e+21"], data["quantities"]["alpha"]
    assert (ratio["draws"], ratio["failed"]) == (2, 2) and (alpha["draws"], alpha["failed"]) == (
        3,
        1,
    )
    assert (ratio["low"], ratio["high"]) == (150.0, 250.0)  # percentiles 25, 75 of 100 and 300


def test_bootstrap_is_reproducible_and_worker_independent():
    runs = synthetic(0.003)
    options = {"budgets": [5.36e21], "starts": GRID}
    one = bootstrap(runs, "chinchilla", 12, seed=5, workers=1, **options)
    two = bootstrap(runs, "chinchilla", 12, seed=5, workers=2, **options)
    np.testing.assert_allclose(one.samples, two.samples, rtol=1e-7)
    other = bootstrap(runs, "chinchilla", 12, seed=6, workers=1, **options)
    assert not np.allclose(one.samples, other.samples)


def test_intervals_at_low_noise_contain_the_truth():
    runs = synthetic(0.003, seed=1)
    boot = bootstrap(
        runs,
        "chinchilla",
        150,
        seed=0,
        workers=2,
        budgets=[5.36e21],
        points=[(2.27e9, 341e9)],
        starts=GRID,
    )
    assert boot.to_json()["succeeded"] == 150
    for name in ("E", "alpha", "beta"):
        low, high = boot.interval(name)
        assert low < TRUTH.params[name] < high, name
        assert high - low < 0.2 * TRUTH.params[name]
    low, high = boot.interval("loss@N=2.27e+09,D=3.41e+11")
    assert low < float(TRUTH.predict(2.27e9, 341e9)) < high
    low, high = boot.interval("d_over_n@C=5.36e+21")
    assert low < 199.3 < high


def test_bootstrap_of_farseer_warm_refits():
    n, d = paper_design()
    rng = np.random.default_rng(2)
    loss = EQ2_FARSEER.predict(n, d) * np.exp(rng.normal(0, 0.001, len(n)))
    boot = bootstrap(Runs.from_arrays(n, d, loss), "farseer", 40, seed=0, budgets=[5.36e21])
    assert boot.to_json()["succeeded"] == 40
    low, high = boot.interval("d_over_n@C=5.36e+21")
    assert low < eq2_optimal_d_over_n(5.36e21) < high  # 154.8: the truth, not the estimate
    assert 155 * 0.85 < low and high < 155 * 1.15


def test_bootstrap_of_farseer_reports_failures():
    """Four sizes x 9 budgets: a resample often leaves fewer than 3 sizes with the 5 loss
    differences the piecewise fit needs. Those refits are reported, the others kept."""
    n, d = paper_design()
    keep = (n < 6e8) & (d < 2e9 * np.sqrt(2) ** 9)
    runs = Runs.from_arrays(n[keep], d[keep], EQ2_FARSEER.predict(n[keep], d[keep]))
    boot = bootstrap(runs, "farseer", 8, seed=0, workers=1, refit_from="full")
    data = boot.to_json()
    assert data["failed"] > 0 and data["succeeded"] > 0
    assert data["succeeded"] + data["failed"] == 8 and len(boot.samples) == data["succeeded"]
    assert data["failures"]["error"] > 0 and sum(data["failures"].values()) == data["failed"]
    assert "positive loss differences" in data["first_failure"]
    assert set(data["quantities"]) == set("sqSBbQAaE")
    for q in data["quantities"].values():  # every interval carries the failed draws
        assert (q["draws"], q["failed"]) == (data["succeeded"], data["failed"])


def test_draws_of_a_flagged_fit_all_fail_and_say_why():
    """Noise-free runs of a law with no irreducible loss (E = 1e-9, 1e-7 of the losses): every
    refit recovers E at its floor, so every draw is unreliable and fails; no interval is given
    over laws the fitter itself distrusts."""
    law = Chinchilla(E=1e-9, A=534.374, alpha=0.4853, B=76.0743, beta=0.2983)
    n, d = np.meshgrid(np.geomspace(2e8, 3e9, 5), np.geomspace(2e9, 1e11, 6))
    runs = Runs.from_arrays(n.ravel(), d.ravel(), law.predict(n.ravel(), d.ravel()))
    with pytest.raises(LawsError, match="every bootstrap refit failed; the first: resample 0: E ="):
        bootstrap(runs, "chinchilla", 4, workers=1, starts=GRID)


def test_bootstrap_arguments():
    runs = synthetic(0.0)
    with pytest.raises(LawsError, match="at least 2 resamples"):
        bootstrap(runs, "chinchilla", 1)
    with pytest.raises(LawsError, match="'warm' or 'full'"):
        bootstrap(runs, "chinchilla", 5, refit_from="random")
    full = bootstrap(runs, "chinchilla", 3, refit_from="full", starts=GRID, workers=1)
    assert full.to_json()["refit_from"] == "full" and len(full.samples) == 3


def test_bootstrap_where_every_refit_fails():
    n, d = paper_design()
    keep = (n < 6e8) & (d < 2e9 * np.sqrt(2) ** 6)  # 3 sizes x 6 D: exactly 5 differences each
    loss = EQ2_FARSEER.predict(n[keep], d[keep])
    with pytest.raises(LawsError, match="every bootstrap refit failed; the first: resample 0"):
        runs = Runs.from_arrays(n[keep], d[keep], loss)
        bootstrap(runs, "farseer", 3, workers=1, refit_from="full")


def eq2_optimal_d_over_n(compute: float) -> float:
    """Eq. 2's local compute optimum by brute force: D = C / 6N on a fine N grid, 0.5B-20B
    (below the runaway towards huge N, docs/reference.md §4.3)."""
    n = np.geomspace(5e8, 2e10, 400_001)
    best = n[np.argmin(EQ2_FARSEER.predict(n, compute / (6 * n)))]
    return compute / (6 * best) / best


def test_eq2_optimum_by_brute_force():
    # docs/reference.md §4.3: about 155
    assert eq2_optimal_d_over_n(5.36e21) == pytest.approx(154.8, abs=0.1)


def test_a_fit_whose_e_underflowed_to_zero_still_warm_starts_its_draws():
    """A fit can return E = 0 exactly (exp of a very negative ln E, as the language study's C
    and C++ laws did). Its warm start must still be a finite point: the draws then fail for the
    real reason, E at its floor, not "every Chinchilla start diverged; check the data's scale"."""
    law = Chinchilla(E=1e-9, A=534.374, alpha=0.4853, B=76.0743, beta=0.2983)
    n, d = np.meshgrid(np.geomspace(2e8, 3e9, 5), np.geomspace(2e9, 1e11, 6))
    runs = Runs.from_arrays(n.ravel(), d.ravel(), law.predict(n.ravel(), d.ravel()))
    base = fit_law(runs, "chinchilla", starts=GRID)
    base = dataclasses.replace(base, law=dataclasses.replace(base.law, E=0.0))
    assert np.isfinite(from_law(base.law)).all()
    with pytest.raises(LawsError, match="every bootstrap refit failed; the first: resample 0: E ="):
        bootstrap(runs, "chinchilla", 4, workers=1, starts=GRID, base=base)
