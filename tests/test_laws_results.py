"""Reading runs: a runs/ directory of result.json files, CSV and JSON-lines tables."""

import json

import numpy as np
import pytest

from laws import LawsError, Runs, read_runs
from laws.runs.table import repeat_summary


def write_result(root, name, **fields):
    run = root / name
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps(fields))
    return run / "result.json"


def completed(n, d, bpc, **extra):
    return {"status": "completed", "n_params": n, "tokens": d, "val_bpc": bpc, **extra}


def test_runs_directory(tmp_path):
    write_result(tmp_path, "a", **completed(2e8, 2e9, 0.40, code_fraction=1.0, flops=2.4e18))
    write_result(tmp_path, "b", **completed(4e8, 2e9, 0.38, code_fraction=1.0))
    write_result(tmp_path / "nested", "c", **completed(4e8, 4e9, 0.36, code_fraction=0.7))
    write_result(tmp_path, "failed", status="failed", n_params=8e8)  # ignored, keys or not
    write_result(tmp_path, "running", status="running")
    runs = read_runs(tmp_path)
    assert len(runs) == 3
    order = np.argsort(runs.loss)
    np.testing.assert_allclose(runs.n[order], [4e8, 4e8, 2e8])
    np.testing.assert_allclose(runs.loss[order], [0.36, 0.38, 0.40])
    assert sorted(runs.mixture) == ["0.7", "1", "1"]
    by_loss = dict(zip(runs.loss.tolist(), runs.c.tolist(), strict=True))
    assert by_loss[0.40] == 2.4e18  # flops from the file
    assert by_loss[0.38] == 6 * 4e8 * 2e9  # 6ND when absent
    assert all(lang is None for lang in runs.language)


def test_per_language_losses(tmp_path):
    write_result(
        tmp_path,
        "a",
        **completed(2e8, 2e9, 0.40, val_bpc_by_language={"python": 0.35, "java": 0.45}),
    )
    runs = read_runs(tmp_path)
    assert len(runs) == 3
    assert sorted(map(str, runs.language)) == ["None", "java", "python"]
    assert runs.languages() == ["java", "python"]
    python = runs.select(language="python")
    assert python.loss.tolist() == [0.35]
    assert runs.select().loss.tolist() == [0.40]


def test_completed_run_missing_a_key_names_the_file(tmp_path):
    write_result(tmp_path, "good", **completed(2e8, 2e9, 0.4))
    bad = write_result(tmp_path, "bad", status="completed", n_params=2e8, val_bpc=0.4)
    with pytest.raises(LawsError, match=f"{bad}: completed run without tokens"):
        read_runs(tmp_path)


def test_empty_or_missing_sources(tmp_path):
    with pytest.raises(LawsError, match="no result.json files"):
        read_runs(tmp_path)
    write_result(tmp_path, "failed", status="failed")
    with pytest.raises(LawsError, match="no runs found"):
        read_runs(tmp_path)
    with pytest.raises(LawsError, match="no such file"):
        read_runs(tmp_path / "nope.csv")
    (tmp_path / "table.txt").write_text("N,D,loss\n")
    with pytest.raises(LawsError, match=r"expected a runs/ directory, a \.csv or a \.jsonl"):
        read_runs(tmp_path / "table.txt")


def test_csv_table(tmp_path):
    table = tmp_path / "runs.csv"
    table.write_text(
        "N,D,loss,mixture,language,C\n"
        "201M,2B,0.41,code,,\n"
        "2.27B,341B,0.2538,code,,5.36e21\n"
        "1e9,1e10,0.3,code_nl_73,python,\n"
    )
    runs = read_runs(table)
    np.testing.assert_allclose(runs.n, [2.01e8, 2.27e9, 1e9])
    np.testing.assert_allclose(runs.d, [2e9, 341e9, 1e10])
    assert runs.c[1] == 5.36e21 and runs.c[0] == pytest.approx(6 * 2.01e8 * 2e9)
    assert runs.mixture == ["code", "code", "code_nl_73"]
    assert runs.language == [None, None, "python"]
    assert runs.source[0] == f"{table}:2"


def test_csv_errors(tmp_path):
    table = tmp_path / "runs.csv"
    table.write_text("N,tokens,loss\n1e9,1e10,0.3\n")
    with pytest.raises(LawsError, match=r"runs.csv:2: missing D \(columns needed: N, D, loss"):
        read_runs(table)
    table.write_text("N,D,loss\n1e9,ten,0.3\n")
    with pytest.raises(LawsError, match=r"runs.csv:2: d='ten' is not a number"):
        read_runs(table)


def test_jsonl_table(tmp_path):
    table = tmp_path / "runs.jsonl"
    table.write_text('{"N": 1e9, "D": "20B", "loss": 0.3}\n\n{"n": 2e9, "d": 4e10, "Loss": 0.28}\n')
    runs = read_runs(table)
    np.testing.assert_allclose(runs.d, [2e10, 4e10])
    table.write_text('{"N": 1e9, "D": 2e10}\n')
    with pytest.raises(LawsError, match="runs.jsonl:1: missing loss"):
        read_runs(table)
    table.write_text("[1, 2, 3]\n")
    with pytest.raises(LawsError, match="expected an object"):
        read_runs(table)


