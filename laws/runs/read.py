"""Read runs into a `Runs` table: a runs/ directory of result.json files, or a CSV / JSON-lines
table (columns N, D, loss; optional C, mixture, language).

From a result.json: n_params is N, tokens is D, val_bpc the loss, flops the compute,
code_fraction the mixture; val_bpc_by_language {language: bpc} adds one row per language.
Only runs with "status": "completed" become rows; a completed run missing a key is an error that
names the file, since silently dropping it would bias the fit. Everything else read but not
fitted is listed in `Runs.left_out`, so the fit can say what it did not see: runs that did not
complete, rows with a non-finite or non-positive N, D or loss, the runs a sweep's collected table
lacks (`laws collect` writes them to `<table>.left_out.csv` beside it), and repeats of one (N,
D, mixture, language), averaged into one row by default (`laws.runs.table.average_repeats`).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from laws.errors import LawsError
from laws.runs.table import (
    DEFAULT_FLOPS_PER_TOKEN,
    LeftOut,
    Runs,
    average_repeats,
    refuse_repeats,
)
from laws.units import parse_quantity

RESULT_KEYS = ("n_params", "tokens", "val_bpc")
TABLE_COLUMNS = ("n", "d", "loss")
OPTIONAL_COLUMNS = ("c", "mixture", "language")
LEFT_OUT_COLUMNS = ("name", "status", "error", "log")
NON_FINITE = ("nan", "inf", "infinity")
LISTED = 20  # left-out runs printed under a fit; the fit JSON lists all


def left_out_path(table: str | Path) -> Path:
    """Where `laws collect` lists a sweep's runs that its table lacks: <table>.left_out.csv."""
    table = Path(table)
    return table.with_name(f"{table.stem}.left_out.csv")


def read_runs(
    path: str | Path, flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN, average: bool = True
) -> Runs:
    """Runs from a directory (every */result.json, recursively) or a .csv / .jsonl table;
    repeats averaged into one row, or (average=False) refused."""
    path = Path(path)
    left_out: list[LeftOut] = []
    if path.is_dir():
        rows = _read_results_dir(path, left_out)
    elif not path.exists():
        raise LawsError(f"{path}: no such file or directory")
    elif path.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        csv_table = path.suffix.lower() == ".csv"
        rows = _read_csv(path) if csv_table else _read_jsonl(path)
        left_out += _read_left_out(left_out_path(path))
    else:
        raise LawsError(
            f"{path}: expected a runs/ directory, a .csv or a .jsonl table (columns N, D, loss)"
        )
    rows = [row for row in rows if _usable(row, left_out)]
    if not rows:
        listed = "; ".join(f"{x.run}: {x.reason}" for x in left_out[:3])
        raise LawsError(f"{path}: no runs found" + (f" (left out: {listed})" if listed else ""))
    c = [r["c"] if r["c"] is not None else flops_per_token * r["n"] * r["d"] for r in rows]
    runs = Runs.from_arrays(
        [r["n"] for r in rows],
        [r["d"] for r in rows],
        [r["loss"] for r in rows],
        c=c,
        mixture=[r["mixture"] for r in rows],
        language=[r["language"] for r in rows],
        source=[r["source"] for r in rows],
    )
    runs.left_out = left_out
    if average:
        return average_repeats(runs)
    refuse_repeats(runs)
    return runs


def _usable(row: dict[str, Any], left_out: list[LeftOut]) -> bool:
    """False (and the row listed as left out) when N, D or the loss is not positive and finite."""
    for key in ("n", "d", "loss"):
        if not (np.isfinite(row[key]) and row[key] > 0):
            run = row["source"] + (f" [{row['language']}]" if row["language"] else "")
            reason = f"{key}={row[key]!r} is not a positive finite number"
            left_out.append(LeftOut(run, "unusable", reason, row["mixture"], row["language"]))
            return False
    return True


