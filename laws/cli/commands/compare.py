"""Compare laws on the same runs: fit files as given, and/or laws fitted here on the runs below
--holdout; all are scored on the held-out runs (every run without --holdout). Each law shows its
status (a fit file's recorded one; "-" for a law typed in) and its parameter count: scored
in-sample, the law with more parameters is favoured by construction, and the table says so."""

from __future__ import annotations

import argparse
from pathlib import Path

from laws.analysis.validate import evaluate, split
from laws.cli.common import Output, add_no_average, cutoff, format_table, load_runs, read_fit
from laws.errors import LawsError
from laws.fit.chinchilla import GRIDS
from laws.fit.dispatch import FITTERS, fit_law
from laws.fit.forms import Law, read_json
from laws.runs.read import left_out_summary, left_out_text
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN, Runs

NAME = "compare"
HELP = "several laws scored on the same (held-out) runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="runs/ directory, or .csv / .jsonl")
    parser.add_argument("--fit", nargs="+", default=[], metavar="F", help="fit or law files")
    parser.add_argument("--law", nargs="+", default=[], choices=sorted(FITTERS), help="fit here")
    parser.add_argument("--holdout", type=cutoff, metavar="CUT", help="n<N or c<C")
    parser.add_argument("--mixture")
    parser.add_argument("--language")
    parser.add_argument("--workers", type=int)
    parser.add_argument(
        "--grid", choices=sorted(GRIDS), default="hoffmann", help="Chinchilla starting grid"
    )
    parser.add_argument("--flops-per-token", type=float, default=DEFAULT_FLOPS_PER_TOKEN)
    add_no_average(parser)


def run(args: argparse.Namespace) -> Output:
    if not args.fit and not args.law:
        raise LawsError("nothing to compare: give fit files with --fit and/or laws with --law")
    runs = load_runs(args).select(args.mixture, args.language)
    train, test = split(runs, args.holdout) if args.holdout else (runs, runs)
    if args.holdout:
        scope = f"held-out runs (not {args.holdout})"
    else:
        scope = "every run (in-sample for laws fitted here)"
    rows = []
    for path in args.fit:
        law, _ = read_fit(path, args.language)
        recorded = _recorded_fit(path, args.language)
        row = {"name": Path(path).stem, "law": law.name, **_score(law, test)}
        rows.append({**row, "status": recorded.get("status"), "problems": recorded.get("problems")})
    for name in args.law:
        chinchilla = {"workers": args.workers, "starts": GRIDS[args.grid]()}
        options = chinchilla if name == "chinchilla" else {}
        fit = fit_law(train, name, **options)
        row = {"name": f"{name} (fitted here)", "law": name, **_score(fit.law, test)}
        rows.append({**row, "status": fit.status, "problems": list(fit.problems)})
    data = {"scored_on": scope, "n_runs": len(test), "laws": rows}
    left = left_out_summary(runs)
    data["left_out"] = left
    table = format_table(
        rows,
        [
            ("name", "name", ""),
            ("law", "law", ""),
            ("mean_rel_error", "mean", ".3%"),
            ("max_rel_error", "max", ".3%"),
            ("signed_rel_error", "signed", "+.3%"),
            ("irreducible", "irreducible", ".4g"),
            ("parameters", "params", "d"),
            ("status", "status", ""),
        ],
    )
    lines = [f"scored on {len(test)} runs: {scope}", table]
    lines += [f"{r['name']}: problem: {p}" for r in rows for p in r["problems"] or []]
    counts = {r["parameters"] for r in rows}
    if not args.holdout and len(counts) > 1:
        data["note"] = note = (
            f"in-sample, a law with more parameters ({max(counts)} against {min(counts)}) fits "
            "better by construction; compare held-out error (--holdout n<N) to judge which "
            "extrapolates"
        )
        lines.append(f"note: {note}")
    left_text = left_out_text(left)
    return Output(data, "\n".join(lines + ([left_text] if left_text else [])))


def _recorded_fit(path: str, language: str | None) -> dict:
    """The status and problems a fit file records ({} for a law typed in)."""
    data = read_json(path)
    if data.get("law") == "per_language":
        data = data["languages"][language]
    return data.get("fit") or {}


def _score(law: Law, runs: Runs) -> dict[str, float]:
    scored = evaluate(law, runs)
    return {
        "mean_rel_error": scored["mean_rel_error"],
        "max_rel_error": scored["max_rel_error"],
        "signed_rel_error": scored["signed_rel_error"],
        "irreducible": law.irreducible(),
        "parameters": len(law.params),
    }
