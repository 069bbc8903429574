"""Read the runs of a language study: tokens trained per language and BPC per language.

From a result.json: `languages.tokens` (written when the run set `data.languages`),
`val_bpc_by_language`, n_params and `config.run.seed`. A .jsonl table gives the same per line:
{"name", "n", "tokens": {lang: count}, "bpc": {lang: value}, "seed"}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from laws.errors import LawsError


@dataclass(frozen=True)
class LanguageRun:
    """One run: its size, tokens trained per language and validation BPC per language."""

    name: str
    n: float
    tokens: dict[str, float]
    bpc: dict[str, float]
    seed: int = 0


def _from_result(path: Path, result: dict) -> LanguageRun:
    try:
        record = result.get("languages") or {}
        tokens = record.get("tokens")
        if tokens is None:
            raise LawsError(
                f"{path}: no `languages` record (the run did not set data.languages); a synergy "
                "or allocation study trains every run with data.languages"
            )
        return LanguageRun(
            name=path.parent.name,
            n=float(result["n_params"]),
            tokens={k: float(v) for k, v in tokens.items()},
            bpc={k: float(v) for k, v in result["val_bpc_by_language"].items()},
            seed=int(result.get("config", {}).get("run", {}).get("seed", 0)),
        )
    except KeyError as missing:
        raise LawsError(f"{path}: a completed result without {missing}") from None


def read_language_runs(path: str | Path) -> tuple[list[LanguageRun], list[str]]:
    """The completed runs under a directory (or in a .jsonl), and the names left out (runs that
    did not complete), so a caller can say what it did not use."""
    path = Path(path)
    runs, left_out = [], []
    if path.is_dir():
        for result_path in sorted(path.rglob("result.json")):
            result = json.loads(result_path.read_text())
            if result.get("status") != "completed":
                left_out.append(f"{result_path.parent.name} ({result.get('status')})")
                continue
            runs.append(_from_result(result_path, result))
    elif path.suffix == ".jsonl" and path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                runs.append(
                    LanguageRun(
                        row["name"], float(row["n"]), row["tokens"], row["bpc"], row.get("seed", 0)
                    )
                )
    else:
        raise LawsError(f"{path}: expected a runs/ directory of result.json files or a .jsonl")
    if not runs:
        raise LawsError(f"{path}: no completed runs")
    return runs, left_out
