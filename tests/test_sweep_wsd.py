"""WSD sweeps: `laws design --schedule wsd` writes families and both protocols' compute, sweep.py
trains a parent before its branches (locally, or as SLURM jobs that depend on the parent's),
reports a family whose parent failed, and collect keeps each run's schedule."""

import csv
import json
import os
from pathlib import Path

import pytest
import yaml
from test_sweep import ROOT, _laws

import sweep

TRAIN = [
    "data.seq_len=64",
    "optim.micro_batch=4",
    "optim.batch_tokens=512",
    "trainer.progress_bar=false",
    "trainer.val_every_steps=0",
    "trainer.accelerator=cpu",
]


def design(capsys, tmp_path, *extra) -> tuple[Path, str]:
    out = tmp_path / "wsd.yaml"
    printed = _laws(
        capsys,
        "design",
        "--n",
        "60K:60K:1",
        "--d",
        "8K:16K:2",
        "--schedule",
        "wsd",
        "--vocab-size",
        "384",
        "--seq-len",
        "64",
        "--out",
        str(out),
        *[f"--set={o}" for o in [*TRAIN, *extra]],
    )
    return out, printed


def test_the_issues_design_prints_both_protocols(capsys, tmp_path):
    """Per size, budgets 1M..8M: cosine trains 15M tokens, WSD about 8M + 0.2 x 7M = 9.4M, a
    saving of 1 - 9.4 / 15 = 37.3% (whole steps move it slightly)."""
    out = tmp_path / "f.yaml"
    printed = _laws(
        capsys,
        "design",
        "--n",
        "100K:400K:3",
        "--d",
        "1M:8M:4",
        "--schedule",
        "wsd",
        "--out",
        str(out),
    )
    document = yaml.safe_load(out.read_text())
    estimate = document["estimate"]
    assert estimate["saving"] == pytest.approx(1 - 9.4 / 15, abs=0.005)
    assert f"{estimate['saving']:.0%} saved" in printed and "cosine from scratch" in printed
    assert estimate["cosine_flops"] == pytest.approx(sum(r["flops"] for r in document["runs"]))
    roles = [(r["role"], r["tokens"]) for r in document["runs"] if r["n"] == 100000]
    assert sorted(roles) == [("branch", 1e6), ("branch", 2e6), ("branch", 4e6), ("parent", 8e6)]
    parent = next(r for r in document["runs"] if r["role"] == "parent" and r["n"] == 100000)
    assert parent["branches"] == [1000000, 2000000, 4000000]
    assert "optim.schedule=wsd" in document["overrides"]


def test_local_sweep_trains_the_parent_then_its_branch(small_pool, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    file, _ = design(capsys, tmp_path, f"data.pool={small_pool.path}")
    runs = tmp_path / "runs"
    argv = [str(file), "--launcher", "local", f"run.dir={runs}"]
    assert sweep.main(argv) == 0
    out = capsys.readouterr().out
    assert out.index("n60K_d16K_code100: training") < out.index("n60K_d8K_code100: training")
    branch = json.loads((runs / "wsd" / "n60K_d8K_code100" / "result.json").read_text())
    assert branch["family"]["role"] == "branch" and branch["family"]["start_step"] == 13
    assert branch["family"]["parent_checkpoint"].endswith("branch_step13.ckpt")
    report = json.loads(_laws(capsys, "collect", str(runs / "wsd"), "--json"))
    with open(report["out"]) as handle:
        schedules = {(r["name"], r["schedule"], r["family"]) for r in csv.DictReader(handle)}
    parent = "n60K_d16K_code100"
    assert schedules == {(parent, "wsd", parent), ("n60K_d8K_code100", "wsd", parent)}


def test_a_failed_parent_blocks_its_branches(capsys, tmp_path):
    file, _ = design(capsys, tmp_path)
    parent = tmp_path / "runs" / "wsd" / "n60K_d16K_code100"
    parent.mkdir(parents=True)
    (parent / "result.json").write_text(json.dumps({"status": "failed", "error": "loss nan"}))
    assert sweep.main([str(file), "--launcher", "local", f"run.dir={tmp_path / 'runs'}"]) == 1
    out = capsys.readouterr().out
    assert "n60K_d8K_code100: not launched, its parent n60K_d16K_code100 failed (loss nan)" in out
    assert "blocked: n60K_d8K_code100" in out
    assert not (tmp_path / "runs" / "wsd" / "n60K_d8K_code100" / "train.log").exists()


def test_slurm_branches_depend_on_their_parents_job(capsys, tmp_path, monkeypatch):
    bin_dir, calls = tmp_path / "bin", tmp_path / "sbatch_calls"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho 4242\n')
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    file, _ = design(capsys, tmp_path)
    runs = f"run.dir={tmp_path / 'runs'}"
    assert sweep.main([str(file), "--launcher", "slurm", runs]) == 0  # no --submit: printed
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("sbatch '--dependency=afterok:<job of n60K_d16K_code100>'")
    assert sweep.main([str(file), "--launcher", "slurm", "--submit", runs]) == 0
    parent_call, branch_call = calls.read_text().splitlines()
    assert "--dependency" not in parent_call and "n60K_d16K_code100/job.sbatch" in parent_call
    assert branch_call.startswith("--parsable --dependency=afterok:4242 ")
    script = (tmp_path / "runs" / "wsd" / "n60K_d8K_code100" / "job.sbatch").read_text()
    assert "family.parent=" in script and "optim.schedule=wsd" in script
