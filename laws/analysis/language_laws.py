"""Per-language laws side by side: each language's exponents, with their bootstrap intervals,
its fit status and its held-out error, read from a `laws fit --per-language` file."""

from __future__ import annotations

from typing import Any

from laws.errors import LawsError

EXPONENTS = ("alpha", "beta")  # Chinchilla's N and D exponents (FACTS section 8: alpha_N, alpha_D)


def exponent_rows(per_language: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per language: law, status, E, alpha, beta (each with low/high when the fit was
    bootstrapped) and the held-out mean |error|."""
    if per_language.get("law") != "per_language":
        raise LawsError("expected a `laws fit --per-language` file (law: per_language)")
    rows = []
    for language, record in sorted(per_language["languages"].items()):
        params = record.get("params", {})
        quantities = (record.get("bootstrap") or {}).get("quantities", {})
        check = record.get("extrapolation") or {}
        row: dict[str, Any] = {
            "language": language,
            "law": record.get("law"),
            "status": (record.get("fit") or {}).get("status"),
            "runs": (record.get("fit") or {}).get("n_runs"),
            "E": params.get("E"),
            "held_out_mean_error": check.get("mean_rel_error"),
        }
        for name in EXPONENTS:
            row[name] = params.get(name)
            interval = quantities.get(name) or {}
            row[f"{name}_low"], row[f"{name}_high"] = interval.get("low"), interval.get("high")
        rows.append(row)
    return rows


def exponents_by_language(per_language: dict[str, Any]) -> dict[str, float]:
    """{language: beta}: each language's data exponent, for the synergy analysis."""
    return {row["language"]: row["beta"] for row in exponent_rows(per_language) if row["beta"]}
