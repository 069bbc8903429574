"""Figures: the numbers each one draws are checked against independent computations (the law
itself, `laws optimal`, `crossovers`, the holdout cut), not only that files appear."""

import json
import shlex

import numpy as np
import pytest

from laws.analysis.optimal import crossovers
from laws.analysis.validate import Cutoff
from laws.cli.app import main
from laws.errors import LawsError
from laws.fit.forms import Chinchilla
from laws.fit.paper import EQ1_CHINCHILLA, EQ2_FARSEER, TABLE_1, TABLE_1_COMPUTE
from laws.fit.result import error_summary
from laws.present import figures
from laws.runs.table import Runs

# A code/NL mixture typed in for the tests: better than Eq. 1 with little data, worse with much.
MIXTURE = Chinchilla(E=0.235, A=534.374, alpha=0.4853, B=50.0, beta=0.2983)


def irregular_runs(law=EQ1_CHINCHILLA, noise=0.003, seed=0) -> Runs:
    """Six sizes, D by sqrt(2), only runs with 5 <= D/N <= 400 (not a full grid)."""
    rng = np.random.default_rng(seed)
    n, d = [], []
    for size in 2e8 * 2.0 ** np.arange(6):
        for tokens in 2e9 * np.sqrt(2.0) ** np.arange(13):
            if 5 <= tokens / size <= 400:
                n.append(size)
                d.append(tokens)
    loss = law.predict(np.array(n), np.array(d)) * np.exp(rng.normal(0, noise, len(n)))
    return Runs.from_arrays(n, d, loss)


def run_main(capsys, command: str):
    code = main(shlex.split(command))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_optimal_figure_plots_what_laws_optimal_gives(capsys, paper_fits):
    eq1, eq2 = paper_fits
    laws = figures.read_fits([eq1, eq2])
    computes = np.geomspace(1e19, 1e23, 9)
    computes = np.sort(np.append(computes, TABLE_1_COMPUTE))
    references = [figures.Reference(n, d, measured) for n, d, _, _, measured in TABLE_1]
    plot = figures.optimal(laws, computes, budgets=[TABLE_1_COMPUTE], references=references)
    at = int(np.flatnonzero(computes == TABLE_1_COMPUTE)[0])
    for path, expected in ((eq1, 199), (eq2, 155)):
        code, out, _ = run_main(capsys, f"optimal --fit {path} --compute 5.36e21 --json")
        (row,) = json.loads(out)
        assert code == 0 and row["d_over_n"] == pytest.approx(expected, abs=1.5)
        curve = plot.data["laws"][path.stem]
        assert curve["d_over_n"][at] == pytest.approx(row["d_over_n"], rel=1e-9)
        assert curve["loss"][at] == pytest.approx(row["loss"], rel=1e-9)
        (marked,) = plot.data["budgets"][path.stem]
        assert marked["d_over_n"] == pytest.approx(row["d_over_n"], rel=1e-9)
    ratio_ax, loss_ax = plot.figure.axes
    drawn = {line.get_label(): line for line in ratio_ax.lines}
    assert drawn["eq2"].get_ydata()[at] == pytest.approx(plot.data["laws"]["eq2"]["d_over_n"][at])
    assert list(drawn["Chinchilla 20"].get_ydata()) == [20, 20]
    assert plot.data["laws"]["eq2"]["notes"] > 0  # Eq. 2's runaway, kept as notes
    assert plot.data["laws"]["eq1"]["notes"] == 0
    placed = [(r["compute"], r["loss"]) for r in plot.data["references"]]
    assert placed == [(pytest.approx(6 * n * d), m) for n, d, _, _, m in TABLE_1]
    assert {line.get_label() for line in loss_ax.lines} >= {"6.37B / 127B", "2.27B / 341B"}


