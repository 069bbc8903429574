"""Per-language laws, synergy and allocation (issue 20 items 2-4), against independent numbers:
allocation problems with optima solved by hand, and synergy runs generated from a known transfer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from laws.analysis.allocation import (
    SUPPLY_RESERVE,
    LanguageLaw,
    allocate,
    losses,
    own_token_laws,
    water_filling,
)
from laws.analysis.synergy import matrix_array, synergy, synergy_design
from laws.cli.app import main
from laws.errors import LawsError
from laws.runs.language_runs import LanguageRun

N = 4e5


def _plain_laws(b: list[float], beta: float) -> list[LanguageLaw]:
    return [LanguageLaw(e=1.0, a=2.0, alpha=0.3, b=bi, beta=beta) for bi in b]


def test_optimum_without_transfer_is_the_lagrange_solution():
    """T = I and one beta: d/dp_i [w_i B_i (D p_i)^-beta] equal for all i gives
    p_i proportional to (w_i B_i)^(1 / (1 + beta))."""
    b, w, beta = [30.0, 10.0, 5.0], np.array([1.0, 2.0, 1.0]), 0.35
    result = allocate(_plain_laws(b, beta), np.eye(3), w, N, 1e7, np.full(3, 1e9))
    expected = (w * np.array(b)) ** (1 / (1 + beta))
    assert result["converged"]
    np.testing.assert_allclose(result["proportions"], expected / expected.sum(), atol=1e-4)


def test_supply_caps_give_water_filling():
    # scores 4:2:1 -> 4/7, 2/7, 1/7; the first capped at 0.4 leaves 0.6 shared 2:1
    assert water_filling(np.array([4.0, 2.0, 1.0]), np.array([0.4, 1.0, 1.0])).tolist() == (
        pytest.approx([0.4, 0.4, 0.2])
    )
    beta, tokens = 0.5, 1e7
    b = [4.0**1.5, 2.0**1.5, 1.0]  # (w B)^(1/(1+beta)) = 4, 2, 1
    supply = np.array([0.4, 1.0, 1.0]) * tokens / (1 - SUPPLY_RESERVE)  # 0.4 D usable
    result = allocate(_plain_laws(b, beta), np.eye(3), np.ones(3), N, tokens, supply)
    np.testing.assert_allclose(result["proportions"], [0.4, 0.4, 0.2], atol=1e-4)
    assert result["at_supply_cap"] == [True, False, False]


def test_transfer_moves_tokens_to_the_language_that_helps():
    """Only A counts (w_B = 0), and a token of B is worth half a token of A: A's effective
    share is p_A + 0.5 (1 - p_A), largest at p_A = 1; with A capped at 0.6 the rest goes to B."""
    laws = _plain_laws([10.0, 10.0], 0.3)
    transfer = np.array([[1.0, 0.5], [0.0, 1.0]])
    w, tokens = np.array([1.0, 0.0]), 1e7
    free = allocate(laws, transfer, w, N, tokens, np.array([1e9, 1e9]))
    np.testing.assert_allclose(free["proportions"], [1.0, 0.0], atol=1e-4)
    capped = allocate(laws, transfer, w, N, tokens, np.array([0.6, 10]) * tokens)
    np.testing.assert_allclose(capped["proportions"], [0.597, 0.403], atol=1e-4)  # 0.5% reserve
    expected = 1.0 + 2.0 * N**-0.3 + 10.0 * (tokens * (0.597 + 0.5 * 0.403)) ** -0.3
    assert losses(laws, transfer, N, tokens, capped["proportions"])[0] == pytest.approx(expected)


def test_share_floors_bound_the_optimum_and_impossible_floors_are_named():
    """The problem above with B kept at 30% or more: the objective falls with p_A, so the
    optimum sits on B's floor; floors that cannot all be met are refused with the language."""
    laws = _plain_laws([10.0, 10.0], 0.3)
    transfer = np.array([[1.0, 0.5], [0.0, 1.0]])
    w, tokens = np.array([1.0, 0.0]), 1e7
    result = allocate(laws, transfer, w, N, tokens, np.array([1e9, 1e9]), np.array([0.0, 0.3]))
    np.testing.assert_allclose(result["proportions"], [0.7, 0.3], atol=1e-4)
    assert result["at_floor"] == [False, True]
    with pytest.raises(LawsError, match="add up to 1.2"):
        allocate(laws, transfer, w, N, tokens, np.array([1e9, 1e9]), np.array([0.6, 0.6]))
    with pytest.raises(LawsError, match=r"B .floor 0.5 > supply share 0.199"):
        allocate(
            laws,
            transfer,
            w,
            N,
            tokens,
            np.array([1e9, 0.2 * tokens]),
            np.array([0, 0.5]),
            ["A", "B"],
        )


