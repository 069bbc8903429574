"""`laws power`: synthetic studies drawn from a known law on a design, fitted, and summarised."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import laws.analysis.power
from laws.analysis.power import Design, Study, power, read_design
from laws.cli.app import main
from laws.cli.commands.power import report_text
from laws.errors import LawsError
from laws.fit.chinchilla import hoffmann_grid
from laws.fit.paper import EQ1_CHINCHILLA, EQ2_FARSEER, paper_design

# Two starts near Eq. 1 (as tests/test_laws_validate.py): a fit in milliseconds, not seconds.
FAST = {
    "chinchilla": {"starts": hoffmann_grid(alpha=[0.5], beta=[0.5], e=[-1.0], a=[5, 10], b=[5])}
}
BUDGET = 5.36e21
PAPER_SWEEP = Path(__file__).resolve().parents[1] / "configs" / "sweeps" / "paper.yaml"


def grid_points(sizes: int, budgets: int) -> tuple[np.ndarray, np.ndarray]:
    n = np.repeat(np.geomspace(1e8, 3e9, sizes), budgets)
    return n, np.tile(np.geomspace(2e9, 2e11, budgets), sizes)


def grid_design(sizes: int = 6, budgets: int = 7) -> Design:
    return Design(*grid_points(sizes, budgets), "test grid")


def eq1_optimum(compute: float) -> tuple[float, float]:
    """Hoffmann's closed form by hand: (N_opt, D/N) of Eq. 1 at C = 6ND."""
    law = EQ1_CHINCHILLA
    total = law.alpha + law.beta
    g = (law.alpha * law.A / (law.beta * law.B)) ** (1 / total)
    n = g * (compute / 6) ** (law.beta / total)
    return n, compute / 6 / n**2


def study(noise: float, design: Design | None = None, **kwargs) -> Study:
    fields = {"laws": ("chinchilla",), "options": FAST} | kwargs
    return Study(EQ1_CHINCHILLA, design or grid_design(), noise, BUDGET, **fields)


def test_zero_noise_recovers_the_truth_in_every_replica():
    result = power(study(0.0), replicas=3, workers=1)
    summary = result["laws"]["chinchilla"]
    assert (summary["fits"], summary["failed"], summary["unreliable"]) == (3, 0, 0)
    n_opt, ratio = eq1_optimum(BUDGET)
    expected = {"d_over_n": ratio, "n_opt": n_opt, "alpha": 0.4853, "beta": 0.2983}
    for name, true in expected.items():
        q = summary["quantities"][name]
        assert q["true"] == pytest.approx(true, rel=1e-9)
        for key in ("noise_free", "median", "low", "high"):
            assert q[key] == pytest.approx(true, rel=1e-6), (name, key)


def test_noisy_intervals_hold_the_truth_at_their_nominal_rate():
    summary = power(study(0.008), replicas=100, seed=3, workers=1)["laws"]["chinchilla"]
    for name, q in summary["quantities"].items():
        assert q["count"] == 100 - summary["failed"]
        assert q["low"] < q["true"] < q["high"], name
        # nominal 90%; sampling error of 100 replicas is about 3 points
        assert 0.8 <= q["coverage"] <= 0.97, name
    ratio = summary["quantities"]["d_over_n"]
    assert ratio["high"] / ratio["low"] > 1.3  # 0.8% noise on 42 runs does not pin D/N


def test_a_misspecified_fit_shows_its_bias_in_the_coverage():
    """Chinchilla fitted to the paper's Farseer law: the noise-free fit alone is off, and the
    spread of noisy fits, centred on the wrong value, rarely covers the truth."""
    paper = Design(*paper_design(), "the paper's grid")
    near = {"chinchilla": {"starts": [[5.3, 3.75, -1.59, 0.43, 0.27]]}}  # its noise-free optimum
    eq2 = Study(EQ2_FARSEER, paper, 0.002, BUDGET, ("chinchilla",), options=near)
    q = power(eq2, replicas=20, workers=1)["laws"]["chinchilla"]["quantities"]["d_over_n"]
    assert abs(q["noise_free"] / q["true"] - 1) > 0.2
    assert q["coverage"] < 0.5


def test_failed_replicas_are_counted_not_dropped(monkeypatch):
    """A fit that raises is counted and named; which replicas fail follows from the seed's
    draws (row r is replica r), here those whose first run drew positive noise."""
    real = laws.analysis.power.fit_law
    first_true = float(EQ1_CHINCHILLA.predict(1e8, 2e9))

    def flaky(runs, law, **options):
        if runs.loss[0] > first_true * (1 + 1e-12):
            raise LawsError("simulated failure")
        return real(runs, law, **options)

    monkeypatch.setattr(laws.analysis.power, "fit_law", flaky)
    replicas, seed = 12, 5
    design = grid_design()
    draws = np.random.default_rng(seed).standard_normal((replicas, len(design.n)))
    failing = np.flatnonzero(draws[:, 0] > 0)
    assert 0 < len(failing) < replicas
    summary = power(study(0.008, design), replicas, seed=seed, workers=1)["laws"]["chinchilla"]
    assert summary["failed"] == len(failing)
    assert summary["failures"][0] == f"replica {failing[0]}: LawsError: simulated failure"
    assert summary["supported"]  # the noise-free study has no noise, so it fits
    for q in summary["quantities"].values():
        assert q["count"] == replicas - len(failing)


