"""Read runs into a `Runs` table: a runs/ directory of result.json files, or a CSV / JSON-lines
table (columns N, D, loss; optional C, mixture, language).

From a result.json: n_params is N, tokens is D, val_bpc the loss, flops the compute,
code_fraction the mixture; val_bpc_by_language {language: bpc} adds one row per language.
Only runs with "status": "completed" are read; a completed run missing a key is an error that
names the file, since silently dropping it would bias the fit. Repeated runs of one (N, D,
mixture, language) are averaged into one row by default (`laws.data.average_repeats`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from laws.data import (
    DEFAULT_FLOPS_PER_TOKEN,
    Runs,
    average_repeats,
    parse_quantity,
    refuse_repeats,
)
from laws.errors import LawsError

RESULT_KEYS = ("n_params", "tokens", "val_bpc")
TABLE_COLUMNS = ("n", "d", "loss")
OPTIONAL_COLUMNS = ("c", "mixture", "language")


def read_runs(
    path: str | Path, flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN, average: bool = True
) -> Runs:
    """Runs from a directory (every */result.json, recursively) or a .csv / .jsonl table;
    repeats averaged into one row, or (average=False) refused."""
    path = Path(path)
    if path.is_dir():
        rows = _read_results_dir(path)
    elif not path.exists():
        raise LawsError(f"{path}: no such file or directory")
    elif path.suffix.lower() == ".csv":
        rows = _read_csv(path)
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = _read_jsonl(path)
    else:
        raise LawsError(
            f"{path}: expected a runs/ directory, a .csv or a .jsonl table (columns N, D, loss)"
        )
    if not rows:
        raise LawsError(f"{path}: no runs found")
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
    if average:
        return average_repeats(runs)
    refuse_repeats(runs)
    return runs


def _read_results_dir(root: Path) -> list[dict[str, Any]]:
    rows = []
    files = sorted(root.rglob("result.json"))
    if not files:
        raise LawsError(f"{root}: no result.json files under this directory")
    for file in files:
        try:
            result = json.loads(file.read_text())
        except json.JSONDecodeError as error:
            raise LawsError(f"{file}: not valid JSON ({error})") from None
        if not isinstance(result, dict) or result.get("status") != "completed":
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


def _number(value: Any, where: Path | str, key: str) -> float:
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