def test_a_law_fitted_in_total_tokens_is_rewritten_in_effective_tokens():
    """At the mix it was fitted on, the rewritten law predicts what the fitted law does."""
    fitted = {"A": {"E": 1.1, "A": 3.0, "alpha": 0.3, "B": 40.0, "beta": 0.28}}
    transfer, p0 = np.array([[1.0]]), np.array([1.0])
    (law,) = own_token_laws(fitted, transfer, p0, ["A"])
    assert law.loss(N, 5e6) == pytest.approx(1.1 + 3.0 * N**-0.3 + 40.0 * 5e6**-0.28)
    two = {"A": fitted["A"], "B": {**fitted["A"], "B": 20.0}}
    t = np.array([[1.0, 0.4], [0.2, 1.0]])
    mix = np.array([0.7, 0.3])
    laws = own_token_laws(two, t, mix, ["A", "B"])
    at_fit_mix = losses(laws, t, N, 5e6, mix)
    direct = [1.1 + 3.0 * N**-0.3 + b * 5e6**-0.28 for b in (40.0, 20.0)]
    np.testing.assert_allclose(at_fit_mix, direct)


TRUE_T = {("C", "Python"): 0.45, ("Python", "C"): 0.2, ("C", "Go"): -0.15, ("Go", "C"): 0.6}
LAW = {"C": (1.2, 30.0, 0.3), "Python": (1.0, 50.0, 0.32), "Go": (1.4, 25.0, 0.28)}


def _synthetic_runs(
    noise: float, seed: int, seeds: int = 3, by_share: float = 0.0
) -> list[LanguageRun]:
    """The design's runs with BPC from L_i = E_i + B_i (t_i + sum_j T_ij t_j)^-beta_i, each
    multiplied by (1 + noise * standard normal). With `by_share` the transfer depends on the
    mix: T_ij (1 + by_share (s - 1/2)), s the native share t_i / sum t."""
    rng = np.random.default_rng(seed)
    runs = []
    for spec in synergy_design(["C", "Go", "Python"], N, 2e6, 1e6, 0.25, seeds):
        weights = dict(item.split("=") for item in spec["languages"].split(","))
        tokens = {k: float(v) * spec["tokens"] for k, v in weights.items()}
        bpc = {}
        for i, (e, b, beta) in LAW.items():
            factor = 1 + by_share * (tokens.get(i, 0.0) / sum(tokens.values()) - 0.5)
            eff = tokens.get(i, 0.0) + factor * sum(
                TRUE_T.get((i, j), 0.0) * t for j, t in tokens.items() if j != i
            )
            if eff > 0:
                bpc[i] = e + b * eff**-beta * (1 + noise * rng.standard_normal())
        runs.append(LanguageRun(spec["name"], N, tokens, bpc, spec["seed"]))
    return runs


def test_synergy_recovers_a_known_transfer_without_noise():
    exponents = {k: v[2] for k, v in LAW.items()}
    result = synergy(_synthetic_runs(0.0, 0, seeds=1), exponents)
    for (i, j), t in TRUE_T.items():
        assert result["matrix"][i][j] == pytest.approx(t, abs=1e-6)
        assert result["replace_matrix"][i][j] == pytest.approx(t, abs=1e-6)
    assert result["matrix"]["Go"]["Python"] == pytest.approx(0.0, abs=1e-6)
    assert any("one base run" in note for note in result["notes"])
    # each pair is measured in 4 runs: its own add (native share 2/3) and replace (3/4), and
    # the other target's add (1/3) and replace (1/4); one constant T fits them all exactly
    for pair in result["pairs"]:
        truth = TRUE_T.get((pair["target"], pair["auxiliary"]), 0.0)
        assert pair["transfer"] == pytest.approx(truth, abs=1e-6)
        assert pair["cells"] == 4 and pair["shares"] == pytest.approx([0.25, 0.75])
    assert result["lowest_share"] == pytest.approx({"C": 0.25, "Go": 0.25, "Python": 0.25})