def test_optimal_leaves_out_budgets_without_an_interior_optimum():
    # fitted on N up to 5M: the trust region stops at 500M, below Eq. 2's optimum at 5.36e21
    domain = {"n": [1e6, 5e6], "d": [1e8, 1e9]}
    law = figures.LabelledLaw("narrow", EQ2_FARSEER, {"domain": domain})
    plot = figures.optimal([law], [1e18, TABLE_1_COMPUTE], budgets=[TABLE_1_COMPUTE])
    curve = plot.data["laws"]["narrow"]
    assert curve["d_over_n"][0] is not None and curve["d_over_n"][1] is None
    assert curve["left_out"] == [TABLE_1_COMPUTE] and curve["notes"] == 3
    assert plot.data["budgets"]["narrow"] == []
    line = next(line for line in plot.figure.axes[0].lines if line.get_label() == "narrow")
    assert np.isnan(line.get_ydata()[1])


def test_optimal_bootstrap_band_from_a_fit_file():
    quantities = {
        "d_over_n@C=1e+21": {"estimate": 120.0, "median": 121.0, "low": 100.0, "high": 150.0},
        "d_over_n@C=5.36e+21": {"estimate": 155.0, "median": 150.0, "low": 110.0, "high": 220.0},
        "alpha": {"estimate": 0.48, "median": 0.48, "low": 0.45, "high": 0.52},
    }
    boot = {"level": 0.9, "succeeded": 50, "quantities": quantities}
    law = figures.LabelledLaw("code", EQ1_CHINCHILLA, {"bootstrap": boot})
    plot = figures.optimal([law], np.geomspace(1e20, 1e22, 5))
    band = plot.data["bootstrap"]["code"]
    assert band["compute"] == [1e21, 5.36e21]
    assert band["low"] == [100.0, 110.0] and band["high"] == [150.0, 220.0]
    assert band["level"] == 0.9


def test_scaling_curves_are_the_law_through_the_runs():
    runs = irregular_runs()
    plot = figures.scaling(runs, EQ1_CHINCHILLA)
    assert len(plot.data["by_d"]) == len(np.unique(runs.d))
    assert len(plot.data["by_n"]) == len(np.unique(runs.n))
    for line in plot.data["by_d"]:
        n = np.array(line["curve"]["n"])
        np.testing.assert_allclose(line["curve"]["loss"], EQ1_CHINCHILLA.predict(n, line["d"]))
        at_d = runs.d == line["d"]
        assert sorted(line["points"]["n"]) == sorted(runs.n[at_d].tolist())
        assert sorted(line["points"]["loss"]) == sorted(runs.loss[at_d].tolist())
    for line in plot.data["by_n"]:
        d = np.array(line["curve"]["d"])
        np.testing.assert_allclose(line["curve"]["loss"], EQ1_CHINCHILLA.predict(line["n"], d))
    by_n_ax = plot.figure.axes[0]
    first = plot.data["by_d"][0]
    drawn = by_n_ax.lines[0]
    np.testing.assert_allclose(drawn.get_ydata(), first["curve"]["loss"])
    assert by_n_ax.get_xscale() == by_n_ax.get_yscale() == "log"
    assert plot.figure.get_figwidth() == figures.PAGE_WIDTH


def test_scaling_groups_tokens_rounded_to_batches():
    runs = Runs.from_arrays([1e8, 2e8, 4e8, 1e8], [1e9, 1.004e9, 0.998e9, 4e9], [3, 2.9, 2.8, 2.7])
    plot = figures.scaling(runs, EQ1_CHINCHILLA)
    assert [len(line["points"]["n"]) for line in plot.data["by_d"]] == [3, 1]


def test_design_colours_are_d_over_n():
    runs = irregular_runs()
    # the same (N, D) twice (a per-language row) is one point
    doubled = Runs.from_arrays(
        np.append(runs.n, runs.n[:3]), np.append(runs.d, runs.d[:3]), np.append(runs.loss, [1] * 3)
    )
    plot = figures.design(doubled)
    scatter = plot.figure.axes[0].collections[0]
    offsets = np.asarray(scatter.get_offsets())
    assert len(offsets) == len(runs)
    np.testing.assert_allclose(scatter.get_array(), offsets[:, 1] / offsets[:, 0])
    np.testing.assert_allclose(plot.data["d_over_n"], np.array(plot.data["d"]) / plot.data["n"])


