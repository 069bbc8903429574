"""The report's tables, built from its laws: status, errors (held out first), parameters,
allocation and the runs left out. Cells are strings, so the HTML and the Markdown show the same.

Held-out error leads because a law is used to extrapolate; in-sample error favours the form with
more parameters by construction. Every bootstrap interval carries its draws and failed draws.
"""

from __future__ import annotations

import warnings
from typing import Any

from laws.analysis.optimal import compute_optimal
from laws.errors import LawsError, RunawayWarning
from laws.fit.result import error_summary
from laws.present.report_parts import Entry, Table
from laws.units import human

TITLES = {
    "status": "Fit status",
    "errors": "Relative errors (predicted / measured - 1): held out first, then in-sample",
    "parameters": "Fitted parameters",
    "allocation": "Compute-optimal allocation",
    "left_out": "Runs left out of the fits",
}


def tables(entries: list[Entry], left_out: list[dict[str, str]], budgets: list[float], k: float):
    """Every table in page order; "left_out" only when something was left out."""
    out = {
        "status": status_table(entries),
        "errors": error_table(entries),
        "parameters": parameter_table(entries),
        "allocation": allocation_table(entries, budgets, k),
    }
    if left_out:
        rows = [[x["run"], x["kind"], x["reason"]] for x in left_out]
        out["left_out"] = Table(["run", "kind", "reason"], rows)
    return out


def recorded(entry: Entry) -> dict[str, Any]:
    """The `fit` section of a law's fit file ({} for a law typed in)."""
    return entry.law.fit.get("fit") or {}


def status_table(entries: list[Entry]) -> Table:
    rows = []
    for entry in entries:
        fit = recorded(entry)
        problems = "; ".join(fit.get("problems") or []) or "-"
        status = fit.get("status") or "- (not recorded)"
        rows.append([entry.label, status, problems, str(len(entry.law.law.params))])
    return Table(["law", "status", "problems", "parameters"], rows)


def error_table(entries: list[Entry]) -> Table:
    """Per law: the held-out error (on the runs it did not see, or from the fit file's own
    held-out refit), then the in-sample error."""
    rows = []
    for entry in entries:
        rows.append([entry.label, "held out", *_held_out(entry)])
        mask = ~entry.held
        e = error_summary(entry.law.law, entry.runs.subset(mask))
        status = recorded(entry).get("status", "-")
        rows.append([entry.label, "in-sample", "-", str(int(mask.sum())), *_errors(e), status])
    return Table(["law", "runs", "split", "count", "mean", "max", "signed", "status"], rows)


def _held_out(entry: Entry) -> list[str]:
    """split, count, mean, max, signed, status of a law's held-out check."""
    if entry.held.any():
        e = error_summary(entry.law.law, entry.runs.subset(entry.held))
        split = entry.split or "-"
        return [split, str(int(entry.held.sum())), *_errors(e), recorded(entry).get("status", "-")]
    check = entry.law.fit.get("extrapolation")
    if check and "error" not in check:
        split = f"{check['split']} (refit{', default' if check['default'] else ''})"
        return [split, str(check["n_runs"]), *_errors(check), check["status"]]
    reason = check["error"] if check else "none recorded; --holdout n<N gives one"
    return [reason, "0", "-", "-", "-", "-"]


def _errors(e: dict[str, float]) -> list[str]:
    return [
        f"{e['mean_rel_error']:.3%}",
        f"{e['max_rel_error']:.3%}",
        f"{e['signed_rel_error']:+.3%}",
    ]


def interval(boot: dict[str, Any] | None, name: str, spec: str) -> str:
    """A bootstrap interval with its level, the draws it is over and the failed draws."""
    q = ((boot or {}).get("quantities") or {}).get(name)
    if not q or q.get("low") is None:
        return "-"
    failed = q.get("failed", boot["resamples"] - boot.get("succeeded", boot["resamples"]))
    draws = q.get("draws", boot.get("succeeded"))
    return (
        f"{q['low']:{spec}} to {q['high']:{spec}} ({boot['level']:.0%}; {draws} draws, "
        f"{failed} failed)"
    )


def parameter_table(entries: list[Entry]) -> Table:
    rows = []
    for entry in entries:
        boot = entry.law.fit.get("bootstrap")
        for name, value in entry.law.law.params.items():
            rows.append([entry.label, name, f"{value:.6g}", interval(boot, name, ".6g")])
        rows.append([entry.label, "irreducible", f"{entry.law.law.irreducible():.4g}", "-"])
    return Table(["law", "parameter", "value", "bootstrap interval"], rows)


def allocation_table(entries: list[Entry], budgets: list[float], k: float) -> Table:
    rows = []
    for entry in entries:
        boot = entry.law.fit.get("bootstrap")
        for budget in budgets:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RunawayWarning)
                    a = compute_optimal(entry.law.law, budget, k, entry.law.region)
            except LawsError as error:
                rows.append([entry.label, f"{budget:.3g}", "-", "-", "-", "-", "-", str(error)])
                continue
            rows.append(
                [
                    entry.label,
                    f"{budget:.3g}",
                    human(a.n_opt),
                    human(a.d_opt),
                    f"{a.d_over_n:.1f}",
                    interval(boot, f"d_over_n@C={budget:.3g}", ".1f"),
                    f"{a.loss:.5f}",
                    "; ".join(x for x in (a.note, a.extrapolation) if x),
                ]
            )
    headers = ["law", "C", "N_opt", "D_opt", "D/N", "D/N interval", "loss", "note"]
    return Table(headers, rows)