def test_synergy_intervals_cover_the_truth_at_the_papers_noise():
    """At 0.8% noise per run the intervals must hold the true transfer about as often as they
    claim (95%), however wide that makes them."""
    exponents = {k: v[2] for k, v in LAW.items()}
    inside = total = pairs_inside = misfits = 0
    for seed in range(12):
        result = synergy(_synthetic_runs(0.008, seed), exponents, draws=1500)
        for cell in result["cells"]:
            truth = TRUE_T.get((cell["target"], cell["auxiliary"]), 0.0)
            if np.isfinite(cell["transfer_low"]):
                total += 1
                inside += cell["transfer_low"] <= truth <= cell["transfer_high"]
        for pair in result["pairs"]:
            truth = TRUE_T.get((pair["target"], pair["auxiliary"]), 0.0)
            pairs_inside += pair["transfer_low"] <= truth <= pair["transfer_high"]
            assert 0 <= pair["undefined_draws"] < 0.05  # the self-add gain is many sds here
            misfits += pair["p_one_constant"] < 0.01
    assert total >= 100
    assert inside / total >= 0.85
    assert pairs_inside / 72 >= 0.85  # 12 studies x 6 pairs
    assert misfits <= 4  # a constant T: the 1% test should flag about 1 of 72 pairs


def test_a_transfer_that_depends_on_the_mix_is_reported():
    """T three times larger at native share 3/4 than at 1/4: at 0.3% noise per run the F test
    rejects one constant for the pairs that have a transfer (at 0.8% it catches about a third:
    docs/laws.md)."""
    exponents = {k: v[2] for k, v in LAW.items()}
    caught = 0
    for seed in range(6):
        result = synergy(_synthetic_runs(0.003, seed, by_share=2.0), exponents, draws=200)
        for pair in result["pairs"]:
            if (pair["target"], pair["auxiliary"]) in {("C", "Python"), ("Go", "C")}:
                caught += pair["p_one_constant"] < 0.01
        assert any("depends on the mix" in note for note in result["notes"]) == (
            any(p["p_one_constant"] < 0.01 for p in result["pairs"])
        )
    assert caught >= 9  # of 12


