"""Sweeps: a partly finished sweep only runs what is missing, every launcher skips completed runs,
relaunches interrupted ones and reports failed ones with their log, collect lists every run's state
(a corrupt result.json included), and SLURM scripts carry the paper's resource plan."""

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

import sweep
from configs import load_config
from laws.cli.app import main as laws_main
from lightning_modules import run as runner

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
    runner.train(load_config(planned[0].overrides))  # one run finished before the sweep starts

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


def test_a_completed_run_of_other_settings_is_not_skipped_as_this_one(
    small_pool, tmp_path, monkeypatch, capsys
):
    """The sweep file changed under a finished run (the allocation check's optimum moved, say)
    but the run kept its name: the old result is kept, named and failed, not reported as done."""
    monkeypatch.chdir(ROOT)
    pool = tmp_path / "pool"
    shutil.copytree(small_pool.path, pool)  # deleted at the end
    overrides = [f"data.pool={pool}", "data.seq_len=64", "optim.micro_batch=4"]
    overrides += ["trainer.progress_bar=false", "trainer.val_every_steps=0"]
    run = {"name": "mix", "n": "60K", "tokens": "8K", "code_fraction": 1.0}
    first = write_sweep(tmp_path / "first.yaml", [run], overrides)
    where = f"run.dir={tmp_path / 'runs'}"
    assert sweep.main([str(first), "--launcher", "local", where]) == 0
    result = tmp_path / "runs" / "mini" / "mix" / "result.json"
    kept = result.read_text()
    changed = write_sweep(tmp_path / "changed.yaml", [{**run, "tokens": "12K"}], overrides)
    assert sweep.main([str(changed), "--launcher", "local", where]) == 1
    out = capsys.readouterr()
    assert "data.tokens: 8000 -> 12000" in out.out + out.err
    assert "completed, skipped" not in out.out
    assert result.read_text() == kept
    assert sweep.main([str(first), "--launcher", "local", where]) == 0  # its own sweep: skipped
    assert "mix: completed, skipped" in capsys.readouterr().out
    shutil.rmtree(pool)  # a finished sweep whose pool was removed still reports its runs
    assert sweep.main([str(changed), "--launcher", "local", where]) == 0
    assert f"its pool {pool} is gone: its settings were not checked" in capsys.readouterr().out


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
        f"#SBATCH --output={tmp_path / 'mini' / 'big' / 'train.log'}",  # where collect looks
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


RESULT = {
    "status": "completed",
    "n_params": 100352,
    "tokens": 1_000_000,
    "flops": 6.0 * 100352 * 1_000_000,
    "code_fraction": 1.0,
    "steps": 10,
    "wall_seconds": 1.0,
    "val_bpc": 2.5,
}
# Stands in for train.py: "paused" is preempted (checkpoint, exit 143), "crash" dies without a
# result, the others complete.
FAKE_TRAIN = f"""
import json, pathlib, sys
run = pathlib.Path(sys.argv[1])
print("fake train.py in", run.name)
if run.name == "paused":
    (run / "checkpoints").mkdir(exist_ok=True)
    (run / "checkpoints" / "last.ckpt").write_text("state")
    sys.exit(143)
if run.name == "crash":
    sys.exit(1)
(run / "result.json").write_text(json.dumps({RESULT!r}))
"""


def sweep_in_every_state(tmp_path: Path) -> tuple[Path, Path]:
    """done (completed), bad (recorded failure, with a log), corrupt (unreadable result.json),
    paused (started, with a checkpoint), new and crash (never started)."""
    names = ("done", "bad", "corrupt", "paused", "new", "crash")
    runs = [{"name": n, "n": "100K", "tokens": "1M", "code_fraction": 1.0} for n in names]
    file = write_sweep(tmp_path / "mini.yaml", runs, ["data.seq_len=128", "optim.micro_batch=4"])
    root = tmp_path / "runs" / "mini"
    for name in ("done", "bad", "corrupt", "paused"):
        (root / name).mkdir(parents=True)
    (root / "done" / "result.json").write_text(json.dumps(RESULT))
    failure = {"status": "failed", "error": "the training loss became nan at step 7", "step": 7}
    (root / "bad" / "result.json").write_text(json.dumps(failure))
    (root / "bad" / "train.log").write_text("nan at step 7\n")
    (root / "corrupt" / "result.json").write_text('{"status": "compl')
    (root / "paused" / "plan.json").write_text("{}")
    (root / "paused" / "checkpoints").mkdir()
    (root / "paused" / "checkpoints" / "last.ckpt").write_text("state")
    return file, root


def test_print_and_slurm_launch_only_missing_and_interrupted_runs(tmp_path, capsys):
    file, root = sweep_in_every_state(tmp_path)
    run_dir = f"run.dir={tmp_path / 'runs'}"
    assert sweep.main([str(file), "--launcher", "print", run_dir]) == 1  # failed runs remain
    captured = capsys.readouterr()
    launched = [line.split("run.name=")[1].split()[0] for line in captured.out.splitlines()]
    assert launched == ["paused", "new", "crash"]
    assert "done: completed, skipped" in captured.err
    assert "bad: failed (the training loss became nan at step 7)" in captured.err
    assert f"log: {root / 'bad' / 'train.log'}" in captured.err
    assert f"corrupt: failed ({root / 'corrupt' / 'result.json'} is unreadable" in captured.err
    assert f"no log in {root / 'corrupt'}" in captured.err

    assert sweep.main([str(file), "--launcher", "slurm", run_dir]) == 1
    captured = capsys.readouterr()
    scripts = sorted(p.parent.name for p in root.glob("*/job.sbatch"))
    assert scripts == ["crash", "new", "paused"]
    assert captured.out.split() == [
        word
        for name in ("paused", "new", "crash")
        for word in ("sbatch", f"{root / name}/job.sbatch")
    ]
    assert "bad: failed" in captured.err and "corrupt: failed" in captured.err