def _read_left_out(path: Path) -> list[LeftOut]:
    """The runs `laws collect` found without a usable result, from <table>.left_out.csv."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            LeftOut(row["name"], row["status"], row.get("error") or row["status"])
            for row in csv.DictReader(handle)
        ]


def _read_results_dir(root: Path, left_out: list[LeftOut]) -> list[dict[str, Any]]:
    rows = []
    files = sorted(root.rglob("result.json"))
    if not files:
        raise LawsError(f"{root}: no result.json files under this directory")
    for file in files:
        try:
            result = json.loads(file.read_text())
        except json.JSONDecodeError as error:
            raise LawsError(f"{file}: not valid JSON ({error})") from None
        if not isinstance(result, dict):
            left_out.append(LeftOut(str(file), "unusable", "not a JSON object"))
            continue
        if result.get("status") != "completed":
            left_out.append(LeftOut(str(file), "failed", _not_completed(result)))
            continue
        missing = [k for k in RESULT_KEYS if result.get(k) is None]
        if missing:
            raise LawsError(
                f"{file}: completed run without {', '.join(missing)} "
                f"(a result.json needs {', '.join(RESULT_KEYS)}); rerun it or remove the file"
            )
        fraction = result.get("code_fraction")
        base = {
            "n": _number(result["n_params"], file, "n_params"),
            "d": _number(result["tokens"], file, "tokens"),
            "c": None if result.get("flops") is None else _number(result["flops"], file, "flops"),
            "mixture": None if fraction is None else f"{float(fraction):g}",
            "source": str(file),
        }
        rows.append({**base, "loss": _number(result["val_bpc"], file, "val_bpc"), "language": None})
        for language, bpc in (result.get("val_bpc_by_language") or {}).items():
            loss = _number(bpc, file, f"val_bpc_by_language.{language}")
            rows.append({**base, "loss": loss, "language": str(language)})
    return rows


def _not_completed(result: dict[str, Any]) -> str:
    """Why a result.json is not a row: its status, and where a failed run stopped."""
    reason = f"status {result.get('status')!r}"
    if result.get("step") is not None:
        reason += f" at step {result['step']}"
    return reason + (f": {result['error']}" if result.get("error") else "")


def left_out_summary(runs: Runs) -> dict[str, Any]:
    """The runs left out of a fit of these runs: how many, of which kind, and each one."""
    kinds = Counter(x.kind for x in runs.left_out)
    listed = [x.to_json() for x in runs.left_out]
    return {"count": len(listed), "by_kind": dict(kinds), "runs": listed}


def left_out_text(summary: dict[str, Any]) -> str | None:
    """The summary for a person (the first LISTED runs), or None when nothing was left out."""
    if not summary["count"]:
        return None
    kinds = ", ".join(f"{count} {kind}" for kind, count in summary["by_kind"].items())
    runs = "run" if summary["count"] == 1 else "runs"
    lines = [f"left out of the fit: {summary['count']} {runs} ({kinds})"]
    lines += [f"  {x['kind']}: {x['run']} ({x['reason']})" for x in summary["runs"][:LISTED]]
    if summary["count"] > LISTED:
        lines.append(f"  ... and {summary['count'] - LISTED} more (fit.left_out in the fit JSON)")
    return "\n".join(lines)


def _number(value: Any, where: Path | str, key: str) -> float:
    """A quantity; nan and inf (a diverged run's loss) read as numbers, to be left out."""
    if str(value).strip().lower().lstrip("+-") in NON_FINITE:
        return float(value)
    try:
        return parse_quantity(value, key)
    except LawsError:
        raise LawsError(f"{where}: {key}={value!r} is not a number") from None


def _table_row(record: dict[str, Any], source: str) -> dict[str, Any]:
    """One table record, keys matched case-insensitively."""
    lower = {str(k).strip().lower(): v for k, v in record.items()}
    missing = [c for c in TABLE_COLUMNS if lower.get(c) in (None, "")]
    if missing:
        found = ", ".join(record) or "none"
        raise LawsError(
            f"{source}: missing {', '.join(c.upper() if c != 'loss' else c for c in missing)} "
            f"(columns needed: N, D, loss; optional C, mixture, language; found {found})"
        )
    row = {c: _number(lower[c], source, c) for c in TABLE_COLUMNS}
    c = lower.get("c")
    row["c"] = None if c in (None, "") else _number(c, source, "C")
    for label in ("mixture", "language"):
        value = lower.get(label)
        row[label] = None if value in (None, "") else str(value)
    row["source"] = source
    return row


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        return [_table_row(rec, f"{path}:{i + 2}") for i, rec in enumerate(csv.DictReader(handle))]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise LawsError(f"{path}:{i + 1}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise LawsError(f"{path}:{i + 1}: expected an object with N, D, loss")
        rows.append(_table_row(record, f"{path}:{i + 1}"))
    return rows