def test_mixture_crossovers_are_marked_where_the_laws_cross():
    laws = {"code": EQ1_CHINCHILLA, "code_nl_73": MIXTURE}
    sizes, ratio_range = [2.64e8, 1e9], (1.0, 1e4)
    plot = figures.mixtures(laws, sizes, [20, 100], ratio_range=ratio_range)
    for panel, n, ax in zip(plot.data["by_n"], sizes, plot.figure.axes, strict=False):
        expected = crossovers(EQ1_CHINCHILLA, MIXTURE, n, ratio_range)
        assert len(expected) == 1
        assert [c["d_over_n"] for c in panel["crossovers"]] == pytest.approx(expected)
        (marker,) = [line for line in ax.lines if line.get_gid() == "crossover"]
        np.testing.assert_allclose(marker.get_xdata(), expected)
        code = EQ1_CHINCHILLA.predict(n, n * np.array(panel["d_over_n"]))
        np.testing.assert_allclose(panel["loss"]["code"], code)
    fixed = plot.data["by_ratio"][1]
    n = np.array(fixed["n"])
    np.testing.assert_allclose(fixed["loss"]["code_nl_73"], MIXTURE.predict(n, 100 * n))


def test_quality_marks_the_held_out_runs_of_the_cut():
    runs = irregular_runs()
    cut = Cutoff.parse("n<3e9")
    held = figures.held_out_mask(runs, cut)
    plot = figures.quality(runs, EQ1_CHINCHILLA, held)
    assert plot.data["held_out"] == (runs.n >= 3e9).tolist()
    rel = EQ1_CHINCHILLA.predict(runs.n, runs.d) / runs.loss - 1
    np.testing.assert_allclose(plot.data["rel_error"], rel)
    expected = error_summary(EQ1_CHINCHILLA, runs.subset(runs.n >= 3e9))
    assert plot.data["errors"]["held_out"] == pytest.approx(expected)
    assert len(plot.figure.axes) == 3  # no bootstrap: no interval panel


def test_quality_reads_the_fit_files_holdout_and_bootstrap():
    runs = irregular_runs()
    top = runs.n == runs.n.max()
    rows = [{"n": float(n), "d": float(d)} for n, d in zip(runs.n[top], runs.d[top], strict=True)]
    quantities = {
        "alpha": {"estimate": 0.5, "low": 0.45, "high": 0.6},
        "Q": {"estimate": -14.0, "low": -21.0, "high": 7.0},  # reaches the other sign
    }
    fit = {"holdout": {"runs": rows}, "bootstrap": {"level": 0.95, "quantities": quantities}}
    held = figures.held_out_mask(runs, None, fit)
    assert held.tolist() == top.tolist()
    plot = figures.quality(runs, EQ1_CHINCHILLA, held, fit["bootstrap"])
    assert plot.data["bootstrap"]["names"] == ["alpha", "Q"]
    assert plot.data["bootstrap"]["low_ratio"] == pytest.approx([0.9, -0.5])
    assert plot.data["bootstrap"]["high_ratio"] == pytest.approx([1.2, 1.5])
    assert len([ax for ax in plot.figure.axes if ax.get_visible()]) == 4


def test_surface_is_the_law_on_the_grid():
    runs = irregular_runs()
    laws = {"eq1": EQ1_CHINCHILLA, "eq2": EQ2_FARSEER}
    plot = figures.surface(laws, (2e8, 6.4e9), (2e9, 1.28e11), {"eq1": runs}, points=12)
    grid_n, grid_d = np.meshgrid(plot.data["log10_n"], plot.data["log10_d"], indexing="ij")
    for label, law in laws.items():
        np.testing.assert_allclose(plot.data["loss"][label], law.predict(10**grid_n, 10**grid_d))
    assert plot.data["runs"]["eq1"]["loss"] == runs.loss.tolist()


def test_palette_is_shared_and_stable():
    palette = figures.Palette([1e8, 1e9], [1e9, 1e11], labels=["code", "code_nl_73"])
    assert palette.n(1e8) != palette.n(1e9)
    assert palette.label("code") == figures.Palette(labels=["code"]).label("code")
    assert palette.label("code_nl_73") != palette.label("code")
    assert palette.d(1e10) == figures.Palette([5e7], [1e9, 1e11]).d(1e10)


