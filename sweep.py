"""Launch every run of a sweep file (from `python -m laws design`), idempotently.

    python sweep.py SWEEP.yaml [--launcher local|slurm|print] [--submit] [key=value ...]

Overrides after the file apply to every run (e.g. `data.pool=/pools/code run.dir=/scratch/runs`).
Runs go to `<run.dir>/<sweep name>/<run name>/` (run.dir defaults to `runs`). Every launcher
treats the runs alike: completed runs are skipped, interrupted ones launched again (train.py
resumes them from their last checkpoint), missing ones launched, and failed ones (a result.json
that records a failure, or cannot be read) reported with their log and not launched, since
train.py refuses them: delete such a run's folder to retry it. Running the same command again
finishes the study. The exit status is 1 while failed runs remain (local: or interrupted ones).

  local  runs them one after another on this machine (log: <run>/train.log); a run stopped by
         SIGTERM (train.py saves a checkpoint and exits 143) or killed by a signal is reported
         interrupted, a crash without a result failed for this pass (the next pass retries it)
  slurm  writes <run>/job.sbatch (whole nodes, one task per device, `srun python train.py ...`,
         Lightning's SLURM environment with auto-requeue on SIGUSR1, log: <run>/train.log) and
         prints the sbatch commands, or submits them with --submit (the job id goes to
         <run>/slurm_job; a later pass skips runs whose job squeue still lists)
  print  prints the train.py command lines, for torchrun or any other scheduler
Skipped and failed runs are listed on stdout by `local`, on stderr by `slurm` and `print`.

A WSD sweep (`laws design --schedule wsd`) holds families: a parent per size and its decay
branches. Parents are launched first; a branch waits for its parent: `local` runs it once the
parent has completed, `slurm` submits it with `--dependency=afterok:<parent job>`, and a branch
whose parent failed is reported blocked and not launched (exit status 1).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from configs import ConfigError, load_config
from datamodules.config_pool import pool_source
from laws.runs.collect import LOG, run_state
from laws.runs.design import launch_plan
from lightning_modules.run import require_same_run
from lightning_modules.run_identity import pool_fingerprint, run_identity

# laws.runs.collect.run_state's, and "blocked": a WSD branch whose parent has not completed
STATUSES = ("completed", "failed", "interrupted", "missing", "blocked")
PREEMPTED = 143  # train.py's exit status after saving a checkpoint on SIGTERM


@dataclass(frozen=True)
class SweepRun:
    name: str
    overrides: list[str]  # sweep-wide, the run's own, then the command line's
    directory: Path
    parent: SweepRun | None = None  # a WSD branch's parent run (laws design --schedule wsd)

    @property
    def log(self) -> Path:
        return self.directory / LOG

    def state(self) -> dict:
        """The folder's state; a completed result of other settings than this run's (the sweep
        file changed, the run kept its name) is failed, never skipped as if it were this run."""
        state = run_state(self.directory)
        if state["status"] == "completed":
            cfg = load_config(self.overrides)
            try:
                fingerprint = pool_fingerprint(pool_source(cfg))
            except ConfigError:  # the pool is gone: nothing to train on, nothing to compare
                return {**state, "unchecked": f"its pool {cfg.data.pool} is gone"}
            try:
                require_same_run(
                    self.directory, run_identity(cfg, fingerprint), "holds the completed result of"
                )
            except ConfigError as err:
                state = {**state, "status": "failed", "error": str(err)}
        return state

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
    runs: dict[str, SweepRun] = {}
    specs = sorted(sweep["runs"], key=lambda spec: "parent" in spec)  # parents before branches
    for spec in specs:
        own = [
            f"model.n={spec['n']}",
            f"data.tokens={spec['tokens']}",
            f"data.code_fraction={spec['code_fraction']}",
            f"run.name={spec['name']}",
            *spec.get("overrides", []),
        ]
        parent = runs.get(spec["parent"]) if "parent" in spec else None
        if "parent" in spec:
            if parent is None:
                raise ConfigError(
                    f"{path}: run {spec['name']}'s parent {spec['parent']} is not a run"
                )
            own.append(f"family.parent={parent.directory}")
        others = [o for o in cli_overrides if not o.startswith("run.dir=")]  # replaced below
        overrides = [*sweep.get("overrides", []), *own, *others, f"run.dir={sweep_dir}"]
        runs[spec["name"]] = SweepRun(spec["name"], overrides, sweep_dir / spec["name"], parent)
    return sweep["name"], list(runs.values())


# Each status maps to its runs, each with what to tell about it (e.g. a failure's cause) or None.
Outcome = dict[str, list[tuple[SweepRun, str | None]]]


def log_text(run: SweepRun) -> str:
    return f"log: {run.log}" if run.log.exists() else f"no log in {run.directory}"


def skip_text(run: SweepRun, state: dict) -> str:
    """Why a completed or failed run is not launched."""
    if state["status"] == "completed":
        why = state.get("unchecked")
        return f"{run.name}: completed, skipped" + (
            f" ({why}: its settings were not checked)" if why else ""
        )
    return (
        f"{run.name}: failed ({state.get('error')}), not launched: train.py refuses a failed run; "
        f"delete {run.directory} to retry it; {log_text(run)}"
    )


def blocked_by_parent(run: SweepRun, state: dict) -> tuple[str, str] | None:
    """("failed" | "waiting", why) when a WSD branch cannot start because its parent has not
    completed, else None. A branch that has started resumes from its own checkpoints and needs
    its parent no more."""
    if run.parent is None or state["status"] != "missing":
        return None
    parent = run.parent.state()
    if parent["status"] == "completed":
        return None
    if parent["status"] == "failed":
        error = parent.get("error")
        return "failed", f"its parent {run.parent.name} failed ({error}); {log_text(run.parent)}"
    return "waiting", f"waiting for its parent {run.parent.name} ({parent['status']})"


def status_after(returncode: int, state: dict) -> tuple[str, str | None]:
    """A locally launched run's status once train.py exits. Its result.json, if written, says;
    without one, a stop by SIGTERM (exit 143, checkpoint saved) or by a signal that killed the
    process leaves a resumable run, and any other exit is a crash, failed for this pass."""
    if state["status"] in ("completed", "failed"):
        return state["status"], state.get("error")
    if returncode == PREEMPTED or returncode < 0:
        return "interrupted", f"exit status {returncode}; the next pass resumes it"
    return "failed", f"train.py exited with status {returncode} and no result"


def run_local(runs: list[SweepRun]) -> Outcome:
    outcome: Outcome = {status: [] for status in STATUSES}
    for i, run in enumerate(runs, 1):
        head = f"[{i}/{len(runs)}]"
        state = run.state()
        if state["status"] in ("completed", "failed"):
            outcome[state["status"]].append((run, state.get("error")))
            print(f"{head} {skip_text(run, state)}")
            continue
        blocked = blocked_by_parent(run, state)
        if blocked:  # its parent ran earlier in this pass and did not complete
            outcome["blocked"].append((run, blocked[1]))
            print(f"{head} {run.name}: not launched, {blocked[1]}", flush=True)
            continue
        verb = "resuming" if state["status"] == "interrupted" else "training"
        print(f"{head} {run.name}: {verb} (log: {run.log})", flush=True)
        run.directory.mkdir(parents=True, exist_ok=True)
        with open(run.log, "a") as log:
            process = subprocess.run(
                run.command(), stdout=log, stderr=subprocess.STDOUT, check=False
            )
        status, error = status_after(process.returncode, run.state())
        outcome[status].append((run, error))
        if status != "completed":
            print(f"{head} {run.name}: {status}" + (f" ({error})" if error else ""), flush=True)
    return outcome


def launch_elsewhere(
    runs: list[SweepRun], launcher: str, submit: bool, cpus: int, time: str
) -> Outcome:
    """slurm and print: a script or command line for every missing or interrupted run."""
    outcome: Outcome = {status: [] for status in STATUSES}
    jobs: dict[str, str] = {}  # SLURM jobs queued or submitted in this pass, by run name
    for run in runs:
        state = run.state()
        job = queued_job(run) if launcher == "slurm" else None
        if job is not None:
            jobs[run.name] = job
        blocked = blocked_by_parent(run, state)
        after = None
        if blocked and blocked[0] == "waiting":  # slurm: a dependency; print: listed after it
            after = parent_job(run, jobs) if launcher == "slurm" else None
            blocked = None
        if blocked:
            outcome["blocked"].append((run, blocked[1]))
            print(f"{run.name}: not launched, {blocked[1]}", file=sys.stderr)
            continue
        outcome[state["status"]].append((run, state.get("error")))
        if state["status"] in ("completed", "failed"):
            print(skip_text(run, state), file=sys.stderr)
        elif job is not None:
            print(
                f"{run.name}: queued or running as SLURM job {job}, not submitted again",
                file=sys.stderr,
            )
        elif launcher == "print":
            print(shlex.join(run.command()))
        else:
            run.directory.mkdir(parents=True, exist_ok=True)
            script = run.directory / "job.sbatch"
            script.write_text(sbatch_script(run, cpus, time))
            dependency = [f"--dependency=afterok:{after}"] if after else []
            if submit:
                submitted = subprocess.run(
                    ["sbatch", "--parsable", *dependency, str(script)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                job = submitted.stdout.strip().split(";")[0]  # "id" or "id;cluster"
                (run.directory / JOB_FILE).write_text(job + "\n")
                jobs[run.name] = job
                print(
                    f"{run.name}: submitted as SLURM job {job}"
                    + (f", after {after}" if after else "")
                )
            else:
                print(shlex.join(["sbatch", *dependency, str(script)]))
    return outcome


JOB_FILE = "slurm_job"  # the id of the run's last submitted job, in its folder


def parent_job(run: SweepRun, jobs: dict[str, str]) -> str:
    """The SLURM job a branch waits for: its parent's, queued or submitted in this pass (without
    --submit, a placeholder naming the parent)."""
    return jobs.get(run.parent.name) or queued_job(run.parent) or f"<job of {run.parent.name}>"


def queued_job(run: SweepRun) -> str | None:
    """The run's SLURM job id if squeue still lists it (pending, running or requeued), so a
    second `--launcher slurm` pass does not put two jobs on one run folder."""
    file = run.directory / JOB_FILE
    if not file.exists() or shutil.which("squeue") is None:
        return None
    job = file.read_text().strip()
    listed = subprocess.run(
        ["squeue", "--noheader", "--format=%i", "--jobs", job], capture_output=True, text=True
    )
    return job if job in listed.stdout.split() else None


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
#SBATCH --output={log}
# Lightning detects SLURM: one process per task, ranks from SLURM_PROCID; SIGUSR1 (sent 120 s
# before the time limit or on preemption) makes it save a checkpoint and requeue this job, which
# then resumes from the newest checkpoint in the run folder. Every job of the run appends to the
# run's train.log, where `sweep.py --launcher local` writes too and `laws collect` looks.
cd {workdir}
srun {command}
"""


def sbatch_script(run: SweepRun, cpus: int, time: str) -> str:
    cfg = load_config(run.overrides)
    vocab_size = pool_source(cfg).vocab_size
    plan = launch_plan(cfg, vocab_size)
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
        log=run.log,
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
        if args.launcher == "local":
            outcome = run_local(runs)
        else:
            outcome = launch_elsewhere(
                runs, args.launcher, args.submit, args.cpus_per_task, args.time
            )
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    stream = sys.stdout if args.launcher == "local" else sys.stderr
    counts = ", ".join(f"{len(v)} {k}" for k, v in outcome.items() if v)
    print(f"sweep {name}: {counts}", file=stream)
    for run, error in outcome["failed"]:
        print(f"  failed: {run.name} ({error}); {log_text(run)}", file=stream)
    for run, why in outcome["blocked"]:
        print(f"  blocked: {run.name} ({why})", file=stream)
    unfinished = outcome["failed"] or outcome["blocked"]
    unfinished = unfinished or (args.launcher == "local" and outcome["interrupted"])
    return 1 if unfinished else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