def test_local_resumes_reports_and_counts_preemption_as_interrupted(tmp_path, capsys, monkeypatch):
    file, root = sweep_in_every_state(tmp_path)
    fake = lambda run: [sys.executable, "-c", FAKE_TRAIN, str(run.directory)]  # noqa: E731
    monkeypatch.setattr(sweep.SweepRun, "command", fake)
    assert sweep.main([str(file), "--launcher", "local", f"run.dir={tmp_path / 'runs'}"]) == 1
    out = capsys.readouterr().out
    assert "[1/6] done: completed, skipped" in out
    assert "[2/6] bad: failed (the training loss became nan at step 7), not launched" in out
    assert "[3/6] corrupt: failed (" in out
    assert "[4/6] paused: resuming" in out and "[4/6] paused: interrupted (exit status 143" in out
    assert "[5/6] new: training" in out
    assert "[6/6] crash: failed (train.py exited with status 1 and no result)" in out
    assert "sweep mini: 2 completed, 3 failed, 1 interrupted" in out
    crash_log = root / "crash" / "train.log"
    assert f"  failed: crash (train.py exited with status 1 and no result); log: {crash_log}" in out
    assert (root / "bad" / "train.log").read_text() == "nan at step 7\n"  # not launched
    assert "fake train.py in paused" in (root / "paused" / "train.log").read_text()

    report = json.loads(_laws(capsys, "collect", str(root), "--json"))
    assert report["completed"] == 2 and [r["name"] for r in report["missing"]] == ["crash"]
    assert report["missing"][0]["log"] == str(crash_log)


def test_collect_lists_a_corrupt_result_as_failed(tmp_path, capsys):
    file, root = sweep_in_every_state(tmp_path)
    report = json.loads(_laws(capsys, "collect", str(root), "--sweep", str(file), "--json"))
    assert report["completed"] == 1  # one bad file does not lose the table
    failed = {r["name"]: r for r in report["failed"]}
    assert set(failed) == {"bad", "corrupt"}
    assert f"{root / 'corrupt' / 'result.json'} is unreadable" in failed["corrupt"]["error"]
    assert failed["bad"]["log"] == str(root / "bad" / "train.log")  # the log that exists
    assert failed["corrupt"]["log"] is None
    assert [r["name"] for r in report["interrupted"]] == ["paused"]
    assert [(r["name"], r["log"]) for r in report["missing"]] == [("new", None), ("crash", None)]
    with open(report["out"]) as handle:
        assert [row["name"] for row in csv.DictReader(handle)] == ["done"]
    with open(report["left_out"]) as handle:  # beside the table, read back with it by a fit
        listed = {row["name"]: row["status"] for row in csv.DictReader(handle)}
    assert listed == {"bad": "failed", "corrupt": "failed", "paused": "interrupted"} | {
        "new": "missing",
        "crash": "missing",
    }
    assert Path(report["left_out"]) == Path(report["out"]).with_name("results.left_out.csv")
    text = _laws(capsys, "collect", str(root), "--sweep", str(file))
    assert f"failed: bad (the training loss became nan at step 7); log: {root / 'bad'}" in text
    assert "missing: new; no log" in text


@pytest.mark.parametrize(
    ("returncode", "status", "expected"),
    [
        (0, "completed", "completed"),
        (1, "failed", "failed"),  # a recorded failure (non-finite loss)
        (143, "interrupted", "interrupted"),  # SIGTERM: checkpoint saved, resumable
        (-9, "interrupted", "interrupted"),  # SIGKILL: resumes from the last checkpoint
        (1, "interrupted", "failed"),  # a crash without a result
        (2, "missing", "failed"),  # a config error before anything started
    ],
)
def test_status_after_a_local_run(returncode, status, expected):
    assert sweep.status_after(returncode, {"status": status})[0] == expected


def test_slurm_does_not_submit_a_run_twice_while_its_job_is_queued(tmp_path, capsys, monkeypatch):
    """--submit records each job id; a second pass skips the runs squeue still lists and
    submits again the ones whose job is gone without a result (fake sbatch and squeue)."""
    bin_dir, queue, calls = tmp_path / "bin", tmp_path / "queue", tmp_path / "sbatch_calls"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho 4242\n')
    (bin_dir / "squeue").write_text(f"#!/bin/sh\ncat {queue}\n")
    for tool in ("sbatch", "squeue"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    runs = [{"name": "one", "n": "60K", "tokens": "60K", "code_fraction": 1.0}]
    file = write_sweep(tmp_path / "s.yaml", runs, ["data.vocab_size=384", "data.seq_len=64"])
    argv = [str(file), "--launcher", "slurm", "--submit", f"run.dir={tmp_path / 'runs'}"]

    assert sweep.main(argv) == 0
    assert "one: submitted as SLURM job 4242" in capsys.readouterr().out
    assert (tmp_path / "runs" / "mini" / "one" / "slurm_job").read_text().strip() == "4242"
    queue.write_text("4242\n")  # still pending
    assert sweep.main(argv) == 0
    assert "queued or running as SLURM job 4242, not submitted again" in capsys.readouterr().err
    assert len(calls.read_text().splitlines()) == 1
    queue.write_text("")  # the job ended without a result: submit the run again
    assert sweep.main(argv) == 0
    assert len(calls.read_text().splitlines()) == 2