def test_plot_from_fit_files_alone(capsys, tmp_path, paper_fits):
    eq1, eq2 = paper_fits
    out = tmp_path / "figs"
    for kind in ("optimal", "surface", "mixtures"):
        command = f"plot {kind} --fit {eq1} {eq2} --label code nl --budgets 5.36e21 --out {out}"
        code, printed, _ = run_main(capsys, command + " --json")
        assert code == 0
        written = json.loads(printed)["written"]
        assert written == [str(out / f"{kind}.png"), str(out / f"{kind}.pdf")]
        assert (out / f"{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{kind}.pdf").read_bytes()[:5] == b"%PDF-"
    code, printed, _ = run_main(
        capsys, f"plot optimal --fit {eq2} --budgets 5.36e21 --out {out} --json"
    )
    (marked,) = json.loads(printed)["data"]["budgets"]["eq2"]
    assert marked["d_over_n"] == pytest.approx(154.8, abs=0.5)


def test_plot_from_a_table(capsys, tmp_path, paper_fits):
    eq1, _ = paper_fits
    runs = irregular_runs()
    table = tmp_path / "runs.csv"
    lines = [
        "N,D,loss",
        *(f"{n:.6g},{d:.6g},{y:.6f}" for n, d, y in zip(runs.n, runs.d, runs.loss, strict=True)),
    ]
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "figs"
    for kind in ("design", "scaling", "quality"):
        code, printed, err = run_main(
            capsys, f"plot {kind} {table} --fit {eq1} --holdout n<3e9 --out {out} --json"
        )
        assert code == 0, err
        assert (out / f"{kind}.png").stat().st_size > 10_000
    held = json.loads(printed)["data"]["held_out"]
    assert held == {"count": len(runs), "true": int((runs.n >= 3e9).sum())}


@pytest.mark.parametrize(
    "command, message",
    [
        ("plot scaling --fit {eq1} --out {out}", "plot scaling needs RESULTS"),
        ("plot quality {table} --fit {eq1} {eq2} --out {out}", "give exactly one --fit"),
        ("plot optimal --out {out}", "needs at least one --fit"),
        ("plot surface --fit {eq1} {eq2} --label one --out {out}", "1 labels for 2 fit files"),
        ("plot surface --fit {eq1} {eq1} --out {out}", "two fits share a label"),
        ("plot optimal --fit {eq1} --reference 1B 20B 0 --out {out}", "must be positive"),
        ("plot optimal --fit {eq1} --budgets 0 --out {out}", "budgets must be positive"),
    ],
)
def test_plot_input_errors(capsys, tmp_path, paper_fits, command, message):
    eq1, eq2 = paper_fits
    table = tmp_path / "runs.csv"
    table.write_text("N,D,loss\n1e8,1e9,3\n2e8,1e9,2.9\n")
    line = command.format(eq1=eq1, eq2=eq2, out=tmp_path / "o", table=table)
    code, out, err = run_main(capsys, line)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_reading_fits_rejects_a_language_mismatch(tmp_path):
    path = tmp_path / "eq1.json"
    path.write_text(json.dumps(EQ1_CHINCHILLA.to_json()))
    per_language = tmp_path / "langs.json"
    languages = {"python": EQ1_CHINCHILLA.to_json()}
    per_language.write_text(json.dumps({"law": "per_language", "languages": languages}))
    (law,) = figures.read_fits([per_language], language="python")
    assert law.law == EQ1_CHINCHILLA
    with pytest.raises(LawsError, match="pick one with --language"):
        figures.read_fits([per_language])


def test_summary_shortens_long_lists():
    data = {"x": list(range(20)), "flags": [True] * 3 + [False] * 9, "few": [1, 2]}
    assert figures.summarise(data) == {
        "x": {"count": 20, "min": 0.0, "max": 19.0},
        "flags": {"count": 12, "true": 3},
        "few": [1, 2],
    }
