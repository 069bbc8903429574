"""Collect a sweep's completed runs into one CSV for `laws fit`, and list the runs that are
missing, interrupted or failed (with their logs: <run>/train.log, where sweep.py's local and
SLURM launchers write; "no log" when the run was launched some other way)."""

from __future__ import annotations

import argparse
from pathlib import Path

from laws.cli.common import Output
from laws.runs.collect import collect

NAME = "collect"
HELP = "one CSV of a sweep's completed runs; lists missing and failed runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir", help="runs/<sweep name>")
    parser.add_argument("--out", help="CSV to write (default: <sweep_dir>/results.csv)")
    parser.add_argument("--sweep", help="sweep file (default: <sweep_dir>/sweep.yaml)")


def run(args: argparse.Namespace) -> Output:
    out = args.out or str(Path(args.sweep_dir) / "results.csv")
    report = collect(args.sweep_dir, out, args.sweep)
    lines = [f"{report['completed']} completed runs written to {report['out']}"]
    for status in ("failed", "interrupted", "missing"):
        for run in report[status]:
            detail = f" ({run['error']})" if run.get("error") else ""
            log = f"log: {run['log']}" if run["log"] else "no log"
            lines.append(f"{status}: {run['name']}{detail}; {log}")
    return Output(report, "\n".join(lines))
