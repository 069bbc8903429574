"""The study's design (`python -m laws design`): the paper's grid by default, its filters, the
per-run resource plan of Appendix A.3 (Table 1's layouts), and the shipped paper.yaml."""

import json
from pathlib import Path

import pytest
import yaml

from laws.cli.app import main as laws_main

ROOT = Path(__file__).resolve().parent.parent
PAPER_SIZES = [round(2e8 * 2 ** (k / 2)) for k in range(9)]  # Table 2's targets, 0.2B..3.2B
PAPER_BUDGETS = [round(2e9 * 2 ** (k / 2)) for k in range(13)]  # 2B..128B
# The command that wrote configs/sweeps/paper.yaml (its description says so too).
PAPER_ARGS = "--out configs/sweeps/paper.yaml --mixtures 1.0,0.7,0.3 --max-nodes 16".split()


def design(capsys, tmp_path: Path, *args: str) -> dict:
    """Run the command into tmp_path/sweep.yaml; the written file, checked against --json."""
    out = tmp_path / "sweep.yaml"
    capsys.readouterr()
    assert laws_main(["design", "--out", str(out), "--json", *args]) == 0
    document = yaml.safe_load(out.read_text())
    assert json.loads(capsys.readouterr().out)["runs"] == document["runs"]
    return document


def test_default_is_the_paper_grid(capsys, tmp_path):
    runs = design(capsys, tmp_path)["runs"]
    assert len(runs) == 117
    assert sorted({r["n"] for r in runs}) == PAPER_SIZES
    assert sorted({r["tokens"] for r in runs}) == PAPER_BUDGETS
    assert {r["code_fraction"] for r in runs} == {1.0}
    table2 = sorted({r["n_params"] for r in runs})
    assert table2[0] == 201_195_520 and table2[-1] == 3_184_230_400  # 201M and 3.18B rows
    assert all("layout" not in r for r in runs)  # no cluster given, no layout


def test_mixtures_repeat_the_grid(capsys, tmp_path):
    runs = design(capsys, tmp_path, "--mixtures", "1.0,0.7,0.3")["runs"]
    for fraction, suffix in ((1.0, "code100"), (0.7, "code70"), (0.3, "code30")):
        same = [r for r in runs if r["code_fraction"] == fraction]
        assert len(same) == 117 and all(r["name"].endswith(suffix) for r in same)


def test_filters(capsys, tmp_path):
    everything = design(capsys, tmp_path)["runs"]
    kept = design(capsys, tmp_path, "--min-d-over-n", "20", "--max-d-over-n", "100")["runs"]
    expected = [r["name"] for r in everything if 20 <= r["tokens"] / r["n_params"] <= 100]
    assert [r["name"] for r in kept] == expected and 0 < len(kept) < 117
    capped = design(capsys, tmp_path, "--max-flops", "1e20")["runs"]
    assert [r["name"] for r in capped] == [r["name"] for r in everything if r["flops"] <= 1e20]
    assert 0 < len(capped) < 117


def test_bad_input_names_the_fix(capsys, tmp_path):
    out = str(tmp_path / "x.yaml")
    assert laws_main(["design", "--out", out, "--max-flops", "1e3"]) == 2
    assert "widen the bounds" in capsys.readouterr().err
    assert laws_main(["design", "--out", out, "--micro-batch", "9"]) == 2
    assert "--micro-batch without --max-nodes" in capsys.readouterr().err
    assert laws_main(["design", "--out", out, "--set", "cluster.max_node=4"]) == 2
    assert "cluster.max_node" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("n", "d", "micro", "nodes", "accumulation", "global_batch"),
    [
        ("6.37B", "127B", 2, 13, 3, 624),  # the paper's 640 is 20 over Step Law's 620.0, 624 4
        ("2.27B", "341B", 9, 15, 1, 1080),  # the paper's Table 1
        ("1.34B", "567B", 13, 14, 1, 1456),
    ],
)
def test_table1_layouts_in_the_sweep_file(
    capsys, tmp_path, n, d, micro, nodes, accumulation, global_batch
):
    document = design(
        capsys,
        tmp_path,
        *("--n", f"{n}:{n}:1", "--d", f"{d}:{d}:1", "--max-nodes", "16"),
        *("--micro-batch", str(micro)),
    )
    (run,) = document["runs"]
    assert run["layout"] == {
        "num_nodes": nodes,
        "devices": 8,
        "micro_batch": micro,
        "grad_accumulation": accumulation,
        "global_batch_sequences": global_batch,
    }
    assert run["wall_hours"] == pytest.approx(run["gpu_hours"] / (nodes * 8), abs=0.01)
    # The overrides sweep.py launches with are the ones the layout was planned from.
    assert {"cluster.max_nodes=16", "cluster.gpus_per_node=8", f"optim.micro_batch={micro}"} <= set(
        document["overrides"]
    )


def test_shipped_paper_design_is_what_the_command_writes(capsys, tmp_path, monkeypatch):
    shipped_file = ROOT / "configs" / "sweeps" / "paper.yaml"
    shipped = yaml.safe_load(shipped_file.read_text())
    assert "python -m laws design " + " ".join(PAPER_ARGS) in shipped["description"]
    monkeypatch.chdir(tmp_path)  # --out is relative: write the copy here
    args = ["design", *PAPER_ARGS, "--description", shipped["description"]]
    assert laws_main(args) == 0
    assert (tmp_path / "configs" / "sweeps" / "paper.yaml").read_text() == shipped_file.read_text()
    assert len(shipped["runs"]) == 3 * 117 and all("layout" in r for r in shipped["runs"])


def test_runs_carry_the_attention_and_its_kv_cache(capsys, tmp_path):
    """The 201M row (d_model 1024, 16 layers, 16 heads of 64): MHA caches 2 x 16 x 1024 =
    32,768 values per token; GQA with 4 key/value heads a quarter of that; MFA-KR one key head
    per layer, 16 x 64 = 1,024. Each keeps N near its target by re-balancing d_ff."""
    grid = ["--n", "200M:200M:1", "--d", "4B:4B:1"]
    expected = {
        (): ("mha", 32768),
        ("model.attention=gqa", "model.n_kv_head=4"): ("gqa", 8192),
        ("model.attention=mfa_kr", "model.q_rank=512"): ("mfa_kr", 1024),
    }
    for sets, (kind, values) in expected.items():
        args = [a for s in sets for a in ("--set", s)]
        (run,) = design(capsys, tmp_path, *grid, *args)["runs"]
        assert (run["attention"], run["kv_cache_values_per_token"]) == (kind, values)
        assert abs(run["n_params"] / 2e8 - 1) < 0.006
    assert (
        laws_main(
            ["design", "--out", str(tmp_path / "x.yaml"), *grid, "--set", "model.attention=gqa"]
        )
        == 2
    )
    assert "model.attention=gqa needs model.n_kv_head" in capsys.readouterr().err