def test_synergy_cli_and_plot(tmp_path):
    runs = _synthetic_runs(0.001, 3)
    table = tmp_path / "runs.jsonl"
    table.write_text(
        "\n".join(
            json.dumps({"name": r.name, "n": r.n, "tokens": r.tokens, "bpc": r.bpc, "seed": r.seed})
            for r in runs
        )
    )
    out = tmp_path / "synergy.json"
    assert main(["synergy", str(table), "--out", str(out)]) == 0
    analysis = json.loads(out.read_text())
    t = matrix_array(analysis["matrix"], analysis["languages"])
    assert t.shape == (3, 3) and np.allclose(np.diag(t), 1.0)
    assert main(["plot", "synergy", "--synergy", str(out), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "synergy.png").stat().st_size > 0


def _per_language_fit(tmp_path) -> str:
    fit = {
        "law": "per_language",
        "languages": {
            name: {
                "law": "chinchilla",
                "params": {"E": e, "A": 2.0, "alpha": 0.3, "B": b, "beta": beta},
                "fit": {"status": "ok", "n_runs": 9},
            }
            for name, (e, b, beta) in LAW.items()
        },
    }
    path = tmp_path / "per_language.json"
    path.write_text(json.dumps(fit))
    return str(path)


def test_allocate_cli_reports_three_mixes_and_writes_the_check(tmp_path, capsys):
    fits = _per_language_fit(tmp_path)
    sweep = tmp_path / "check.yaml"
    args = ["allocate", "--fits", fits, "--tokens", "8M", "--n", "400K", "--json"]
    args += ["--supply", "C=20M,Go=1M,Python=100M", "--fit-mix", "C=1,Go=1,Python=1"]
    assert main([*args, "--sweep-out", str(sweep)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["solver"]["converged"]
    assert data["optimum"]["proportions"]["Go"] == pytest.approx(0.995 / 8)  # all but 0.5%
    assert data["uniform"]["within_supply"] is False  # 1/3 of 8M Go tokens: more than there is
    assert data["optimum"]["weighted"] < data["natural"]["weighted"]
    assert "optimum_seed0" in sweep.read_text() and "data.languages=C=" in sweep.read_text()
    assert main(["plot", "exponents", "--fit", fits, "--out", str(tmp_path)]) == 0


def test_per_language_fit_can_be_limited_to_the_trained_languages(tmp_path, capsys):
    """A validation language the runs did not train on (here 'CMake', pure noise) is left out
    by --languages; the fitted languages get their own exponents back."""
    rng = np.random.default_rng(0)
    rows = ["N,D,loss,language"]
    for n in (1e5, 2e5, 4e5, 8e5):
        for d in (1e6, 2e6, 4e6, 8e6):
            for name, (e, a, alpha, b, beta) in {
                "A": (1.0, 40.0, 0.35, 300.0, 0.3),
                "B": (1.3, 25.0, 0.25, 200.0, 0.35),
            }.items():
                rows.append(f"{n},{d},{e + a * n**-alpha + b * d**-beta},{name}")
            rows.append(f"{n},{d},{3 + rng.random()},CMake")
    table = tmp_path / "runs.csv"
    table.write_text("\n".join(rows) + "\n")
    args = ["fit", str(table), "--law", "chinchilla", "--per-language", "--json"]
    assert main([*args, "--languages", "A,B"]) == 0
    fits = json.loads(capsys.readouterr().out)["languages"]
    assert set(fits) == {"A", "B"}
    assert fits["A"]["params"]["alpha"] == pytest.approx(0.35, rel=0.02)
    assert fits["B"]["params"]["beta"] == pytest.approx(0.35, rel=0.02)
    assert main([*args, "--languages", "A,Rust"]) == 2
    assert "Rust" in capsys.readouterr().err


def test_allocate_keeps_the_optimum_where_the_transfer_was_measured(tmp_path, capsys):
    """C's tokens count fully for Go and Python (T = 1) and nothing helps C: moving any share
    from Go or Python to C lowers C's loss and leaves theirs, so the optimum is all C; with the
    measured floor of 1/4 it is C 1/2, Go 1/4, Python 1/4. A mix below a measured share (the
    unconstrained optimum, the natural mix) is labelled an extrapolation."""
    names = ["C", "Go", "Python"]
    matrix = {i: {j: float(i == j or j == "C") for j in names} for i in names}
    synergy_file = tmp_path / "synergy.json"
    synergy_file.write_text(
        json.dumps({"matrix": matrix, "lowest_share": dict.fromkeys(names, 0.25)})
    )
    args = ["allocate", "--fits", _per_language_fit(tmp_path), "--synergy", str(synergy_file)]
    args += ["--tokens", "8M", "--n", "400K", "--supply", "C=20M,Go=4M,Python=100M"]
    args += ["--fit-mix", "C=1,Go=1,Python=1", "--json"]
    assert main(args) == 0
    bounded = json.loads(capsys.readouterr().out)
    assert list(bounded["optimum"]["proportions"].values()) == pytest.approx(
        [0.5, 0.25, 0.25], abs=1e-4
    )
    assert bounded["optimum"]["below_measured_share"] == {}
    assert bounded["natural"]["below_measured_share"] == pytest.approx(
        {"C": 20 / 124, "Go": 4 / 124}
    )
    assert main([*args, "--min-share", "0"]) == 0
    free = json.loads(capsys.readouterr().out)
    assert free["optimum"]["proportions"]["C"] == pytest.approx(1.0, abs=1e-4)
    assert set(free["optimum"]["below_measured_share"]) == {"Go", "Python"}
    assert main([*args[:-1], "--min-share", "0"]) == 0
    assert "extrapolation: Go 0.000, Python 0.000" in capsys.readouterr().out
    # a given mix is predicted as the law has it: at the fit mix, the fitted laws themselves
    assert main([*args, "--mix", "C=1,Go=1,Python=1", "--mix", "C=2,Go=1,Python=1"]) == 0
    given = json.loads(capsys.readouterr().out)
    assert given["mix1"]["losses"] == pytest.approx(
        {k: e + 2.0 * 4e5**-0.3 + b * 8e6**-beta for k, (e, b, beta) in LAW.items()}
    )
    assert given["mix2"]["proportions"] == pytest.approx({"C": 0.5, "Go": 0.25, "Python": 0.25})
    assert main([*args, "--min-share", "Go=0.6"]) == 2
    assert "Go (floor 0.6 > supply share 0.497)" in capsys.readouterr().err
    # a language whose synergy runs gave no transfer (its self-add did not help) is named
    synergy_file.write_text(
        json.dumps({"matrix": matrix, "lowest_share": {"C": 0.25, "Python": 0.25}})
    )
    assert main(args[:-1]) == 0
    assert "no transfer into Go was measured" in capsys.readouterr().out
