"""Sweeps: a partly finished sweep only runs what is missing, collect lists every run's state,
and SLURM scripts carry the paper's resource plan."""

import csv
import json
from pathlib import Path

import yaml

import sweep
import train
from configs import load_config
from laws.cli import main as laws_main

ROOT = Path(__file__).resolve().parent.parent


def write_sweep(path: Path, runs: list[dict], overrides: list[str]) -> Path:
    path.write_text(yaml.safe_dump({"name": "mini", "overrides": overrides, "runs": runs}))
    return path


def test_rerun_executes_only_missing_runs(small_pool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    overrides = [
        f"data.pool={small_pool.path}",
        "data.seq_len=64",
        "optim.micro_batch=4",
        "trainer.progress_bar=false",
        "trainer.val_every_steps=0",
        "trainer.accelerator=cpu",
    ]
    runs = [
        {"name": f"r{d}", "n": "60K", "tokens": f"{d}K", "code_fraction": 1.0} for d in (8, 16, 24)
    ]
    file = write_sweep(tmp_path / "mini.yaml", runs, overrides)
    _, planned = sweep.read_sweep(file, [f"run.dir={tmp_path / 'runs'}"])
    train.train(load_config(planned[0].overrides))  # one run finished before the sweep starts

    report = json.loads(_laws(capsys, "collect", str(tmp_path / "runs" / "mini"), "--json"))
    assert report["completed"] == 1 and {r["name"] for r in report["missing"]} == {"r16", "r24"}

    assert sweep.main([str(file), "--launcher", "local", f"run.dir={tmp_path / 'runs'}"]) == 0
    out = capsys.readouterr().out
    assert "r8: completed, skipped" in out and "r16: training" in out and "r24: training" in out
    assert not (tmp_path / "runs" / "mini" / "r8" / "train.log").exists()
    assert sweep.main([str(file), "--launcher", "local", f"run.dir={tmp_path / 'runs'}"]) == 0
    assert capsys.readouterr().out.count("completed, skipped") == 3

    report = json.loads(_laws(capsys, "collect", str(tmp_path / "runs" / "mini"), "--json"))
    assert report["completed"] == 3 and not report["missing"] and not report["failed"]
    with open(report["out"]) as handle:
        rows = list(csv.DictReader(handle))
    totals = [r for r in rows if not r["language"]]
    assert sorted(int(r["D"]) for r in totals) == sorted(
        json.loads((tmp_path / "runs" / "mini" / n / "result.json").read_text())["tokens"]
        for n in ("r8", "r16", "r24")
    )
    assert {r["language"] for r in rows} == {"", "Python", "Java"}


def _laws(capsys, *args: str) -> str:
    capsys.readouterr()
    assert laws_main(list(args)) == 0
    return capsys.readouterr().out


def test_print_launcher_gives_the_commands(tmp_path, capsys):
    runs = [{"name": "a", "n": "100K", "tokens": "1M", "code_fraction": 0.7}]
    file = write_sweep(tmp_path / "s.yaml", runs, ["data.seq_len=128"])
    assert sweep.main([str(file), "--launcher", "print", f"run.dir={tmp_path}"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith(
        f"train.py data.seq_len=128 model.n=100K data.tokens=1M data.code_fraction=0.7 "
        f"run.name=a run.dir={tmp_path}/mini"
    )


def test_slurm_script_has_the_resource_plan(tmp_path, capsys):
    runs = [{"name": "big", "n": "2.27B", "tokens": "341B", "code_fraction": 1.0}]
    overrides = [
        "data.vocab_size=65536",
        "data.seq_len=2048",
        "optim.micro_batch=9",
        "cluster.max_nodes=32",
        "cluster.gpus_per_node=8",
    ]
    file = write_sweep(tmp_path / "paper.yaml", runs, overrides)
    assert sweep.main([str(file), "--launcher", "slurm", f"run.dir={tmp_path}"]) == 0
    script = (tmp_path / "mini" / "big" / "job.sbatch").read_text()
    assert capsys.readouterr().out.strip() == f"sbatch {tmp_path / 'mini' / 'big' / 'job.sbatch'}"
    for line in (
        "#SBATCH --nodes=15",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --requeue",
        "#SBATCH --signal=SIGUSR1@120",
    ):
        assert line in script.splitlines()
    command = script.strip().splitlines()[-1]
    assert command.startswith("srun python train.py ")
    assert "trainer.num_nodes=15" in command and "trainer.devices=8" in command
    assert "optim.micro_batch=9" in command  # 15 nodes x 8 GPUs x 9 = 1080 sequences