def test_mixtures_must_be_told_apart():
    runs = Runs.from_arrays([1e9, 2e9], [1e10, 1e10], [0.3, 0.29], mixture=["1", "0.7"])
    with pytest.raises(LawsError, match=r"mix 2 data mixtures \(0.7, 1\); fit one at a time"):
        runs.select()
    assert len(runs.select(mixture="0.7")) == 1
    with pytest.raises(LawsError, match="no runs of mixture '0.3'"):
        runs.select(mixture="0.3")
    with pytest.raises(LawsError, match="no rows for language 'rust'"):
        runs.select(language="rust")


def test_repeated_seeds_become_one_row(tmp_path):
    """Three seeds of (2e8, 2e9) and two of (4e8, 2e9), each with a Python loss; a run of
    another mixture at (2e8, 2e9) stays its own row."""
    seeds = [("a", 2e8, 0.40, 0.30), ("b", 2e8, 0.41, 0.31), ("c", 2e8, 0.42, 0.35)]
    seeds += [("d", 4e8, 0.38, 0.29), ("e", 4e8, 0.36, 0.29)]
    for name, n, bpc, python in seeds:
        extra = {"code_fraction": 1.0, "val_bpc_by_language": {"python": python}}
        write_result(tmp_path, name, **completed(n, 2e9, bpc, **extra))
    write_result(tmp_path, "mix", **completed(2e8, 2e9, 0.50, code_fraction=0.7))
    write_result(tmp_path, "single", **completed(4e8, 4e9, 0.35, code_fraction=1.0))
    runs = read_runs(tmp_path)
    assert len(runs) == 3 + 1 + 2  # overall: 3 of mixture 1 and the 0.7 run; 2 Python rows
    code = runs.select(mixture="1")
    by_n = {(n, d): loss for n, d, loss in zip(code.n, code.d, code.loss, strict=True)}
    assert by_n == {
        (2e8, 2e9): pytest.approx(0.41),  # (0.40 + 0.41 + 0.42) / 3
        (4e8, 2e9): pytest.approx(0.37),  # (0.38 + 0.36) / 2
        (4e8, 4e9): 0.35,
    }
    python = runs.select(mixture="1", language="python")
    np.testing.assert_allclose(sorted(python.loss), [0.29, 0.32])  # (0.30+0.31+0.35)/3
    assert runs.select(mixture="0.7").loss.tolist() == [0.50]
    # By hand: deviations 0.01/0.41 = 2.439% (x2, and 0) and 0.01/0.37 = 2.703% (x2); the pooled
    # std over 2 + 1 degrees of freedom: sqrt((2 x 0.024390^2 + 2 x 0.027027^2) / 3) = 2.972%.
    assert repeat_summary(code) == {
        "rows_averaged": 2,
        "runs_merged": 5,
        "max_rel_deviation": pytest.approx(0.027027, rel=1e-4),
        "rel_std": pytest.approx(0.029725, rel=1e-4),
    }
    assert repeat_summary(runs.select(mixture="0.7"))["rows_averaged"] == 0
    with pytest.raises(LawsError, match="duplicate runs: N=2e.08, D=2e.09 appears 3 times"):
        read_runs(tmp_path, average=False)


def test_what_is_read_but_not_fitted_is_listed(tmp_path):
    """Every result.json that is not a row is listed with its reason; select() keeps the left-out
    runs that concern the chosen mixture and language (a failed run concerns every fit)."""
    write_result(tmp_path, "a", **completed(2e8, 2e9, 0.40, code_fraction=1.0))
    write_result(tmp_path, "b", **completed(4e8, 2e9, 0.38, code_fraction=1.0))
    write_result(tmp_path, "c", **completed(4e8, 4e9, float("inf"), code_fraction=0.7))
    write_result(tmp_path, "d", **completed(4e8, 4e9, -1.0, code_fraction=1.0))
    write_result(tmp_path, "oom", status="failed", step=3, error="out of memory")
    write_result(tmp_path, "live", status="running")
    runs = read_runs(tmp_path)
    assert len(runs) == 2
    found = {(x.run.split("/")[-2], x.kind): x.reason for x in runs.left_out}
    assert found == {
        ("c", "unusable"): "loss=inf is not a positive finite number",
        ("d", "unusable"): "loss=-1.0 is not a positive finite number",
        ("oom", "failed"): "status 'failed' at step 3: out of memory",
        ("live", "failed"): "status 'running'",
    }
    code = {x.run.split("/")[-2] for x in runs.select(mixture="1").left_out}
    assert code == {"d", "oom", "live"}  # c is a 0.7 run


def test_a_collected_table_lists_the_sweeps_missing_runs(tmp_path):
    """`laws collect` writes runs.left_out.csv beside runs.csv; reading the table reads it too,
    and a CSV row with a NaN loss is listed as unusable."""
    table = tmp_path / "runs.csv"
    table.write_text("N,D,loss\n2e8,2e9,0.40\n4e8,2e9,0.38\n4e8,4e9,0.36\n8e8,4e9,nan\n")
    (tmp_path / "runs.left_out.csv").write_text(
        "name,status,error,log\nn8e8_d8e9,failed,diverged at step 40,x.log\nn8e8_d2e9,missing,,\n"
    )
    runs = read_runs(table)
    assert len(runs) == 3
    assert [(x.kind, x.reason) for x in runs.left_out] == [
        ("failed", "diverged at step 40"),
        ("missing", "missing"),
        ("unusable", "loss=nan is not a positive finite number"),
    ]
