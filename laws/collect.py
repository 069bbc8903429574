"""One results table from a sweep's run folders, and what is still missing or failed.

The CSV is the long format `laws fit` reads: one row per run with the total BPC (language
empty), then one row per validation language, plus the run's name, steps and wall time.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from laws.errors import LawsError

COLUMNS = ("name", "N", "D", "C", "mixture", "language", "loss", "steps", "wall_seconds")


def run_states(sweep_dir: Path, sweep_file: Path | None) -> dict[str, dict]:
    """Every run folder's state, plus the sweep's runs that have no folder yet ("missing")."""
    states = {}
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        result = folder / "result.json"
        if result.exists():
            states[folder.name] = {"folder": folder, **json.loads(result.read_text())}
        elif (folder / "checkpoints").exists() or (folder / "plan.json").exists():
            states[folder.name] = {"folder": folder, "status": "interrupted"}
    sweep_file = sweep_file or sweep_dir / "sweep.yaml"
    if sweep_file.exists():
        for run in yaml.safe_load(sweep_file.read_text())["runs"]:
            states.setdefault(run["name"], {"folder": sweep_dir / run["name"], "status": "missing"})
    return states


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
            "steps": state["steps"],
            "wall_seconds": round(state["wall_seconds"], 1),
        }
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
            {"name": n, "log": str(s["folder"] / "train.log"), "error": s.get("error")}
            for n, s in states.items()
            if s["status"] == status
        ]
        for status in ("failed", "interrupted", "missing")
    }
    completed = sum(1 for s in states.values() if s["status"] == "completed")
    return {"out": str(out), "completed": completed, **problems}