def test_same_results_for_one_and_two_workers():
    both = study(0.008, laws=("chinchilla", "farseer"), target=(6.37e9, 127e9))
    one, two = (power(both, replicas=4, seed=7, workers=w) for w in (1, 2))
    assert two["workers"] == 2
    for result in (one, two):
        del result["workers"], result["wall_seconds"]
    assert one == two


def test_repeated_runs_are_averaged_as_laws_fit_averages_them():
    base = grid_design(3, 6)
    twice = Design(np.tile(base.n, 2), np.tile(base.d, 2), "seeds")
    noise = np.random.default_rng(0).standard_normal(len(twice.n))
    runs = study(0.01, twice).runs(noise)
    true = EQ1_CHINCHILLA.predict(base.n, base.d)
    half = len(base.n)
    expected = true * (np.exp(0.01 * noise[:half]) + np.exp(0.01 * noise[half:])) / 2
    assert len(runs) == half
    order = np.lexsort((runs.d, runs.n)), np.lexsort((base.d, base.n))
    np.testing.assert_allclose(runs.loss[order[0]], expected[order[1]], rtol=1e-12)
    assert twice.summary()["runs"] == 2 * twice.summary()["points"]


def test_a_law_the_design_cannot_support_is_reported_with_the_reason():
    two_sizes = grid_design(2, 8)
    result = power(study(0.008, two_sizes, laws=("chinchilla", "farseer")), 2, workers=1)
    farseer = result["laws"]["farseer"]
    assert not farseer["supported"] and "model size" in farseer["reason"]
    assert farseer["failed"] == 2
    assert result["laws"]["chinchilla"]["supported"]
    assert "not supported by this design" in report_text(result)


def test_paper_sweep_design():
    design = read_design(PAPER_SWEEP)  # its three mixtures share the 117 (N, D)
    assert design.source.endswith("(mixture 1, as each of its 3)")
    summary = design.summary()
    assert (summary["runs"], summary["sizes"], summary["budgets"]) == (117, 9, 13)
    runs = yaml.safe_load(PAPER_SWEEP.read_text())["runs"]
    flops = sum(r["flops"] for r in runs if r["code_fraction"] == 1.0)
    assert summary["compute"] == pytest.approx(flops, rel=1e-12)


def test_sweep_mixtures_with_different_runs_need_a_choice(tmp_path):
    sweep = tmp_path / "mixed.yaml"
    runs = [{"n_params": 1e8, "tokens": d, "code_fraction": 1.0} for d in (2e9, 4e9)]
    runs += [{"n_params": 2e8, "tokens": 2e9, "code_fraction": 0.7}]
    sweep.write_text(yaml.safe_dump({"runs": runs}))
    with pytest.raises(LawsError, match="2 mixtures .* different .* --mixture"):
        read_design(sweep)
    assert read_design(sweep, mixture=0.7).summary()["runs"] == 1
    with pytest.raises(LawsError, match="no runs of mixture 0.3"):
        read_design(sweep, mixture=0.3)


def test_cli_round_trip(tmp_path, capsys):
    design = tmp_path / "design.csv"
    rows = ["N,D"] + [f"{n:.6g},{d:.6g}" for n, d in zip(*grid_points(4, 6), strict=True)]
    design.write_text("\n".join(rows) + "\n")
    law = tmp_path / "eq1.json"
    law.write_text(json.dumps(EQ1_CHINCHILLA.to_json()))
    argv = ["power", "--design", str(design), "--law", str(law), "--replicas", "2"]
    argv += ["--fit-laws", "chinchilla", "--grid", "coarse", "--workers", "1", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    n_opt, ratio = eq1_optimum(BUDGET)
    assert data["truth"]["d_over_n"] == pytest.approx(ratio, rel=1e-9)
    assert data["design"]["runs"] == 24 and data["replicas"] == 2
    assert data["holdout"] == {"cutoff": "n<3e+09", "train_points": 18, "test_points": 6}
    summary = data["laws"]["chinchilla"]
    assert set(summary["quantities"]) == {"d_over_n", "n_opt", "alpha", "beta", "holdout_error"}
    assert summary["quantities"]["holdout_error"]["median"] < 0.02
    text = report_text(data)
    assert "D/N at C" in text and "held-out error" in text and "2 fits, 0 failed" in text


def test_cli_errors(tmp_path, capsys):
    assert main(["power", "--design", str(tmp_path / "none.csv"), "--law", "paper-eq1"]) == 2
    assert "no such design file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("size,tokens\n1e8,2e9\n")
    assert main(["power", "--design", str(bad), "--law", "paper-eq2"]) == 2
    assert "columns N and D" in capsys.readouterr().err
