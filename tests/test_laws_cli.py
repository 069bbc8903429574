"""`python -m laws`: round trips through JSON files, the paper's laws typed in, errors."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from laws.cli.app import command_modules, main
from laws.fit.paper import EQ1_CHINCHILLA, EQ2_FARSEER

ROOT = Path(__file__).resolve().parents[1]


def laws_cli(command: str) -> subprocess.CompletedProcess:
    """`python -m laws COMMAND` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "laws", *shlex.split(command)]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)


def write_csv(path: Path, law=EQ1_CHINCHILLA, noise=0.002, sizes=5, tokens=8):
    rng = np.random.default_rng(0)
    lines = ["N,D,loss"]
    for n in 2e8 * 2.0 ** np.arange(sizes):
        for d in 2e9 * 2.0 ** np.arange(tokens):
            loss = float(law.predict(n, d)) * np.exp(rng.normal(0, noise))
            lines.append(f"{n:.6g},{d:.6g},{loss:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_main(capsys, command: str):
    """main() in-process on a command line; returns (exit status, stdout, stderr)."""
    code = main(shlex.split(command))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_round_trip_through_the_command_line(tmp_path):
    table = write_csv(tmp_path / "runs.csv")
    fit_file = tmp_path / "out" / "fit.json"
    done = laws_cli(f"fit {table} --law chinchilla --grid coarse --out {fit_file} --json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    saved = json.loads(fit_file.read_text())
    assert printed == saved
    assert saved["law"] == "chinchilla" and set(saved["params"]) == {"E", "A", "alpha", "B", "beta"}
    assert saved["fit"]["starts"] == 243 and saved["fit"]["mean_rel_error"] < 0.005
    assert (saved["fit"]["status"], saved["fit"]["problems"]) == ("ok", [])
    text = laws_cli(f"fit {table} --law chinchilla --grid coarse")
    # Status first, then the held-out error: by default a refit without the largest size
    # (3.2e9: 8 runs), the law itself fitted to all 40; in-sample error comes after.
    assert text.returncode == 0, text.stderr
    first, second, third = text.stdout.split("\n\n")[:3]
    assert first == "status: ok"
    assert second.startswith("held-out error: mean ")
    assert "on the 8 runs with N >= 3.2e+09" in second
    assert "by default the largest model size is held out" in second
    assert "fitted on the 32 runs below it" in second and "fitted to all 40 runs" in second
    assert third.startswith("in-sample error (second")
    assert saved["extrapolation"]["n_train"] == 32 and saved["extrapolation"]["default"]
    held = laws_cli(f"fit {table} --law chinchilla --grid coarse --holdout n<1e9")
    first, second = held.stdout.split("\n\n")[:2]
    assert first == "status: ok" and second.startswith("held-out error: mean ")  # the headline
    assert "split n<1e+09 (--holdout)" in second and "on the 16 runs with N >= 1e+09" in second

    predicted = laws_cli(f"predict --fit {fit_file} --n 2.27B --d 341B --json")
    assert predicted.returncode == 0, predicted.stderr
    loss = json.loads(predicted.stdout)["loss"]
    assert loss == pytest.approx(float(EQ1_CHINCHILLA.predict(2.27e9, 341e9)), rel=0.01)

    optimal = laws_cli(f"optimal --fit {fit_file} --compute 1e21 5.36e21 --json")
    assert optimal.returncode == 0, optimal.stderr
    rows = json.loads(optimal.stdout)
    assert [r["compute"] for r in rows] == [1e21, 5.36e21]
    for row in rows:
        assert set(row) == {"compute", "n_opt", "d_opt", "d_over_n", "loss"}
        assert 6 * row["n_opt"] * row["d_opt"] == pytest.approx(row["compute"])


def with_repeats(path: Path) -> Path:
    """The table plus two seeds of one more run, N=2e8, D=3e9: BPC 0.30 and 0.31."""
    write_csv(path)
    path.write_text(path.read_text() + "2e8,3e9,0.30\n2e8,3e9,0.31\n")
    return path


# By hand: the mean is 0.305; each seed is 0.005 / 0.305 = 1.639% from it, and the pooled
# standard deviation (one degree of freedom) is sqrt(2 x 0.016393^2 / 1) = 2.318%.
REPEATS = {
    "rows_averaged": 1,
    "runs_merged": 2,
    "max_rel_deviation": pytest.approx(0.016393, rel=1e-4),
    "rel_std": pytest.approx(0.023184, rel=1e-4),
}


def test_repeated_seeds_are_averaged_and_said_so(capsys, tmp_path, paper_fits):
    table = with_repeats(tmp_path / "runs.csv")
    code, out, err = run_main(capsys, f"fit {table} --law chinchilla --grid coarse --workers 1")
    assert code == 0, err
    note = "averaged 2 repeated runs into 1 row (same N, D, mixture, language; spread around"
    assert note in out and "max 1.639%, std 2.318%" in out
    assert err.startswith(f"note: {note}") and err.count("\n") == 1
    code, out, err = run_main(capsys, f"fit {table} --law chinchilla --grid coarse --json")
    data = json.loads(out)["fit"]
    assert data["n_runs"] == 5 * 8 + 1 and data["repeats"] == REPEATS
    code, out, err = run_main(capsys, f"compare {table} --fit {paper_fits[0]} --json")
    assert code == 0 and json.loads(out)["n_runs"] == 41 and err.startswith(f"note: {note}")


def test_no_average_refuses_repeats_with_one_line(tmp_path, paper_fits):
    table = with_repeats(tmp_path / "runs.csv")
    for command in ("fit --law chinchilla --grid coarse", f"compare --fit {paper_fits[0]}"):
        name, options = command.split(" ", 1)
        done = laws_cli(f"{name} {table} {options} --no-average")
        assert done.returncode == 2, command
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: duplicate runs")
        assert "N=2e+08, D=3e+09 appears 2 times" in done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_paper_laws_typed_in(capsys, paper_fits):
    eq1, eq2 = paper_fits
    code, out, _ = run_main(capsys, f"predict --fit {eq1} --n 2.27B --d 341B --json")
    assert code == 0 and json.loads(out)["loss"] == pytest.approx(0.262330, abs=4e-5)
    code, out, _ = run_main(capsys, f"predict --fit {eq2} --n 2.27B --d 341B")
    assert code == 0 and "0.252134" in out
    code, out, _ = run_main(capsys, f"optimal --fit {eq1} --compute 5.36e21 --json")
    (row,) = json.loads(out)
    assert row["d_over_n"] == pytest.approx(199, abs=1)
    assert row["n_opt"] == pytest.approx(2.1e9, rel=0.02)
    code, out, err = run_main(capsys, f"optimal --fit {eq2} --compute 5.36e21 --json")
    (row,) = json.loads(out)
    assert row["d_over_n"] == pytest.approx(155, abs=3)
    assert row["n_opt"] == pytest.approx(2.4e9, rel=0.03)
    assert err.startswith("warning: ") and "runaway" in err


def test_readable_tables(capsys, tmp_path, paper_fits):
    eq1, eq2 = paper_fits
    code, out, _ = run_main(capsys, f"optimal --fit {eq1} --compute 5.36e21")
    assert code == 0 and "N_opt" in out and "2.12B" in out and "irreducible" in out
    table = write_csv(tmp_path / "runs.csv", law=EQ2_FARSEER, noise=0.0, sizes=6, tokens=9)
    code, out, _ = run_main(capsys, f"compare {table} --fit {eq1} {eq2} --holdout n<5e9")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("scored on 9 runs")
    eq2_row = next(line for line in lines if line.startswith("eq2"))
    assert "0.000%" in eq2_row  # the law the data came from


def test_compare_fits_laws_on_the_training_side(capsys, tmp_path):
    table = write_csv(tmp_path / "runs.csv", noise=0.0, sizes=6, tokens=9)
    command = f"compare {table} --law chinchilla --grid coarse --holdout n:5e9 --json"
    code, out, _ = run_main(capsys, command)
    assert code == 0
    data = json.loads(out)
    assert data["n_runs"] == 9 and data["laws"][0]["mean_rel_error"] < 1e-6


def test_fit_with_holdout_and_bootstrap(capsys, tmp_path):
    table = write_csv(tmp_path / "runs.csv", law=EQ2_FARSEER, noise=0.0, sizes=6, tokens=9)
    command = (
        f"fit {table} --law farseer --holdout n<5e9 --bootstrap 4 --workers 1 "
        "--point 2e9 1e10 --json"
    )
    code, out, _ = run_main(capsys, command)
    assert code == 0
    data = json.loads(out)
    assert data["holdout"]["n_runs"] == 9 and data["holdout"]["mean_rel_error"] < 1e-5
    quantities = data["bootstrap"]["quantities"]
    assert {"n_opt@C=5.36e+21", "loss@N=2e+09,D=1e+10", "q"} <= set(quantities)


def test_per_language_fit_file(capsys, tmp_path):
    rows = ["N,D,loss,language"]
    for lang, shift in (("python", 0.0), ("java", 0.03)):
        for n in 2e8 * 2.0 ** np.arange(4):
            for d in 2e9 * 2.0 ** np.arange(5):
                rows.append(f"{n},{d},{float(EQ1_CHINCHILLA.predict(n, d)) + shift},{lang}")
    table = tmp_path / "langs.csv"
    table.write_text("\n".join(rows) + "\n")
    out_file = tmp_path / "langs.json"
    command = f"fit {table} --law chinchilla --per-language --grid coarse --out {out_file}"
    code, _, err = run_main(capsys, command + " --workers 1")
    assert code == 0, err
    assert json.loads(out_file.read_text())["law"] == "per_language"
    code, out, _ = run_main(capsys, f"predict --fit {out_file} --n 1e9 --d 1e10 --language java")
    expected = float(EQ1_CHINCHILLA.predict(1e9, 1e10)) + 0.03
    assert f"{expected:.6f}" in out
    code, _, err = run_main(capsys, f"predict --fit {out_file} --n 1e9 --d 1e10")
    assert code == 2 and "--language" in err


def test_errors_are_one_line(capsys, tmp_path, paper_fits):
    missing = tmp_path / "none.json"
    code, out, err = run_main(capsys, f"predict --fit {missing} --n 1e9 --d 1e10")
    assert code == 2 and err == f"error: {missing}: no such file\n" and out == ""
    code, _, err = run_main(capsys, f"compare {paper_fits[0]}")
    assert code == 2 and "nothing to compare" in err
    with pytest.raises(SystemExit) as stop:
        main(["predict", "--fit", str(paper_fits[0]), "--n", "big", "--d", "1e10"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: ") and "cannot read 'big' as a number" in err


def test_commands_are_discovered_from_modules():
    names = {module.NAME for module in command_modules()}
    assert {"fit", "predict", "optimal", "compare"} <= names
    for module in command_modules():
        assert callable(module.add_arguments) and callable(module.run) and module.HELP


def test_sizes_are_written_the_way_the_paper_writes_them():
    from laws.units import human

    assert [human(v) for v in (2.27e9, 341e9, 120e6, 1500, 12)] == [
        "2.27B",
        "341B",
        "120M",
        "1.5K",
        "12",
    ]
    assert human(999_936) == "1M"  # a whole-batch budget just under 1M, not "1e+03K"


def test_fit_lists_what_it_left_out_and_counts_failed_draws(tmp_path):
    """A runs/ folder of Eq. 1 runs with a failed run, a diverged one (loss NaN) and a repeated
    seed: the fit says it left out 3 (1 failed, 1 unusable, 1 averaged) and names each; the
    bootstrap line and every interval carry their failed-draw counts."""
    rng = np.random.default_rng(1)
    runs = tmp_path / "runs"
    for i, n in enumerate(2e8 * 2.0 ** np.arange(4)):
        for j, d in enumerate(2e9 * 2.0 ** np.arange(5)):
            loss = float(EQ1_CHINCHILLA.predict(n, d)) * np.exp(rng.normal(0, 0.008))
            result = {"status": "completed", "n_params": n, "tokens": d, "val_bpc": loss}
            (runs / f"r{i}{j}").mkdir(parents=True)
            (runs / f"r{i}{j}" / "result.json").write_text(json.dumps(result))
    extra = {
        "seed2": {"status": "completed", "n_params": 2e8, "tokens": 2e9, "val_bpc": 0.5},
        "boom": {"status": "failed", "step": 17, "error": "CUDA out of memory"},
        "nan": {"status": "completed", "n_params": 4e8, "tokens": 1e9, "val_bpc": float("nan")},
    }
    for name, result in extra.items():
        (runs / name).mkdir()
        (runs / name / "result.json").write_text(json.dumps(result))
    done = laws_cli(f"fit {runs} --law chinchilla --grid coarse --bootstrap 6 --workers 1 --json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    left = data["fit"]["left_out"]
    assert (left["count"], left["by_kind"]) == (3, {"failed": 1, "unusable": 1, "averaged": 1})
    reasons = {Path(x["run"]).parent.name: x["reason"] for x in left["runs"]}
    assert reasons["boom"] == "status 'failed' at step 17: CUDA out of memory"
    assert reasons["nan"] == "loss=nan is not a positive finite number"
    assert reasons["seed2"].startswith("repeat of N=2e+08, D=2e+09: averaged with")
    assert data["fit"]["n_runs"] == 20
    boot = data["bootstrap"]
    assert boot["succeeded"] + boot["failed"] == 6 and boot["unit"] == "runs"
    assert all(q["draws"] + q["failed"] == 6 for q in boot["quantities"].values())
    text = laws_cli(f"fit {runs} --law chinchilla --grid coarse --bootstrap 6 --workers 1")
    assert "left out of the fit: 3 runs (1 failed, 1 unusable, 1 averaged)" in text.stdout
    assert "CUDA out of memory" in text.stdout
    assert f"{boot['succeeded']} refitted, {boot['failed']} failed" in text.stdout
    header = next(line for line in text.stdout.splitlines() if line.startswith("quantity"))
    assert header.split()[-2:] == ["draws", "failed"]
    assert "note: left out 2 runs (1 failed, 1 unusable)" in text.stderr
