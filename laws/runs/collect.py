"""One results table from a sweep's run folders, and what is still missing or failed.

The CSV is the long format `laws fit` reads: one row per run with the total BPC (language
empty), then one row per validation language, plus the run's name, schedule (cosine, or wsd for
the runs of WSD families), family (the WSD parent's name), steps and wall time. The sweep's
runs without a result (failed, interrupted, missing) go to `<table>.left_out.csv` beside it,
which `laws.runs.read.read_runs` reads back, so a fit of the table lists what it did not see.
`run_state` is also how sweep.py decides what to launch, so both tell the same story.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from laws.errors import LawsError
from laws.runs.read import LEFT_OUT_COLUMNS, left_out_path
from lightning_modules.shape import ModelShape

COLUMNS = (
    *("name", "N", "D", "C", "mixture", "language", "loss"),
    *("schedule", "family", "steps", "wall_seconds", "attention", "kv_cache_values_per_token"),
)
# What a completed result.json must hold for its row.
RESULT_KEYS = ("n_params", "tokens", "flops", "code_fraction", "steps", "wall_seconds", "val_bpc")
LOG = "train.log"  # where sweep.py's launchers, local and SLURM, send a run's output


def run_state(folder: Path) -> dict:
    """A run folder's state: its result.json ("completed" or "failed"), "interrupted" if it
    started (plan or checkpoints) without one, else "missing"; plus `log` (None if the run left
    none there). An unreadable result.json counts as failed, naming the file, so one bad file
    neither hides the other runs nor gets its run launched again unseen."""
    result = folder / "result.json"
    if result.exists():
        try:
            state = json.loads(result.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            state = {"status": "failed", "error": f"{result} is unreadable ({err})"}
        if not isinstance(state, dict):
            state = {"status": "failed", "error": f"{result} is not a JSON object"}
        if state.get("status") == "completed":
            lacking = [key for key in RESULT_KEYS if key not in state]
            if lacking:
                state = {"status": "failed", "error": f"{result} lacks {', '.join(lacking)}"}
        if state.get("status") != "completed":
            state = {**state, "status": "failed"}
    elif (folder / "checkpoints").exists() or (folder / "plan.json").exists():
        state = {"status": "interrupted"}
    else:
        state = {"status": "missing"}
    log = folder / LOG
    return {**state, "folder": folder, "log": str(log) if log.exists() else None}


def run_states(sweep_dir: Path, sweep_file: Path | None) -> dict[str, dict]:
    """Every started run folder's state, plus the sweep's runs that have not started ("missing")."""
    states = {}
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        state = run_state(folder)
        if state["status"] != "missing":
            states[folder.name] = state
    sweep_file = sweep_file or sweep_dir / "sweep.yaml"
    if sweep_file.exists():
        try:
            names = [run["name"] for run in yaml.safe_load(sweep_file.read_text())["runs"]]
        except (OSError, yaml.YAMLError, TypeError, KeyError) as err:
            raise LawsError(
                f"cannot read the run names in the sweep file {sweep_file} ({err}); pass the "
                "file that launched the sweep with --sweep"
            ) from err
        for name in names:
            states.setdefault(name, run_state(sweep_dir / name))
    return states


def attention_of(plan: dict) -> tuple[str, int]:
    """The run's attention type and KV cache per token (results from before attention types
    were recorded are MHA, 2 * n_layer * d_model)."""
    keys = ("d_model", "n_layer", "d_ff", "n_head", "attention", "n_kv_head", "q_rank")
    shape = ModelShape(**{k: plan[k] for k in keys if k in plan})
    return shape.attention, shape.kv_cache_values_per_token


def family_of(name: str, family: dict) -> str:
    """The WSD family a run belongs to, named by its parent run; empty for a run of its own."""
    if family.get("role") == "branch":
        return Path(family["parent"]).name
    return name if family.get("role") == "parent" else ""


def collect(sweep_dir: str | Path, out: str | Path, sweep_file: str | Path | None = None) -> dict:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise LawsError(f"{sweep_dir}: no such sweep folder (runs/<sweep name>)")
    states = run_states(sweep_dir, Path(sweep_file) if sweep_file else None)
    rows = []
    for name, state in states.items():
        if state["status"] != "completed":
            continue
        base = {
            "name": name,
            "N": state["n_params"],
            "D": state["tokens"],
            "C": state["flops"],
            "mixture": f"{float(state['code_fraction']):g}",
            "schedule": state.get("schedule", "cosine"),  # a WSD branch is one (N, D) point too
            "family": family_of(name, state.get("family") or {}),
            "steps": state["steps"],
            "wall_seconds": round(state["wall_seconds"], 1),
        }
        if "plan" in state:
            base["attention"], base["kv_cache_values_per_token"] = attention_of(state["plan"])
        rows.append({**base, "language": "", "loss": state["val_bpc"]})
        for language, bpc in sorted((state.get("val_bpc_by_language") or {}).items()):
            rows.append({**base, "language": language, "loss": bpc})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    problems = {
        status: [
            {"name": n, "log": s["log"], "error": s.get("error")}
            for n, s in states.items()
            if s["status"] == status
        ]
        for status in ("failed", "interrupted", "missing")
    }
    left_out = left_out_path(out)
    listed = [
        {
            "name": r["name"],
            "status": status,
            "error": r["error"] or "",
            "log": r["log"] or "",
        }
        for status, found in problems.items()
        for r in found
    ]
    if listed:
        with left_out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, LEFT_OUT_COLUMNS)
            writer.writeheader()
            writer.writerows(listed)
    else:
        left_out.unlink(missing_ok=True)  # a stale list would name runs that have since completed
    completed = sum(1 for s in states.values() if s["status"] == "completed")
    return {
        "out": str(out),
        "left_out": str(left_out) if listed else None,
        "completed": completed,
        **problems,
    }
