"""Launch every run of a sweep file (from `python -m laws design`), idempotently.

    python sweep.py SWEEP.yaml [--launcher local|slurm|print] [--submit] [key=value ...]

Overrides after the file apply to every run (e.g. `data.pool=/pools/code run.dir=/scratch/runs`).
Runs go to `<run.dir>/<sweep name>/<run name>/` (run.dir defaults to `runs`). Completed runs are
skipped, interrupted ones resume from their last checkpoint (train.py does that), failed ones are
reported with their log. Running the same command again finishes the study.

  local  runs them one after another on this machine (logs: <run>/train.log)
  slurm  writes <run>/job.sbatch (whole nodes, one task per device, `srun python train.py ...`,
         Lightning's SLURM environment with auto-requeue on SIGUSR1) and prints the sbatch
         commands, or submits them with --submit
  print  prints the train.py command lines, for torchrun or any other scheduler
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

import train
from configs import ConfigError, load_config
from lightning_modules.plan import make_plan

STATUSES = ("completed", "failed", "interrupted", "pending")


@dataclass(frozen=True)
class SweepRun:
    name: str
    overrides: list[str]  # sweep-wide, the run's own, then the command line's
    directory: Path

    @property
    def log(self) -> Path:
        return self.directory / "train.log"

    def status(self) -> str:
        result = self.directory / "result.json"
        if result.exists():
            return json.loads(result.read_text()).get("status", "failed")
        if (self.directory / "checkpoints" / "last.ckpt").exists():
            return "interrupted"
        return "pending"

    def command(self) -> list[str]:
        return [sys.executable, "train.py", *self.overrides]


def read_sweep(path: Path, cli_overrides: list[str]) -> tuple[str, list[SweepRun]]:
    try:
        sweep = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read the sweep file {path}: {err}") from err
    missing = {"name", "runs"} - set(sweep or {})
    if missing:
        raise ConfigError(f"{path} lacks {sorted(missing)}; write it with `python -m laws design`")
    base = load_config(cli_overrides)  # also validates the command line's keys
    sweep_dir = Path(base.run.dir) / sweep["name"]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.yaml").write_text(path.read_text())  # for `laws collect`
    runs = []
    for spec in sweep["runs"]:
        own = [
            f"model.n={spec['n']}",
            f"data.tokens={spec['tokens']}",
            f"data.code_fraction={spec['code_fraction']}",
            f"run.name={spec['name']}",
        ]
        others = [o for o in cli_overrides if not o.startswith("run.dir=")]  # replaced below
        overrides = [*sweep.get("overrides", []), *own, *others, f"run.dir={sweep_dir}"]
        runs.append(SweepRun(spec["name"], overrides, sweep_dir / spec["name"]))
    return sweep["name"], runs


def run_local(runs: list[SweepRun]) -> dict[str, list[SweepRun]]:
    outcome: dict[str, list[SweepRun]] = {status: [] for status in STATUSES}
    for i, run in enumerate(runs, 1):
        before = run.status()
        if before in ("completed", "failed"):
            outcome[before].append(run)
            print(f"[{i}/{len(runs)}] {run.name}: {before}, skipped")
            continue
        verb = "resuming" if before == "interrupted" else "training"
        print(f"[{i}/{len(runs)}] {run.name}: {verb} (log: {run.log})", flush=True)
        run.directory.mkdir(parents=True, exist_ok=True)
        with open(run.log, "a") as log:
            subprocess.run(run.command(), stdout=log, stderr=subprocess.STDOUT, check=False)
        outcome["completed" if run.status() == "completed" else "failed"].append(run)
    return outcome


SBATCH = """#!/bin/bash
#SBATCH --job-name=codescale-{name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node={devices}
#SBATCH --gpus-per-node={devices}
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --signal=SIGUSR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output={directory}/slurm-%j.out
# Lightning detects SLURM: one process per task, ranks from SLURM_PROCID; SIGUSR1 (sent 120 s
# before the time limit or on preemption) makes it save a checkpoint and requeue this job, which
# then resumes from the newest checkpoint in the run folder.
cd {workdir}
srun {command}
"""


def sbatch_script(run: SweepRun, cpus: int, time: str) -> str:
    cfg = load_config(run.overrides)
    vocab_size = train.pool_source(cfg)[2]
    world = cfg.trainer.num_nodes * (
        1 if cfg.trainer.devices == "auto" else int(cfg.trainer.devices)
    )
    plan = make_plan(cfg, world, vocab_size)
    placement = [
        f"trainer.num_nodes={plan.layout.num_nodes}",
        f"trainer.devices={plan.layout.devices}",
        "trainer.accelerator=gpu",
        "cluster.max_nodes=null",
        f"optim.micro_batch={plan.micro_batch}",
    ]
    command = ["python", "train.py", *run.overrides, *placement]
    return SBATCH.format(
        name=run.name,
        nodes=plan.layout.num_nodes,
        devices=plan.layout.devices,
        cpus=cpus,
        time=time,
        directory=run.directory,
        workdir=Path.cwd(),
        command=shlex.join(command),
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--launcher", choices=("local", "slurm", "print"), default="local")
    parser.add_argument("--submit", action="store_true", help="slurm: call sbatch")
    parser.add_argument("--time", default="48:00:00", help="slurm: time limit per job")
    parser.add_argument("--cpus-per-task", type=int, default=8, help="slurm")
    args, overrides = parser.parse_known_args(argv)
    try:
        name, runs = read_sweep(args.sweep, overrides)
        if args.launcher == "print":
            for run in runs:
                print(shlex.join(run.command()))
            return 0
        if args.launcher == "slurm":
            for run in runs:
                if run.status() == "completed":
                    continue
                run.directory.mkdir(parents=True, exist_ok=True)
                script = run.directory / "job.sbatch"
                script.write_text(sbatch_script(run, args.cpus_per_task, args.time))
                if args.submit:
                    subprocess.run(["sbatch", str(script)], check=True)
                else:
                    print(f"sbatch {script}")
            return 0
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    outcome = run_local(runs)
    print(f"sweep {name}: " + ", ".join(f"{len(v)} {k}" for k, v in outcome.items() if v))
    for run in outcome["failed"]:
        print(f"  failed: {run.name} (log: {run.log})")
    return 1 if outcome["failed"] or outcome["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
