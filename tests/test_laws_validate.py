"""Held-out extrapolation (the default split included) and leave-one-size-out; the bootstrap is
in test_laws_bootstrap.py."""

import numpy as np
import pytest

from laws import Chinchilla, Cutoff, LawsError, Runs, fit_law, holdout, leave_one_size_out
from laws.analysis.validate import extrapolation, split
from laws.fit.chinchilla import hoffmann_grid
from laws.fit.paper import paper_design
from laws.fit.result import error_summary

TRUTH = Chinchilla(E=0.2193, A=534.374, alpha=0.4853, B=76.0743, beta=0.2983)
GRID = hoffmann_grid(alpha=[0.5], beta=[0.5], e=[-1.0], a=[5.0, 10.0], b=[5.0])


def synthetic(noise: float, seed: int = 0) -> Runs:
    n, d = paper_design()
    rng = np.random.default_rng(seed)
    return Runs.from_arrays(n, d, TRUTH.predict(n, d) * np.exp(rng.normal(0, noise, len(n))))


@pytest.mark.parametrize(
    "text, axis, value",
    [("n<2e9", "n", 2e9), ("N<2.27B", "n", 2.27e9), ("n:1.5B", "n", 1.5e9), ("c<1e20", "c", 1e20)],
)
def test_cutoff_syntax(text, axis, value):
    cut = Cutoff.parse(text)
    assert (cut.axis, cut.value) == (axis, value)


@pytest.mark.parametrize("text", ["n>2e9", "d<1e9", "n<lots", "2e9"])
def test_bad_cutoff(text):
    with pytest.raises(LawsError, match="holdout|cannot read"):
        Cutoff.parse(text)


def test_holdout_by_n_and_by_compute():
    runs = synthetic(0.002)
    fit, held = holdout(runs, "chinchilla", Cutoff.parse("n<2e9"), starts=GRID)
    assert held["n_train"] == 91 and held["n_runs"] == 26
    assert all(r["n"] >= 2e9 for r in held["runs"])
    assert held["mean_rel_error"] < 0.005
    _, by_c = holdout(runs, "chinchilla", Cutoff.parse("c<1e20"), starts=GRID)
    assert all(6 * r["n"] * r["d"] >= 1e20 for r in by_c["runs"])


def test_cutoff_outside_the_data():
    runs = synthetic(0.0)
    with pytest.raises(LawsError, match="puts no run in the training set"):
        split(runs, Cutoff.parse("n<1e6"))
    with pytest.raises(LawsError, match="puts every run in the training set"):
        split(runs, Cutoff.parse("n<1e12"))


def test_leave_one_size_out():
    runs = synthetic(0.002)
    rows = leave_one_size_out(runs, "chinchilla", workers=1, starts=GRID)
    assert [r["n"] for r in rows] == sorted(set(runs.n))
    assert all(r["n_runs"] == 13 and r["mean_rel_error"] < 0.01 for r in rows)


def test_default_split_holds_out_the_largest_size():
    """Without a cut-off the check refits on every size but the largest (3.2B here) and scores
    the 13 runs of that size; the numbers are those of a fit made by hand on N < 3.2B."""
    runs = synthetic(0.008, seed=3)
    fit, check = extrapolation(runs, "chinchilla", starts=GRID)
    assert (check["split"], check["default"], check["held_out"]) == (
        "n<3.2e+09",
        True,
        "N >= 3.2e+09",
    )
    assert check["n_train"] == 104 and check["n_runs"] == 13 and fit.n_runs == 104
    largest = runs.n == runs.n.max()
    by_hand = fit_law(runs.subset(~largest), "chinchilla", starts=GRID)
    expected = error_summary(by_hand.law, runs.subset(largest))
    assert check["mean_rel_error"] == pytest.approx(expected["mean_rel_error"], rel=1e-9)
    assert check["status"] == by_hand.status and check["problems"] == by_hand.problems
    assert {r["n"] for r in check["runs"]} == {float(runs.n.max())}


def test_a_default_split_the_data_cannot_support_is_reported_not_raised():
    """Three sizes: without the largest, two are left, fewer than Farseer needs. The default
    check says so; a cut-off the user chose fails loudly instead."""
    n, d = paper_design()
    keep = n < 5e8
    runs = Runs.from_arrays(n[keep], d[keep], TRUTH.predict(n[keep], d[keep]))
    fit, check = extrapolation(runs, "farseer")
    assert fit is None and "at least 3 distinct N" in check["error"]
    with pytest.raises(LawsError, match="at least 3 distinct N"):
        extrapolation(runs, "farseer", Cutoff.parse("n<4e8"))
